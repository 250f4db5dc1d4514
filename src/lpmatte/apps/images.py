"""Matting many image files: input expansion, output naming and per-file error handling.

This is the library behind ``lpmatte matte``: one bad file never stops the others, and
every failure is reported with the file it concerns.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lpmatte.errors import LpmatteError
from lpmatte.media.compose import composite, parse_background, rgba
from lpmatte.media.image_io import IMAGE_SUFFIXES, load_rgb, save_png, to_uint8

FORMATS = ("alpha", "rgba", "composite", "trimap")


@dataclass
class BatchResult:
    written: list[Path] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (input, message)


def _images_in(folder: Path) -> list[Path]:
    files = (p for p in folder.rglob("*") if p.is_file())
    return sorted(p for p in files if p.suffix.lower() in IMAGE_SUFFIXES)


def expand_inputs(inputs: list[str]) -> tuple[list[tuple[Path, Path]], list[tuple[str, str]]]:
    """Files, folders (recursive) and globs -> ([(file, relative output stem)], [failures]).

    Files inside a folder keep their sub-folder in the output name, so equal stems in
    different sub-folders do not collide.
    """
    found: list[tuple[Path, Path]] = []
    failures: list[tuple[str, str]] = []
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            found += [(p, p.relative_to(path).with_suffix("")) for p in _images_in(path)]
        elif path.exists():
            found.append((path, Path(path.stem)))
        elif glob.has_magic(spec):
            matches = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
            found += [(p, Path(p.stem)) for p in matches]
            if not matches:
                failures.append((spec, "no file matches this pattern"))
        else:
            failures.append((spec, "no such file or folder"))
    return found, failures


def render(image: np.ndarray, alpha: np.ndarray, trimap: np.ndarray | None, fmt: str,
           background=None) -> np.ndarray:
    """The uint8 array written for ``fmt`` (see :data:`FORMATS`)."""
    if fmt == "alpha":
        return to_uint8(alpha)
    if fmt == "trimap":
        return trimap
    from lpmatte.media.foreground import estimate_foreground

    foreground = estimate_foreground(image, alpha)
    if fmt == "rgba":
        return to_uint8(rgba(foreground, alpha))
    if fmt == "composite":
        return to_uint8(composite(foreground, alpha, background))
    raise LpmatteError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")


def plan_outputs(items: list[tuple[Path, Path]], outdir: Path):
    """Pair inputs with output paths; refuse collisions and never target an input file."""
    inputs = {p.resolve() for p, _ in items}
    planned, failures, taken = [], [], {}
    for path, stem in items:
        target = outdir / stem.with_suffix(".png")
        key = target.resolve()
        if key in inputs:
            failures.append((str(path), f"output {target} would overwrite an input file"))
        elif key in taken:
            failures.append((str(path), f"output {target} already planned for {taken[key]}"))
        else:
            taken[key] = path
            planned.append((path, target))
    return planned, failures


def matte_files(matter, inputs: list[str], outdir: str | Path, fmt: str = "alpha",
                background=None, progress: bool = True) -> BatchResult:
    """Matte every image in ``inputs`` into ``outdir``; failures are collected, not raised.

    ``background`` (composite only): a spec for :func:`~lpmatte.media.compose.parse_background`
    or its result.
    """
    if fmt not in FORMATS:
        raise LpmatteError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
    plate = background
    if fmt == "composite" and (plate is None or isinstance(plate, str)):
        plate = parse_background(plate)
    if Path(outdir).exists() and not Path(outdir).is_dir():
        raise LpmatteError(f"{outdir}: the output must be a folder, not an existing file")
    items, failures = expand_inputs(inputs)
    planned, collisions = plan_outputs(items, Path(outdir))
    result = BatchResult(failures=failures + collisions)
    from tqdm import tqdm

    bar = tqdm(planned, unit="img", disable=not progress or len(planned) < 2)
    for path, target in bar:
        try:
            image = load_rgb(path)
            alpha, trimap = matter.predict(image, return_trimap=True)
            save_png(target, render(image, alpha, trimap, fmt, plate))
            result.written.append(target)
        except LpmatteError as error:
            message = str(error)
            result.failures.append((str(path), message.removeprefix(f"{path}: ")))
    return result
