"""IndexNet (thesis seed 002, ch. 3): learned indices for pooling and upsampling.

An index block maps a feature map (B, C, H, W) to raw index scores (B, C' , H, W), predicted
per 2x2 local region (Sec. 3.4.1): four "columns", one per position of the region, each a
stride-2 convolution on the map, shuffled back to full resolution like pixel shuffle.

- Holistic (HIN, Sec. 3.4.2): C' = 1, one index map shared by all channels.
- Depthwise (DIN, Sec. 3.4.3): C' = C. One-to-one (O2O): each slice from its own slice, by
  group convolution ("unshared stagewise"); ``shared=True`` applies one 1-channel function
  to every slice ("shared stagewise", parameters independent of C). Many-to-one (M2O): each
  slice from all input channels, by standard convolution; its output width is free.
- ``nonlinear``: conv to 2x the output width -> BatchNorm -> ReLU -> 1x1 conv (Fig. 3.6b,
  3.7); ``context``: 4x4 instead of 2x2 kernels, seeing the region's surroundings
  (Sec. 3.4.4, "weak context").

Normalisation (Sec. 3.4, Table 3.5's best): the decoder index is ``sigmoid``; the encoder
index is ``sigmoid`` then a softmax over each 2x2 region, so indexed pooling keeps the
feature magnitude. Indexed pooling sums index x feature over a region; indexed unpooling
multiplies the nearest-upsampled map by the index (``I (x) D``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

REGION = 2  # the 2x2 pooling region of every stage


@dataclass
class IndexMaps:
    """encoder: (B, C', H, W), softmax-normalised per 2x2 region (for index pooling);
    decoder: (B, C', H, W) in (0, 1) (for index unpooling)."""

    encoder: torch.Tensor
    decoder: torch.Tensor


def encoder_indices(scores: torch.Tensor) -> torch.Tensor:
    """sigmoid, then softmax over each non-overlapping 2x2 region (sums to 1 there)."""
    b, c, h, w = scores.shape
    regions = F.pixel_unshuffle(scores.sigmoid(), REGION).view(b, c, REGION * REGION,
                                                               h // REGION, w // REGION)
    return F.pixel_shuffle(regions.softmax(2).view(b, -1, h // REGION, w // REGION), REGION)


def index_pool(features: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Indexed pooling: sum over each 2x2 region of index x feature, (B, C, H, W) ->
    (B, C, H/2, W/2); a (B, 1, H, W) holistic index is shared by all channels."""
    return F.avg_pool2d(features * index, REGION) * (REGION * REGION)


def index_unpool(features: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Indexed upsampling: nearest x2 of (B, C, h, w) times the (B, C or 1, 2h, 2w) index."""
    return F.interpolate(features, scale_factor=REGION, mode="nearest") * index


class IndexBlock(nn.Module):
    """Feature map (B, C, H, W) -> :class:`IndexMaps` with ``out_channels`` slices.

    kind: "holistic", "o2o" (needs out_channels == in_channels) or "m2o".
    """

    def __init__(self, in_channels: int, out_channels: int = 1, kind: str = "m2o",
                 nonlinear: bool = True, context: bool = True, shared: bool = False):
        super().__init__()
        if kind == "holistic":
            out_channels = 1
        elif kind == "o2o" and out_channels != in_channels:
            raise ValueError("a one-to-one index block keeps the channel count")
        elif kind not in ("o2o", "m2o"):
            raise ValueError(f"unknown index block '{kind}'")
        self.out_channels = out_channels
        self.slicewise = kind == "o2o" and shared  # one 1-channel function for every slice
        if self.slicewise:
            in_channels = out_channels = 1
        groups = in_channels if kind == "o2o" else 1
        # grouped convs lay out slice by slice (c 4 + p), the others column by column
        self.column_major = groups == 1
        columns = REGION * REGION
        kernel = 2 * REGION if context else REGION
        padding = (kernel - REGION) // 2
        hidden = 2 * out_channels if nonlinear else out_channels
        layers: list[nn.Module] = [nn.Conv2d(in_channels, columns * hidden, kernel, REGION,
                                             padding, groups=groups, bias=not nonlinear)]
        if nonlinear:
            # each column (and, for O2O, each slice) keeps its own 1x1 mapping
            layers += [nn.BatchNorm2d(columns * hidden), nn.ReLU(inplace=True),
                       nn.Conv2d(columns * hidden, columns * out_channels, 1,
                                 groups=columns * groups)]
        self.columns = nn.Sequential(*layers)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Raw index scores (B, out_channels, H, W) before normalisation."""
        b, c, h, w = x.shape
        if self.slicewise:
            x = x.reshape(b * c, 1, h, w)
        y = self.columns(x)  # (B, 4 C', H/2, W/2)
        if self.column_major:  # channel p C' + c -> c 4 + p, the order pixel shuffle reads
            y = y.view(y.shape[0], REGION * REGION, -1, h // REGION, w // REGION).transpose(1, 2)
            y = y.reshape(y.shape[0], -1, h // REGION, w // REGION)
        return F.pixel_shuffle(y, REGION).reshape(b, -1, h, w)

    def forward(self, x: torch.Tensor) -> IndexMaps:
        scores = self.scores(x)
        return IndexMaps(encoder_indices(scores), scores.sigmoid())


class IndexUpsampling(nn.Module):
    """The matting decoder's x2 upsampling with indices from the encoder map at the target
    resolution (``guide``): ``index_unpool(x, decoder index of guide)``."""

    def __init__(self, guide_channels: int, channels: int, kind: str = "m2o"):
        super().__init__()
        self.index = IndexBlock(guide_channels, channels, kind)

    def forward(self, x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        return index_unpool(x, self.index(guide).decoder)
