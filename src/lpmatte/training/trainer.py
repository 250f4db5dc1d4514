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

import math
import os
import time
import warnings
from pathlib import Path

import torch
from torch import nn

from lpmatte.errors import LpmatteError
from lpmatte.files import atomic_write, make_folder
from lpmatte.model.factory import build_model
from lpmatte.model.model import LightweightPortraitMatting
from lpmatte.model.weights import (
    config_from_dict,
    config_to_dict,
    load_checkpoint,
    with_stored_decoder,
)
from lpmatte.training.checkpoints import (
    CheckpointFiles,
    read_training_checkpoint,
    restore_rng_state,
    rng_state,
)
from lpmatte.training.config import TrainConfig, no_run_to_resume
from lpmatte.training.forward import as_float32, training_forward, unknown_cells
from lpmatte.training.processes import (
    autocast,
    init_distributed,
    resolve_memory_format,
    resolve_precision,
    training_device,
)
from lpmatte.training.run_log import TrainLogger, summary_strip
from lpmatte.training.schedule import build_optimizer, step_schedule, step_seed
from lpmatte.training.validation import validate


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
        self.model = self._build_model(resumed).to(self.device)
        self.model.to(memory_format=resolve_memory_format(config.memory_format,
                                                          self.model.config.kind))
        self.train_mode()
        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, step_schedule(config))
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None
        self.loss_fn = self._build_loss()
        self.step, self.best_metric = 0, math.inf
        self.ema = self._build_ema()
        if resumed is not None:
            self._restore(resumed)
        self.forward = self._wrap(training_forward(self.model, config.max_train_regions))

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
            # runs from before the refiner's decoder field resume with the decoder they hold
            stored = with_stored_decoder(config_from_dict(resumed["config"]),
                                         resumed.get("train_model", resumed["model"]))
            config = self._same_version(stored, self.files.last)
        elif init is not None and asked in (None, init.config.name):
            config = init.config  # keeps any refiner options the weights were built with
        else:
            config = create_config(asked or "lpm-s")
        model = build_model(config, seed=self.config.seed)
        self.phase = self._training_phase(config)
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

        lowres = getattr(model, "lowres", None)
        backbone = getattr(lowres, "backbone", getattr(model, "encoder", None))
        if not isinstance(backbone, EfficientNetLite):
            raise LpmatteError(f"--backbone-weights needs an EfficientNet-Lite model "
                               f"(lpm-e0, pspm), not '{model.config.name}'")
        source = self.config.backbone_weights
        path = packaged_pretrained_path(backbone.config.family) if source == "imagenet" else source
        count = load_pretrained(backbone, path)
        self.init_notes.append(f"backbone: {count} ImageNet tensors from {path}")

    def _warm_start(self, model: LightweightPortraitMatting, checkpoint) -> None:
        """The same model loads whole; another one takes every tensor whose name and shape
        match (e.g. an lpm-s refiner for an lpm-e0 run) and reports what it took. Another
        backbone's tensors are never taken: Lite1's blocks.N is not Lite0's blocks.N even
        where the shapes agree (the ImageNet weights stay)."""
        if checkpoint.config.name == model.config.name:
            model.load_state_dict(checkpoint.state_dict)
            return
        own = model.state_dict()
        shared = {k: v for k, v in checkpoint.state_dict.items()
                  if k in own and own[k].shape == v.shape
                  and not (k.startswith("lowres.backbone.")
                           and _backbone(checkpoint.config) != _backbone(model.config))}
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

    def _training_phase(self, config):
        """PSPM's phase (``--phase``) of the thesis' schedule; None for every other model."""
        from lpmatte.training.zoo_losses import PSPM_PHASES

        phases = {phase.name: phase for phase in PSPM_PHASES}
        asked = self.config.phase
        if getattr(config, "architecture", None) != "pspm":
            if asked:
                raise LpmatteError(f"--phase applies to PSPM only, not '{config.name}'")
            return None
        if asked not in phases:
            raise LpmatteError(f"PSPM trains in phases: give --phase "
                               f"{'|'.join(phases)} (got {asked!r})")
        return phases[asked]

    def _build_loss(self):
        from lpmatte.training.losses import MattingLoss
        from lpmatte.training.zoo_losses import MMNetLoss, PSPMLoss

        if self.phase is not None:
            return PSPMLoss(self.phase.weights)
        if getattr(self.model.config, "architecture", None) == "mmnet":
            return MMNetLoss()
        return MattingLoss()

    def train_mode(self) -> None:
        """Train mode, with the parts PSPM's phase does not train frozen."""
        self.model.train()
        if self.phase is not None:
            from lpmatte.training.zoo_losses import apply_phase

            apply_phase(self.model, self.phase)

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
        from lpmatte.data.augment import AugmentConfig
        from lpmatte.data.spec import SampleDraws, build_loader, draw_indices

        augment = AugmentConfig(crop_size=self.config.crop,
                                scale_range=tuple(self.config.scale_range))
        draws = SampleDraws(self.train_spec, self.config.crop, self.config.seed, augment)
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
                                  "regions_per_image":
                                      len(getattr(output, "regions", ())) / len(batch.image)},
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
            self.train_mode()  # validation left the model in plain train mode
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
        from lpmatte.version import __version__

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


def _backbone(config):
    lowres = getattr(config, "lowres", None)
    return getattr(lowres, "backbone", None)
