"""The whole two-stage model (Fig. 1): low-res network -> region selection -> refiner -> paste."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lpmatte.model.config import ModelConfig
from lpmatte.model.lowres_network import LowResNetwork, LowResOutput
from lpmatte.model.nearest_regions import find_neighbours
from lpmatte.model.refiner import Refiner
from lpmatte.model.region_selection import (
    fit_mask,
    paste_regions,
    predicted_unknown,
    refine_regions,
    select_regions,
)

INPUT_MULTIPLE = 16  # the patch size: the padded input is a whole number of patches


@dataclass
class MattingOutput:
    """What :class:`LightweightPortraitMatting` returns for a (B, 3, H, W) image.

    alpha: (B, 1, H, W) final alpha in [0, 1].
    coarse_alpha: (B, 1, h, w) low-resolution alpha in [0, 1], h = ceil(H / 8), w = ceil(W / 8).
    trimap_logits: (B, 3, h, w) classes 0 background, 1 unknown, 2 foreground.
    side_outputs: logits at 1/32, 1/16 and 1/8 of the input padded to a multiple of 16.
    regions: (N, 3) long (batch, row, col) of the refined 1/8 cells.
    region_alpha: (N, 1, 8, 8) refined patches.
    """

    alpha: torch.Tensor
    coarse_alpha: torch.Tensor
    trimap_logits: torch.Tensor
    side_outputs: list[LowResOutput]
    regions: torch.Tensor
    region_alpha: torch.Tensor


def pad_to_multiple(image: torch.Tensor, multiple: int = INPUT_MULTIPLE) -> torch.Tensor:
    """Replicate-pad right and bottom so H and W are multiples of ``multiple``."""
    h, w = image.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if pad_h or pad_w:
        image = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate")
    return image


def grid_size(height: int, width: int, cell: int = 8) -> tuple[int, int]:
    """Cells of the 1/8 grid that cover an image: (ceil(H / 8), ceil(W / 8))."""
    return math.ceil(height / cell), math.ceil(width / cell)


class LightweightPortraitMatting(nn.Module):
    """Zhong & Zharkov (WACV 2024): trimap-free matting whose cost follows the boundary length."""

    def __init__(self, config: ModelConfig = ModelConfig()):
        super().__init__()
        self.config = config
        self.lowres = LowResNetwork(config.lowres)
        self.refiner = Refiner(config.refiner)

    def forward(self, image: torch.Tensor, region_mask: torch.Tensor | None = None,
                choose_regions=None) -> MattingOutput:
        """image (B, 3, H, W) in [0, 1] -> :class:`MattingOutput`.

        region_mask: (B, 1, ceil(H/8), ceil(W/8)) bool, replaces the predicted unknown cells.
        choose_regions: called with the (B, 1, h, w) cells to refine on the padded grid
            (predicted, or ``region_mask``), returns the cells to refine instead; the
            trainer adds the ground truth's unknown cells this way.
        """
        height, width = image.shape[-2:]
        rows, cols = grid_size(height, width)
        padded = pad_to_multiple(image)
        side_outputs = self.lowres(padded)
        coarse_alpha = side_outputs[-1].alpha_logits.sigmoid()
        trimap_logits = side_outputs[-1].trimap_logits
        grid = trimap_logits.shape[-2:]
        if region_mask is not None:
            region_mask = fit_mask(region_mask, grid)
        if choose_regions is not None:
            region_mask = choose_regions(predicted_unknown(trimap_logits)
                                         if region_mask is None else region_mask)
        alpha, regions, patches = self.refine(padded, coarse_alpha, trimap_logits, (rows, cols),
                                              region_mask)
        return MattingOutput(alpha[..., :height, :width], coarse_alpha[..., :rows, :cols],
                             trimap_logits[..., :rows, :cols], side_outputs, regions, patches)

    def refine(self, image: torch.Tensor, coarse_alpha: torch.Tensor, trimap_scores: torch.Tensor,
               valid_cells: tuple[int, int], region_mask: torch.Tensor | None = None):
        """Second stage on a padded image (B, 3, 8h, 8w) and its (B, 1, h, w) coarse alpha.

        Returns the full alpha (B, 1, 8h, 8w), the regions (N, 3) and their patches (N, 1, 8, 8).
        """
        cell = self.config.refiner.region_size
        upsampled = F.interpolate(coarse_alpha, scale_factor=cell, mode="bilinear",
                                  align_corners=False)
        regions = select_regions(trimap_scores, valid_cells, region_mask,
                                 self.config.refiner.max_regions)
        neighbours, valid = self.find_neighbours(regions, trimap_scores.shape[-2:])
        patches = refine_regions(self.refiner, image, upsampled, regions, neighbours, valid, cell)
        return paste_regions(upsampled, regions, patches, cell), regions, patches

    def find_neighbours(self, regions: torch.Tensor, grid: tuple[int, int]):
        """k nearest regions: pairwise in training (as the paper), grid search at inference."""
        return find_neighbours(self.config.refiner, regions, grid, pairwise=self.training)

