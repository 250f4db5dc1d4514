"""Distil the shipped default's refiner into a smaller one (issue 16; lpmatte.training.distill).

    python training/distill_refiner.py record --out /work/runs/distill/calls.pt   # ~10 min
    python training/distill_refiner.py train --calls /work/runs/distill/calls.pt \
        --run /work/runs/distill/lite --steps 12000                      # run again to resume
    python training/distill_refiner.py export --run /work/runs/distill/lite \
        --out /work/runs/lite.safetensors

Session 19's second run added group composites of training people (never held-out ones;
TRAINING_IDS lists the prepared ids of /work/data/soft that training/val_ids.txt does not):

    python benchmarks/make_group_set.py --val-ids TRAINING_IDS --seed 19 \
        --out /work/data/train-groups --count 400 --size 640
    python training/distill_refiner.py record --images /work/data/train-groups/images \
        --max-images 300 --long-sides 640,1280 --out /work/runs/distill/calls-groups.pt
    python training/distill_refiner.py train --calls /work/runs/distill/calls.pt \
        /work/runs/distill/calls-groups.pt --init /work/runs/distill/lite/last.pt \
        --run /work/runs/distill/lite-groups --steps 2500 --lr 1e-3

Session 21 started the student from the teacher's refiner pruned to its widths
(``lpmatte.training.refiner_pruning``) instead of from random weights:

    python training/distill_refiner.py train --calls /work/runs/distill/calls.pt \
        /work/runs/distill/calls-groups.pt --prune-from src/lpmatte/weights/default.safetensors \
        --run /work/runs/distill/lite-pruned --steps 6000 --lr 1e-3

and the three-quarter width with ``--student lpm-e0-mid --run /work/runs/distill/mid-pruned
--steps 2500``. Session 22 continued that run for 5000 more steps at half the rate:

    python training/distill_refiner.py train --calls /work/runs/distill/calls.pt \
        /work/runs/distill/calls-groups.pt --init /work/runs/distill/mid-pruned/last.pt \
        --student lpm-e0-mid --run /work/runs/distill/mid-pruned-long --steps 5000 --lr 5e-4

``record`` mattes the training photos of ../shared/data (never an id of
training/val_ids.txt) with the teacher at long sides 480 (one pass), 800 and 1792 (two
passes), each also mirrored, and keeps every refiner call with the teacher's patches.
``train`` fits the student refiner (``--student``, a registered name: its refiner config)
to them. ``export`` writes the teacher's weights with the student's refiner in place of its
own, and the teacher's inference options, as a weights file for ``lpmatte.load``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import lpmatte
from lpmatte.data.spec import read_ids
from lpmatte.errors import LpmatteError
from lpmatte.media.image_io import IMAGE_SUFFIXES, load_rgb
from lpmatte.model.factory import build_model
from lpmatte.model.refiner import Refiner
from lpmatte.model.registry import create_config
from lpmatte.model.weights import load_checkpoint, save_safetensors
from lpmatte.training.distill import (
    DistillConfig,
    RefinerCalls,
    distill,
    join_calls,
    read_student_state,
    record_calls,
)
from lpmatte.training.refiner_pruning import pruned_refiner_state

ROOT = Path(__file__).resolve().parents[1]
SETS = ("flickr-portraits", "ccp-people")


def training_photos(shared: Path, val_ids: Path, limit: int | None):
    """Paths of the photos whose ``set/stem`` id is not held out, sets interleaved."""
    held = set(read_ids(val_ids))
    per_set = [[p for p in sorted((shared / name / "images").iterdir())
                if f"{name}/{p.stem}" not in held] for name in SETS]
    mixed = [p for group in zip(*per_set) for p in group]
    return mixed[:limit] if limit else mixed


def record(args) -> None:
    teacher = lpmatte.load(args.teacher, backend="eager-fp32")
    if args.images:  # e.g. composites of training people (never of held-out ones)
        paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        paths = paths[:args.max_images] if args.max_images else paths
    else:
        paths = training_photos(args.shared, args.val_ids, args.max_images)
    images = (torch.from_numpy(load_rgb(p)).permute(2, 0, 1) for p in paths)
    sides = tuple(int(s) for s in args.long_sides.split(","))
    calls = record_calls(teacher, images, sides)
    calls.save(args.out)
    print(f"{args.out}: {len(calls)} calls, {calls.num_regions} regions from {len(paths)} photos")


def student_refiner(name: str) -> Refiner:
    return Refiner(create_config(name).refiner)


def teacher_refiner(path: Path) -> Refiner:
    """The refiner of a weights file, with its trained weights."""
    checkpoint = load_checkpoint(path)
    return build_model(checkpoint.config, checkpoint.state_dict).refiner


def train(args) -> None:
    calls = join_calls([RefinerCalls.load(path) for path in args.calls])
    config = DistillConfig(steps=args.steps, lr=args.lr, regions_per_step=args.regions)
    torch.manual_seed(config.seed)
    student = student_refiner(args.student)
    if args.init:  # go on from an earlier run's student (a new schedule in a new folder)
        student.load_state_dict(read_student_state(args.init)["refiner"])
    elif args.prune_from:  # the teacher's refiner narrowed to the student's widths
        student.load_state_dict(pruned_refiner_state(teacher_refiner(args.prune_from),
                                                     student.config))
    distill(student, calls, args.run, config)


def export(args) -> None:
    teacher = load_checkpoint(args.teacher)
    state = read_student_state(Path(args.run) / "last.pt")
    config = create_config(args.student)
    merged = {k: v for k, v in teacher.state_dict.items() if not k.startswith("refiner.")}
    merged.update({f"refiner.{k}": v for k, v in state["refiner"].items()})
    model = build_model(config, merged)
    header = {k: v for k, v in teacher.metadata.items() if k != "config"}
    header.update(distilled_from=str(args.teacher), distill_step=str(state["step"]))
    save_safetensors(args.out, model, config, half=True, **header)
    print(f"{args.out}: {config.name}, refiner distilled for {state['step']} steps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record", help="the teacher's refiner calls on training photos")
    rec.add_argument("--teacher", default="default")
    rec.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    rec.add_argument("--val-ids", type=Path, default=ROOT / "training" / "val_ids.txt")
    rec.add_argument("--long-sides", default="480,800,1792")
    rec.add_argument("--max-images", type=int, default=None)
    rec.add_argument("--images", type=Path, default=None,
                     help="a folder of images to record instead of the shared photos")
    rec.add_argument("--out", type=Path, required=True)
    fit = commands.add_parser("train", help="fit the student refiner to recorded calls")
    fit.add_argument("--calls", type=Path, nargs="+", required=True)
    start = fit.add_mutually_exclusive_group()
    start.add_argument("--init", type=Path, default=None, help="an earlier run's last.pt")
    start.add_argument("--prune-from", type=Path, default=None,
                       help="start from this weights file's refiner, pruned to the student")
    fit.add_argument("--run", type=Path, required=True)
    fit.add_argument("--student", default="lpm-e0-lite")
    fit.add_argument("--steps", type=int, default=DistillConfig.steps)
    fit.add_argument("--lr", type=float, default=DistillConfig.lr)
    fit.add_argument("--regions", type=int, default=DistillConfig.regions_per_step)
    out = commands.add_parser("export", help="teacher + distilled refiner as a weights file")
    out.add_argument("--run", type=Path, required=True)
    out.add_argument("--teacher", default="src/lpmatte/weights/default.safetensors")
    out.add_argument("--student", default="lpm-e0-lite")
    out.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    try:
        {"record": record, "train": train, "export": export}[args.command](args)
    except LpmatteError as error:
        raise SystemExit(f"distill_refiner: {error}") from None


if __name__ == "__main__":
    main()
