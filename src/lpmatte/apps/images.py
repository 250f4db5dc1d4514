"""Matting many image files: input expansion, output naming, resumable runs, per-file errors.

This is the library behind ``lpmatte matte``: one bad file never stops the others, and
every failure is reported with the file it concerns. Outputs are written under a temporary
name and renamed (:class:`~lpmatte.files.AtomicOutput`), so an output under its
final name is always complete: a rerun after a crash or ``kill -9`` skips those and does the
rest. Decoding, inference and encoding overlap in three threads with small bounded queues.
"""

from __future__ import annotations

import glob
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lpmatte.apps.manifest import Manifest, Row
from lpmatte.errors import LpmatteError
from lpmatte.files import is_temporary, remove
from lpmatte.media.compose import composite_image, cutout_image, parse_background
from lpmatte.media.image_io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    PNG_COMPRESSION,
    check_png_compression,
    read_rgb,
    save_png,
    to_uint8,
)
from lpmatte.media.threads import BackgroundWorker, prefetch

FORMATS = ("alpha", "rgba", "composite", "trimap")
QUEUE_SIZE = 4  # decoded images waiting for the model, and results waiting for encoding


@dataclass(frozen=True)
class Job:
    """One input image and the output file it becomes."""

    source: Path
    target: Path


@dataclass(frozen=True)
class RenderOptions:
    """What is written for each image: ``fmt`` (see :data:`FORMATS`), for composites the
    background (an RGB array or colour from :func:`parse_background`), and the PNG files'
    zlib level."""

    fmt: str = "alpha"
    background: object = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    png_compression: int = PNG_COMPRESSION


@dataclass
class BatchResult:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # outputs already complete
    failures: list[tuple[str, str]] = field(default_factory=list)  # (input, message)
    seconds: float = 0.0  # wall time of the images matted in this run (0: not measured)

    @property
    def images_per_second(self) -> float | None:
        """Throughput of this run: written images per second of wall time, decoding and
        encoding included (None when nothing was matted or the time was not measured)."""
        return len(self.written) / self.seconds if self.written and self.seconds else None

    def add(self, row: Row) -> None:
        if row.status == "written":
            self.written.append(Path(row.output))
        elif row.status == "skipped":
            self.skipped.append(Path(row.output))
        else:
            self.failures.append((row.input, row.error))


def _images_in(folder: Path) -> list[Path]:
    files = (p for p in folder.rglob("*") if p.is_file() and not is_temporary(p))
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
    if fmt == "rgba":
        return cutout_image(image, alpha)
    if fmt == "composite":
        return composite_image(image, alpha, background)
    raise LpmatteError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")


def check_outdir(outdir: Path) -> None:
    """The output must be a folder (or not exist yet), never an existing file."""
    if outdir.exists() and not outdir.is_dir():
        raise LpmatteError(f"{outdir}: the output must be a folder, not an existing file")


def _unsafe_target(target: Path, root: Path, inputs: set[Path]) -> str | None:
    """Why ``target`` may not be written, or None: it must stay inside ``root`` once symlinks
    are resolved, must not be a symlink itself and must not be an input file."""
    if target.is_symlink():
        return f"output {target} is a symbolic link; refusing to replace it"
    resolved = target.resolve()
    if not resolved.is_relative_to(root):
        return f"output {target} would be written outside {root} (through a symbolic link)"
    if resolved in inputs:
        return f"output {target} would overwrite an input file"
    return None


def plan_outputs(items: list[tuple[Path, Path]], outdir: Path):
    """Pair inputs with output paths -> ([Job], [failures]).

    Refuses collisions, targets that are inputs, and targets that a symbolic link inside
    ``outdir`` would send elsewhere.
    """
    root = Path(outdir).resolve()
    inputs = {p.resolve() for p, _ in items}
    planned, failures, taken = [], [], {}
    for path, stem in items:
        target = Path(outdir) / stem.with_suffix(".png")
        key = target.resolve()
        problem = _unsafe_target(target, root, inputs)
        if problem is None and key in taken:
            problem = f"output {target} already planned for {taken[key]}"
        if problem is not None:
            failures.append((str(path), problem))
            continue
        taken[key] = path
        planned.append(Job(path, target))
    return planned, failures


def is_complete(target: Path) -> bool:
    """An output under its final name is complete: it was renamed there after writing."""
    return target.is_file() and not target.is_symlink()


def remove_leftovers(jobs: list[Job]) -> int:
    """Delete temporary outputs of planned targets left by a killed run; returns how many.

    Only names this run would itself use (``.<name>.part-*``) are touched."""
    wanted: dict[Path, set[str]] = {}
    for job in jobs:
        wanted.setdefault(job.target.parent, set()).add(job.target.name)
    removed = 0
    for folder, names in wanted.items():
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            owner = entry.name[1:].split(".part-")[0]
            if is_temporary(entry) and owner in names:
                remove(entry)
                removed += 1
    return removed


def decode(job: Job, options: RenderOptions):
    """(job, image or LpmatteError, milliseconds): decoding errors are results, not raised."""
    started = time.perf_counter()
    try:
        image = read_rgb(job.source, options.max_pixels)  # uint8 for 8-bit files
    except LpmatteError as error:
        image = error
    return job, image, (time.perf_counter() - started) * 1000


def predict(matter, image: np.ndarray):
    """(alpha, trimap) of one decoded image."""
    return matter.predict(image, return_trimap=True)


def encode(job: Job, image: np.ndarray, prediction, options: RenderOptions) -> int:
    """Write the output of ``job`` atomically; returns its size in bytes."""
    alpha, trimap = prediction
    save_png(job.target, render(image, alpha, trimap, options.fmt, options.background),
             options.png_compression)
    return job.target.stat().st_size


def failure_row(job: Job, error: LpmatteError, ms: float) -> Row:
    message = str(error).removeprefix(f"{job.source}: ")
    return Row(str(job.source), "failed", str(job.target), 0, round(ms, 1), message)


def process(matter, job: Job, options: RenderOptions) -> Row:
    """Decode, matte and write one job in the calling thread (the Ray path uses this)."""
    job, image, ms = decode(job, options)
    return finish(job, image, ms, lambda: predict(matter, image), options)


def finish(job: Job, image, ms: float, prediction, options: RenderOptions) -> Row:
    """The manifest row of a job whose decoding took ``ms``: ``prediction`` is called (or
    is already an (alpha, trimap) pair) and the output written."""
    started = time.perf_counter()
    try:
        if isinstance(image, LpmatteError):
            raise image
        result = prediction() if callable(prediction) else prediction
        if isinstance(result, LpmatteError):
            raise result
        size = encode(job, image, result, options)
    except LpmatteError as error:
        return failure_row(job, error, ms + (time.perf_counter() - started) * 1000)
    return Row(str(job.source), "written", str(job.target), size,
               round(ms + (time.perf_counter() - started) * 1000, 1), "")


def skipped_row(job: Job) -> Row:
    return Row(str(job.source), "skipped", str(job.target), job.target.stat().st_size, 0.0, "")


def record_planned(log: Manifest, failures: list[tuple[str, str]], done: list[Job]
                   ) -> BatchResult:
    """Log what :func:`prepare` settled before any matting: the inputs it refused and the
    outputs already complete; the result of the batch so far."""
    result = BatchResult(failures=failures)
    for source, message in failures:
        log.add(Row(source, "failed", "", 0, 0.0, message))
    for row in map(skipped_row, done):
        log.add(row)
        result.add(row)
    return result


def run_overlapped(matter, jobs: Iterator[Job], options: RenderOptions, record,
                   queue_size: int = QUEUE_SIZE) -> None:
    """Decode (thread) -> model (this thread) -> encode (thread), ``record(row)`` per job.

    The queues hold ``queue_size`` items each, so memory stays bounded on any folder size.
    """
    worker = BackgroundWorker(lambda item: record(finish(*item, options)), maxsize=queue_size)
    try:
        for job, image, ms in prefetch((decode(job, options) for job in jobs), queue_size):
            started = time.perf_counter()
            prediction = image
            if not isinstance(image, LpmatteError):
                try:
                    prediction = predict(matter, image)
                except LpmatteError as error:
                    prediction = error
            worker.put((job, image, ms + (time.perf_counter() - started) * 1000, prediction))
        worker.finish()
    except BaseException:
        worker.cancel()
        raise


def run_serial(matter, jobs: Iterator[Job], options: RenderOptions, record) -> None:
    """One job after the other in this thread (for measuring what overlapping gains)."""
    for job in jobs:
        record(process(matter, job, options))


def prepare(inputs: list[str], outdir: str | Path, fmt: str, background, overwrite: bool,
            max_pixels: int | None, png_compression: int = PNG_COMPRESSION):
    """Everything before the work: (options, jobs to do, jobs already complete, failures)."""
    if fmt not in FORMATS:
        raise LpmatteError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
    check_png_compression(png_compression)
    plate = background
    if fmt == "composite" and (plate is None or isinstance(plate, str)):
        plate = parse_background(plate)
    check_outdir(Path(outdir))
    items, failures = expand_inputs(inputs)
    planned, collisions = plan_outputs(items, Path(outdir))
    remove_leftovers(planned)
    done = [] if overwrite else [job for job in planned if is_complete(job.target)]
    complete = {job.target for job in done}
    todo = [job for job in planned if job.target not in complete]
    return (RenderOptions(fmt, plate, max_pixels, png_compression), todo, done,
            failures + collisions)


def matte_files(matter, inputs: list[str], outdir: str | Path, fmt: str = "alpha",
                background=None, progress: bool = True, overwrite: bool = False,
                manifest: str | Path | None = None,
                max_pixels: int | None = DEFAULT_MAX_PIXELS,
                overlap: bool = True, png_compression: int = PNG_COMPRESSION) -> BatchResult:
    """Matte every image in ``inputs`` into ``outdir``; failures are collected, not raised.

    Args:
        background: (composite only) a spec for
            :func:`~lpmatte.media.compose.parse_background` or its result.
        overwrite: redo inputs whose output already exists (default: skip them, so a rerun
            after a crash continues where it stopped).
        manifest: a ``.csv`` or ``.jsonl`` file that gets one row per input (see
            :class:`~lpmatte.apps.manifest.Manifest`); rows of an earlier run are merged.
        max_pixels: refuse images above this many pixels before decoding (None: no limit).
        overlap: decode, infer and encode in three threads (False: one after the other).
        png_compression: zlib level of the PNG outputs, 0-9 (see
            :func:`~lpmatte.media.image_io.png_bytes`;
            :data:`~lpmatte.media.image_io.PNG_COMPRESSION` by default).
    """
    options, todo, done, failures = prepare(inputs, outdir, fmt, background, overwrite,
                                            max_pixels, png_compression)
    with Manifest(manifest) as log:
        result = record_planned(log, failures, done)
        bar = progress_bar(len(todo), progress)

        def record(row: Row) -> None:
            log.add(row)
            result.add(row)
            bar.update(1)

        with bar:
            run = run_overlapped if overlap else run_serial
            started = time.perf_counter()
            run(matter, iter(todo), options, record)
            result.seconds = time.perf_counter() - started
    return result


def progress_bar(total: int, enabled: bool):
    """tqdm bar with images/s and ETA."""
    import sys

    from tqdm import tqdm

    return tqdm(total=total, unit="img", disable=not enabled or total < 2, file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1)
