"""Low-resolution network (Sec. 3.1): Swin backbone + conv decoder -> coarse alpha and trimap.

The decoder climbs from the backbone's 1/128 map to 1/16 (channels 768 -> 256 -> 128 -> 64
for Swin-T), fusing each backbone stage. After each fusion a head predicts 4 channels
(1 alpha logit + 3 trimap logits) at twice that resolution through a x2 pixel shuffle, so
the last head gives the 1/8 outputs where one cell is one 8x8 full-resolution region.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lpmatte.model.backbones.efficientnet_lite import EfficientNetLite
from lpmatte.model.backbones.swin_transformer import SwinTransformer
from lpmatte.model.config import EfficientNetLiteConfig, LowResConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OUTPUT_CHANNELS = 4  # alpha logit + 3 trimap logits (0 background, 1 unknown, 2 foreground)


@dataclass
class LowResOutput:
    """Logits at one scale: ``alpha_logits`` (B, 1, h, w), ``trimap_logits`` (B, 3, h, w)."""

    alpha_logits: torch.Tensor
    trimap_logits: torch.Tensor


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class DecoderStage(nn.Module):
    """Upsample x2, concatenate the backbone skip, convolve; then a pixel-shuffle head."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.fuse = conv_bn_relu(in_channels + skip_channels, out_channels)
        self.head = nn.Sequential(nn.Conv2d(out_channels, OUTPUT_CHANNELS * 4, 3, padding=1),
                                  nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the fused features (at the skip's size) and 4 logit channels at 2x that."""
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        x = self.fuse(torch.cat([x, skip], dim=1))
        return x, self.head(x)


def build_backbone(config) -> nn.Module:
    """The paper's Swin, or the off-paper pretrained EfficientNet-Lite0 (same four strides)."""
    if isinstance(config, EfficientNetLiteConfig):
        return EfficientNetLite(config)
    return SwinTransformer(config)


class LowResNetwork(nn.Module):
    """Image (B, 3, H, W) in [0, 1], H and W multiples of 16 -> logits at 1/32, 1/16, 1/8."""

    def __init__(self, config: LowResConfig = LowResConfig()):
        super().__init__()
        self.backbone = build_backbone(config.backbone)
        channels = self.backbone.channels  # e.g. [96, 192, 384, 768]
        widths = (channels[-1], *config.decoder_channels)
        self.stages = nn.ModuleList(
            DecoderStage(widths[i], channels[-2 - i], widths[i + 1]) for i in range(3))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> list[LowResOutput]:
        features = self.backbone(image, normalization=(self.mean, self.std))
        x = features[-1]
        outputs = []
        for stage, skip in zip(self.stages, reversed(features[:-1])):
            x, logits = stage(x, skip)
            outputs.append(LowResOutput(logits[:, :1], logits[:, 1:]))
        return outputs
