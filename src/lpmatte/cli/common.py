"""Options shared by the subcommands that run a model."""

from __future__ import annotations

import sys

DEVICE_HELP = "auto (default: CUDA when available), cpu, cuda, cuda:1, ..."


def add_model_arguments(parser, backend: str = "auto") -> None:
    """--model, --device and --backend (default ``backend``)."""
    from lpmatte.backends import BACKENDS

    parser.add_argument("--model", default="default", metavar="NAME|PATH",
                        help="registered model name, weights file or .onnx export "
                             "(default: the shipped model)")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    explain = ("auto: the fastest that agrees with eager-fp32" if backend == "auto"
               else f"{backend}: the model's own scores; 'auto' for the fast path")
    parser.add_argument("--backend", default=backend, choices=BACKENDS,
                        help=f"what runs the networks (default {explain})")


def load_matter(args):
    """Load the model named by --model/--device/--backend; its warning (untrained, early
    checkpoint) goes to stderr."""
    import lpmatte

    matter = lpmatte.load(args.model, device=args.device, backend=args.backend)
    if matter.warning:
        print(f"lpmatte: warning: {matter.warning}", file=sys.stderr)
    return matter
