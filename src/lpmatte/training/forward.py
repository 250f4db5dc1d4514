"""The training forward pass (Sec. 3.4): the refiner learns from the ground truth's unknown
cells as well as the predicted ones, so it gets boundary regions from the first step, before
the low-res network predicts any."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from lpmatte.model.config import WHOLE_IMAGE
from lpmatte.model.model import LightweightPortraitMatting
from lpmatte.model.region_selection import fit_mask
from lpmatte.model.two_stage import TwoStageOutput, pad_to_multiple
from lpmatte.trimap import UNKNOWN


def unknown_cells(trimap: torch.Tensor, cell: int = 8) -> torch.Tensor:
    """Ground-truth trimap classes (B, H, W) -> (B, 1, ceil(H/8), ceil(W/8)) bool: cells
    holding any "unknown" pixel (a max-pool over each 8x8 cell)."""
    unknown = (trimap == UNKNOWN).float()[:, None]
    return F.max_pool2d(unknown, cell, cell, ceil_mode=True) > 0


def cap_regions(mask: torch.Tensor, limit: int) -> torch.Tensor:
    """Keep at most ``limit`` of the True cells of each image of a (B, 1, h, w) mask,
    uniformly at random (torch's RNG, seeded per step)."""
    flat = mask.flatten(1)
    if int(flat.sum(1).max()) <= limit:
        return mask
    scores = torch.rand(flat.shape, device=mask.device).masked_fill(~flat, -1.0)
    keep = scores.topk(min(limit, flat.shape[1]), dim=1).indices
    return (torch.zeros_like(flat).scatter_(1, keep, True) & flat).view_as(mask)


class TrainingForward(nn.Module):
    """The model's forward with the refined cells = predicted unknown OR ``gt_unknown``.

    The module DDP wraps, so gradients of both stages are synchronised. A batch without
    any region refines cell (0, 0) of its first image, so every parameter gets a gradient.
    ``max_regions`` caps the refined cells per image (a random subset): an untrained model
    calls a third of all cells unknown, and refining them costs 90% of a CPU step.
    """

    def __init__(self, model: LightweightPortraitMatting, max_regions: int | None = None):
        super().__init__()
        self.model = model
        self.max_regions = max_regions

    def forward(self, image: torch.Tensor, gt_unknown: torch.Tensor) -> TwoStageOutput:
        def choose(predicted: torch.Tensor) -> torch.Tensor:
            mask = predicted | fit_mask(gt_unknown, predicted.shape[-2:])
            if self.max_regions is not None:
                mask = cap_regions(mask, self.max_regions)
            if not mask.any():  # keep the refiner in the graph: DDP expects every parameter used
                mask = mask.clone()
                mask[0, 0, 0, 0] = True
            return mask

        return self.model(image, choose_regions=choose)


def as_float32(output):
    """The same output with every floating tensor in fp32 (losses after autocast)."""
    def cast(x):
        return x.float() if torch.is_tensor(x) and x.is_floating_point() else x

    if not isinstance(output, TwoStageOutput):  # a whole-image model's
        return dataclasses.replace(output, alpha=cast(output.alpha),
                                   trimap_logits=cast(output.trimap_logits),
                                   aux={k: cast(v) for k, v in output.aux.items()})

    sides = [type(s)(*(cast(getattr(s, f.name)) for f in dataclasses.fields(s)))
             for s in output.side_outputs]
    return TwoStageOutput(cast(output.alpha), cast(output.coarse_alpha),
                          cast(output.trimap_probs), sides, output.regions,
                          cast(output.patches))


class WholeImageForward(nn.Module):
    """A whole-image model's training forward (MMNet, PSPM): the crop padded to the model's
    multiple, one pass, the outputs cropped back; ``gt_unknown`` is not used (no refiner)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, gt_unknown: torch.Tensor | None = None):
        height, width = image.shape[-2:]
        output = self.model(pad_to_multiple(image, self.model.input_multiple))

        def crop(x):
            return None if x is None else x[..., :height, :width]

        return dataclasses.replace(output, alpha=crop(output.alpha),
                                   trimap_logits=crop(output.trimap_logits),
                                   aux={k: v if v.shape[-2:] != output.alpha.shape[-2:]
                                        else crop(v) for k, v in output.aux.items()})


def training_forward(model: nn.Module, max_regions: int | None) -> nn.Module:
    """The forward pass a model trains with: refined cells = predicted OR true unknown for
    the two-stage model, one pass for a whole-image one."""
    if model.config.kind == WHOLE_IMAGE:
        return WholeImageForward(model)
    return TrainingForward(model, max_regions)
