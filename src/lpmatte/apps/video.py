"""Matting a whole video: :func:`convert_video`, the library call behind ``lpmatte video``.

Three stages overlap so the run goes as fast as its slowest stage (normally the model):
a decoding thread reads frames ahead, the calling thread runs the model, and an encoding
thread composes and writes the output (see :mod:`lpmatte.media.video`). By default
:func:`~lpmatte.inference.temporal.video_predictor` steadies the matte: a coarse-stage filter
and a hold on the final matte, carried along the optical flow, wherever the motion explains the
picture.

Output formats (``format``):

========== ============== ==========================================================
prores     ``.mov``       ProRes 4444 with alpha (yuva444p10le): for video editors
webm       ``.webm``      VP9 with alpha (yuva420p): for browsers
png        a folder       ``000000.png ...``, RGBA: for compositing tools
alpha      ``.mp4 .mov .mkv .webm``  the alpha matte as a grey video (H.264, or VP9 in .webm)
green      same as alpha  the person over pure green (#00ff00)
composite  same as alpha  the person over ``background``: a colour, an image or a video
========== ============== ==========================================================

Transparent outputs keep the input's colours with straight (unpremultiplied) alpha.
H.264 needs even sizes: an odd height or width gets its last row/column repeated.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lpmatte.api import as_matter
from lpmatte.errors import LpmatteError
from lpmatte.inference.temporal import video_predictor
from lpmatte.media.compose import DEFAULT_BACKGROUND, composite_image, cover, parse_background
from lpmatte.media.image_io import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, to_uint8
from lpmatte.media.threads import BackgroundWorker
from lpmatte.media.video.audio import AudioCopier
from lpmatte.media.video.encoders import (
    H264,
    MPEG4,
    PRORES_4444,
    VP9,
    VP9_ALPHA,
    Encoder,
    first_available,
)
from lpmatte.media.video.output import AtomicOutput
from lpmatte.media.video.reader import VideoSource
from lpmatte.media.video.writer import ContainerWriter, PngSequenceWriter

FORMATS = ("prores", "webm", "png", "alpha", "green", "composite")
_TRANSPARENT = {"prores": (".mov", "mov", [PRORES_4444]), "webm": (".webm", "webm", [VP9_ALPHA])}
_OPAQUE_CONTAINERS = {".mp4": ("mp4", [H264, MPEG4]), ".mov": ("mov", [H264, MPEG4]),
                      ".mkv": ("matroska", [H264, MPEG4]), ".webm": ("webm", [VP9])}


@dataclass(frozen=True)
class Target:
    """Where and how the output is written: ``encoder`` is None for a PNG sequence."""

    path: Path
    format: str
    container: str | None = None
    encoder: Encoder | None = None

    @property
    def is_folder(self) -> bool:
        return self.encoder is None


@dataclass(frozen=True)
class VideoResult:
    """What :func:`convert_video` did: frames written, wall time, end-to-end and model fps."""

    output: Path
    format: str
    frames: int
    seconds: float
    model_seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def model_fps(self) -> float:
        return self.frames / self.model_seconds if self.model_seconds else 0.0


def resolve_target(output, format: str | None) -> Target:
    """Pick the format (from ``format`` or the output's suffix), container and encoder."""
    path = Path(output)
    suffix = path.suffix.lower()
    if format is None:
        format = {".mov": "prores", ".webm": "webm", "": "png"}.get(suffix)
        if format is None:
            raise LpmatteError(f"{path}: cannot guess the format from '{suffix}'; "
                               f"give --format ({', '.join(FORMATS)})")
    if format not in FORMATS:
        raise LpmatteError(f"unknown format '{format}' (choose from {', '.join(FORMATS)})")
    if format == "png":
        if suffix:
            raise LpmatteError(f"{path}: --format png writes a folder of frames; "
                               "give a folder name")
        return Target(path, format)
    if format in _TRANSPARENT:
        wanted, container, encoders = _TRANSPARENT[format]
        if suffix != wanted:
            raise LpmatteError(f"{path}: --format {format} writes a {wanted} file")
    else:
        if suffix not in _OPAQUE_CONTAINERS:
            raise LpmatteError(f"{path}: --format {format} writes "
                               f"{' '.join(_OPAQUE_CONTAINERS)} files")
        container, encoders = _OPAQUE_CONTAINERS[suffix]
    return Target(path, format, container, first_available(encoders, f"--format {format}"))


def parse_time(value) -> float | None:
    """Seconds from ``12.5``, ``"12.5"``, ``"1:02.5"`` or ``"0:01:02.5"``; None stays None."""
    if value is None or isinstance(value, (int, float)):
        return None if value is None else float(value)
    if not re.fullmatch(r"(\d+:){0,2}\d+(\.\d*)?", value.strip()):
        raise LpmatteError(f"bad time '{value}': use seconds (12.5) or [HH:]MM:SS(.ms)")
    seconds = 0.0
    for part in value.strip().split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


# --------------------------------------------------------------------------- backgrounds


class Background:
    """What goes behind the person in ``composite``: a colour, an image, or a looping video.

    ``spec``: a colour (``"white"``, ``"#00ff00"``, ``"0,255,0"``), an image file, or a video
    file. Colours and images become plates through :func:`lpmatte.media.compose.parse_background`,
    the same as for photos.
    """

    def __init__(self, spec: str):
        self.spec = spec
        self.video = self.frames = None
        self.plate = None  # an RGB tuple or a float HxWx3 image, as compose.composite takes
        if Path(spec).is_file() and Path(spec).suffix.lower() not in IMAGE_SUFFIXES:
            self.video = VideoSource(spec)
        else:
            self.plate = parse_background(spec)

    def next_plate(self, height: int, width: int):
        """The background for the next output frame, covering (height, width); an image is
        scaled once and kept, as every frame of a video has the same size."""
        if self.video is None:
            if isinstance(self.plate, np.ndarray):
                self.plate = cover(self.plate, height, width)
            return self.plate
        return self._next_video_frame().astype(np.float32) / 255.0

    def _next_video_frame(self) -> np.ndarray:
        for _ in range(2):  # at the end of the background video, start it again once
            if self.frames is None:
                self.frames = self.video.decode()
            frame = next(self.frames, None)
            if frame is not None:
                return frame.image
            self.video.close()
            self.video, self.frames = VideoSource(self.spec), None
        raise LpmatteError(f"{self.spec}: background video has no frames")

    def close(self) -> None:
        if self.video is not None:
            self.video.close()


def make_background(format: str, spec: str | None) -> Background | None:
    if spec is not None and format != "composite":
        raise LpmatteError(f"--background only applies to --format composite, not {format}")
    if format == "green":
        return Background("#00ff00")
    if format == "composite":
        return Background(spec or DEFAULT_BACKGROUND)
    return None


# --------------------------------------------------------------------------- composition


def composer(format: str, background: Background | None) -> Callable:
    """The function ``(image uint8 (H,W,3), alpha float (H,W)) -> (rgb, alpha or None)`` that
    turns one matted frame into what the output stores."""
    if format in ("prores", "webm", "png"):
        return lambda image, alpha: (image, alpha)
    if format == "alpha":
        return lambda image, alpha: (np.repeat(to_uint8(alpha)[..., None], 3, axis=2), None)

    def over_background(image, alpha):
        # estimated foreground colours, as for photos: no halo of the filmed background
        return composite_image(image, alpha, background.next_plate(*image.shape[:2])), None

    return over_background


# --------------------------------------------------------------------------- the pipeline


def make_writer(target: Target, source: VideoSource, tmp: Path, audio: bool, notice):
    """The writer for ``target`` at temporary path ``tmp``, copying audio if asked and possible."""
    if target.is_folder:
        if audio and source.has_audio:
            notice("audio is not kept in a PNG sequence")
        return PngSequenceWriter(tmp)
    audio_factory = None
    if audio and source.has_audio and source.is_file:
        def audio_factory(output):
            origin, duration = source.audio_window()
            try:
                return AudioCopier(source.name, output, origin, duration, notice=notice)
            except Exception as error:  # audio is a bonus: keep the video
                notice(f"audio dropped ({error})")
                return None
    return ContainerWriter(tmp, target.container, target.encoder, source.frame_rate,
                           source.time_base, audio=audio_factory, notice=notice)


def progress_bar(source: VideoSource, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=source.estimated_frames(), unit="frame", disable=not enabled,
                desc=Path(source.name).name[:30], file=sys.stderr, dynamic_ncols=True)


def run_pipeline(source: VideoSource, predict: Callable, write: Callable, bar,
                 queue_size: int = 8) -> tuple[int, float]:
    """Decode (thread) -> ``predict(image)`` (this thread) -> ``write(frame, alpha)`` (thread).

    Returns (frames written, seconds spent in ``predict``).
    """
    worker = BackgroundWorker(lambda item: write(*item), maxsize=queue_size)
    frames, model_seconds = 0, 0.0
    try:
        for frame in source.frames(queue_size):
            started = time.perf_counter()
            alpha = predict(frame.image)
            model_seconds += time.perf_counter() - started
            worker.put((frame, alpha))
            frames += 1
            bar.update(1)
            if frames % 10 == 0:
                bar.set_postfix_str(f"model {frames / model_seconds:.1f} fps", refresh=False)
        worker.finish()
    except BaseException:
        worker.cancel()
        raise
    return frames, model_seconds


def _warn(message: str) -> None:
    print(f"lpmatte: {message}", file=sys.stderr)


def convert_video(input, output, format: str | None = None, background: str | None = None,
                  matter=None, model="default", device: str = "auto", backend: str = "auto",
                  start=None, end=None,
                  stabilize: bool = True,
                  progress: bool = True, audio: bool = True, input_format: str | None = None,
                  queue_size: int = 8, allow_partial: bool = False,
                  max_pixels: int | None = DEFAULT_MAX_PIXELS,
                  notice: Callable[[str], None] = _warn) -> VideoResult:
    """Matte every frame of ``input`` and write ``output`` in ``format``.

    Args:
        input: video file, stream URL (``rtsp://...``), or capture device with ``input_format``.
        output: output file, or folder for ``format="png"``; replaced only when the run succeeds.
        format: one of :data:`FORMATS`; None guesses from the suffix (.mov, .webm, no suffix).
        background: for ``composite``: a colour, image file or video file (default green,
            as for photos).
        matter: a loaded :class:`lpmatte.Matter`; if None, ``model`` (a Matter, or a name
            or path for :func:`lpmatte.load` with ``device`` and ``backend``).
        start, end: seconds (or ``"MM:SS.ms"``) to keep, counted from the first frame.
        stabilize: steady the still parts of the shot across frames
            (:func:`lpmatte.inference.temporal.video_predictor`); False mattes each frame alone.
        progress: show a progress bar with live end-to-end and model fps on stderr.
        audio: copy the first audio track (re-encoded if the container needs it).
        input_format: FFmpeg demuxer to force, e.g. ``v4l2`` for a webcam (then use ``end``).
        queue_size: frames buffered between decoding, the model and encoding.
        allow_partial: keep what decodes of a truncated or corrupt file (see
            :class:`~lpmatte.media.video.reader.VideoSource`) instead of failing.
        max_pixels: refuse frames larger than this many pixels (None: no limit).
        notice: receives one-line remarks (odd size padding, audio, variable frame rate).
    """
    target = resolve_target(output, format)
    start, end = parse_time(start), parse_time(end)
    backdrop = make_background(target.format, background)
    source = VideoSource(input, start, end, input_format, allow_partial, max_pixels,
                         notice)
    try:
        if source.is_file and target.path.resolve() == Path(source.name).resolve():
            raise LpmatteError(f"{target.path}: output would overwrite the input")
        if matter is None:
            matter = as_matter(model, device, backend)
            if matter.warning:
                notice(f"warning: {matter.warning}")
        started = time.perf_counter()
        frames, model_seconds = write_output(
            target, source, video_predictor(matter, stabilize),
            composer(target.format, backdrop), audio, progress, queue_size, notice)
    finally:
        source.close()
        if backdrop is not None:
            backdrop.close()
    return VideoResult(target.path, target.format, frames, time.perf_counter() - started,
                       model_seconds)


def write_output(target: Target, source: VideoSource, predict: Callable, compose: Callable,
                 audio: bool, progress: bool, queue_size: int, notice) -> tuple[int, float]:
    """Run the pipeline into a temporary output that replaces ``target.path`` on success.

    Returns (frames written, seconds spent in ``predict``)."""
    with AtomicOutput(target.path, folder=target.is_folder) as tmp:
        writer = make_writer(target, source, tmp, audio, notice)
        try:
            with progress_bar(source, progress) as bar:
                frames, model_seconds = run_pipeline(
                    source, predict,
                    lambda frame, alpha: writer.write(*compose(frame.image, alpha), frame.pts),
                    bar, queue_size)
            if frames == 0:
                raise LpmatteError(f"{source.name}: no video frames" + (
                    " in the --start/--end range" if source.start or source.end else ""))
            writer.close()
        except BaseException:
            writer.abort()
            raise
    if source.variable_frame_rate:
        notice("variable frame rate: " + (
            "a PNG sequence has no timestamps; frames are numbered in order"
            if target.is_folder else "every frame kept its timestamp"))
    return frames, model_seconds
