"""The two evaluation protocols, DIM and P3M, as functions returning named metrics.

Metric names (keys of the returned dicts, in this order): ``SAD, SAD-T, MSE, MSE-T,
MAD, MAD-T, Grad, Grad-T, Conn, Conn-T``. The -T variants need a trimap (uint8 HxW with
values 0 background, 128 unknown, 255 foreground) and are left out without one.

* ``dim``: the MATLAB code of Deep Image Matting on 8-bit mattes (floats are rounded to
  8 bits first); -T variants restrict the sums/means to trimap == 128.
* ``p3m``: the Python code of P3M-Net on float alphas; SAD-T/MSE-T/MAD-T clamp the
  prediction with the trimap (:func:`~lpmatte.metrics.errors.p3m_trimap_errors`); Grad
  and Conn are whole-image only, so ``Grad-T`` and ``Conn-T`` do not exist under ``p3m``.
"""

from __future__ import annotations

import numpy as np

from lpmatte.metrics.connectivity import conn_error_p3m, dim_connectivity_error_map
from lpmatte.metrics.errors import mad, mse, p3m_trimap_errors, sad
from lpmatte.metrics.gradient import dim_gradient_error_map, grad_error_p3m
from lpmatte.metrics.quantize import to_8bit, to_float32
from lpmatte.trimap import TRIMAP_VALUES

METRIC_NAMES = ("SAD", "SAD-T", "MSE", "MSE-T", "MAD", "MAD-T", "Grad", "Grad-T", "Conn", "Conn-T")
PROTOCOLS = ("dim", "p3m")


def metric_names(protocol: str, with_trimap: bool) -> tuple[str, ...]:
    """The metric names that ``protocol`` reports, in :data:`METRIC_NAMES` order.

    >>> metric_names("p3m", with_trimap=True)
    ('SAD', 'SAD-T', 'MSE', 'MSE-T', 'MAD', 'MAD-T', 'Grad', 'Conn')
    >>> metric_names("dim", with_trimap=False)
    ('SAD', 'MSE', 'MAD', 'Grad', 'Conn')
    """
    _check_protocol(protocol)
    names = METRIC_NAMES if with_trimap else [n for n in METRIC_NAMES if not n.endswith("-T")]
    if protocol == "p3m":
        names = [n for n in names if n not in ("Grad-T", "Conn-T")]
    return tuple(names)


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")


def _sum_in(error_map: np.ndarray, region: np.ndarray | None) -> float:
    return float((error_map if region is None else error_map[region]).sum() / 1000.0)


def dim_metrics(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None = None) -> dict:
    """All DIM-protocol metrics of one 8-bit matte (see the module docstring)."""
    pred8, gt8 = to_8bit(pred), to_8bit(gt)
    p, a = pred8 / 255.0, gt8 / 255.0  # float64, converted once for all metrics
    grad_map = dim_gradient_error_map(p, a)
    conn_map = dim_connectivity_error_map(pred8, gt8)
    values = {"SAD": sad(p, a), "MSE": mse(p, a), "MAD": mad(p, a),
              "Grad": _sum_in(grad_map, None), "Conn": _sum_in(conn_map, None)}
    if trimap is not None:
        unknown = trimap == 128
        values |= {"SAD-T": sad(p, a, unknown), "MSE-T": mse(p, a, unknown),
                   "MAD-T": mad(p, a, unknown), "Grad-T": _sum_in(grad_map, unknown),
                   "Conn-T": _sum_in(conn_map, unknown)}
    return {name: values[name] for name in metric_names("dim", trimap is not None)}


def p3m_metrics(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None = None) -> dict:
    """All P3M-protocol metrics of one matte (float32 alphas; see the module docstring)."""
    pred32, gt32 = to_float32(pred), to_float32(gt)
    p, a = pred32.astype(np.float64), gt32.astype(np.float64)  # converted once
    values = {"SAD": sad(p, a), "MSE": mse(p, a), "MAD": mad(p, a),
              "Grad": grad_error_p3m(p, a), "Conn": conn_error_p3m(pred32, gt32)}
    if trimap is not None:
        values |= p3m_trimap_errors(p, a, trimap)
    return {name: values[name] for name in metric_names("p3m", trimap is not None)}


def check_inputs(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None) -> None:
    """Raise ValueError unless pred and gt are HxW of one shape and trimap is 0/128/255."""
    if pred.ndim != 2 or gt.ndim != 2:
        raise ValueError(f"alpha mattes must be HxW, got {pred.shape} and {gt.shape}")
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in size")
    if trimap is None:
        return
    if trimap.shape != gt.shape:
        raise ValueError(f"trimap {trimap.shape} and ground truth {gt.shape} differ in size")
    if trimap.dtype != np.uint8:
        raise ValueError(f"trimap must be uint8 0/128/255, got dtype {trimap.dtype}")
    counts = np.bincount(trimap.ravel(), minlength=256)
    counts[list(TRIMAP_VALUES)] = 0
    if counts.any():
        bad = np.flatnonzero(counts)[:5].tolist()
        raise ValueError(f"trimap must hold only 0/128/255, found values {bad}")


def compute_metrics(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None = None,
                    protocol: str = "dim") -> dict[str, float]:
    """Evaluate one predicted alpha matte against its ground truth.

    Args:
        pred, gt: HxW alpha mattes, uint8/uint16 or float in [0, 1].
        trimap: optional uint8 HxW with 0/128/255; enables the -T metrics.
        protocol: ``"dim"`` or ``"p3m"`` (module docstring).
    Returns:
        ``{name: value}`` in :data:`METRIC_NAMES` order, as given by :func:`metric_names`.
        Units: SAD, Grad, Conn in thousands (Grad under P3M: sum / 10); MSE, MAD as means
        over [0, 1] alphas (not scaled by 1e3). An empty unknown region gives NaN MSE-T/MAD-T.
    """
    _check_protocol(protocol)
    pred, gt = np.asarray(pred), np.asarray(gt)
    check_inputs(pred, gt, trimap)
    return (dim_metrics if protocol == "dim" else p3m_metrics)(pred, gt, trimap)
