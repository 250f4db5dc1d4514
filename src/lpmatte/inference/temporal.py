"""Temporal stability for video: steadier coarse predictions where the picture is still.

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

:func:`dtssd` measures flicker as in the evaluation of Robust Video Matting (Lin et al. 2022).
"""

from __future__ import annotations

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
    linear in between (a soft edge avoids a visible seam between blended and fresh cells)."""
    return ((moving - motion) / (moving - still)).clamp(0.0, 1.0)


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
        alpha = weight * self.alpha + (1.0 - weight) * coarse_alpha
        probs = weight * self.probs + (1.0 - weight) * trimap_probs
        probs = hysteresis(probs, self.trimap_class, self.margin * steady)
        return self._remember(image_lowres, alpha, probs)

    def _remember(self, image, alpha, probs):
        self.image, self.alpha, self.probs = image, alpha, probs
        self.trimap_class = probs.argmax(dim=1, keepdim=True)
        return alpha, probs


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
