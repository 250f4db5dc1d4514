"""The learning-rate schedule, the optimiser and the per-step seeds of a run."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """A 63-bit seed for torch's RNG (drop path) at ``step``: independent of the history."""
    state = np.random.SeedSequence([seed, step, rank]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def milestone_steps(milestones, steps: int) -> tuple[int, ...]:
    """Fractions (floats <= 1) of ``steps`` or step numbers -> sorted step numbers.

    >>> milestone_steps((0.3, 0.6), 400_000)
    (120000, 240000)
    """
    return tuple(sorted(round(m * steps) if _is_fraction(m) else int(m) for m in milestones))


def _is_fraction(milestone) -> bool:
    # ints are step numbers, even 1 (a resume pins fractions to ints)
    return not isinstance(milestone, int) and milestone <= 1


class StepSchedule:
    """lr factor at step s: ``gamma ** #{milestones <= s}``, times ``(s + 1) / warmup``
    during the first ``warmup`` steps. A plain object, so LambdaLR saves its fields."""

    def __init__(self, milestones: tuple[int, ...], gamma: float = 0.1, warmup: int = 0):
        self.milestones, self.gamma, self.warmup = tuple(milestones), gamma, warmup

    def __call__(self, step: int) -> float:
        factor = self.gamma ** sum(step >= m for m in self.milestones)
        return factor * min(1.0, (step + 1) / self.warmup) if self.warmup else factor


def step_schedule(config) -> StepSchedule:
    return StepSchedule(milestone_steps(config.lr_milestones, config.steps), config.lr_gamma,
                        config.warmup_steps)


def build_optimizer(model: nn.Module, config) -> torch.optim.Optimizer:
    """Adam or AdamW; the fused kernel on CPU and CUDA (10x faster than the per-tensor loop
    on CPU for lpm-s)."""
    kind = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    device = next(model.parameters()).device.type
    return kind(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                fused=device in ("cpu", "cuda"))
