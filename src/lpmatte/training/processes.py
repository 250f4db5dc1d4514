"""Where a run computes: its device, its autocast precision and its torchrun process group."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from lpmatte.devices import cpu_has_native_bf16, resolve_device
from lpmatte.errors import LpmatteError
from lpmatte.model.config import WHOLE_IMAGE


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None means plain fp32."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else None
    if precision == "fp16" and device.type != "cuda":
        raise LpmatteError("fp16 training needs a CUDA GPU; use --precision bf16 or fp32")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def resolve_memory_format(memory_format: str, model_kind: str) -> torch.memory_format:
    """The layout to train ``model_kind`` in: ``auto`` is channels-last for whole-image
    models, whose depthwise and dilated convolutions are much faster so, contiguous for the
    two-stage ones (their refiner works on thousands of 8x8 crops)."""
    if memory_format == "auto":
        memory_format = "channels-last" if model_kind == WHOLE_IMAGE else "contiguous"
    return torch.channels_last if memory_format == "channels-last" else torch.contiguous_format


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun launch (rank 0 of 1 when run directly)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()


def init_distributed(device: str) -> Distributed:
    """Join the process group that torchrun set up (gloo on CPU, NCCL on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    import torch.distributed as dist

    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Distributed(dist.get_rank(), world_size, int(os.environ.get("LOCAL_RANK", "0")))


def training_device(device: str, dist: Distributed) -> torch.device:
    resolved = resolve_device(device)
    if resolved.type == "cuda" and resolved.index is None:
        resolved = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(resolved)
    return resolved
