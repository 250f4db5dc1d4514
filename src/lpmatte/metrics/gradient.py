"""Gradient error (Grad): how much the matte's edge sharpness differs from the ground truth.

Two conventions exist and give different numbers:

* DIM (MATLAB ``compute_gradient_loss``): alphas min-max normalised, first-order Gaussian
  derivative kernels of :func:`gaussian_gradient_kernel`, replicated borders, ``/ 1000``.
* P3M (Python ``compute_gradient_whole_image``): no normalisation,
  ``scipy.ndimage.gaussian_filter(order=1)`` with reflected borders, ``/ 10``.

MMNet (seed 004, Eq. 11) reports a third: the mean over pixels of the length of the
gradient *difference* vector, :func:`grad_error_mmnet`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from lpmatte.metrics.quantize import unit_float64

SIGMA = 1.4


def gaussian_gradient_halfsize(sigma: float = SIGMA, epsilon: float = 1e-2) -> int:
    """Half-size ``r = ceil(sigma * sqrt(-2 ln(sqrt(2 pi) sigma epsilon)))`` (4 for sigma 1.4)."""
    return math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * epsilon)))


def gaussian_gradient_factors(
    sigma: float = SIGMA, epsilon: float = 1e-2
) -> tuple[np.ndarray, np.ndarray]:
    """The two 1-D factors ``(g, g')`` of :func:`gaussian_gradient_kernel`, each L2-normalised.

    ``g(u) = exp(-u^2 / 2 sigma^2) / (sigma sqrt(2 pi))`` and ``g'(u) = -u g(u) / sigma^2``
    for ``u = -r..r``. Since the kernel is their outer product, normalising each factor
    normalises the kernel.
    """
    r = gaussian_gradient_halfsize(sigma, epsilon)
    u = np.arange(-r, r + 1, dtype=np.float64)
    gauss = np.exp(-(u**2) / (2.0 * sigma**2)) / (sigma * math.sqrt(2.0 * math.pi))
    derivative = -u * gauss / sigma**2
    return gauss / np.linalg.norm(gauss), derivative / np.linalg.norm(derivative)


def gaussian_gradient_kernel(sigma: float = SIGMA, epsilon: float = 1e-2) -> np.ndarray:
    """DIM's x-derivative kernel ``h[i, j] = g(i) g'(j) / ||g g'||_2``, shape (2r+1, 2r+1).

    Rows i and columns j run over ``-r..r`` (see :func:`gaussian_gradient_halfsize`);
    the y kernel is its transpose.
    """
    gauss, derivative = gaussian_gradient_factors(sigma, epsilon)
    return np.outer(gauss, derivative)


def dim_gradients(alpha: np.ndarray, sigma: float = SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """``(gx, gy)`` of a float64 HxW image convolved with DIM's kernels (replicated borders,
    i.e. MATLAB ``imfilter(.., 'replicate', 'conv')``), done as separable passes."""
    gauss, derivative = gaussian_gradient_factors(sigma)
    gx = ndimage.convolve1d(ndimage.convolve1d(alpha, gauss, axis=0, mode="nearest"),
                            derivative, axis=1, mode="nearest")
    gy = ndimage.convolve1d(ndimage.convolve1d(alpha, gauss, axis=1, mode="nearest"),
                            derivative, axis=0, mode="nearest")
    return gx, gy


def dim_gradient_magnitude(alpha: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """``sqrt(gx^2 + gy^2)`` of :func:`dim_gradients`."""
    gx, gy = dim_gradients(alpha, sigma)
    return np.sqrt(gx * gx + gy * gy)  # np.hypot is twice as slow


def min_max_normalise(alpha: np.ndarray) -> np.ndarray:
    """MATLAB ``mat2gray``: ``(x - min) / (max - min)`` as float64; a constant image -> zeros
    (its gradient is zero whatever the scaling)."""
    alpha = unit_float64(alpha)
    low, high = float(alpha.min()), float(alpha.max())
    if high == low:
        return np.zeros_like(alpha)
    return (alpha - low) / (high - low)


def dim_gradient_error_map(pred: np.ndarray, gt: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """Per-pixel DIM gradient error ``(|grad p~| - |grad a~|)^2`` (p~, a~ min-max normalised)."""
    difference = (dim_gradient_magnitude(min_max_normalise(pred), sigma)
                  - dim_gradient_magnitude(min_max_normalise(gt), sigma))
    return difference * difference


def grad_error_dim(pred: np.ndarray, gt: np.ndarray, region: np.ndarray | None = None) -> float:
    """DIM gradient error ``sum_{i in R} (|grad p~|_i - |grad a~|_i)^2 / 1000``.

    Args:
        pred, gt: alpha mattes HxW (uint8, or float in [0, 1]); each is min-max normalised.
        region: optional bool HxW (DIM: trimap == 128); whole image when None.
    """
    error = dim_gradient_error_map(pred, gt)
    return float((error if region is None else error[region]).sum() / 1000.0)


def p3m_gradient_magnitude(alpha: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """``sqrt(gx^2 + gy^2)`` with ``gaussian_filter(order=1)`` along each axis (reflect borders)."""
    gy = ndimage.gaussian_filter(alpha, sigma, order=(1, 0))
    gx = ndimage.gaussian_filter(alpha, sigma, order=(0, 1))
    return np.sqrt(gx * gx + gy * gy)


def grad_error_p3m(pred: np.ndarray, gt: np.ndarray, sigma: float = SIGMA) -> float:
    """P3M gradient error over the whole image: ``sum (|grad p| - |grad a|)^2 / 10``.

    Alphas are used as given in [0, 1] (no normalisation); computed in float64.
    """
    difference = (p3m_gradient_magnitude(unit_float64(pred), sigma)
                  - p3m_gradient_magnitude(unit_float64(gt), sigma))
    return float((difference * difference).sum() / 10.0)


def grad_error_mmnet(pred: np.ndarray, gt: np.ndarray, sigma: float = SIGMA) -> float:
    """MMNet's gradient error (seed 004, Eq. 11, after Zhu et al.):
    ``(1 / K) sum_i || grad p_i - grad a_i ||_2`` over all K = H x W pixels.

    ``grad`` is the pair of first-order Gaussian derivative filters (sigma 1.4) of
    :func:`dim_gradients`; alphas are used as given in [0, 1] (no normalisation), float64.
    Unlike DIM's and P3M's Grad it compares gradient vectors, not their magnitudes, and
    averages instead of summing: the paper's tables print it x 10^3 (MMNet-1.0: 2.93).

    >>> grad_error_mmnet(np.zeros((8, 8)), np.full((8, 8), 0.5))  # offsets have no gradient
    0.0
    """
    pred_x, pred_y = dim_gradients(unit_float64(pred), sigma)
    gt_x, gt_y = dim_gradients(unit_float64(gt), sigma)
    return float(np.sqrt((pred_x - gt_x) ** 2 + (pred_y - gt_y) ** 2).mean())
