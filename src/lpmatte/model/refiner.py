"""Refinement network (Sec. 3.2-3.3): 8x8 RGB + coarse-alpha regions -> refined alpha patches.

Encoder: valid 3x3 convolutions 8 -> 6 -> 4 -> 2 px. The 2x2 map is average-pooled to one
region token for Cross Region Attention (or, without CRA, just projected); the token is
broadcast back onto the 2x2 map and transposed convolutions decode it to 8x8, with the
input region concatenated at full size so fine detail needs not pass the bottleneck. The
output is a residual over the upsampled coarse alpha, clamped to [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lpmatte.model.config import RefinerConfig
from lpmatte.model.cross_region_attention import CrossRegionAttention

IN_CHANNELS = 4  # RGB + upsampled coarse alpha


def conv_bn_lrelu(in_channels: int, out_channels: int, padding: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=padding, bias=False),
                         nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.1, inplace=True))


def up_bn_lrelu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2, bias=False),
                         nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.1, inplace=True))


class RegionEncoder(nn.Module):
    """(N, 4, 8, 8) -> (N, C, 2, 2) with three valid convolutions."""

    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        widths = (IN_CHANNELS, *channels)
        self.layers = nn.Sequential(*(conv_bn_lrelu(widths[i], widths[i + 1])
                                      for i in range(len(channels))))

    def forward(self, regions: torch.Tensor) -> torch.Tensor:
        return self.layers(regions)


class RegionDecoder(nn.Module):
    """(N, C, 2, 2) features, the (N, D) region token broadcast over them, and the (N, 4, 8, 8)
    input -> (N, 1, 8, 8) alpha residual."""

    def __init__(self, in_channels: int, channels: tuple[int, ...]):
        super().__init__()
        self.up1 = up_bn_lrelu(in_channels, channels[0])  # 2 -> 4
        self.up2 = up_bn_lrelu(channels[0], channels[1])  # 4 -> 8
        self.fuse = conv_bn_lrelu(channels[1] + IN_CHANNELS, channels[2], padding=1)
        self.out = nn.Conv2d(channels[2], 1, 1)

    def forward(self, features: torch.Tensor, token: torch.Tensor,
                regions: torch.Tensor) -> torch.Tensor:
        x = self.up2(self.up1[1:](self._upsample(features, token)))
        return self.out(self.fuse(torch.cat([x, regions], 1)))

    def _upsample(self, features: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        """up1's transposed convolution of [features, token broadcast to every pixel].

        Its kernel equals its stride (2), so every input pixel writes its own 2x2 output
        tile; the constant token adds the same tile T[o, a, b] = sum_d token[d] W[d, o, a, b]
        everywhere. Computing T once per region replaces broadcasting the token.
        """
        weight = self.up1[0].weight  # [C + D, out, 2, 2]
        channels = features.shape[1]
        x = F.conv_transpose2d(features, weight[:channels], stride=2)
        tile = (token @ weight[channels:].flatten(1)).view(-1, *weight.shape[1:])  # [N, out, 2, 2]
        return x + tile.repeat(1, 1, features.shape[2], features.shape[3])


class Refiner(nn.Module):
    """Refines the selected regions of one batch, given their coordinates and neighbours."""

    def __init__(self, config: RefinerConfig = RefinerConfig()):
        super().__init__()
        self.config = config
        encoded = config.encoder_channels[-1]
        self.encoder = RegionEncoder(config.encoder_channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.token = nn.Linear(encoded, config.attention_dim)
        self.attention = (CrossRegionAttention(config.attention_dim, config.num_heads,
                                               config.mlp_dim, config.search_range)
                          if config.use_cra else None)
        self.decoder = RegionDecoder(encoded + config.attention_dim, config.decoder_channels)

    def forward(self, crops: torch.Tensor, regions: torch.Tensor,
                neighbours: torch.Tensor | None, valid: torch.Tensor | None) -> torch.Tensor:
        """crops (N, 4, 8, 8): RGB in [0, 1] + coarse alpha -> refined alpha (N, 1, 8, 8)."""
        features = self.encoder(crops)  # [N, C, 2, 2]
        token = self.token(self.pool(features).flatten(1))  # [N, D]
        if self.attention is not None:
            token = self.attention(token, regions, neighbours, valid)
        residual = self.decoder(features, token, crops)
        return (crops[:, 3:] + residual).clamp(0, 1)
