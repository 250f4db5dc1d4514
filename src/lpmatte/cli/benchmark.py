"""`lpmatte benchmark`: matte a benchmark dataset, score it, write a CSV."""

from __future__ import annotations

from lpmatte.cli.common import add_command, add_model_arguments, add_quiet_argument, load_matter
from lpmatte.evaluation.benchmark import (
    COST_COLUMNS,
    DEFAULT_MAX_AREA,
    HD_AREA,
    benchmark,
    default_out_dir,
)
from lpmatte.evaluation.folders import format_table
from lpmatte.metrics import PROTOCOLS

DESCRIPTION = f"""\
Runs the model on every image (progress bar on stderr), saves the alphas as 8-bit PNGs,
scores them and writes a CSV (per image + mean; protocol, resize policy, model, commit and
date in its '#' header) into --out (default: the checkpoint's folder/benchmark, or
./benchmark/NAME). Resize policy: p3m and folder at full resolution; ppm100 and
photomatte85 capped at the HD area ({HD_AREA} px), alpha upscaled back for scoring."""


def register(subparsers) -> None:
    parser = add_command(subparsers, "benchmark", "score a model on a benchmark dataset",
                         DESCRIPTION)
    parser.add_argument("--dataset", required=True, choices=tuple(DEFAULT_MAX_AREA))
    parser.add_argument("--root", required=True, metavar="DIR", help="the dataset's folder")
    parser.add_argument("--split", help="P3M-500-P (default for p3m) or P3M-500-NP; "
                                        "a sub-folder for folder datasets")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="p3m",
                        help="metric definitions (default: p3m, as in the paper's tables)")
    parser.add_argument("--out", metavar="DIR", help="output folder")
    add_model_arguments(parser, backend="eager-fp32")
    parser.add_argument("--max-area", type=int, default=-1, metavar="PIXELS",
                        help="cap the model input area (0: full resolution; "
                             "default: the dataset's policy)")
    parser.add_argument("--background-dir", metavar="DIR",
                        help="photomatte85 backgrounds (default: ROOT/background)")
    parser.add_argument("--no-flops", action="store_true",
                        help="skip FLOP counting (a second forward pass per image)")
    add_quiet_argument(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    options = {"background_dir": args.background_dir} if args.background_dir else {}
    result = benchmark(load_matter(args), args.dataset, args.root, args.split, args.protocol,
                       args.out or default_out_dir(args.model), max_area=args.max_area,
                       flops=not args.no_flops, dataset_options=options,
                       progress=not args.quiet)
    mean = result.mean
    print(f"{result.model} on {result.header['dataset']} ({result.protocol} protocol, "
          f"{result.header['images']} images)")
    print(format_table(result.metrics, {}, mean))
    counted = not args.no_flops and result.params is not None
    flops = f"{mean['GFLOPs']:.3f}" if counted else "not counted"
    params = "n/a" if result.params is None else f"{result.params / 1e6:.2f} M"
    print(f"mean GFLOPs/image: {flops} (mean refined regions: {mean['regions']:.1f}); "
          f"params: {params}; mean latency: {mean['latency_ms']:.1f} ms "
          f"on {result.header['device']}; mean input {mean['pixels'] / 1e6:.2f} MP")
    print(f"wrote {result.csv_path} and {len(result.rows)} mattes in {result.pred_dir}")
    return 0


__all__ = ["register", "run", "COST_COLUMNS"]
