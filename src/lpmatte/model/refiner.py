"""Refinement network (Sec. 3.2-3.3): 8x8 RGB + coarse-alpha regions -> refined alpha patches.

Encoder: valid 3x3 convolutions 8 -> 6 -> 4 -> 2 px. The 2x2 map is average-pooled to one
region token for Cross Region Attention (or, without CRA, just projected); the token is
broadcast back onto the 2x2 map and decoded to 8x8 (bilinear x2 resize + 3x3 convolution,
bilinear x2 resize + 1x1 convolution), with the input region concatenated at full size so
fine detail needs not pass the bottleneck. The output is a residual over the upsampled
coarse alpha, clamped to [0, 1].

Off-reference: the reference decodes with 2x2 stride-2 transposed convolutions. Each of
their input pixels writes its own 2x2 tile, so a flat region (constant 2x2 features) came
out as a period-2/period-4 pattern, and the zero padding of the 3x3 fuse convolution added
a frame at every 8x8 border: the dotted texture of uncertain interiors (measured on lpm-e0
step 5000: residual std 0.11 inside flat 8x8 regions). Resize + convolution with replicate
padding maps a constant input to a constant output, whatever the weights. Weights trained
with the old decoder keep it (``RefinerConfig.decoder = "transposed"``, set when such a file
is loaded): loaded into the new one they lose accuracy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lpmatte.model.config import RefinerConfig
from lpmatte.model.cross_region_attention import CrossRegionAttention

IN_CHANNELS = 4  # RGB + upsampled coarse alpha


def conv_bn_lrelu(in_channels: int, out_channels: int, padding: int = 0,
                  kernel: int = 3) -> nn.Sequential:
    """Convolution; with ``padding`` the border replicates (a zero border would make every
    8x8 region's frame differ from its inside). Without, no padding mode: a replicate mode
    made PyTorch copy the input through an empty pad on every call."""
    mode = "replicate" if padding else "zeros"
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, padding=padding,
                                   bias=False, padding_mode=mode),
                         nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.1, inplace=True))


def up_bn_lrelu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2, bias=False),
                         nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.1, inplace=True))


def upsample2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


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
    input -> (N, 1, 8, 8) alpha residual.

    The token is the same at every pixel, so a 3x3 convolution over it reduces to one
    linear map (``token_in``) added everywhere: the same function as convolving the
    broadcast token, with a ninth of its weights and work.
    """

    def __init__(self, feature_channels: int, token_dim: int, channels: tuple[int, ...]):
        super().__init__()
        self.up1 = conv_bn_lrelu(feature_channels, channels[0], padding=1)  # after 2 -> 4
        self.token_in = nn.Linear(token_dim, channels[0], bias=False)
        # 1x1 after 4 -> 8: the fuse convolution next mixes neighbours at full size
        self.up2 = conv_bn_lrelu(channels[0], channels[1], kernel=1)
        self.fuse = conv_bn_lrelu(channels[1] + IN_CHANNELS, channels[2], padding=1)
        self.out = nn.Conv2d(channels[2], 1, 1)

    def forward(self, features: torch.Tensor, token: torch.Tensor,
                regions: torch.Tensor) -> torch.Tensor:
        x = self.up1[0](upsample2(features)) + self.token_in(token)[:, :, None, None]
        x = self.up2(upsample2(self.up1[1:](x)))
        return self.out(self.fuse(torch.cat([x, regions], 1)))


class TransposedRegionDecoder(nn.Module):
    """The reference's decoder (2x2 stride-2 transposed convolutions, zero-padded fuse): kept
    so that weights trained before the texture fix run as they were trained."""

    def __init__(self, in_channels: int, channels: tuple[int, ...]):
        super().__init__()
        self.up1 = up_bn_lrelu(in_channels, channels[0])  # 2 -> 4
        self.up2 = up_bn_lrelu(channels[0], channels[1])  # 4 -> 8
        self.fuse = nn.Sequential(nn.Conv2d(channels[1] + IN_CHANNELS, channels[2], 3, padding=1,
                                            bias=False),
                                  nn.BatchNorm2d(channels[2]), nn.LeakyReLU(0.1, inplace=True))
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


def decoder_of_state(state_dict: dict, prefix: str = "refiner.decoder.") -> str | None:
    """"transposed" for a state dict of the former decoder (every lpmatte weights file before
    the texture fix, whose config has no ``decoder`` field), "resize" for the current one."""
    weight = state_dict.get(prefix + "up1.0.weight")
    if weight is None:
        return None
    return "transposed" if tuple(weight.shape[-2:]) == (2, 2) else "resize"


def resize_state_from_transposed(state_dict: dict, feature_channels: int,
                                 prefix: str = "refiner.decoder.") -> dict:
    """A transposed decoder's tensors as the resize decoder's starting point (to retrain
    weights from before the texture fix): each 2x2 transposed kernel becomes its mean as the
    centre tap of a convolution after bilinear x2, i.e. the same map without its
    period-2 tile. up1's token rows become ``token_in``; BN, fuse and out carry over."""
    state = dict(state_dict)
    up1 = state.pop(prefix + "up1.0.weight")  # [C + D, c0, 2, 2]
    mean1 = up1.mean((2, 3)).t()  # [c0, C + D]
    conv1 = torch.zeros(mean1.shape[0], feature_channels, 3, 3, dtype=up1.dtype)
    conv1[:, :, 1, 1] = mean1[:, :feature_channels]
    state[prefix + "up1.0.weight"] = conv1
    state[prefix + "token_in.weight"] = mean1[:, feature_channels:].contiguous()
    up2 = state.pop(prefix + "up2.0.weight")  # [c0, c1, 2, 2]
    state[prefix + "up2.0.weight"] = up2.mean((2, 3)).t()[:, :, None, None].contiguous()
    return state


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
        if config.decoder == "transposed":
            self.decoder = TransposedRegionDecoder(encoded + config.attention_dim,
                                                   config.decoder_channels)
        else:
            self.decoder = RegionDecoder(encoded, config.attention_dim, config.decoder_channels)

    def forward(self, crops: torch.Tensor, regions: torch.Tensor,
                neighbours: torch.Tensor | None, valid: torch.Tensor | None) -> torch.Tensor:
        """crops (N, 4, 8, 8): RGB in [0, 1] + coarse alpha -> refined alpha (N, 1, 8, 8)."""
        features = self.encoder(crops)  # [N, C, 2, 2]
        token = self.token(self.pool(features).flatten(1))  # [N, D]
        if self.attention is not None:
            token = self.attention(token, regions, neighbours, valid)
        residual = self.decoder(features, token, crops)
        return (crops[:, 3:] + residual).clamp(0, 1)
