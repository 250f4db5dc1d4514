"""Temporal stability for video: steadier mattes where the picture is still.

The model matts every frame on its own, so sensor and compression noise make the coarse
alpha and the trimap (hence the set of refined regions) flicker on still parts of a shot.
:class:`TemporalStabilizer` is a ``coarse_filter`` for :meth:`lpmatte.Matter.predict`: it runs
between the two stages on the 1/8 grid and

- measures, per 1/8 cell, how much the (area-downsampled) image changed since the previous
  frame, taking the largest change in the 3x3 neighbourhood so cells that a moving edge is
  about to enter count as moving too;
- where the cell is still, blends the coarse alpha and trimap probabilities with the previous
  output (an exponential moving average) and keeps the previous trimap class unless the new
  one wins by a margin (hysteresis);
- where the cell moves, passes the new prediction through untouched, so motion is never lagged;
- starts afresh on a scene cut (most cells change at once) or a change of frame size.

:class:`AlphaHold` then works on the final matte, where most of the flicker starts (refined
cells switching, the refiner's noise, the second pass's cell choice; ``benchmarks/
bench_stability.py`` prints the split): it carries the previous matte along dense optical flow
and keeps it wherever the picture, so moved and compensated for exposure, did not change.
:func:`video_predictor` chains both; it is what ``lpmatte video`` uses.

:func:`dtssd` measures flicker as in the evaluation of Robust Video Matting (Lin et al. 2022).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def cell_motion(image: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """Per-cell image change, spread to the 3x3 neighbourhood.

    Args:
        image: (B, 3, h, w) current low-res image in [0, 1].
        previous: (B, 3, h, w) previous low-res image in [0, 1].

    Returns:
        (B, 1, h, w): max over the 3x3 neighbourhood of the channel-mean absolute difference.
    """
    change = (image - previous).abs().mean(dim=1, keepdim=True)
    return F.max_pool2d(change, kernel_size=3, stride=1, padding=1)


def stillness(motion: torch.Tensor, still: float, moving: float) -> torch.Tensor:
    """Map motion to a weight in [0, 1]: 1 at or below ``still``, 0 at or above ``moving``,
    linear in between (a soft edge avoids a visible seam between blended and fresh cells).
    Works on tensors and on numpy arrays."""
    weight = (moving - motion) / (moving - still)
    return weight.clamp(0.0, 1.0) if isinstance(weight, torch.Tensor) else np.clip(weight, 0, 1)


def hysteresis(probs: torch.Tensor, previous_class: torch.Tensor,
               bonus: torch.Tensor) -> torch.Tensor:
    """Favour each cell's previous trimap class by ``bonus`` and renormalise.

    The argmax stays the previous class unless another class's probability exceeds it by more
    than ``bonus``.

    Args:
        probs: (B, 3, h, w) class probabilities, summing to 1 over dim 1.
        previous_class: (B, 1, h, w) long, the previous argmax.
        bonus: (B, 1, h, w) in [0, 1], zero where no hysteresis applies.

    Returns:
        (B, 3, h, w) probabilities summing to 1.
    """
    if not bool((bonus > 0).any()):
        return probs
    favoured = torch.zeros_like(probs).scatter_(1, previous_class, 1.0) * bonus
    return (probs + favoured) / (1.0 + bonus)


class TemporalStabilizer:
    """A stateful ``coarse_filter(image_lowres, coarse_alpha, trimap_probs)`` for video.

    With stillness s in [0, 1] per cell (see :func:`stillness`) and w = momentum * s:

        alpha_t = w * alpha_{t-1} + (1 - w) * coarse_alpha_t
        probs_t = w * probs_{t-1} + (1 - w) * trimap_probs_t, then hysteresis with bonus margin * s

    Args:
        momentum: weight of the previous output on a perfectly still cell (0 disables blending).
        still: cell change (mean absolute difference in [0, 1] units) treated as noise.
        moving: cell change treated as real motion (no blending, no hysteresis).
        margin: how much a new trimap class must beat the previous one on a still cell.
        cut_fraction: fraction of moving cells that signals a scene cut (state reset).

    Use one instance per video, frames in order; :meth:`reset` forgets the past.
    """

    def __init__(self, momentum: float = 0.8, still: float = 2 / 255, moving: float = 6 / 255,
                 margin: float = 0.2, cut_fraction: float = 0.5):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if not 0.0 <= still < moving:
            raise ValueError(f"need 0 <= still < moving, got {still}, {moving}")
        self.momentum, self.still, self.moving = momentum, still, moving
        self.margin, self.cut_fraction = margin, cut_fraction
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame: the next one passes through unchanged."""
        self.image = self.alpha = self.probs = self.trimap_class = None

    @torch.no_grad()
    def __call__(self, image_lowres: torch.Tensor, coarse_alpha: torch.Tensor,
                 trimap_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stabilise one frame's coarse outputs; shapes (B,3,h,w), (B,1,h,w), (B,3,h,w)."""
        if self.image is None or self.image.shape != image_lowres.shape:
            return self._remember(image_lowres, coarse_alpha, trimap_probs)
        motion = cell_motion(image_lowres, self.image)
        if (motion > self.moving).float().mean() > self.cut_fraction:
            return self._remember(image_lowres, coarse_alpha, trimap_probs)
        steady = stillness(motion, self.still, self.moving)
        weight = self.momentum * steady
        # written as new + w * (old - new): an unchanged prediction stays bit-identical
        alpha = coarse_alpha + weight * (self.alpha - coarse_alpha)
        probs = trimap_probs + weight * (self.probs - trimap_probs)
        probs = hysteresis(probs, self.trimap_class, self.margin * steady)
        return self._remember(image_lowres, alpha, probs)

    def _remember(self, image, alpha, probs):
        self.image, self.alpha, self.probs = image, alpha, probs
        self.trimap_class = probs.argmax(dim=1, keepdim=True)
        return alpha, probs


class AlphaHold:
    """A stateful ``(image uint8 (H, W, 3), alpha float (H, W)) -> alpha`` on the final matte,
    with the past carried along dense optical flow.

    The coarse filter cannot stop what flickers after it: refined 8x8 cells switching on and
    off, the refiner's own response to noise, and the second pass's choice of transition cells.
    This filter works on the output. Per pixel it keeps a reference: the matte and the (blurred
    grey) image it was computed from. Each frame both are carried to the current frame along
    the dense flow from the previous one (:func:`dense_flow`), so a camera's shake, zoom and
    pan and a person's own movement all move the reference with the picture, and the carried
    image is rescaled by the frame's exposure change. Where the current image matches the
    carried reference, the pixel's content is explained by motion: the carried matte is kept
    and only creeps at ``rate`` per frame toward a running average of the new predictions
    (carried along the same flow), so a lasting correction still arrives but frame-to-frame
    noise does not leak into the held matte. Where it does not (occlusion, uncovered
    background, a change the flow cannot explain), and on motion boundaries, where the flow
    smears across the edge, the new prediction is taken, so motion is not lagged.

    Args:
        threshold: image change (grey, [0, 1] units, after a small blur) below which a pixel is
            explained; at twice this it is not. Above sensor noise and H.264 artefacts. 5/255
            since session 17: with deblocking the per-frame mattes got better on moving
            parts, and at 8/255 the held matte was 1.2-2.3 % further off there than matting every
            frame on two moving clips of ``benchmarks/bench_stability.py``; at 5/255 it is
            about 1 % closer on all three, for about 10 % more flicker (chosen on those
            clips with its ``--hold-threshold``; like ``dead_zone`` below, tuned to that
            benchmark).
        rate: how fast a held matte follows the new predictions (0 holds it exactly).
        consensus: weight of each new prediction in the running average the held matte
            follows (1: the held matte creeps toward each new prediction itself).
        spread: pixels by which change is spread (a dilation), so the matte next to a moving
            edge is refreshed with it.
        memory: how much of the carried reference image an explained pixel keeps (the rest is
            the current image): a movement too slow for the flow to register still builds up
            against the reference until it counts as change.
        dead_zone: flow (pixels) under which a pixel counts as not moving: DIS reads sensor
            noise as jitter of about a tenth of a pixel, and resampling the held matte by it
            every frame would blur it. Larger values lag slow movement: at 0.25 the matte on
            the moving clips of ``benchmarks/bench_stability.py`` was 2-3 % further off on
            moving parts than matting every frame; at 0.1 it is not (session 14).
        boundary: how much (pixels) the flow may vary within ``boundary_radius`` before the
            pixel counts as a motion boundary (at twice this, fully).
        blur: Gaussian sigma (pixels) of the grey image compared, against noise and texture.
        flow_side: longest side of the images the flow is computed on.

    Use one instance per video, frames in order; :meth:`reset` forgets the past. A frame
    identical to the previous one gets the previous matte back, bit for bit. After each
    frame, ``explained`` holds the (H, W) weight in [0, 1] with which its output kept the
    carried matte (0 everywhere on a first frame; ``benchmarks/bench_stability.py --explain``
    splits the flicker by it).
    """

    def __init__(self, threshold: float = 5 / 255, rate: float = 0.02, spread: int = 2,
                 memory: float = 0.5, dead_zone: float = 0.1, boundary: float = 0.5,
                 boundary_radius: int = 3, blur: float = 1.0, flow_side: int = 640,
                 consensus: float = 0.1):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {rate}")
        if threshold <= 0 or boundary <= 0:
            raise ValueError(f"threshold and boundary must be positive, got {threshold}, "
                             f"{boundary}")
        self.threshold, self.rate, self.spread, self.memory = threshold, rate, spread, memory
        self.dead_zone, self.boundary, self.boundary_radius = dead_zone, boundary, boundary_radius
        self.blur, self.flow_side, self.consensus = blur, flow_side, consensus
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next frame passes through unchanged."""
        self.image = self.grey = self.reference = self.output = self.average = None
        self.explained = None

    def __call__(self, image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        alpha = np.asarray(alpha, np.float32)
        if self.image is not None and self.image.shape == image.shape \
                and np.array_equal(image, self.image):
            self.explained = np.ones_like(alpha)
            return self.output.copy()
        grey = blurred_grey(image, self.blur)
        if self.image is None or self.image.shape != image.shape:
            self.explained = np.zeros_like(alpha)
            return self._remember(image, grey, grey, alpha)
        # the flow and its boundaries are worked out at the flow's own (lower) resolution
        flow = dense_flow(grey, self.grey, self.flow_side)
        flow[cv2.magnitude(flow[..., 0], flow[..., 1]) < self.dead_zone] = 0
        scale = flow.shape[1] / grey.shape[1]
        boundaries = flow_range(flow, max(1, round(self.boundary_radius * scale)))
        flow, boundaries = (resized(x, grey.shape) for x in (flow, boundaries))
        maps = sampling_maps(flow)
        reference = follow(self.reference, maps)
        reference *= exposure_gain(grey, reference)
        average = follow(self.average, maps)
        average += self.consensus * (alpha - average)
        held = follow(self.output, maps)
        held += self.rate * (average - held)
        explained = stillness(dilate(np.abs(grey - reference), self.spread),
                              self.threshold, 2 * self.threshold)
        explained *= stillness(boundaries, self.boundary, 2 * self.boundary)
        self.explained = explained
        self.average = alpha + explained * (average - alpha)
        return self._remember(image, grey, grey + self.memory * explained * (reference - grey),
                              alpha + explained * (held - alpha))

    def _remember(self, image, grey, reference, output):
        self.image, self.grey, self.reference, self.output = image.copy(), grey, reference, output
        if self.average is None or self.average.shape != output.shape:
            self.average = output
        return output.copy()


def dense_flow(current: np.ndarray, previous: np.ndarray, side: int) -> np.ndarray:
    """(h, w, 2) float32 flow, in pixels of the (H, W) greys given, on the greys downscaled so
    the long side is at most ``side``: ``current`` at a point shows what ``previous`` showed at
    that point plus the flow. DIS (Kroeger et al. 2016), the fast preset refined down to half
    resolution (its default stops at a quarter, which underestimates small people's motion)."""
    height, width = current.shape
    scale = min(1.0, side / max(height, width))
    size = (max(16, round(width * scale)), max(16, round(height * scale)))
    now, before = (cv2.resize((x * 255).clip(0, 255).astype(np.uint8), size,
                              interpolation=cv2.INTER_AREA) for x in (current, previous))
    estimator = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    estimator.setFinestScale(1)
    flow = estimator.calc(now, before, None)
    if size != (width, height):
        flow *= np.array([width / size[0], height / size[1]], np.float32)
    return flow


def resized(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``values`` (h, w[, c]) bilinearly resized to ``shape`` (H, W), or as it is."""
    if values.shape[:2] == tuple(shape):
        return values
    return cv2.resize(values, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def flow_range(flow: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) how much the flow varies around each pixel (max - min over a square, both
    components summed): large on motion boundaries."""
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return sum(cv2.dilate(c, kernel) - cv2.erode(c, kernel)
               for c in (np.ascontiguousarray(flow[..., 0]), np.ascontiguousarray(flow[..., 1])))


def sampling_maps(flow: np.ndarray):
    """The (H, W, 2) float32 source coordinates of each pixel under ``flow`` for
    :func:`follow` (made once a frame, used for every array carried), or None when nothing
    moves. Float, not OpenCV's 1/32-pixel fixed point: the held matte is resampled every
    frame, and with the rounding bench_stability's moving-edge error under sub-pixel shake
    rose past the per-frame one."""
    if not flow.any():
        return None
    height, width = flow.shape[:2]
    grid = np.empty_like(flow)
    grid[..., 0] = np.arange(width, dtype=np.float32)
    grid[..., 1] = np.arange(height, dtype=np.float32)[:, None]
    grid += flow
    return grid


def follow(values: np.ndarray, maps) -> np.ndarray:
    """``values`` (H, W) of the previous frame carried to the current one along the flow
    whose :func:`sampling_maps` are ``maps``."""
    if maps is None:
        return values.copy()
    return cv2.remap(values, maps, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def blurred_grey(image: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Float32 grey in [0, 1], blurred so sensor noise counts less as change."""
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return cv2.GaussianBlur(grey.astype(np.float32) / 255.0, (0, 0), sigma)


def exposure_gain(grey: np.ndarray, reference: np.ndarray, stride: int = 4) -> float:
    """The frame's brightness relative to its reference (robust to moving people: a median),
    over every ``stride``-th pixel of every ``stride``-th row. One number needs no more: the
    whole frame's median took 17 of the hold's 62 ms a frame at 1080p (AMD EPYC)."""
    grey, reference = grey[::stride, ::stride], reference[::stride, ::stride]
    lit = reference > 0.05
    return float(np.median(grey[lit] / reference[lit])) if lit.any() else 1.0


def dilate(values: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return values
    return cv2.dilate(values, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8))


def video_predictor(matter, stabilize: bool = True):
    """``image uint8 (H, W, 3) -> alpha float (H, W)`` for the frames of one video, in order.

    The zoom for small people is fixed by the first frame (:meth:`lpmatte.api.Matter.for_clip`).
    With ``stabilize``: a :class:`TemporalStabilizer` between the two stages and an
    :class:`AlphaHold` on the output; without: every frame on its own.
    """
    clip = {}

    def clip_matter(image):
        if "matter" not in clip:  # any object with run() serves; a Matter fixes its zoom
            fix = getattr(matter, "for_clip", None)
            clip["matter"] = matter if fix is None else fix(image)
        return clip["matter"]

    if not stabilize:
        return lambda image: clip_matter(image).run(image).alpha_array()
    coarse, hold = TemporalStabilizer(), AlphaHold()
    return lambda image: hold(image, clip_matter(image).run(image, coarse_filter=coarse)
                              .alpha_array())


def dtssd(pred: np.ndarray, true: np.ndarray) -> float:
    """Temporal flicker of a predicted alpha sequence against the true one (lower is better).

    dtSSD_t = 100 * sqrt( sum_pixels ((p_t - p_{t-1}) - (g_t - g_{t-1}))^2 / num_pixels ),
    averaged over t = 1..T-1, as ``MetricDTSSD`` in Robust Video Matting's evaluation code
    (Lin et al., WACV 2022), with alphas in [0, 1].

    Args:
        pred: (T, H, W) predicted alphas in [0, 1], T >= 2.
        true: (T, H, W) ground-truth alphas in [0, 1].

    >>> import numpy as np
    >>> true = np.zeros((3, 2, 2)); pred = true.copy(); pred[1] = 0.1
    >>> round(dtssd(pred, true), 6)  # both steps change every pixel by 0.1
    10.0
    """
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if pred.shape != true.shape or pred.ndim != 3 or len(pred) < 2:
        raise ValueError(f"need two (T>=2, H, W) arrays of one shape, "
                         f"got {pred.shape} and {true.shape}")
    error = np.diff(pred, axis=0) - np.diff(true, axis=0)
    per_frame = np.sqrt((error ** 2).reshape(len(error), -1).mean(axis=1)) * 1e2
    return float(per_frame.mean())
