"""MMNet (Seo et al., "Towards Real-Time Automatic Portrait Matting on Mobile Devices",
seed 004): an encoder-decoder of multi-branch dilated convolutions with linear bottlenecks.

Read top-down as the paper's Section 2.1: encoder block (Fig. 3) -> refinement and decoder
blocks (Fig. 4) -> the network of Table 1 with the channels of Table 6, scaled by the width
multiplier (rounded, at least 1 channel). Every convolution is followed by BatchNorm and
ReLU6 except the encoder block's final linear projection (Sec. 2.1).

Parameters (Table 3 in brackets): width 1.0 190,652 (0.199 M), 0.75 112,474 (0.127 M),
0.5 54,640 (0.069 M), 1.4 358,895 (0.369 M); tests/test_mmnet.py holds each within 30 %
of the paper. The gap, widest at 0.5, is what the paper leaves unsaid (its channel
rounding, biases, the auxiliary head). 0.655 GFLOPs at 256 x 256 (:func:`count_flops`).

Choices the paper leaves open, made here:
- In a stride-2 encoder block each branch is 1x1 expand -> 3x3 depthwise stride 2 -> 3x3
  depthwise dilated ("channel expansion followed by a strided convolution and a dilated
  convolution", Sec. 2.1.1); stride-1 blocks skip the strided one. No residual connection
  (the paper names none).
- A decoder block is a 1x1 conv to its Table 6 width, then bilinear upsampling (the cheap
  order); decoders #1 and #2 concatenate their refined skip (encoders #5 and #1).
- The auxiliary output on encoder #10 (for L_aux) is a 1x1 conv to 2 classes.
- Two-class softmax outputs are returned as one logit ``fg - bg`` (same probabilities).
- The [0, 1] image enters as ``2 x - 1`` (zero-centred, as MobileNet-style inputs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lpmatte.model.backbones.efficientnet_lite import conv_bn, separable_conv_bn
from lpmatte.model.config import MMNetConfig
from lpmatte.model.whole_image import WholeImageModel, WholeImageOutput

# Table 1 / Table 6: (branch width, output width, dilation rates, stride) of encoders #1-#10
ENCODERS = ((16, 16, (1, 2, 4, 8), 2), (16, 24, (1, 2, 4, 8), 1), (24, 24, (1, 2, 4, 8), 1),
            (24, 24, (1, 2, 4, 8), 1), (32, 40, (1, 2, 4), 2), (64, 40, (1, 2, 4), 1),
            (64, 40, (1, 2, 4), 1), (64, 40, (1, 2, 4), 1), (80, 80, (1, 2), 2),
            (120, 80, (1, 2), 1))
INITIAL_CHANNELS = 32
SKIPS = (4, 0)  # encoders #5 and #1 feed decoders #1 and #2
DECODERS = (64, 40, 16)  # Table 6 "Decoder" column; #3 upsamples x4
REFINEMENTS = (64, 40)
ENHANCEMENTS = ((40, 40, (1, 2, 4)), (40, 40, (1, 2, 4)))


class EncoderBlock(nn.Module):
    """Multi-branch dilated convolution with a linear bottleneck (Fig. 3); also the
    enhancement block, which is the same with stride 1 (Sec. 2.1.3)."""

    def __init__(self, in_channels: int, branch_channels: int, out_channels: int,
                 dilations: tuple[int, ...], stride: int = 1):
        super().__init__()
        self.branches = nn.ModuleList()
        for rate in dilations:
            layers = [conv_bn(in_channels, branch_channels)]
            if stride == 2:
                layers.append(conv_bn(branch_channels, branch_channels, 3, 2,
                                      groups=branch_channels))
            layers.append(conv_bn(branch_channels, branch_channels, 3, groups=branch_channels,
                                  dilation=rate))
            self.branches.append(nn.Sequential(*layers))
        self.project = conv_bn(branch_channels * len(dilations), out_channels, activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], 1))


def refinement_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 depthwise separable convolution on a skip connection (Fig. 4b)."""
    return separable_conv_bn(in_channels, out_channels, 3)


class DecoderBlock(nn.Module):
    """1x1 conv, bilinear x ``scale`` and, with a skip, concatenation of it (Fig. 4a)."""

    def __init__(self, in_channels: int, out_channels: int, scale: int = 2):
        super().__init__()
        self.conv = conv_bn(in_channels, out_channels)
        self.scale = scale

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = F.interpolate(self.conv(x), scale_factor=self.scale, mode="bilinear",
                          align_corners=False)
        return x if skip is None else torch.cat([x, skip], 1)


class MMNet(WholeImageModel):
    """Image (B, 3, H, W) in [0, 1] -> :class:`WholeImageOutput` (H, W multiples of 16)."""

    input_multiple = 16

    def __init__(self, config: MMNetConfig | None = None):
        super().__init__()
        config = config or MMNetConfig()
        self.config = config
        c = self.channels
        self.initial = conv_bn(3, c(INITIAL_CHANNELS), 3, 2)
        self.encoders = nn.ModuleList()
        channels = c(INITIAL_CHANNELS)
        for branch, out, rates, stride in ENCODERS:
            rates = rates if config.dilation else (1,) * len(rates)
            self.encoders.append(EncoderBlock(channels, c(branch), c(out), rates, stride))
            channels = c(out)
        self.aux_head = nn.Conv2d(channels, 2, 1)
        self.refinements = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for skip, width, refined in zip(SKIPS, DECODERS, REFINEMENTS):
            skip_channels = c(ENCODERS[skip][1])
            self.refinements.append(refinement_block(skip_channels, c(refined))
                                    if config.refinement else nn.Identity())
            self.decoders.append(DecoderBlock(channels, c(width)))
            channels = c(width) + (c(refined) if config.refinement else skip_channels)
        self.enhancements = nn.ModuleList()
        if config.enhancement:
            for branch, out, rates in ENHANCEMENTS:
                rates = rates if config.dilation else (1,) * len(rates)
                self.enhancements.append(EncoderBlock(channels, c(branch), c(out), rates))
                channels = c(out)
        self.last_decoder = DecoderBlock(channels, c(DECODERS[-1]), scale=4)
        self.final = nn.Conv2d(c(DECODERS[-1]), 2, 1)

    def channels(self, paper_channels: int) -> int:
        """Table 6 channels times the width multiplier."""
        return max(1, round(paper_channels * self.config.width))

    def predict(self, image: torch.Tensor) -> WholeImageOutput:
        x = self.initial(image * 2.0 - 1.0)  # [-1, 1] inputs, a zero-centred start
        features = []
        for encoder in self.encoders:
            x = encoder(x)
            features.append(x)
        aux = self.aux_head(x)
        for skip, refine, decode in zip(SKIPS, self.refinements, self.decoders):
            x = decode(x, refine(features[skip]))
        for enhance in self.enhancements:
            x = enhance(x)
        logits = self.final(self.last_decoder(x))
        alpha_logits = logits[:, 1:] - logits[:, :1]  # softmax over (bg, fg) = sigmoid of this
        return WholeImageOutput(alpha_logits.sigmoid(), None,
                                {"alpha_logits": alpha_logits,
                                 "encoder10_logits": aux[:, 1:] - aux[:, :1]})
