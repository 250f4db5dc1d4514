"""``lpmatte profile``: per-stage latency, FPS, GFLOPs and peak memory of end-to-end matting."""

from __future__ import annotations

import json

from lpmatte.cli.common import add_command, add_model_arguments, load_matter

EXAMPLES = """\
examples:
  lpmatte profile --model lpm --size hd
  lpmatte profile --model lpm --size 4k --backend eager-fp32 --json
  lpmatte profile --model weights.safetensors --size 1152x1792 --images photos/ --runs 50
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "profile", "measure latency, FPS, GFLOPs and memory", examples=EXAMPLES,
        description="Time end-to-end matting after warm-up, split into stages (pre-processing, "
                    "low-res network, region selection + neighbour search, refinement, paste, "
                    "post-processing). Without --images the input is a synthetic portrait "
                    "whose boundary cells are refined, so untrained models refine a realistic "
                    "number of regions.")
    add_model_arguments(parser)
    parser.add_argument("--size", default="hd", metavar="hd|4k|WxH",
                        help="hd = 1152x1792, 4k = 2304x3456 (W x H), or any WxH")
    parser.add_argument("--images", default=None, metavar="DIR",
                        help="profile on these photos (resized to --size) instead")
    parser.add_argument("--runs", type=int, default=20, help="timed runs (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default: PyTorch's choice, one per core)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args) -> int:
    import torch

    from lpmatte.evaluation.profiler import parse_size, profile

    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    report = profile(load_matter(args), parse_size(args.size), args.images, runs=args.runs,
                     warmup=args.warmup)
    print(json.dumps(report.as_dict()) if args.json else report.table())
    return 0
