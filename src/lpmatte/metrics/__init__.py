"""Matting metrics exactly as the reference evaluation codes compute them.

Two protocols (see :mod:`lpmatte.metrics.protocols`): ``dim`` (Deep Image Matting's MATLAB
code, 8-bit) and ``p3m`` (P3M-Net's Python code, float). One file per metric family:
:mod:`~lpmatte.metrics.errors` (SAD, MSE, MAD), :mod:`~lpmatte.metrics.gradient` (Grad;
also MMNet's gradient error), :mod:`~lpmatte.metrics.connectivity` (Conn), and
:mod:`~lpmatte.metrics.artefacts` (this project's texture and cell-border figures).
"""

from lpmatte.metrics.artefacts import cell_border_excess, texture_figures
from lpmatte.metrics.connectivity import conn_error_dim, conn_error_p3m, largest_component
from lpmatte.metrics.errors import mad, mse, p3m_trimap_errors, sad
from lpmatte.metrics.gradient import (
    gaussian_gradient_kernel,
    grad_error_dim,
    grad_error_mmnet,
    grad_error_p3m,
)
from lpmatte.metrics.protocols import (
    METRIC_NAMES,
    PROTOCOLS,
    compute_metrics,
    dim_metrics,
    metric_names,
    p3m_metrics,
)

__all__ = [
    "METRIC_NAMES", "PROTOCOLS", "compute_metrics", "dim_metrics", "p3m_metrics", "metric_names",
    "sad", "mse", "mad", "p3m_trimap_errors", "grad_error_dim", "grad_error_p3m",
    "grad_error_mmnet", "gaussian_gradient_kernel", "conn_error_dim", "conn_error_p3m",
    "largest_component", "texture_figures", "cell_border_excess",
]
