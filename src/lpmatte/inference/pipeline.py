"""Two-stage inference (Fig. 1) with a pluggable backend and per-stage wall-clock timing.

The backend (:mod:`lpmatte.inference.backends`) runs the two networks: the low-resolution network
and the refiner. Everything data-dependent between them runs here in PyTorch for every
backend alike: region selection, the k-nearest-region search, cropping and pasting. So an
exported ONNX graph never contains the neighbour search, and all backends share one
well-tested implementation of these steps (the same functions the model's own ``forward``
uses, so the eager backend reproduces ``model(image)``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lpmatte.model.model import grid_size, pad_to_multiple
from lpmatte.model.nearest_regions import find_neighbours
from lpmatte.model.region_selection import fit_mask, paste_regions, refine_regions, select_regions

# selection: region selection + neighbour search; paste: bilinear upsampling of the coarse
# alpha to full resolution + pasting the refined patches into it
STAGES = ("preprocess", "lowres", "selection", "refinement", "paste", "postprocess")

# The second pass refines cells with a pixel in (margin, 1 - margin). 0.1 rather than
# 0.02 keeps the refiner off near-opaque interiors (a face at 0.93), where it only adds
# 8x8 texture; chosen on training photos with benchmarks/sweep_lowres_side.py --margins.
TRANSITION_MARGIN = 0.1


class StageClock:
    """Milliseconds spent per stage, summed over repeated entries of the same stage.

    ``synchronize`` (e.g. ``torch.cuda.synchronize``) runs at each boundary so that queued
    GPU work is charged to the stage that queued it.
    """

    def __init__(self, synchronize: Callable[[], None] | None = None):
        self.times: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self._synchronize = synchronize or (lambda: None)

    def count(self, name: str, value: int) -> None:
        """Record a per-call quantity, e.g. the number of refined regions."""
        self.counts[name] = self.counts.get(name, 0) + value

    @contextmanager
    def stage(self, name: str):
        self._synchronize()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._synchronize()
            elapsed = (time.perf_counter() - start) * 1e3
            self.times[name] = self.times.get(name, 0.0) + elapsed


class _NoClock:
    @contextmanager
    def stage(self, name: str):
        yield

    def count(self, name: str, value: int) -> None:
        pass


NO_CLOCK = _NoClock()


@contextmanager
def host_threads(backend):
    """Run the PyTorch steps around the networks with ``backend.host_threads`` threads.

    onnxruntime keeps its own thread pool: with PyTorch's pool as large, the two contend and
    the many small steps between the networks (selection, neighbour search, cropping) were
    about 10x slower on a busy 2-core machine; one PyTorch thread is plenty for them.
    """
    wanted, current = getattr(backend, "host_threads", None), torch.get_num_threads()
    if wanted is None or wanted == current:
        yield
        return
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(current)


@dataclass
class TwoStageOutput:
    """alpha (B, 1, H, W) in [0, 1]; trimap_scores (B, 3, h, w) logits or probabilities on the
    1/8 grid of the image; regions (N, 3) (batch, row, col); patches (N, 1, 8, 8)."""

    alpha: torch.Tensor
    trimap_scores: torch.Tensor
    regions: torch.Tensor
    patches: torch.Tensor


def working_size(height: int, width: int, lowres_side: int | None) -> tuple[int, int] | None:
    """The (h, w) the first pass runs at when the long side exceeds ``lowres_side``, else None."""
    if not lowres_side or max(height, width) <= lowres_side:
        return None
    scale = lowres_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def run_inference(backend, image: torch.Tensor, coarse_filter=None,
                  region_mask: torch.Tensor | None = None, clock=NO_CLOCK,
                  lowres_side: int | None = None, flip_tta: bool = False) -> TwoStageOutput:
    """:func:`run_two_stages`, or :func:`run_two_passes` for an image whose long side
    exceeds ``lowres_side`` (None or 0: always one pass at full resolution, as the paper).
    ``flip_tta``: the low-res network also sees the mirrored image (:class:`MirrorAveraged`)."""
    if flip_tta:
        backend = MirrorAveraged(backend)
    size = working_size(*image.shape[-2:], lowres_side)
    if size is None:
        return run_two_stages(backend, image, coarse_filter, region_mask, clock)
    return run_two_passes(backend, image, size, coarse_filter, region_mask, clock)


class MirrorAveraged:
    """``backend`` whose low-res network runs on the image and on its mirror image, and
    averages the two (flip test-time augmentation). A portrait and its mirror image are
    equally likely, so the two views' semantic mistakes are partly independent; the
    refiner, which only sees local crops, runs once."""

    def __init__(self, backend):
        self.backend = backend

    def __getattr__(self, name: str):
        return getattr(self.backend, name)

    def lowres(self, padded: torch.Tensor):
        # padded widths are whole cells, so mirroring maps the 1/8 grid onto itself
        alpha, trimap = self.backend.lowres(padded)
        mirrored_alpha, mirrored_trimap = self.backend.lowres(padded.flip(-1))
        return (alpha + mirrored_alpha.flip(-1)) / 2, (trimap + mirrored_trimap.flip(-1)) / 2


def run_two_stages(backend, image: torch.Tensor, coarse_filter=None,
                   region_mask: torch.Tensor | None = None, clock=NO_CLOCK) -> TwoStageOutput:
    """Matte ``image`` (B, 3, H, W) in [0, 1] on ``backend.device`` with ``backend``.

    ``coarse_filter`` is :meth:`lpmatte.Matter.predict`'s hook (batch 1); ``region_mask``
    (B, 1, ceil(H/8), ceil(W/8)) bool forces the refined cells as in the model's forward.
    """
    height, width = image.shape[-2:]
    rows, cols = grid_size(height, width)
    with clock.stage("preprocess"):
        padded = pad_to_multiple(image)
    with clock.stage("lowres"):
        alpha_logits, trimap_logits = backend.lowres(padded)
    with clock.stage("selection"):
        coarse_alpha, scores, cropped_scores = _coarse_outputs(
            image, alpha_logits, trimap_logits, (rows, cols), coarse_filter)
    alpha, regions, patches = refine_cells(backend, padded, coarse_alpha, scores,
                                           _pad_mask(region_mask, scores), (rows, cols), clock)
    return TwoStageOutput(alpha[..., :height, :width], cropped_scores, regions, patches)


def refine_cells(backend, padded: torch.Tensor, coarse: torch.Tensor, scores: torch.Tensor,
                 cells: torch.Tensor | None, valid_cells: tuple[int, int], clock=NO_CLOCK,
                 base: torch.Tensor | None = None):
    """The second stage: refine ``cells`` (None: predicted unknown in ``scores``) from
    crops of ``padded`` and of ``coarse`` (1/8 grid) upsampled bilinearly, and paste the
    patches into ``base`` (None: that upsampled coarse alpha). Returns the padded alpha,
    the regions and their patches."""
    refiner = backend.config.refiner
    cell = refiner.region_size
    with clock.stage("selection"):
        regions = select_regions(scores, valid_cells, cells, refiner.max_regions)
        neighbours, valid = find_neighbours(refiner, regions, scores.shape[-2:])
    clock.count("regions", len(regions))
    with clock.stage("paste"):
        upsampled = F.interpolate(coarse, scale_factor=cell, mode="bilinear",
                                  align_corners=False)
    with clock.stage("refinement"):
        patches = refine_regions(backend.refine, padded, upsampled, regions, neighbours, valid,
                                 cell)
    with clock.stage("paste"):
        alpha = paste_regions(upsampled if base is None else base, regions, patches, cell,
                              inplace=True)
    return alpha, regions, patches


def run_two_passes(backend, image: torch.Tensor, size: tuple[int, int], coarse_filter=None,
                   region_mask: torch.Tensor | None = None, clock=NO_CLOCK) -> TwoStageOutput:
    """Both stages on ``image`` area-downscaled to ``size``, then the refiner once more at
    full resolution on the 8x8 cells where the upsampled matte is in transition.

    A model sees people at the scales it was trained on: the low-res network of one trained
    on small photos fails on a 12-megapixel one. The second pass gives back full-resolution
    edges; its refiner input is built as in training (the matte averaged onto the 1/8 grid,
    bilinearly upsampled), its output is pasted into the bilinearly upsampled first-pass
    matte. ``coarse_filter`` acts in the first pass; ``region_mask`` forces the cells of
    the second. The trimap is the first pass's, on the full-resolution 1/8 grid.
    """
    height, width = image.shape[-2:]
    rows, cols = grid_size(height, width)
    with clock.stage("preprocess"):
        small = F.interpolate(image, size=size, mode="area")
    first = run_two_stages(backend, small, coarse_filter, None, clock)
    cell = backend.config.refiner.region_size
    with clock.stage("paste"):
        alpha = F.interpolate(first.alpha, size=(height, width), mode="bilinear",
                              align_corners=False)
        base = pad_to_multiple(alpha)
        padded = pad_to_multiple(image)
    with clock.stage("selection"):
        coarse = F.avg_pool2d(base, cell)
        scores = uncertainty_scores(coarse)
        cells = transition_cells(base, cell) if region_mask is None else _pad_mask(
            region_mask, scores)
    alpha, regions, patches = refine_cells(backend, padded, coarse, scores, cells,
                                           (rows, cols), clock, base)
    trimap = F.interpolate(first.trimap_scores, size=(rows, cols), mode="nearest")
    return TwoStageOutput(alpha[..., :height, :width], trimap, regions, patches)


def transition_cells(alpha: torch.Tensor, cell: int = 8,
                     margin: float | None = None) -> torch.Tensor:
    """(B, 1, H, W) matte, H and W multiples of ``cell`` -> (B, 1, H/cell, W/cell) bool:
    cells holding a pixel strictly between ``margin`` (None: :data:`TRANSITION_MARGIN`)
    and 1 - ``margin``."""
    margin = TRANSITION_MARGIN if margin is None else margin
    soft = ((alpha > margin) & (alpha < 1 - margin)).float()
    return F.max_pool2d(soft, cell) > 0


def uncertainty_scores(coarse: torch.Tensor) -> torch.Tensor:
    """Trimap-like logits (background, unknown, foreground) from a coarse matte: the
    "unknown" score grows as the value nears 0.5, so ``max_regions`` keeps the most
    uncertain cells."""
    unknown = 1 - (2 * coarse - 1).abs()
    return torch.cat([1 - coarse, unknown, coarse], 1)


def _coarse_outputs(image, alpha_logits, trimap_logits, valid_cells, coarse_filter):
    """(coarse alpha, selection scores, scores cropped to the image's cells); both of the
    first two on the padded 1/8 grid, as :meth:`LightweightPortraitMatting.refine` wants."""
    rows, cols = valid_cells
    coarse = alpha_logits.sigmoid()
    if coarse_filter is None:
        return coarse, trimap_logits, trimap_logits[..., :rows, :cols]
    probs = trimap_logits.softmax(1)
    new_coarse, new_probs = coarse_filter(F.adaptive_avg_pool2d(image, (rows, cols)),
                                          coarse[..., :rows, :cols], probs[..., :rows, :cols])
    coarse[..., :rows, :cols] = new_coarse  # cells past the image keep their values
    probs[..., :rows, :cols] = new_probs
    return coarse, probs, probs[..., :rows, :cols]


def _pad_mask(mask: torch.Tensor | None, scores: torch.Tensor) -> torch.Tensor | None:
    return None if mask is None else fit_mask(mask.to(scores.device), scores.shape[-2:])
