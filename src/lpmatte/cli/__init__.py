"""The ``lpmatte`` command: one thin subcommand module per task over the Python API.

Each module in :data:`SUBCOMMANDS` exposes ``register(subparsers)``, which adds its
parser and sets ``func`` to a callable ``(args) -> int`` (the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from lpmatte.errors import LpmatteError
from lpmatte.version import __version__

SUBCOMMANDS = ("matte", "video", "evaluate", "benchmark", "train", "data", "profile", "export",
               "serve")
# the commands that run a model over many images or frames and then exit: they keep freed
# memory for reuse (lpmatte.devices.keep_freed_memory). Not the long-lived server, whose
# resident size should fall back after a large request.
INFERENCE_COMMANDS = ("matte", "video", "benchmark", "profile")

EXAMPLES = """\
examples:
  lpmatte matte photo.jpg -o out/                      alpha mattes (8-bit PNG)
  lpmatte matte photos/ -o out/ --format rgba          cutouts with clean foreground colours
  lpmatte matte "shots/*.jpg" -o out/ --format composite --background "#00ff00"
  lpmatte video clip.mp4 -o clip.mov --format prores   transparent ProRes 4444
  lpmatte evaluate --pred out/ --gt gt/ --trimap trimaps/ --protocol dim
  lpmatte profile --model lpm --size hd
  lpmatte serve                                        HTTP API and web page on 127.0.0.1:7860
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lpmatte",
        description="Automatic high-resolution portrait matting (Zhong & Zharkov, WACV 2024).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"lpmatte {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"lpmatte.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.command in INFERENCE_COMMANDS:
        from lpmatte.devices import keep_freed_memory

        keep_freed_memory()
    try:
        return int(args.func(args) or 0)
    except LpmatteError as error:
        print(f"lpmatte: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lpmatte: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
