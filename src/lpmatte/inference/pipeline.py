"""Inference: one image through a backend with :class:`InferenceOptions`, timed per stage.

The backend (:mod:`lpmatte.inference.backends`) runs the two networks; everything between
them is :func:`lpmatte.model.two_stage.run_two_stages`, the same code the model's own
``forward`` runs, so an exported ONNX graph never contains the neighbour search and every
backend reproduces ``model(image)``. On top of it: the two-pass mode for images larger than
the scale the model was trained on, the enlarged first pass for people smaller than it
(:mod:`lpmatte.inference.person_scale`), and mirror averaging of the low-res network.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from lpmatte.inference.options import TRANSITION_MARGIN, InferenceOptions
from lpmatte.inference.person_scale import (
    blend_weight,
    near_people,
    person_cells,
    tallest_person,
    zoom_scale,
)
from lpmatte.inference.resample import area_downscale, bilinear_upsample
from lpmatte.model.config import WHOLE_IMAGE
from lpmatte.model.lowres_network import LowResOutput
from lpmatte.model.region_selection import (
    any_in_cells,
    crop_regions,
    fit_mask,
    paste_regions,
    unit_float,
)
from lpmatte.model.two_stage import (
    NO_CLOCK,
    TwoStageOutput,
    grid_size,
    pad_to_multiple,
    refine_cells,
    run_two_stages,
)

# selection: region selection + neighbour search; paste: bilinear upsampling of the coarse
# alpha to full resolution + pasting the refined patches into it
STAGES = ("preprocess", "lowres", "selection", "refinement", "paste", "postprocess")

# Deblocking (:func:`deblock`): a step at a cell border counts as the image's own edge, and
# is kept, in proportion to exp(-(excess colour step / DEBLOCK_SIGMA)^2); corrections reach
# half a cell into each side. 0.1 (of [0, 1] colour): chosen with benchmarks/sweep_deblock.py
# (MODEL_CARD "Session 16").
DEBLOCK_SIGMA = 0.1


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


class BackendNetworks:
    """A backend seen as the two networks of :func:`run_two_stages`."""

    def __init__(self, backend):
        self.backend, self.config = backend, backend.config

    def lowres_heads(self, padded: torch.Tensor) -> list[LowResOutput]:
        return [LowResOutput(*self.backend.lowres(padded))]

    def refine(self, crops, regions, neighbours, valid) -> torch.Tensor:
        return self.backend.refine(crops, regions, neighbours, valid)


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
        return self._averaged(self.backend.lowres, padded)

    def whole_image(self, padded: torch.Tensor):
        return self._averaged(self.backend.whole_image, padded)

    @staticmethod
    def _averaged(network, padded: torch.Tensor):
        views = zip(network(padded), network(padded.flip(-1)))
        return tuple(None if plain is None else (plain + mirrored.flip(-1)) / 2
                     for plain, mirrored in views)


def working_size(height: int, width: int, lowres_side: int | None) -> tuple[int, int] | None:
    """The (h, w) the first pass runs at when the long side exceeds ``lowres_side``, else None."""
    if not lowres_side or max(height, width) <= lowres_side:
        return None
    return scaled_size(height, width, lowres_side / max(height, width))


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(h, w) of an image ``scale`` times its size, at least one pixel each way."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def run_inference(backend, image: torch.Tensor, options: InferenceOptions = InferenceOptions(),
                  coarse_filter=None, region_mask: torch.Tensor | None = None,
                  clock=NO_CLOCK) -> TwoStageOutput:
    """Matte ``image`` (B, 3, H, W), float in [0, 1] or uint8, on ``backend.device``: one
    pass, :func:`run_two_passes` for an image whose long side exceeds
    ``options.lowres_side`` (it reads a uint8 image as bytes: no float copy of it), or
    the first pass at ``options.first_pass_scale``; then, with ``options.person_height``,
    :func:`zoom_for_people`.

    ``coarse_filter`` (video stability, batch 1) and ``region_mask`` (forced cells) are
    :func:`run_two_stages`'s; with either, or a batch of several images, the zoom for people
    is not made (a video fixes its scale once:
    :func:`lpmatte.inference.temporal.video_predictor`).
    """
    if options.flip_tta:
        backend = MirrorAveraged(backend)
    if backend.config.kind == WHOLE_IMAGE:
        return run_whole_image(backend, image, coarse_filter, clock)
    networks = BackendNetworks(backend)
    size = first_pass_size(*image.shape[-2:], options)
    output = run_at_size(networks, image, size, options, coarse_filter, region_mask, clock)
    if (options.person_height and options.first_pass_scale is None and coarse_filter is None
            and region_mask is None and image.shape[0] == 1):
        output = zoom_for_people(networks, image, size, options, output, clock)
    return output


def first_pass_size(height: int, width: int,
                    options: InferenceOptions) -> tuple[int, int] | None:
    """Where the first pass runs: ``options.first_pass_scale`` of the image when set, else
    :func:`working_size` by ``lowres_side``; None: one pass at full resolution."""
    if options.first_pass_scale is None:
        return working_size(height, width, options.lowres_side)
    size = scaled_size(height, width, options.first_pass_scale)
    return None if size == (height, width) else size


def run_at_size(networks, image: torch.Tensor, size: tuple[int, int] | None,
                options: InferenceOptions, coarse_filter=None,
                region_mask: torch.Tensor | None = None, clock=NO_CLOCK) -> TwoStageOutput:
    """The matte of ``image`` with its first pass at ``size`` (None: full resolution),
    settled and deblocked as ``options`` say."""
    height, width = image.shape[-2:]
    if size is not None and size[0] * size[1] > height * width:
        if region_mask is not None:
            raise ValueError("region_mask needs a first pass at or below full resolution")
        return run_enlarged(networks, image, size, options, coarse_filter, clock)
    if size is not None:  # settles its full-resolution base itself, before pasting
        output = run_two_passes(networks, image, size, options.max_regions, coarse_filter,
                                region_mask, clock, options.settle, options.transition_margin)
    else:
        with clock.stage("preprocess"):
            image = unit_float(image)
        output = run_two_stages(networks, image, region_mask, coarse_filter=coarse_filter,
                                clock=clock, max_regions=options.max_regions)
        if options.settle:
            with clock.stage("paste"):
                output.alpha = settle_unrefined(output.alpha, output.regions)
    if options.deblock:
        with clock.stage("paste"):
            output.alpha = deblock(output.alpha, image, networks.config.refiner.region_size)
    return output


def run_enlarged(networks, image: torch.Tensor, size: tuple[int, int],
                 options: InferenceOptions, coarse_filter=None,
                 clock=NO_CLOCK) -> TwoStageOutput:
    """One pass on ``image`` bilinearly enlarged to ``size`` (settled and deblocked there, as
    :func:`run_at_size` makes any one pass), its matte area-averaged back.

    The regions are mapped onto the image's own 1/8 grid (each enlarged cell to the cell
    holding its top-left pixel); the patches are those of the enlarged image."""
    height, width = image.shape[-2:]
    rows, cols = grid_size(height, width)
    with clock.stage("preprocess"):
        big = bilinear_upsample(unit_float(image).contiguous(), size)
    output = run_at_size(networks, big, None, options, coarse_filter, clock=clock)
    with clock.stage("paste"):
        alpha = area_downscale(output.alpha, (height, width)).clamp_(0, 1)
        regions = output.regions.clone()
        regions[:, 1] = regions[:, 1] * height // size[0]
        regions[:, 2] = regions[:, 2] * width // size[1]
        coarse = F.avg_pool2d(pad_to_multiple(alpha, 8), 8)
        trimap = F.interpolate(output.trimap_probs, size=(rows, cols), mode="nearest")
    return TwoStageOutput(alpha, coarse[..., :rows, :cols], trimap, output.side_outputs,
                          torch.unique(regions, dim=0), output.patches)


def zoom_for_people(networks, image: torch.Tensor, size: tuple[int, int] | None,
                    options: InferenceOptions, output: TwoStageOutput,
                    clock=NO_CLOCK) -> TwoStageOutput:
    """``output`` (whose first pass ran at ``size``), with its matte replaced near the
    people it found by that of a first pass enlarged so that the tallest of them is
    ``options.person_height`` px tall there (:mod:`lpmatte.inference.person_scale`);
    ``output`` itself when they are tall enough already."""
    height, width = image.shape[-2:]
    with clock.stage("selection"):
        scale, tallest, cells = people_zoom(output.alpha, size, options)
    if scale is None:
        return output
    zoomed = run_at_size(networks, image, scaled_size(height, width, scale), options,
                         clock=clock)
    with clock.stage("paste"):
        near = near_people(cells, tallest, (height, width)).to(output.alpha.device)
        output.alpha = torch.lerp(output.alpha, zoomed.alpha, blend_weight(near))
    return output


def people_zoom(alpha: torch.Tensor, size: tuple[int, int] | None,
                options: InferenceOptions) -> tuple[float | None, int, np.ndarray]:
    """(the enlarged first pass's scale or None, the tallest person's height in px, the
    :func:`person_cells` it was measured on) for a matte ``alpha`` (1, 1, H, W) whose
    first pass ran at ``size`` (None: full resolution)."""
    height, width = alpha.shape[-2:]
    cells = person_cells(alpha)
    tallest = tallest_person(cells)
    first_scale = 1.0 if size is None else size[0] / height
    return zoom_scale(tallest, (height, width), first_scale, options.person_height,
                      options.lowres_side), tallest, cells


def clip_zoom(backend, image: torch.Tensor, options: InferenceOptions) -> float | None:
    """The first-pass scale :func:`zoom_for_people` would choose for ``image`` (None: no
    zoom), which a video keeps for all its frames (one scale: the temporal filters hold
    state on one grid, and a scale that changed between frames would flicker itself)."""
    if not options.person_height:
        return None
    single = replace(options, person_height=None)
    output = run_inference(backend, image, single)
    return people_zoom(output.alpha, first_pass_size(*image.shape[-2:], single), options)[0]


def deblock(alpha: torch.Tensor, image: torch.Tensor, cell: int = 8,
            sigma: float = DEBLOCK_SIGMA) -> torch.Tensor:
    """``alpha`` (B, 1, H, W) with the excess steps at its cell borders smoothed out, as a
    video codec's deblocking filter does; ``image`` (B, 3, H, W) in [0, 1] is the guide.

    Every refined cell is decoded on its own, so neighbouring cells often end at different
    levels: 8x8 blocks where the coarse matte was uncertain (the README figure by the held
    helmet), and steps where a refined cell meets a settled one. Across each border the
    step beyond the mean of the two steps beside it is spread out as an even ramp over half
    a cell on each side; where the image (float in [0, 1] or uint8) has an edge there, it
    is kept (weight exp(-(excess colour step / sigma)^2)). A smooth matte or a linear ramp
    is left as it is.
    First 25 held-out images of each set: excess grid steps down 83-97 %, Grad down
    11-15 %, MAD and band MAD down (benchmarks/sweep_deblock.py, MODEL_CARD "Session 16")."""
    height, width = alpha.shape[-2:]
    pad = (0, -width % cell, 0, -height % cell)
    if any(pad):  # whole cells, so that each axis can be viewed as (cells, cell)
        alpha, image = F.pad(alpha, pad, mode="replicate"), F.pad(image, pad, mode="replicate")
    else:
        alpha = alpha.clone()
    for dim, size in ((-2, height), (-1, width)):  # across the horizontal borders first
        _deblock_axis_(alpha, image, dim, size, cell, sigma)
    return alpha[..., :height, :width].clamp_(0, 1)


def _deblock_axis_(alpha: torch.Tensor, image: torch.Tensor, dim: int, size: int, cell: int,
                   sigma: float) -> None:
    """:func:`deblock` across the cell borders along ``dim`` (-2: rows, -1: columns), in
    place; ``size`` is the unpadded length. It reads and writes only strided windows
    around the borders, and the image and the writes only where there is an excess step
    (none between settled cells). Gathering every border's columns instead made the paste
    stage 101 ms at HD and 383 ms at 4K, against 18 and 70 ms now (benchmarks/bench_latency.py
    --ab, docs/speed-history.md)."""
    reach, count = cell // 2, alpha.shape[dim] // cell
    borders = min((size - reach) // cell, count - 1)  # with half a cell on both sides
    if borders < 1:
        return

    def around_borders(tensor: torch.Tensor, half: int) -> torch.Tensor:
        """A view (..., borders, 2 half) along ``dim``: x = b - half .. b + half - 1 at each
        border b = cell, 2 cell, ..."""
        windows = tensor.narrow(dim, cell - half, borders * cell).unflatten(dim, (borders, cell))
        return windows.narrow(dim, 0, 2 * half)

    steps = around_borders(alpha, 2).diff(dim=dim)  # x = b-1 - (b-2), b - (b-1), b+1 - b
    excess = steps.narrow(dim, 1, 1) - 0.5 * (steps.narrow(dim, 0, 1) + steps.narrow(dim, 2, 1))
    where = excess.nonzero(as_tuple=True)
    pick = list(where)
    pick[dim] = slice(None)  # the whole window of each border with an excess step
    colour = unit_float(around_borders(image, 2)[(pick[0], slice(None), *pick[2:])])  # (K, 3, 4)
    colour_steps = colour.diff(dim=-1).abs().mean(1)  # (K, 3): before, across, after
    edge = F.relu(colour_steps[:, 1] - 0.5 * (colour_steps[:, 0] + colour_steps[:, 2])) / sigma
    correction = excess[where] * torch.exp(-edge * edge)
    # shares 1/16, 3/16, 5/16, 7/16 of the excess (reach 4) up to the border, the same taken
    # off after it: a step made only of excess becomes an even ramp of 8 steps of 1/8
    shares = torch.arange(1, 2 * reach, 2, dtype=alpha.dtype, device=alpha.device) / (4 * reach)
    ramp = torch.cat([shares, -shares.flip(0)])
    around_borders(alpha, reach)[tuple(pick)] += correction[:, None] * ramp


def settle_(alpha: torch.Tensor, margin: float = TRANSITION_MARGIN) -> torch.Tensor:
    """``alpha`` with its values within ``margin`` of 0 or 1 set to exactly 0 or 1, in place.

    Applied to the alpha outside the refined cells (:func:`settle_unrefined`; the second
    pass settles its base before the patches go in). There it is the bilinearly upsampled
    coarse alpha: a value near 0 or 1 is the low-res network's sigmoid haze, not partial
    opacity, and it made 8x8 steps next to refined cells, whose patches go to 0 and 1
    (held-out sets: MAD down 3-4 % with tight paired intervals, the texture figure down a
    quarter to a third, band MAD within 1 %; MODEL_CARD "Session 15"). With the second pass's
    selection (a cell is refined when a pixel lies in (margin, 1 - margin)) every unrefined
    pixel becomes 0 or 1.
    """
    # threshold_ on the values and on their (exact) negation: four in-place passes without
    # boolean masks (masked fills over a copy added 20-25 ms at 4K, docs/speed-history.md)
    F.threshold_(alpha, margin, 0.0)
    return F.threshold_(alpha.neg_(), -(1 - margin), -1.0).neg_()


def settle_unrefined(alpha: torch.Tensor, regions: torch.Tensor, cell: int = 8) -> torch.Tensor:
    """A copy of ``alpha`` (B, 1, H, W) settled (:func:`settle_`) except in the refined cells
    ``regions`` (N, 3) (batch, row, col), which keep their values."""
    height, width = alpha.shape[-2:]
    whole = pad_to_multiple(alpha, cell)
    kept = crop_regions(whole, regions, cell)
    settled = settle_(whole.clone())
    return paste_regions(settled, regions, kept, cell, inplace=True)[..., :height, :width]


def run_two_passes(networks, image: torch.Tensor, size: tuple[int, int],
                   max_regions: int | None = None, coarse_filter=None,
                   region_mask: torch.Tensor | None = None, clock=NO_CLOCK,
                   settle: bool = False,
                   margin: float = TRANSITION_MARGIN) -> TwoStageOutput:
    """Both stages on ``image`` area-downscaled to ``size``, then the refiner once more at
    full resolution on the 8x8 cells where the upsampled matte is in transition.

    A model sees people at the scales it was trained on: the low-res network of one trained
    on small photos fails on a 12-megapixel one. The second pass gives back full-resolution
    edges; its refiner input is built as in training (the matte averaged onto the 1/8 grid,
    bilinearly upsampled), its output is pasted into the bilinearly upsampled first-pass
    matte. ``coarse_filter`` acts in the first pass; ``region_mask`` forces the cells of
    the second, else they are :func:`transition_cells` by ``margin``; ``settle``:
    :func:`settle_` the base before the patches are pasted. The
    trimap is the first pass's, on the full-resolution 1/8 grid.
    """
    height, width = image.shape[-2:]
    rows, cols = grid_size(height, width)
    with clock.stage("preprocess"):
        small = area_downscale(image, size)
    first = run_two_stages(networks, small, coarse_filter=coarse_filter, clock=clock,
                           max_regions=max_regions)
    cell = networks.config.refiner.region_size
    with clock.stage("paste"):
        alpha = bilinear_upsample(first.alpha, (height, width))
        base = pad_to_multiple(alpha)
        padded = pad_to_multiple(image)
    with clock.stage("selection"):
        coarse = F.avg_pool2d(base, cell)
        probs = uncertainty_probs(coarse)
        cells = (transition_cells(base, cell, margin) if region_mask is None
                 else fit_mask(region_mask.to(probs.device), probs.shape[-2:]))
    if settle:  # after selection, which reads the unsettled base; patches overwrite their cells
        with clock.stage("paste"):
            settle_(base)
    alpha, regions, patches = refine_cells(networks, padded, coarse, probs, cells,
                                           (rows, cols), clock, base, max_regions=max_regions)
    trimap = F.interpolate(first.trimap_probs, size=(rows, cols), mode="nearest")
    return TwoStageOutput(alpha[..., :height, :width], coarse[..., :rows, :cols], trimap,
                          first.side_outputs, regions, patches)


def run_whole_image(backend, image: torch.Tensor, coarse_filter=None,
                    clock=NO_CLOCK) -> TwoStageOutput:
    """A whole-image model (MMNet, PSPM: no refinement stage) as its papers run it: the
    image resized so its long side is the config's ``input_size`` (aspect kept, padded to
    the model's multiple), one forward pass, the alpha resized back bilinearly.

    ``coarse_filter`` (video stability) acts on the model-resolution alpha; the 1/8-grid
    trimap comes from the model's segmentation head, else from the alpha's uncertainty.
    """
    height, width = image.shape[-2:]
    rows, cols = grid_size(height, width)
    with clock.stage("preprocess"):
        size = working_size(height, width, backend.config.input_size) or (height, width)
        small = area_downscale(image, size) if size != (height, width) else unit_float(image)
        padded = pad_to_multiple(small, backend.input_multiple)
    with clock.stage("lowres"):
        alpha, trimap_logits = backend.whole_image(padded)
    with clock.stage("paste"):
        alpha = alpha[..., :size[0], :size[1]]
        probs = (uncertainty_probs(alpha) if trimap_logits is None
                 else trimap_logits[..., :size[0], :size[1]].softmax(1))
        if coarse_filter is not None:
            alpha, probs = coarse_filter(small, alpha, probs)
        full = F.interpolate(alpha, size=(height, width), mode="bilinear", align_corners=False)
        coarse = F.adaptive_avg_pool2d(full, (rows, cols))
        trimap = F.interpolate(probs, size=(rows, cols), mode="nearest")
    nothing = image.new_zeros(0, 3, dtype=torch.long)
    return TwoStageOutput(full.clamp(0, 1), coarse, trimap, [], nothing,
                          image.new_zeros(0, 1, 8, 8))


def transition_cells(alpha: torch.Tensor, cell: int = 8,
                     margin: float | None = None) -> torch.Tensor:
    """(B, 1, H, W) matte, H and W multiples of ``cell`` -> (B, 1, H/cell, W/cell) bool:
    cells holding a pixel strictly between ``margin`` (None: :data:`TRANSITION_MARGIN`)
    and 1 - ``margin``."""
    margin = TRANSITION_MARGIN if margin is None else margin
    return any_in_cells((alpha > margin) & (alpha < 1 - margin), cell)


def uncertainty_probs(coarse: torch.Tensor) -> torch.Tensor:
    """Trimap-like probabilities (background, unknown, foreground) from a coarse matte:
    "unknown" grows as the value nears 0.5, so ``max_regions`` keeps the most uncertain
    cells; the three are proportional to (1 - a, 1 - |2a - 1|, a)."""
    unknown = 1 - (2 * coarse - 1).abs()
    scores = torch.cat([1 - coarse, unknown, coarse], 1)
    return scores / scores.sum(1, keepdim=True)
