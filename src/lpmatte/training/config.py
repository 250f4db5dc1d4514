"""What a training run is: :class:`TrainConfig`, and the recipe a resume continues with."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from lpmatte.errors import LpmatteError
from lpmatte.training.checkpoints import CheckpointFiles, read_training_checkpoint
from lpmatte.training.schedule import milestone_steps

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MEMORY_FORMATS = ("auto", "contiguous", "channels-last")
OPTIMIZERS = ("adam", "adamw")


@dataclass
class TrainConfig:
    """Every knob of a training run (``lpmatte train`` maps its options onto these).

    lr_milestones: where the lr is multiplied by ``lr_gamma``; floats <= 1 are fractions
        of ``steps``, ints and larger values step numbers.
    weight_decay: Adam's L2 term added to the gradient (the reference's 1e-6), or AdamW's
        decoupled decay.
    precision: ``auto`` picks bf16 on GPUs that have it (else fp16) and on CPUs with native
        bf16 (AVX512-BF16 / AMX), fp32 on other CPUs, where emulated bf16 is slower.
    memory_format: how the weights (and so the activations) lie in memory. ``auto`` is
        channels-last for whole-image models (MMNet, PSPM), whose depthwise and dilated
        convolutions train 1.9x (MMNet) and 1.15x (PSPM) faster so on 2 CPU cores
        (``benchmarks/bench_train.py --memory-formats``), contiguous for the two-stage models.
    num_workers: DataLoader processes; None: one less than the cores per process.
    val: a data spec to validate on; None holds out ``val_fraction`` of ``data`` (at most
        ``val_max_count``) when validation will run (``0 < val_every <= steps``).
    val_max_pixels: validation images are downscaled to at most this area.
    max_train_regions: refine at most this many cells per image in training (a random
        subset of predicted-or-true unknown); None refines all, as the paper.
    scale_range: the random zoom of a sample, times "short side = crop" (the augmentation's
        default 0.5-1.5). A whole-image model that infers on the image resized to its input
        size wants smaller factors, so that people are as large in training as there.
    ema_decay: keep an exponential moving average of the weights (e.g. 0.999; 0: off, as
        the paper). Validation, ``best.pt`` and the weights a checkpoint gives as a model
        are then the average; the raw weights are kept for resuming.
    """

    train_dir: str
    data: str
    model_version: str | None = None  # None: lpm-s for a new run, the checkpoint's on resume
    steps: int = 400_000
    crop: int = 896
    batch_size: int = 8
    optimizer: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 1e-6
    lr_milestones: tuple[float, ...] = (0.3, 0.6)
    lr_gamma: float = 0.1
    warmup_steps: int = 0
    grad_clip: float = 1.0
    max_train_regions: int | None = None
    scale_range: tuple[float, float] = (0.5, 1.5)
    ema_decay: float = 0.0
    precision: str = "auto"
    memory_format: str = "auto"
    device: str = "auto"
    seed: int = 0
    num_workers: int | None = None
    backgrounds: tuple[str, ...] = ()
    procedural_backgrounds: float = 0.5
    val: str | None = None
    val_every: int = 2000
    val_fraction: float = 0.05
    val_max_count: int = 50
    val_max_pixels: int = 1024 * 1024
    checkpoint_every: int = 1000
    keep_last: int = 3
    log_every: int = 20
    image_every: int = 500
    init_weights: str | None = None
    backbone_weights: str | None = None
    phase: str | None = None  # PSPM only: which phase of the thesis' schedule to train
    resume: bool = False
    progress: bool = True

    def check(self) -> None:
        """One-line errors for impossible values."""
        positive = {"steps": self.steps, "crop": self.crop, "batch_size": self.batch_size}
        for name, value in positive.items():
            if value < 1:
                raise LpmatteError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
        if self.crop % 16:
            raise LpmatteError(f"--crop must be a multiple of 16 (got {self.crop})")
        low, high = self.scale_range
        if not 0 < low <= high:
            raise LpmatteError("--scale-range must be LOW,HIGH with 0 < LOW <= HIGH "
                               f"(got {low},{high})")
        if self.precision not in PRECISIONS:
            raise LpmatteError(f"unknown precision '{self.precision}' ({', '.join(PRECISIONS)})")
        if self.memory_format not in MEMORY_FORMATS:
            raise LpmatteError(f"unknown memory format '{self.memory_format}' "
                               f"({', '.join(MEMORY_FORMATS)})")
        if self.optimizer not in OPTIMIZERS:
            raise LpmatteError(f"unknown optimizer '{self.optimizer}' ({', '.join(OPTIMIZERS)})")

    def to_dict(self) -> dict:
        """Plain types only (stored in checkpoints, read with weights_only)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


# Fields that describe this invocation, never the run's recipe.
INVOCATION_FIELDS = frozenset({"train_dir", "resume", "init_weights", "progress"})


def no_run_to_resume(train_dir) -> LpmatteError:
    return LpmatteError(f"{train_dir}: no checkpoint to resume (no last.pt); "
                        "drop --resume to start a new run there")


def resume_config(train_dir: str | Path, **given) -> TrainConfig:
    """The config ``--resume`` trains with: the recipe stored in ``train_dir/last.pt``
    (crop, batch, optimizer, schedule, data, ...) with the ``given`` fields replacing it.

    Without this, options left off the resuming command would silently fall back to
    their defaults (e.g. crop 896, batch 8) in the middle of a run.
    """
    last = CheckpointFiles(Path(train_dir)).last
    if not last.is_file():
        raise no_run_to_resume(train_dir)
    # memory-mapped: only the small recipe is read here, the Trainer loads the rest
    stored = read_training_checkpoint(last, mmap=True).get("train_config", {})
    names = {field.name for field in dataclasses.fields(TrainConfig)} - INVOCATION_FIELDS
    values = {name: tuple(value) if isinstance(value, list) else value
              for name, value in stored.items() if name in names}
    if "lr_milestones" in values and "lr_milestones" not in given:
        # pinned to step numbers, so that a larger --steps does not move them
        values["lr_milestones"] = milestone_steps(values["lr_milestones"],
                                                  values.get("steps", TrainConfig.steps))
    values.update(given)
    values.update(train_dir=str(train_dir), resume=True)
    return TrainConfig(**values)
