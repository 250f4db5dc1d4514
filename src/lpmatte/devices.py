"""Which device runs the model, and what the CPU can do fast: one answer for every caller."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

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


# glibc <malloc.h> parameters
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_MALLOC_ENV = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_",
               "GLIBC_TUNABLES")
_freed_memory_kept = False


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for the next allocation instead of handing it
    back to the system. Process-wide; returns whether it took effect.

    Every large image allocates and frees full-resolution float copies (a 4K RGB image is
    100 MB) on each call. glibc serves blocks above 32 MB with fresh mmap pages, and
    faulting them in was half of the 4K pre-processing time (70 -> 36 ms, docs/speed-history.md).
    With mmap off and no trimming, the next image reuses the pages; resident memory stays
    at its peak instead. The ``lpmatte`` command turns it on for the commands that run a
    model and exit (not ``serve``); a program using the library can call it. Nothing
    changes where the C library is not glibc, where the user set glibc's own malloc
    variables, or with ``LPMATTE_MALLOC=system``.
    """
    if os.environ.get("LPMATTE_MALLOC") == "system" or any(v in os.environ for v in _MALLOC_ENV):
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    global _freed_memory_kept
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    kept = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    _freed_memory_kept = _freed_memory_kept or kept
    return kept


def freed_memory_kept() -> bool:
    """Whether :func:`keep_freed_memory` took effect in this process (profiles say so)."""
    return _freed_memory_kept
