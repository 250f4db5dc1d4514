"""``lpmatte train``: train or fine-tune a model (a thin layer over :mod:`lpmatte.trainer`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lpmatte.errors import LpmatteError

EXAMPLES = """\
examples:
  lpmatte train --model-version lpm-s --train-dir runs/s1 --data data/soft-flickr \\
      --backgrounds /data/wallpapers --crop 512 --batch-size 4 --steps 20000
  lpmatte train --train-dir runs/s1 --data data/soft-flickr --steps 40000 --resume
  lpmatte train --model-version lpm --train-dir runs/p3m --data p3m.toml     (paper recipe)
  torchrun --nproc_per_node 4 -m lpmatte train ...                           (4 GPUs, DDP)
  lpmatte train --train-dir runs/s1 --export lpm-s.safetensors               (fp16 weights)
  tensorboard --logdir runs/s1/logger

--data is a folder with images/ + alpha/ (+ fg/, bg/), a soft-alpha folder (source.json),
or a .toml/.json/.yaml file listing sources with weights and background folders
(see lpmatte.train_data). Any checkpoint (runs/s1/last.pt) works as lpmatte matte --model.
A train dir that already holds a run needs --resume; --resume without one is an error.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model on matting data", epilog=EXAMPLES,
        description="Train both stages end to end with the paper's recipe (Adam 1e-4, "
                    "x0.1 at 30% and 60% of the steps); checkpoints, TensorBoard logs and "
                    "exact resume in --train-dir.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run_group = parser.add_argument_group("run")
    run_group.add_argument("--model-version", default=None, metavar="NAME",
                           help="registered model to train (lpm, lpm-s, ...); required for a "
                                "new run, read from the checkpoint on --resume")
    run_group.add_argument("--train-dir", required=True, metavar="DIR",
                           help="checkpoints, logs and the validation split go here")
    run_group.add_argument("--data", metavar="SPEC", help="training data (see below)")
    run_group.add_argument("--steps", type=int, default=400_000, help="total steps (400000)")
    run_group.add_argument("--crop", type=int, default=896, help="training crop side (896)")
    run_group.add_argument("--batch-size", type=int, default=8, help="per process (8)")
    run_group.add_argument("--resume", action="store_true",
                           help="continue DIR/last.pt exactly (model, optimizer, lr schedule "
                                "and data order; --steps may grow)")
    run_group.add_argument("--init", default=None, metavar="WEIGHTS",
                           help="start a new run from these weights (.pt or .safetensors)")
    run_group.add_argument("--seed", type=int, default=0)
    run_group.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    run_group.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                           help="auto: bf16 where the hardware has it, else fp32 on CPU, "
                                "fp16 on older GPUs")
    run_group.add_argument("--workers", type=int, default=None,
                           help="data loader processes (default: cores - 1)")
    run_group.add_argument("--quiet", action="store_true", help="no progress bar")
    add_optimizer_arguments(parser.add_argument_group("optimisation"))
    add_data_arguments(parser.add_argument_group("data and validation"))
    add_output_arguments(parser.add_argument_group("checkpoints and logs"))
    parser.set_defaults(func=run)


def add_optimizer_arguments(group) -> None:
    group.add_argument("--optimizer", default="adam", choices=("adam", "adamw"))
    group.add_argument("--lr", type=float, default=1e-4)
    group.add_argument("--weight-decay", type=float, default=1e-6,
                       help="Adam: L2 on the weights (reference 1e-6); AdamW: decoupled")
    group.add_argument("--lr-milestones", type=parse_milestones, default=(0.3, 0.6),
                       metavar="M1,M2", help="lr x gamma at these steps; values <= 1 are "
                                             "fractions of --steps (0.3,0.6)")
    group.add_argument("--lr-gamma", type=float, default=0.1)
    group.add_argument("--warmup-steps", type=int, default=0)
    group.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm; 0: off")
    group.add_argument("--max-train-regions", type=int, default=None, metavar="N",
                       help="refine at most N random unknown cells per image (faster on CPU; "
                            "default: all, as the paper)")


def add_data_arguments(group) -> None:
    group.add_argument("--backgrounds", action="append", default=[], metavar="DIR",
                       help="background photo folder for a folder --data (repeatable)")
    group.add_argument("--procedural-backgrounds", type=float, default=0.5, metavar="F",
                       help="share of procedural backgrounds next to the folders (0.5)")
    group.add_argument("--val", default=None, metavar="SPEC",
                       help="validation data; default: a held-out part of --data")
    group.add_argument("--val-every", type=int, default=2000, help="steps; 0: no validation")
    group.add_argument("--val-fraction", type=float, default=0.05)
    group.add_argument("--val-max-count", type=int, default=50)
    group.add_argument("--val-max-pixels", type=int, default=1024 * 1024,
                       help="validation images are downscaled to this area")


def add_output_arguments(group) -> None:
    group.add_argument("--checkpoint-every", type=int, default=1000)
    group.add_argument("--keep-last", type=int, default=3, help="periodic checkpoints kept")
    group.add_argument("--log-every", type=int, default=20)
    group.add_argument("--image-every", type=int, default=500, help="image summaries")
    group.add_argument("--export", default=None, metavar="OUT.safetensors",
                       help="do not train: write DIR/best.pt (else last.pt) as fp16 safetensors")


def parse_milestones(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        message = f"expected numbers separated by commas, got '{text}'"
        raise argparse.ArgumentTypeError(message) from None
    if any(value <= 0 for value in values):
        raise argparse.ArgumentTypeError("milestones must be positive")
    return values


def build_config(args):
    from lpmatte.trainer import TrainConfig

    if not args.data:
        raise LpmatteError("--data is required to train (a folder or a data config file)")
    if not args.model_version and not args.resume:
        from lpmatte.registry import list_models

        raise LpmatteError("--model-version is required for a new run "
                           f"(one of {', '.join(list_models())})")
    return TrainConfig(
        train_dir=args.train_dir, data=args.data, model_version=args.model_version,
        steps=args.steps, crop=args.crop, batch_size=args.batch_size, optimizer=args.optimizer,
        lr=args.lr, weight_decay=args.weight_decay, lr_milestones=args.lr_milestones,
        lr_gamma=args.lr_gamma, warmup_steps=args.warmup_steps, grad_clip=args.grad_clip,
        max_train_regions=args.max_train_regions,
        precision=args.precision, device=args.device, seed=args.seed, num_workers=args.workers,
        backgrounds=tuple(args.backgrounds), procedural_backgrounds=args.procedural_backgrounds,
        val=args.val, val_every=args.val_every, val_fraction=args.val_fraction,
        val_max_count=args.val_max_count, val_max_pixels=args.val_max_pixels,
        checkpoint_every=args.checkpoint_every, keep_last=args.keep_last,
        log_every=args.log_every, image_every=args.image_every, init_weights=args.init,
        resume=args.resume, progress=not args.quiet)


def export(args) -> int:
    from lpmatte.trainer import export_weights

    folder = Path(args.train_dir)
    source = folder / "best.pt" if (folder / "best.pt").is_file() else folder / "last.pt"
    if not source.is_file():
        raise LpmatteError(f"{folder}: no checkpoint to export (no best.pt or last.pt)")
    out = export_weights(source, args.export)
    print(f"lpmatte: exported {source} to {out}")
    return 0


def run(args) -> int:
    if args.export:
        return export(args)
    from lpmatte.trainer import Trainer

    trainer = Trainer(build_config(args))
    if trainer.step >= trainer.config.steps:
        print(f"lpmatte: {args.train_dir} is already at step {trainer.step}; "
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
