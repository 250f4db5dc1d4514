"""Parameter-sharing portrait matting, PSPM (thesis seed 002, ch. 6): one shared encoder, a
segmentation decoder (trimap) and an IndexNet-style matting decoder.

Encoder: the thesis uses an ImageNet MobileNetV2 at output stride 16 (Sec. 6.3.2). No such
weights can be had here, so the encoder is the project's ImageNet EfficientNet-Lite0 (an
inverted-residual network of the same family), its last stride-2 stage dilated to keep
output stride 16: maps X2, X4, X8, X16 of 16, 24, 40, 320 channels. Load its weights
with ``load_pretrained(model.encoder, packaged_pretrained_path())``.

Indices, two ways (``encoder_pooling``):
- "stride" (default): the encoder keeps Lite0's pretrained strides, and each x2 step of
  the matting decoder unpools with indices that an index block (ch. 3) predicts from the
  encoder map at the step's target resolution (X8, X4, X2, then the image), as
  IndexNet's decoder indices are predicted from the high-resolution encoder map; only
  unpooling is index-guided. With ``upsampling="a2u"`` the same steps use affinity-aware
  upsampling (ch. 4) guided by the same maps.
- "index": the thesis' design (Sec. 3.6.1.1, 6.3.2): the three stride-2 blocks below
  output stride 16 run at stride 1 (same pretrained weights, now at twice their trained
  resolution) and an index block on each one's output both pools it (encoder index) and
  gives the decoder step at that resolution its unpooling index (decoder index). The
  full-resolution step, which has no encoder pooling, keeps a guide-predicted index.

SegDecoder (all variants): DeepLabV3+-style, a light ASPP (1x1 and image-pooling branches)
on X16, x4 to 1/4, concatenated with projected X4, a separable conv, 3 trimap logits at 1/4
(classes 0 bg, 1 unknown, 2 fg), bilinearly x4 for ``trimap_logits``.
The prior M = F_p + U_p / 2 (Eq. 6.1) comes from the 1/4 logits.

Variants (Sec. 6.3.2, Table 6.4):
- B3 late interaction: the matting decoder sees X16 only; the trimap enters the loss only.
- B4 feature fusion: M at 1/4 is convolved down to 1/16 and concatenated with X16.
- B5 attention-guided (default): X16, X8, X4 fused layer by layer to 1/4 (the matting
  decoder's first two steps move into the fusion), then the fused map is gated by an
  attention map computed from the trimap probabilities and concatenated with M at 1/4 -
  the prior enters without downsampling. The thesis' Fig. 6.5 is not in the text; the
  gating is this implementation's reading of "attention-guided".

Size at width 1 (``count_flops`` of :mod:`lpmatte.model.whole_image` on a 224 x 224 input,
as Table 6.4 counts; thesis in brackets): B5 3.28 M parameters, 3.05 GFLOPs (5.90 M,
6.53); B3 4.08 M, 3.62 (6.74 M, 6.77); B4 4.08 M, 3.62 (6.96 M, 6.81). Most of the
matting decoder's cost is its many-to-one index blocks; ``index_block="holistic"`` or
``upsampling="a2u"`` bring B5 to about 1.8 GFLOPs; ``encoder_pooling="index"`` B5 has
4.33 M parameters and 3.58 GFLOPs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lpmatte.model.a2u import AffinityAwareUpsampling
from lpmatte.model.backbones.efficientnet_lite import EfficientNetLite, conv_bn, separable_conv_bn
from lpmatte.model.config import EfficientNetLiteConfig, PSPMConfig
from lpmatte.model.indexnet import IndexBlock, IndexUpsampling, index_pool, index_unpool
from lpmatte.model.lowres_network import IMAGENET_MEAN, IMAGENET_STD
from lpmatte.model.whole_image import WholeImageModel, WholeImageOutput

ENCODER_CHANNELS = {2: 16, 4: 24, 8: 40, 16: 320}  # Lite0 stage ends used (stride: channels)
PRE_POOL_CHANNELS = (24, 40, 80)  # outputs of the blocks that pool to 1/4, 1/8, 1/16
MATTING_CHANNELS = {16: 96, 8: 64, 4: 48, 2: 32, 1: 16}  # decoder width at each stride
ASPP_CHANNELS, LOW_LEVEL_CHANNELS, SEG_CHANNELS, PRIOR_CHANNELS = 128, 32, 64, 16
VARIANTS = ("b3", "b4", "b5")


def trimap_prior(trimap_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 6.1: ``M = F_p + U_p / 2`` from (B, 3, h, w) logits (0 bg, 1 unknown, 2 fg)."""
    p = trimap_logits.softmax(1)
    return p[:, 2:3] + 0.5 * p[:, 1:2]


def upsample_like(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class SegDecoder(nn.Module):
    """DeepLabV3+-style decoder: (X4, X16) -> (features (B, S, H/4, W/4), logits (B, 3, ..))."""

    def __init__(self, width: float):
        super().__init__()
        aspp, low, seg = (max(1, round(c * width)) for c in
                          (ASPP_CHANNELS, LOW_LEVEL_CHANNELS, SEG_CHANNELS))
        self.aspp_conv = conv_bn(ENCODER_CHANNELS[16], aspp)
        # no BatchNorm on the pooled branch: one value per channel cannot be normalised
        self.aspp_pool = nn.Sequential(nn.Conv2d(ENCODER_CHANNELS[16], aspp, 1), nn.ReLU6())
        self.aspp_project = conv_bn(2 * aspp, aspp)
        self.low_level = conv_bn(ENCODER_CHANNELS[4], low)
        self.fuse = separable_conv_bn(aspp + low, seg, 3)
        self.head = nn.Conv2d(seg, 3, 1)

    def forward(self, x4: torch.Tensor, x16: torch.Tensor) -> torch.Tensor:
        pooled = self.aspp_pool(x16.mean((2, 3), keepdim=True)).expand(-1, -1, *x16.shape[-2:])
        context = self.aspp_project(torch.cat([self.aspp_conv(x16), pooled], 1))
        return self.head(self.fuse(torch.cat([upsample_like(context, x4), self.low_level(x4)], 1)))


class MattingStep(nn.Module):
    """One x2 step of the matting decoder: learned upsampling guided by the encoder map at
    the target resolution, concatenation of that map, a 5x5 separable conv (5x5 so the
    conv covers each unpooled 2x2 region, Sec. 6.3.2).

    paired_channels: the step unpools with the decoder index of the encoder's index
        pooling at its resolution instead (``encoder_pooling="index"``); a depthwise index
        of that many slices needs as many channels, so x is first projected to them.
    """

    def __init__(self, in_channels: int, out_channels: int, guide_channels: int,
                 config: PSPMConfig, paired_channels: int | None = None):
        super().__init__()
        self.up, self.fit = None, nn.Identity()
        if paired_channels is not None:
            if paired_channels not in (1, in_channels):
                self.fit, in_channels = conv_bn(in_channels, paired_channels), paired_channels
        elif config.upsampling == "a2u":
            self.up = AffinityAwareUpsampling(guide_channels)
        elif config.upsampling == "indexnet":
            self.up = IndexUpsampling(guide_channels, in_channels, config.index_block)
        else:
            raise ValueError(f"unknown upsampling '{config.upsampling}'")
        self.conv = separable_conv_bn(in_channels + guide_channels, out_channels, 5)

    def forward(self, x: torch.Tensor, guide: torch.Tensor,
                index: torch.Tensor | None = None) -> torch.Tensor:
        x = index_unpool(self.fit(x), index) if self.up is None else self.up(x, guide)
        return self.conv(torch.cat([x, guide], 1))


class FusionStep(nn.Module):
    """B5's layer-by-layer fusion: bilinear x2, concatenate the skip, separable 3x3 conv."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.conv = separable_conv_bn(in_channels + skip_channels, out_channels, 3)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([upsample_like(x, skip), skip], 1))


class PSPM(WholeImageModel):
    """Image (B, 3, H, W) in [0, 1] -> :class:`WholeImageOutput` with trimap logits."""

    input_multiple = 16

    def __init__(self, config: PSPMConfig | None = None):
        super().__init__()
        config = config or PSPMConfig()
        if config.variant not in VARIANTS:
            raise ValueError(f"unknown PSPM variant '{config.variant}' (known: {VARIANTS})")
        paired = config.encoder_pooling == "index"
        if config.encoder_pooling not in ("stride", "index") or (
                paired and config.upsampling != "indexnet"):
            raise ValueError(f"encoder pooling '{config.encoder_pooling}' with "
                             f"'{config.upsampling}' upsampling is not a PSPM")
        self.config = config
        m = {s: max(1, round(c * config.width)) for s, c in MATTING_CHANNELS.items()}
        e = ENCODER_CHANNELS
        self.encoder = EfficientNetLite(EfficientNetLiteConfig(
            extra_channels=(), output_stride=16, external_downsampling=paired))
        # one index block per encoder downsampling (to 1/4, 1/8, 1/16), fed the stride-1
        # output of the block that used to have stride 2
        self.index_pools = nn.ModuleList(
            IndexBlock(c, c, config.index_block) for c in PRE_POOL_CHANNELS) if paired else None
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)
        self.seg_decoder = SegDecoder(config.width)
        prior = PRIOR_CHANNELS if config.variant == "b4" else 0
        self.prior = (nn.Sequential(conv_bn(1, prior, 3, 2), conv_bn(prior, prior, 3, 2))
                      if prior else None)
        self.entry = conv_bn(e[16] + prior, m[16])
        if config.variant == "b5":
            self.fusion = nn.ModuleList([FusionStep(m[16], e[8], m[8]),
                                         FusionStep(m[8], e[4], m[4])])
            self.attention = nn.Sequential(nn.Conv2d(3, m[4], 3, padding=1), nn.Sigmoid())
            steps = [(m[4] + 1, m[2], e[2]), (m[2], m[1], 3)]
        else:
            steps = [(m[16], m[8], e[8]), (m[8], m[4], e[4]), (m[4], m[2], e[2]),
                     (m[2], m[1], 3)]
        self.mat_decoder = nn.ModuleList(
            MattingStep(i, o, g, config, self.paired_channels(len(steps) - 2 - j))
            for j, (i, o, g) in enumerate(steps))
        self.alpha_head = nn.Conv2d(m[1], 1, 3, padding=1)

    def paired_channels(self, level: int) -> int | None:
        """Slices of the decoder index paired with the encoder pooling to stride 2^(level+1)
        (level 0: 1/2 -> 1/4); None without index pooling or for the full-res step."""
        if self.index_pools is None or level < 0:
            return None
        return self.index_pools[level].out_channels

    def encode(self, image: torch.Tensor):
        """Encoder maps [X2, X4, X8, X16 (112 ch), X16 (320 ch)] and, with index pooling,
        the decoder indices of its three poolings, finest first (else an empty list)."""
        decoder_indices = []

        def index_pooling(k: int, x: torch.Tensor) -> torch.Tensor:
            maps = self.index_pools[k](x)
            decoder_indices.append(maps.decoder)
            return index_pool(x, maps.encoder)

        features = self.encoder.pyramid(image, (self.mean, self.std), index_pooling)
        return features, decoder_indices

    def predict(self, image: torch.Tensor) -> WholeImageOutput:
        (x2, x4, x8, _, x16), indices = self.encode(image)
        trimap4 = self.seg_decoder(x4, x16)
        alpha_logits = self.matte(image, (x2, x4, x8, x16), trimap4, indices)
        trimap = F.interpolate(trimap4, scale_factor=4, mode="bilinear", align_corners=False)
        return WholeImageOutput(alpha_logits.sigmoid(), trimap,
                                {"alpha_logits": alpha_logits, "trimap_logits_4": trimap4})

    def matte(self, image: torch.Tensor, features: tuple[torch.Tensor, ...],
              trimap4: torch.Tensor, indices: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Alpha logits (B, 1, H, W) from the encoder maps (X2, X4, X8, X16), the 1/4
        trimap logits and the paired decoder indices of :meth:`encode`; B3 ignores the
        trimap (it only guides B3's loss)."""
        x2, x4, x8, x16 = features
        guides = [x8, x4, x2, image]
        paired = [*reversed(indices), None] if indices else [None] * 4  # 1/8 .. full res
        if self.config.variant == "b4":
            x16 = torch.cat([x16, self.prior(trimap_prior(trimap4))], 1)
        x = self.entry(x16)
        if self.config.variant == "b5":
            x = self.fusion[1](self.fusion[0](x, x8), x4)
            x = torch.cat([x * self.attention(trimap4.softmax(1)), trimap_prior(trimap4)], 1)
            guides, paired = guides[2:], paired[2:]
        for step, guide, index in zip(self.mat_decoder, guides, paired):
            x = step(x, guide, index)
        return self.alpha_head(x)
