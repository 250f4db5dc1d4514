"""A smaller refiner distilled from a trained one (issue 16: the refiner is two thirds of
the time at HD).

The refiner sees nothing but its (N, 4, 8, 8) crops and their neighbour lists, so what it is
given at inference can be recorded once, from the teacher model matting real photos at the
sizes users matte (one pass, two passes at native and at HD size), together with the
teacher's patches. A student refiner then learns to give those patches, for many epochs at a
fraction of a second a step. The low-res network stays the teacher's: coarse alpha, trimap
and the cells chosen are the same, only the refined patches can differ.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from lpmatte.errors import LpmatteError
from lpmatte.files import atomic_write
from lpmatte.model.refiner import Refiner
from lpmatte.training.checkpoints import (
    CheckpointFiles,
    load_weights_only,
    restore_rng_state,
    rng_state,
)


@dataclass
class RefinerCalls:
    """Refiner calls stored end to end: call ``i`` is rows ``offsets[i]:offsets[i + 1]``.

    crops (N, 4, 8, 8) fp16, regions (N, 3) int32, neighbours (N, k) int32 (indices within
    their own call), valid (N, k) bool, patches (N, 1, 8, 8) fp16: the teacher's output.
    """

    crops: torch.Tensor
    regions: torch.Tensor
    neighbours: torch.Tensor
    valid: torch.Tensor
    patches: torch.Tensor
    offsets: torch.Tensor

    FIELDS = ("crops", "regions", "neighbours", "valid", "patches", "offsets")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def num_regions(self) -> int:
        return int(self.offsets[-1])

    def call(self, index: int) -> tuple[torch.Tensor, ...]:
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        return (self.crops[start:end], self.regions[start:end], self.neighbours[start:end],
                self.valid[start:end], self.patches[start:end])

    def batch(self, indices) -> tuple[torch.Tensor, ...]:
        """Calls ``indices`` as one refiner input: neighbour indices shifted past the calls
        before them, and each call its own batch index (attention never crosses calls)."""
        parts = [self.call(int(i)) for i in indices]
        shift, neighbours, regions = 0, [], []
        for n, (_, coords, near, _, _) in enumerate(parts):
            neighbours.append(near.long() + shift)
            regions.append(torch.cat([torch.full_like(coords[:, :1], n), coords[:, 1:]], 1).long())
            shift += len(coords)
        return (torch.cat([p[0] for p in parts]).float(), torch.cat(regions),
                torch.cat(neighbours), torch.cat([p[3] for p in parts]),
                torch.cat([p[4] for p in parts]).float())

    def save(self, path: str | Path) -> None:
        state = {name: getattr(self, name) for name in self.FIELDS}
        atomic_write(path, lambda tmp: torch.save(state, tmp))

    @classmethod
    def load(cls, path: str | Path) -> RefinerCalls:
        failure = "not a file of recorded refiner calls"
        state = load_weights_only(path, failure)
        missing = [name for name in cls.FIELDS if not isinstance(state, dict) or name not in state]
        if missing:
            raise LpmatteError(f"{path}: {failure} (no {', '.join(missing)})")
        return cls(**{name: state[name] for name in cls.FIELDS})

    @classmethod
    def concatenate(cls, calls: list[tuple[torch.Tensor, ...]]) -> RefinerCalls:
        """From ``(crops, regions, neighbours, valid, patches)`` tuples, one per call."""
        if not calls:
            raise LpmatteError("no refiner call was recorded (no image had a region to refine)")
        sizes = torch.tensor([0] + [len(c[0]) for c in calls])
        columns = list(zip(*calls))
        return cls(torch.cat(columns[0]).half(), torch.cat(columns[1]).int(),
                   torch.cat(columns[2]).int(), torch.cat(columns[3]).bool(),
                   torch.cat(columns[4]).half(), sizes.cumsum(0))


def join_calls(parts: list[RefinerCalls]) -> RefinerCalls:
    """Several recordings as one (e.g. photos and group composites)."""
    return RefinerCalls.concatenate([part.call(i) for part in parts for i in range(len(part))])


def read_student_state(path: str | Path) -> dict:
    """A :func:`distill` checkpoint (the student refiner's weights, its optimiser and step),
    with a one-line error if unusable."""
    state = load_weights_only(path, "not a readable distillation checkpoint")
    if not isinstance(state, dict) or not {"refiner", "step"} <= set(state):
        raise LpmatteError(f"{path}: not a distillation checkpoint (no refiner and step)")
    return state


class RecordingRefiner:
    """``backend`` whose refiner calls are kept with their outputs (``calls``): wrap a
    Matter's backend with it and matte images as usual."""

    def __init__(self, backend):
        self.backend = backend
        self.calls: list[tuple[torch.Tensor, ...]] = []

    def __getattr__(self, name: str):
        return getattr(self.backend, name)

    def refine(self, crops, regions, neighbours, valid) -> torch.Tensor:
        patches = self.backend.refine(crops, regions, neighbours, valid)
        self.calls.append(tuple(t.detach().cpu() for t in
                                (crops, regions, neighbours, valid, patches)))
        return patches


def scaled(image: torch.Tensor, long_side: int) -> torch.Tensor:
    """(1, 3, H, W) resized so its long side is ``long_side`` (area down, bicubic up)."""
    height, width = image.shape[-2:]
    scale = long_side / max(height, width)
    size = (max(8, round(height * scale)), max(8, round(width * scale)))
    if scale < 1:
        return F.interpolate(image, size=size, mode="area")
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False).clamp(0, 1)


def record_calls(matter, images, long_sides: tuple[int, ...], mirror: bool = True,
                 log=print) -> RefinerCalls:
    """The teacher ``matter``'s refiner calls on every image of ``images`` (float (3, H, W)
    tensors in [0, 1]) at every long side of ``long_sides``, each also mirrored when
    ``mirror``, with its own inference options (passes, settling, mirror averaging)."""
    recorder = RecordingRefiner(matter.backend)
    original, matter.backend = matter.backend, recorder
    try:
        for n, image in enumerate(images):
            views = [image, image.flip(-1)] if mirror else [image]
            for view in views:
                for side in long_sides:
                    matter.run(scaled(view[None], side))
            if log and (n + 1) % 50 == 0:
                log(f"{n + 1} images, {sum(len(c[0]) for c in recorder.calls)} regions")
    finally:
        matter.backend = original
    return RefinerCalls.concatenate(recorder.calls)


def patch_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 on alpha plus L1 on its horizontal and vertical steps: a student that matches the
    mean but not the edges (or adds texture the teacher has not) still pays."""
    def steps(x):
        return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]

    loss = (predicted - target).abs().mean()
    for p, t in zip(steps(predicted), steps(target)):
        loss = loss + (p - t).abs().mean()
    return loss


@dataclass(frozen=True)
class DistillConfig:
    steps: int = 20000
    lr: float = 2e-3
    weight_decay: float = 1e-4
    regions_per_step: int = 4096
    held_out: float = 0.05  # share of the calls kept for the validation figure
    val_every: int = 500
    checkpoint_every: int = 500
    seed: int = 0


def split_calls(count: int, held_out: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    cut = max(1, round(count * held_out))
    return order[cut:], order[:cut]


@torch.no_grad()
def held_out_error(student: Refiner, calls: RefinerCalls, indices) -> float:
    """Mean |student - teacher| over the held-out calls' patches."""
    student.eval()
    total, count = 0.0, 0
    for index in indices:
        crops, regions, neighbours, valid, patches = calls.batch([index])
        total += float((student(crops, regions, neighbours, valid) - patches).abs().sum())
        count += patches.numel()
    student.train()
    return total / max(count, 1)


def sample_batch(calls: RefinerCalls, pool: torch.Tensor, regions: int,
                 generator: torch.Generator) -> list[int]:
    """Random calls of ``pool`` until they hold ``regions`` regions (at least one call)."""
    chosen, total = [], 0
    sizes = calls.offsets[1:] - calls.offsets[:-1]
    while total < regions:
        index = int(pool[torch.randint(len(pool), (1,), generator=generator)])
        chosen.append(index)
        total += int(sizes[index])
    return chosen


def distill(student: Refiner, calls: RefinerCalls, run_dir: str | Path,
            config: DistillConfig = DistillConfig(), log=print) -> Refiner:
    """Train ``student`` to give the recorded patches; resumes from ``run_dir/last.pt``.

    AdamW with a cosine decay to 0 over ``config.steps``; every ``val_every`` steps the
    held-out calls' mean absolute patch difference goes to ``run_dir/log.jsonl``.
    """
    log = log or (lambda message: None)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    files = CheckpointFiles(run_dir, keep_last=2)
    train, held = split_calls(len(calls), config.held_out, config.seed)
    optimizer = torch.optim.AdamW(student.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps)
    generator = torch.Generator().manual_seed(config.seed)
    step = 0
    if files.last.exists():
        state = read_student_state(files.last)
        student.load_state_dict(state["refiner"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        restore_rng_state(state["rng"])
        step = state["step"]
        log(f"resumed at step {step}")
    student.train()
    started, since = time.perf_counter(), step
    while step < config.steps:
        crops, regions, neighbours, valid, patches = calls.batch(
            sample_batch(calls, train, config.regions_per_step, generator))
        loss = patch_loss(student(crops, regions, neighbours, valid), patches)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step += 1
        if step % config.val_every == 0 or step == config.steps:
            error = held_out_error(student, calls, held)
            entry = {"step": step, "loss": loss.item(), "held_out_mad": error,
                     "lr": schedule.get_last_lr()[0],
                     "s_per_step": (time.perf_counter() - started) / (step - since)}
            with open(run_dir / "log.jsonl", "a") as handle:
                handle.write(json.dumps(entry) + "\n")
            log(json.dumps(entry))
            started, since = time.perf_counter(), step
        if step % config.checkpoint_every == 0 or step == config.steps:
            state = {"refiner": student.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": schedule.state_dict(), "generator": generator.get_state(),
                     "rng": rng_state(), "step": step}
            files.save(step, state, periodic=True)
    return student
