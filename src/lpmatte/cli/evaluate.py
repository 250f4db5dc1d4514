"""`lpmatte evaluate`: score a folder of predicted alpha mattes against ground truth."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

from lpmatte.cli.common import add_command, add_quiet_argument
from lpmatte.data.datasets.files import describe_missing
from lpmatte.evaluation.folders import evaluate_folders, format_table, write_csv
from lpmatte.metrics import PROTOCOLS
from lpmatte.version import __version__

DESCRIPTION = """\
Pairs files by stem (png or jpg, 8 or 16 bit; RGBA -> alpha channel) and prints per-image
metrics and their mean. Metrics: SAD, MSE, MAD, Grad, Conn and, with --trimap, the -T
variants. --protocol dim: Deep Image Matting's MATLAB code (8-bit, -T over trimap == 128);
--protocol p3m: P3M-Net's Python code (float; Grad and Conn whole-image only). SAD, Grad,
Conn are in thousands; MSE and MAD are plain means over alphas in [0, 1]."""


def register(subparsers) -> None:
    parser = add_command(subparsers, "evaluate",
                         "score predicted alpha mattes against ground truth", DESCRIPTION)
    parser.add_argument("--pred", required=True, metavar="DIR", help="predicted alpha mattes")
    parser.add_argument("--gt", required=True, metavar="DIR", help="ground-truth alpha mattes")
    parser.add_argument("--trimap", metavar="DIR", help="trimaps 0/128/255 (for the -T metrics)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="dim",
                        help="metric definitions (default: dim)")
    parser.add_argument("--csv", metavar="FILE", help="write per-image rows and the mean here")
    parser.add_argument("--json", action="store_true",
                        help='print one JSON object {"protocol", "mean", "per_image"} instead')
    parser.add_argument("--allow-missing", action="store_true",
                        help="evaluate the available predictions when some are missing "
                             "(they are still listed and counted)")
    add_quiet_argument(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    result = evaluate_folders(args.pred, args.gt, args.trimap, args.protocol,
                              allow_missing=args.allow_missing,
                              progress=not (args.json or args.quiet) and sys.stderr.isatty())
    if result.missing:
        print(f"lpmatte: warning: {args.pred}: no prediction for "
              f"{describe_missing(result.missing)} of "
              f"{len(result.missing) + len(result.per_image)} mattes; "
              f"means are over {len(result.per_image)} images", file=sys.stderr)
    if result.unmatched:
        print(f"lpmatte: note: ignored {describe_missing(result.unmatched)} predictions "
              f"without ground truth", file=sys.stderr)
    if args.csv:
        header = {"lpmatte evaluate": __version__, "protocol": result.protocol,
                  "pred": args.pred, "gt": args.gt, "trimap": args.trimap or "none",
                  "images": len(result.per_image), "missing": len(result.missing),
                  "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        write_csv(args.csv, result.metrics, result.per_image, result.mean, header)
    if args.json:
        print(json.dumps(result.as_json(), indent=1))
    else:
        print(f"protocol: {result.protocol}, {len(result.per_image)} images")
        print(format_table(result.metrics, result.per_image, result.mean))
        if args.csv:
            print(f"wrote {args.csv}")
    return 0
