"""``lpmatte matte``: alpha mattes, cutouts, composites or trimaps for image files."""

from __future__ import annotations

import sys

from lpmatte.apps.images import FORMATS, matte_files
from lpmatte.cli.common import add_command, add_model_arguments, load_matter
from lpmatte.media.compose import parse_background

EXAMPLES = """\
examples:
  lpmatte matte photo.jpg -o out/
  lpmatte matte photos/ -o cutouts/ --format rgba
  lpmatte matte "shots/*.jpg" -o out/ --format composite --background beach.jpg
  lpmatte matte photo.jpg -o out/ --format composite --background "#ffffff"
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "matte", "matte images (files, folders, globs)", examples=EXAMPLES,
        description="Predict the alpha matte of each input image and write OUTDIR/<stem>.png.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    parser.add_argument("--format", choices=FORMATS, default="alpha",
                        help="alpha: 8-bit matte; rgba: cutout with estimated foreground colours; "
                             "composite: over --background; trimap: coarse trimap 0/128/255")
    parser.add_argument("--background", default=None, metavar="COLOR|IMAGE",
                        help="composite background: a colour (name, #rrggbb, r,g,b) or an image "
                             "(scaled to cover); default green")
    add_model_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    background = parse_background(args.background) if args.format == "composite" else None
    matter = load_matter(args)
    result = matte_files(matter, args.inputs, args.output, args.format, background,
                         progress=not args.quiet)
    for source, message in result.failures:
        print(f"lpmatte: error: {source}: {message}", file=sys.stderr)
    if result.failures:
        print(f"lpmatte: {len(result.written)} written, {len(result.failures)} failed",
              file=sys.stderr)
        return 1
    if not result.written:
        print("lpmatte: error: no input images found", file=sys.stderr)
        return 1
    return 0
