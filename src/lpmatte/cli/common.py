"""Options shared by the subcommands that run a model."""

from __future__ import annotations

import sys

DEVICE_HELP = "auto (default: CUDA when available), cpu, cuda, cuda:1, ..."


def add_command(subparsers, name: str, help: str, description: str | None = None,
                examples: str | None = None):
    """A subcommand whose ``examples`` epilog keeps its line breaks."""
    import argparse

    return subparsers.add_parser(name, help=help, description=description, epilog=examples,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


def add_model_arguments(parser, backend: str = "auto") -> None:
    """--model, --device and --backend (default ``backend``)."""
    from lpmatte.inference.backends import BACKENDS

    parser.add_argument("--model", default="default", metavar="NAME|PATH",
                        help="registered model name, weights file or .onnx export "
                             "(default: the shipped model)")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    explain = ("auto: the fastest that agrees with eager-fp32" if backend == "auto"
               else f"{backend}: the model's own scores; 'auto' for the fast path")
    parser.add_argument("--backend", default=backend, choices=BACKENDS,
                        help=f"what runs the networks (default {explain})")
    add_inference_arguments(parser)


def add_inference_arguments(parser) -> None:
    """One option per InferenceOptions field (``auto``: what the weights ask for); read
    them back with :func:`inference_choices`."""
    parser.add_argument("--lowres-side", default="auto", type=parse_lowres_side, metavar="N",
                        help="images with a longer side run in two passes: the whole model "
                             "at long side N, then the refiner at full resolution around the "
                             "outline; 0: one full-resolution pass as the paper (default "
                             "auto: what the weights ask for)")
    parser.add_argument("--flip-tta", default="auto", type=parse_switch, metavar="on|off",
                        help="also run the low-res network on the mirrored image and average "
                             "(fewer semantic mistakes, about twice the low-res cost; default "
                             "auto: what the weights ask for)")
    parser.add_argument("--max-regions", default="auto", type=parse_max_regions, metavar="N",
                        help="refine at most N regions per image, the most uncertain first "
                             "(a latency bound; default auto: what the weights ask for, "
                             "else all)")
    parser.add_argument("--settle", default="auto", type=parse_switch, metavar="on|off",
                        help="cells the refiner left alone become exactly 0 or 1 where their "
                             "coarse alpha is within the transition margin of it (no grey "
                             "haze, no 8x8 steps next to refined cells; default auto: what "
                             "the weights ask for, else on)")
    parser.add_argument("--deblock", default="auto", type=parse_switch, metavar="on|off",
                        help="smooth out the steps where neighbouring refined cells end at "
                             "different levels (8x8 blocks), except where the image has an "
                             "edge (default auto: what the weights ask for, else on)")
    parser.add_argument("--person-height", default="auto", type=parse_person_height,
                        metavar="N",
                        help="when the tallest person found is shorter than N px in the first "
                             "pass, matte again with the first pass enlarged to make them N px "
                             "tall (small, full-body people; a video fixes the zoom on its "
                             "first frame); 0: never (default auto: what the weights ask for)")
    parser.add_argument("--first-pass-scale", default="auto", type=parse_first_pass_scale,
                        metavar="S",
                        help="run the first pass at S times the image instead of by "
                             "--lowres-side (above 1: enlarged; default auto: by --lowres-side)")
    parser.add_argument("--transition-margin", default="auto", type=parse_transition_margin,
                        metavar="M",
                        help="the two-pass mode refines the cells of the full-resolution "
                             "matte with a value in (M, 1 - M); larger: fewer cells, faster "
                             "(default auto: what the weights ask for, else 0.1)")


def inference_choices(args) -> dict:
    """The InferenceOptions fields given by add_model_arguments' options, as lpmatte.load
    takes them ("auto": what the weights ask for)."""
    from dataclasses import fields

    from lpmatte.inference.options import InferenceOptions

    return {field.name: getattr(args, field.name) for field in fields(InferenceOptions)}


def parse_lowres_side(text: str):
    """``auto``, 0 (one full-resolution pass) or a long side in pixels that
    :class:`~lpmatte.inference.options.InferenceOptions` accepts."""
    return _parse_option(text, "lowres_side", "auto, 0 or a number of pixels >= 16")


def parse_person_height(text: str):
    """``auto``, 0 (no zoom for people) or a person height in pixels >= 16."""
    return _parse_option(text, "person_height", "auto, 0 or a number of pixels >= 16")


def parse_transition_margin(text: str):
    """``auto`` or a margin in (0, 0.5)."""
    return _parse_option(text, "transition_margin", "auto or a number in (0, 0.5)", float)


def parse_first_pass_scale(text: str):
    """``auto`` or a scale of the image for the first pass."""
    return _parse_option(text, "first_pass_scale", "auto or a scale such as 0.5 or 1.5", float)


def parse_max_regions(text: str):
    """``auto`` or a whole number of regions >= 1."""
    return _parse_option(text, "max_regions", "auto or a whole number >= 1")


def _parse_option(text: str, name: str, expected: str, kind=int):
    import argparse

    from lpmatte.errors import LpmatteError
    from lpmatte.inference.options import InferenceOptions

    if text == "auto":
        return text
    try:
        value = kind(text)
        InferenceOptions().updated(**{name: value})
    except (ValueError, LpmatteError):
        raise argparse.ArgumentTypeError(f"expected {expected}, got '{text}'") from None
    return value


def add_quiet_argument(parser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_max_pixels(text: str) -> int | None:
    """A pixel count (``100000000``, ``100M``); 0 means no limit (None)."""
    import argparse

    scale = {"k": 10**3, "m": 10**6, "g": 10**9}.get(text[-1:].lower(), 1)
    digits = text[:-1] if scale > 1 else text
    if not digits.isdigit():
        raise argparse.ArgumentTypeError(f"expected a pixel count such as 100000000 or 100M, "
                                         f"got '{text}'")
    return int(digits) * scale or None


def parse_switch(text: str):
    """``auto``, ``on`` (True) or ``off`` (False)."""
    import argparse

    choices = {"auto": "auto", "on": True, "off": False}
    if text not in choices:
        raise argparse.ArgumentTypeError(f"expected auto, on or off, got '{text}'")
    return choices[text]


def load_matter(args):
    """Load the model named by --model/--device/--backend; its warning (untrained, early
    checkpoint) goes to stderr."""
    from lpmatte.api import load

    matter = load(args.model, device=args.device, backend=args.backend, **inference_choices(args))
    if matter.warning:
        print(f"lpmatte: warning: {matter.warning}", file=sys.stderr)
    return matter
