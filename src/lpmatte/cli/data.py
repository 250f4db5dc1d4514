"""`lpmatte data`: prepare training data (foreground/background colours, soft alpha)."""

from __future__ import annotations

import sys

from lpmatte.cli.common import add_command, add_quiet_argument
from lpmatte.errors import LpmatteError

EXAMPLES = """\
examples:
  lpmatte data solve-fg-bg --root Datasets/P3M-10K --workers 2
  lpmatte data soft-alpha --images portraits/images --masks portraits/masks \\
      --out soft/portraits --workers 2 --contact-sheet sheet.png
"""


def register(subparsers) -> None:

    parser = add_command(subparsers, "data", "prepare training data", examples=EXAMPLES)
    commands = parser.add_subparsers(dest="data_command", metavar="STEP")
    parser.set_defaults(func=lambda args: _missing_step(parser))

    solve = commands.add_parser(
        "solve-fg-bg", help="foreground and background colours of P3M-10K training images "
        "(saved to train/fg/ and train/bg/; resumable)")
    solve.add_argument("--root", required=True, help="the P3M-10K folder")
    _add_common(solve, default_format="jpg")
    solve.set_defaults(func=run_solve_fg_bg)

    soft = commands.add_parser(
        "soft-alpha", help="soft alpha mattes from binary person masks "
        "(OUT/alpha/, OUT/fg/, OUT/bg/, OUT/source.json; resumable)")
    soft.add_argument("--images", required=True, help="folder of images")
    soft.add_argument("--masks", required=True, help="folder of binary masks, same file stems")
    soft.add_argument("--out", required=True, help="output folder")
    soft.add_argument("--band", type=float, default=0.01,
                      help="unknown band radius / image diagonal (default 0.01)")
    soft.add_argument("--hair-band", type=float, default=None,
                      help="band radius at the top of the person, where hair is / image "
                      "diagonal (default: twice --band)")
    soft.add_argument("--max-side", type=int, default=None,
                      help="solve alpha on a copy downscaled to this longest side")
    soft.add_argument("--limit", type=int, default=None, help="only the first N images")
    soft.add_argument("--contact-sheet", metavar="FILE", default=None,
                      help="also write a PNG grid: image | mask | soft alpha | on green")
    soft.add_argument("--sheet-count", type=int, default=12,
                      help="images in the contact sheet (default 12)")
    _add_common(soft, default_format="png")
    soft.set_defaults(func=run_soft_alpha)


def _add_common(parser, default_format: str) -> None:
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    add_quiet_argument(parser)
    parser.add_argument("--format", choices=("png", "jpg"), default=default_format,
                        help=f"file format of fg/ and bg/ (default {default_format})")


def _missing_step(parser) -> int:
    parser.print_help()
    return 2


def _report(done: int, errors: list[str]) -> int:
    for message in errors:
        print(f"lpmatte: warning: {message}", file=sys.stderr)
    print(f"{done - len(errors)} done, {len(errors)} failed")
    return 1 if errors else 0


def run_solve_fg_bg(args) -> int:
    from lpmatte.data.fg_bg import solve_fg_bg_folder

    return _report(*solve_fg_bg_folder(args.root, args.workers, args.format,
                                       progress=not args.quiet))


def run_soft_alpha(args) -> int:
    from lpmatte.data.soft_alpha import BandConfig, convert_folder, write_contact_sheet

    hair_band = 2 * args.band if args.hair_band is None else args.hair_band
    if not 0 < args.band <= hair_band:
        raise LpmatteError("--band must be > 0 and at most --hair-band")
    config = BandConfig(band_fraction=args.band, hair_fraction=hair_band)
    status = _report(*convert_folder(args.images, args.masks, args.out, args.workers, config,
                                     args.max_side, args.limit, args.format,
                                     progress=not args.quiet))
    if args.contact_sheet:
        shown = write_contact_sheet(args.out, args.contact_sheet, args.sheet_count)
        print(f"contact sheet of {shown} images: {args.contact_sheet}")
    return status
