"""The two-stage pipeline of Fig. 1, written once: low-res network -> region selection ->
k nearest regions -> refiner -> paste.

:func:`run_two_stages` is what the model's own ``forward`` (training), every inference
backend (:mod:`lpmatte.inference.pipeline`) and the trainer's validation call. It works on
anything with the :class:`TwoStageNetworks` shape, so an eager module, a bf16 copy or two
onnxruntime sessions all go through the same selection, search, crop and paste code.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from lpmatte.model.config import ModelConfig
from lpmatte.model.lowres_network import LowResOutput
from lpmatte.model.nearest_regions import find_neighbours
from lpmatte.model.region_selection import (
    fit_mask,
    paste_regions,
    predicted_unknown,
    refine_regions,
    select_regions,
)

INPUT_MULTIPLE = 16  # the patch size: the padded input is a whole number of patches


class TwoStageNetworks(Protocol):
    """What runs the two networks: ``lowres_heads(padded)`` gives the logits of every head
    (the 1/8 one last); ``refine(crops, regions, neighbours, valid)`` the 8x8 patches."""

    config: ModelConfig

    def lowres_heads(self, padded: torch.Tensor) -> list[LowResOutput]: ...

    def refine(self, crops, regions, neighbours, valid) -> torch.Tensor: ...


@dataclass
class TwoStageOutput:
    """The result for a (B, 3, H, W) image.

    alpha: (B, 1, H, W) final alpha in [0, 1].
    coarse_alpha: (B, 1, h, w) low-res alpha in [0, 1], h = ceil(H / 8), w = ceil(W / 8).
    trimap_probs: (B, 3, h, w) probabilities of background, unknown, foreground.
    side_outputs: the logits of every low-res head on the padded grid (what the losses
        use; only the 1/8 head from an inference backend).
    regions: (N, 3) long (batch, row, col) of the refined 1/8 cells.
    patches: (N, 1, 8, 8) refined alpha of those cells.
    """

    alpha: torch.Tensor
    coarse_alpha: torch.Tensor
    trimap_probs: torch.Tensor
    side_outputs: list[LowResOutput]
    regions: torch.Tensor
    patches: torch.Tensor

    def alpha_array(self, index: int = 0):
        """float32 HxW numpy alpha of image ``index``, on the host."""
        return self.alpha[index, 0].float().cpu().numpy()


class _NoClock:
    def stage(self, name: str):
        return nullcontext()

    def count(self, name: str, value: int) -> None:
        pass


NO_CLOCK = _NoClock()


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


def run_two_stages(networks: TwoStageNetworks, image: torch.Tensor,
                   region_mask: torch.Tensor | None = None, choose_regions=None,
                   coarse_filter=None, clock=NO_CLOCK, pairwise: bool = False,
                   max_regions: int | None = None) -> TwoStageOutput:
    """Matte ``image`` (B, 3, H, W) in [0, 1] with ``networks``.

    region_mask: (B, 1, ceil(H/8), ceil(W/8)) bool, replaces the predicted unknown cells.
    choose_regions: called with the (B, 1, h, w) cells to refine on the padded grid and
        returning the cells to refine instead (the trainer adds the ground truth's unknown
        cells this way).
    coarse_filter: ``coarse_filter(image_lowres, coarse_alpha, trimap_probs)`` on the
        image's cells, returning new ``(coarse_alpha, trimap_probs)`` (video stability).
    clock: a :class:`lpmatte.inference.pipeline.StageClock` collecting per-stage times.
    pairwise: exact pairwise KNN (training, as the paper) instead of the grid search.
    max_regions: refine at most this many cells per image, the most uncertain first.
    """
    height, width = image.shape[-2:]
    rows, cols = grid_size(height, width)
    with clock.stage("preprocess"):
        padded = pad_to_multiple(image)
    with clock.stage("lowres"):
        side_outputs = networks.lowres_heads(padded)
    with clock.stage("selection"):
        coarse, probs = coarse_prediction(image, side_outputs[-1], (rows, cols), coarse_filter)
        cells = None if region_mask is None else fit_mask(region_mask.to(probs.device),
                                                           probs.shape[-2:])
        if choose_regions is not None:
            cells = choose_regions(predicted_unknown(probs) if cells is None else cells)
    alpha, regions, patches = refine_cells(networks, padded, coarse, probs, cells, (rows, cols),
                                           clock, pairwise=pairwise, max_regions=max_regions)
    return TwoStageOutput(alpha[..., :height, :width], coarse[..., :rows, :cols],
                          probs[..., :rows, :cols], side_outputs, regions, patches)


def coarse_prediction(image: torch.Tensor, main: LowResOutput, valid_cells: tuple[int, int],
                      coarse_filter=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(coarse alpha, trimap probabilities) on the padded 1/8 grid, after ``coarse_filter``
    on the image's own cells (cells past the image keep their values)."""
    coarse, probs = main.alpha_logits.sigmoid(), main.trimap_logits.softmax(1)
    if coarse_filter is None:
        return coarse, probs
    rows, cols = valid_cells
    new_coarse, new_probs = coarse_filter(F.adaptive_avg_pool2d(image, (rows, cols)),
                                          coarse[..., :rows, :cols], probs[..., :rows, :cols])
    coarse, probs = coarse.clone(), probs.clone()
    coarse[..., :rows, :cols] = new_coarse
    probs[..., :rows, :cols] = new_probs
    return coarse, probs


def refine_cells(networks: TwoStageNetworks, padded: torch.Tensor, coarse: torch.Tensor,
                 probs: torch.Tensor, cells: torch.Tensor | None, valid_cells: tuple[int, int],
                 clock=NO_CLOCK, base: torch.Tensor | None = None, pairwise: bool = False,
                 max_regions: int | None = None):
    """The second stage: refine ``cells`` (None: predicted unknown in ``probs``) from crops
    of ``padded`` and of ``coarse`` (1/8 grid) upsampled bilinearly, and paste the patches
    into ``base`` (None: that upsampled coarse alpha). ``max_regions`` keeps the most
    uncertain. Returns the padded alpha, the regions and their patches."""
    cell = networks.config.refiner.region_size
    with clock.stage("selection"):
        regions = select_regions(probs, valid_cells, cells, max_regions)
        neighbours, valid = find_neighbours(networks.config.refiner, regions, probs.shape[-2:],
                                            pairwise=pairwise)
    clock.count("regions", len(regions))
    upsampled = None  # with a base, only the regions' crops of it are made
    if base is None:
        with clock.stage("paste"):
            upsampled = F.interpolate(coarse, scale_factor=cell, mode="bilinear",
                                      align_corners=False)
    with clock.stage("refinement"):
        patches = refine_regions(networks.refine, padded, upsampled, regions, neighbours, valid,
                                 cell, coarse)
    with clock.stage("paste"):
        # in place at inference saves a full-resolution copy; autograd needs the copy
        alpha = paste_regions(upsampled if base is None else base, regions, patches, cell,
                              inplace=not torch.is_grad_enabled())
    return alpha, regions, patches
