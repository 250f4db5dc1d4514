"""A synthetic head-and-shoulders portrait with an exact alpha matte.

Used where a realistic boundary length matters but no real photo may be shipped: costing
and profiling untrained models (the refined-region count follows the boundary), tests,
and benchmarks. Not a training source.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch


def portrait_alpha(height: int, width: int, seed: int = 0) -> np.ndarray:
    """float32 HxW alpha: head ellipse + shoulders, with a soft, wispy hair band on top."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cy, cx, ry, rx = 0.36 * height, 0.5 * width, 0.2 * height, 0.17 * width
    head = np.hypot((yy - cy) / ry, (xx - cx) / rx)
    shoulders = np.hypot((yy - height) / (0.42 * height), (xx - cx) / (0.46 * width))
    neck = (np.abs(xx - cx) < 0.45 * rx) & (yy > cy) & (yy < 0.75 * height)
    hard = ((head < 1) | (shoulders < 1) | neck).astype(np.float32)
    angle = np.arctan2(yy - cy, xx - cx)
    strands = 0.5 + 0.5 * np.sin(angle * rng.integers(40, 80) + rng.uniform(0, np.pi))
    hair_reach = 1 + 0.12 * strands * (yy < cy)  # wisps only on the upper half of the head
    hair = np.clip((hair_reach - head) / (hair_reach - 1 + 1e-6), 0, 1) * (head >= 1)
    alpha = np.maximum(hard, hair * (yy < cy))
    sigma = max(0.6, 0.0015 * (height + width))  # a slightly soft edge everywhere
    return np.clip(cv2.GaussianBlur(alpha, (0, 0), sigma), 0, 1).astype(np.float32)


def portrait_image(alpha: np.ndarray, seed: int = 0) -> np.ndarray:
    """uint8 HxWx3 composite of a textured person over a smooth, blurred background."""
    rng = np.random.default_rng(seed)
    height, width = alpha.shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    background = np.stack([xx / width, yy / height, 1 - xx / width], -1) * 0.5 + 0.25
    noise = cv2.GaussianBlur(rng.normal(0, 1, (height, width, 3)).astype(np.float32), (0, 0), 3)
    person = np.array([0.75, 0.55, 0.45], np.float32) + 0.08 * noise
    image = person * alpha[..., None] + background * (1 - alpha[..., None])
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def synthetic_portrait(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 HxWx3, alpha float32 HxW)."""
    alpha = portrait_alpha(height, width, seed)
    return portrait_image(alpha, seed), alpha


def boundary_region_mask(alpha: np.ndarray, cell: int = 8, band: int = 0) -> torch.Tensor:
    """(1, 1, ceil(H/cell), ceil(W/cell)) bool: cells holding soft alpha, dilated by ``band``
    cells, i.e. what a well-trained trimap head marks "unknown"."""
    height, width = alpha.shape
    rows, cols = -(-height // cell), -(-width // cell)
    padded = np.zeros((rows * cell, cols * cell), np.float32)
    padded[:height, :width] = alpha
    cells = padded.reshape(rows, cell, cols, cell)
    soft = ((cells > 0.01) & (cells < 0.99)).any(axis=(1, 3)).astype(np.uint8)
    if band:
        soft = cv2.dilate(soft, np.ones((2 * band + 1, 2 * band + 1), np.uint8))
    return torch.from_numpy(soft.astype(bool))[None, None]
