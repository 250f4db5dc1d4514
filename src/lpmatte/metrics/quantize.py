"""Bringing alpha mattes to the number formats that each protocol is defined on."""

from __future__ import annotations

import numpy as np


def to_8bit(alpha: np.ndarray) -> np.ndarray:
    """Alpha matte of any dtype -> uint8 HxW in 0..255 (the DIM protocol's input format).

    uint8 is returned unchanged; uint16 is rescaled by 255/65535; bool maps to 0/255;
    floats are read as [0, 1], clipped and rounded half-to-even (``np.rint``), which is
    what saving them as an 8-bit PNG would do.

    >>> to_8bit(np.array([[0.0, 0.6, 1.0]])).tolist()
    [[0, 153, 255]]
    """
    alpha = np.asarray(alpha)
    if alpha.dtype == np.uint8:
        return alpha
    if alpha.dtype == np.bool_:
        return alpha.astype(np.uint8) * np.uint8(255)
    if alpha.dtype == np.uint16:
        return np.rint(alpha.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
    if np.issubdtype(alpha.dtype, np.integer):
        return np.clip(alpha, 0, 255).astype(np.uint8)
    return np.rint(np.clip(alpha.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def to_float32(alpha: np.ndarray) -> np.ndarray:
    """Alpha matte of any dtype -> float32 HxW in [0, 1] (the P3M protocol's input format).

    uint8 is divided by 255 and uint16 by 65535 in single precision, so ``153 -> 0.6f``
    exactly as ``np.float32(153) / 255`` in the P3M code.

    >>> float(to_float32(np.array([153], np.uint8))[0]) == float(np.float32(0.6))
    True
    """
    alpha = np.asarray(alpha)
    if alpha.dtype == np.uint8:
        return alpha.astype(np.float32) / np.float32(255.0)
    if alpha.dtype == np.uint16:
        return alpha.astype(np.float32) / np.float32(65535.0)
    if alpha.dtype == np.bool_:
        return alpha.astype(np.float32)
    return alpha.astype(np.float32)


def unit_float64(alpha: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float alpha -> float64 in [0, 1] (integers scaled by their maximum).

    A float64 input is returned as is (no copy)."""
    alpha = np.asarray(alpha)
    if alpha.dtype == np.uint8:
        return alpha.astype(np.float64) / 255.0
    if alpha.dtype == np.uint16:
        return alpha.astype(np.float64) / 65535.0
    return alpha.astype(np.float64, copy=False)
