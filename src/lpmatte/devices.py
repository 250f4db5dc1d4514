"""Which device runs the model, and what the CPU can do fast: one answer for every caller."""

from __future__ import annotations

import torch

from lpmatte.errors import LpmatteError


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LpmatteError(f"--device {device} asked for, but this PyTorch build sees no "
                           "CUDA GPU")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise LpmatteError(f"unknown device '{device}' (use cpu, cuda, cuda:N or auto)") from None
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise LpmatteError(f"--device {device}: this machine has "
                           f"{torch.cuda.device_count()} CUDA device(s)")
    return resolved


def cpu_has_native_bf16() -> bool:
    """True on CPUs whose bf16 matrix products beat fp32 (AVX512-BF16 or AMX), as PyTorch's
    own CPU capability checks report them."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
