"""``lpmatte matte``: alpha mattes, cutouts, composites or trimaps for image files."""

from __future__ import annotations

import sys

from lpmatte.apps.images import FORMATS, matte_files
from lpmatte.cli.common import (
    add_command,
    add_model_arguments,
    inference_choices,
    load_matter,
    parse_max_pixels,
)
from lpmatte.errors import LpmatteError
from lpmatte.media.compose import parse_background
from lpmatte.media.image_io import DEFAULT_MAX_PIXELS, PNG_COMPRESSION, check_png_compression

EXAMPLES = """\
examples:
  lpmatte matte photo.jpg -o out/
  lpmatte matte photos/ -o cutouts/ --format rgba
  lpmatte matte "shots/*.jpg" -o out/ --format composite --background beach.jpg
  lpmatte matte photo.jpg -o out/ --format composite --background "#ffffff"
  lpmatte matte archive/ -o mattes/ --manifest mattes.csv     (rerun to resume)
  lpmatte matte archive/ -o mattes/ --ray auto --manifest mattes.jsonl   (Ray cluster)

Outputs already complete are skipped, so a rerun after a crash or kill continues where it
stopped (--overwrite redoes them); an output only appears under its name once fully written.
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "matte", "matte images (files, folders, globs)", examples=EXAMPLES,
        description="Predict the alpha matte of each input image and write OUTDIR/<stem>.png.")
    # "*", not "+": a bare --ray takes the first INPUT as its value and gives it back in run()
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="image files, folders or globs")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    parser.add_argument("--format", choices=FORMATS, default="alpha",
                        help="alpha: 8-bit matte; rgba: cutout with estimated foreground colours; "
                             "composite: over --background; trimap: coarse trimap 0/128/255")
    parser.add_argument("--background", default=None, metavar="COLOR|IMAGE",
                        help="composite background: a colour (name, #rrggbb, r,g,b) or an image "
                             "(scaled to cover); default green")
    add_model_arguments(parser)
    parser.add_argument("--overwrite", action="store_true",
                        help="redo inputs whose output exists (default: skip them)")
    parser.add_argument("--manifest", metavar="FILE",
                        help="record one row per input (status, output, bytes, ms, error) in "
                             "a .csv or .jsonl file; rows of earlier runs are merged")
    parser.add_argument("--max-pixels", type=parse_max_pixels, default=DEFAULT_MAX_PIXELS,
                        metavar="N", help=f"refuse images above N pixels before decoding "
                                          f"(default {DEFAULT_MAX_PIXELS}; 0: no limit)")
    parser.add_argument("--png-compression", type=parse_png_compression,
                        default=PNG_COMPRESSION, metavar="0-9",
                        help=f"zlib level of the PNG outputs (default {PNG_COMPRESSION}; "
                             f"1-3 use zlib's fast run-length strategy, 4-9 its default one: "
                             f"at 6 HD cutouts were 5 %% smaller and took 4x as long to write)")
    parser.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                        help="run on a Ray cluster (address, or 'auto' for the one started "
                             "with 'ray start'; alone: auto; needs lpmatte[distributed])")
    parser.add_argument("--ray-actors", type=int, default=None, metavar="N",
                        help="with --ray: model replicas (default: one per CPU, or per GPU "
                             "with --ray-gpus)")
    parser.add_argument("--ray-batch-size", type=int, default=8, metavar="N",
                        help="with --ray: images per batch handed to an actor (default 8)")
    parser.add_argument("--ray-gpus", type=float, default=0, metavar="G",
                        help="with --ray: GPUs per actor (default 0: CPU actors)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def parse_png_compression(text: str) -> int:
    """A zlib level 0-9, for argparse."""
    import argparse

    try:
        return check_png_compression(int(text))
    except (ValueError, LpmatteError):
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 9, got "
                                         f"'{text}'") from None


def ray_address(args) -> str | None:
    """The --ray address; a bare ``--ray`` before INPUT took the first input as its value
    (argparse cannot tell), so anything that is no address goes back to the inputs."""
    value = args.ray
    if value is None or value in ("auto", "local") or "://" in value or (
            ":" in value and value.rsplit(":", 1)[1].isdigit()):
        return value
    args.inputs.insert(0, value)
    return "auto"


def run(args) -> int:
    background = parse_background(args.background) if args.format == "composite" else None
    args.ray = ray_address(args)
    if not args.inputs:
        raise LpmatteError("matte: give at least one INPUT (image file, folder or glob)")
    if args.ray is not None:
        from lpmatte.apps.distributed import RayOptions, matte_files_ray

        ray = RayOptions(args.ray, args.ray_actors, args.ray_batch_size, args.ray_gpus,
                         args.device)
        result = matte_files_ray(
            args.inputs, args.output, args.format, background, ray, model=args.model,
            backend=args.backend, overwrite=args.overwrite, manifest=args.manifest,
            max_pixels=args.max_pixels, png_compression=args.png_compression,
            **inference_choices(args))
    else:
        result = matte_files(load_matter(args), args.inputs, args.output, args.format,
                             background, progress=not args.quiet, overwrite=args.overwrite,
                             manifest=args.manifest, max_pixels=args.max_pixels,
                             png_compression=args.png_compression)
    return report(result, quiet=args.quiet)


def report(result, quiet: bool = False) -> int:
    """Errors one per line, then a summary when anything was skipped or failed, and the
    throughput of a run of several images unless ``quiet``; exit 1 if any input failed."""
    for source, message in result.failures:
        print(f"lpmatte: error: {source}: {message}", file=sys.stderr)
    rate = result.images_per_second  # local and Ray runs both return a BatchResult
    if rate and len(result.written) > 1 and not quiet:
        print(f"lpmatte: {len(result.written)} images in {result.seconds:.1f} s, "
              f"{rate:.2f} images/s", file=sys.stderr)
    if result.failures or result.skipped:
        print(f"lpmatte: {len(result.written)} written, {len(result.skipped)} already done "
              f"(skipped), {len(result.failures)} failed", file=sys.stderr)
    if result.failures:
        return 1
    if not result.written and not result.skipped:
        print("lpmatte: error: no input images found", file=sys.stderr)
        return 1
    return 0
