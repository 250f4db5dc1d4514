"""Reading a video: :class:`VideoSource` decodes upright frames with relative timestamps."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from lpmatte.errors import LpmatteError
from lpmatte.media import image_io
from lpmatte.media.threads import prefetch
from lpmatte.media.video.pyav import import_av


@dataclass(frozen=True)
class DecodedFrame:
    """One upright frame: ``image`` uint8 (H, W, 3) RGB; ``pts`` in ``time_base`` units and
    ``time`` in seconds, both counted from the first frame kept."""

    index: int
    pts: int
    time: float
    image: np.ndarray


def is_stream_url(name: str) -> bool:
    """True for URLs such as ``rtsp://`` or ``http://`` that FFmpeg opens itself."""
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", str(name)) is not None


class VideoSource:
    """An opened input video: a file, a stream URL, or a capture device (``input_format``).

    Args:
        path: file path, URL, or device name (e.g. ``/dev/video0`` with ``input_format="v4l2"``).
        start: first second to keep (counted from the first frame), or None.
        end: second at which to stop (exclusive), or None.
        input_format: FFmpeg demuxer name to force (``v4l2``, ``avfoundation``, ``dshow``...).
        allow_partial: a file that yields fewer frames than its header declares (cut short,
            partly corrupt) is an error unless this is True; then what decodes is kept and
            ``notice`` is told how many frames were lost.
        max_pixels: refuse frames larger than this (None: no limit).
        notice: receives the one-line loss report of ``allow_partial``.
    """

    def __init__(self, path, start: float | None = None, end: float | None = None,
                 input_format: str | None = None, allow_partial: bool = False,
                 max_pixels: int | None = image_io.DEFAULT_MAX_PIXELS,
                 notice: Callable[[str], None] | None = None):
        self.name = str(path)
        self.allow_partial, self.notice, self.max_pixels = allow_partial, notice, max_pixels
        self.lost_frames = 0  # frames declared by the header that did not decode
        self.start, self.end = start, end
        self.input_format = input_format
        self.is_file = not is_stream_url(self.name) and input_format is None
        if start is not None and start < 0 or end is not None and end <= (start or 0):
            raise LpmatteError(f"bad time range: --start {start} --end {end}")
        self.container = self._open()
        self.stream = self._video_stream()
        context = self.stream.codec_context
        try:
            image_io.check_pixels(self.name, context.width, context.height, max_pixels)
        except LpmatteError:
            self.close()
            raise
        self.time_base = self.stream.time_base or Fraction(1, 90000)
        self.first_pts = None  # pts of the first frame kept, once decoding has reached it
        self.irregular_timing = False
        self.frame_rate = self.stream.average_rate or self.stream.guessed_rate or Fraction(25)

    def _open(self):
        av = import_av()
        if self.is_file:
            check_readable_file(Path(self.name))
        if self.input_format is not None and self.input_format not in av.formats_available:
            raise LpmatteError(f"--input-format {self.input_format}: not in this PyAV's FFmpeg "
                               "(a PyAV built on the system FFmpeg may have it)")
        try:
            return av.open(self.name, format=self.input_format)
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise LpmatteError(f"{self.name}: not a readable video ({_reason(error)})") from None

    def _video_stream(self):
        if not self.container.streams.video:
            self.close()
            raise LpmatteError(f"{self.name}: no video stream")
        stream = self.container.streams.video[0]
        if stream.codec_context is None or not stream.codec_context.name:
            self.close()
            raise LpmatteError(f"{self.name}: unsupported video codec")
        stream.thread_type = "AUTO"  # frame-parallel decoding where the codec allows
        return stream

    @property
    def variable_frame_rate(self) -> bool:
        """True when the header's average and base frame rates disagree (as ffprobe's
        avg_frame_rate vs r_frame_rate), or decoding met a frame interval off the nominal
        one by more than half a frame."""
        average, base = self.stream.average_rate, self.stream.base_rate
        header = bool(average and base and abs(float(average) / float(base) - 1) > 0.01)
        return header or self.irregular_timing

    @property
    def has_audio(self) -> bool:
        return bool(self.container.streams.audio)

    def estimated_frames(self) -> int | None:
        """Number of frames in [start, end), estimated from the header (None if unknown)."""
        total = self.stream.frames or None
        if total is None and self.stream.duration and self.stream.time_base:
            total = round(float(self.stream.duration * self.stream.time_base * self.frame_rate))
        if total is None and self.container.duration:  # Matroska/WebM: only the container's
            total = round(self.container.duration / 1_000_000 * float(self.frame_rate))
        if total is None and self.end is None:
            return None
        stop = total if self.end is None else round(self.end * float(self.frame_rate))
        stop = min(stop, total) if total else stop
        return max(0, stop - round((self.start or 0) * float(self.frame_rate)))

    def frames(self, maxsize: int = 8) -> Iterator[DecodedFrame]:
        """Decoded upright frames in [start, end), decoded ``maxsize`` frames ahead in a thread."""
        return prefetch(self.decode(), maxsize)

    def decode(self) -> Iterator[DecodedFrame]:
        """Decoded upright frames in [start, end), in the calling thread."""
        av = import_av()
        origin = self.stream.start_time or 0  # pts of the stream's first frame
        if self.start:
            self._seek(origin + int(self.start / self.time_base))
        step = max(1, round(1 / (self.frame_rate * self.time_base)))  # one frame, in pts
        last, index, reached_end, last_seconds = None, 0, False, None
        try:
            for frame in self.container.decode(self.stream):
                pts = repaired_pts(frame.pts, last, step, origin)
                seconds = float((pts - origin) * self.time_base)
                if self.start and seconds < self.start - 1e-6:
                    continue
                if self.end is not None and seconds >= self.end - 1e-6:
                    reached_end = True
                    break
                # the size can change mid-stream: check each frame before converting it
                image_io.check_pixels(self.name, frame.width, frame.height, self.max_pixels)
                if self.first_pts is None:
                    self.first_pts = pts  # read by the audio copier once frames flow
                elif abs(pts - last - step) > step / 2:
                    self.irregular_timing = True
                last, relative, last_seconds = pts, pts - self.first_pts, seconds
                time = float(relative * self.time_base)
                yield DecodedFrame(index, relative, time, upright(frame))
                index += 1
        except (av.error.FFmpegError, ValueError, MemoryError) as error:
            declared = self.estimated_frames() if self.is_file else None
            lost = max(0, declared - index) if declared else None
            self._lost(index, f"decoding failed after {index} frames ({_reason(error)})",
                       lost, declared)
            return
        if not reached_end:
            self._check_complete(index, last_seconds)

    def _check_complete(self, found: int, last_seconds: float | None) -> None:
        """Compare what decoded with what the header declares (files only: streams and
        devices declare nothing): the exact frame count where the container stores one
        (MP4, MOV), else the duration (Matroska, WebM: frame rates may vary)."""
        if not self.is_file:
            return
        exact = self.stream.frames if not self.start and self.end is None else 0
        if exact:
            if found < exact:
                self._lost(found, f"only {found} of {exact} declared frames decode",
                           exact - found, exact)
            return
        duration = self.declared_seconds()
        if duration is None:
            return
        expected = min(duration, self.end) if self.end is not None else duration
        frame = 1 / float(self.frame_rate)
        covered = (last_seconds + frame) if last_seconds is not None else (self.start or 0)
        if covered < expected - max(2 * frame, 0.01 * expected):
            missing = round((expected - covered) / frame)
            self._lost(found, f"only {found} frames decode, up to {covered:.2f} s of the "
                              f"declared {expected:.2f} s", missing, found + missing)

    def declared_seconds(self) -> float | None:
        """The video's duration from the header, in seconds from the stream's first frame."""
        if self.stream.duration and self.stream.time_base:
            return float(self.stream.duration * self.stream.time_base)
        if self.container.duration:
            return self.container.duration / 1_000_000
        return None

    def _lost(self, found: int, reason: str, lost: int | None, declared: int | None) -> None:
        """A shortfall: an error, or with ``allow_partial`` a notice of what was lost."""
        if not self.allow_partial:
            raise LpmatteError(f"{self.name}: {reason} (truncated or corrupt file); "
                               "--allow-partial keeps what decodes")
        self.lost_frames = lost or 0
        share = f" ({100 * lost / declared:.1f}%)" if lost and declared else ""
        amount = f"about {lost} of {declared} frames{share}" if lost else "the rest"
        if self.notice is not None:
            self.notice(f"warning: {self.name}: {reason}; kept {found} frames, lost {amount}")

    def _seek(self, pts: int) -> None:
        av = import_av()
        try:
            self.container.seek(pts, stream=self.stream, backward=True, any_frame=False)
        except av.error.FFmpegError:
            pass  # not seekable (stream, device): frames before start are skipped while decoding

    def audio_window(self) -> tuple[float, float | None]:
        """(origin, duration) in seconds for the audio to keep: origin is the absolute time of
        the first frame kept, duration runs to ``end`` (None: to the end of the audio)."""
        origin = float(self.first_pts * self.time_base)
        if self.end is None:
            return origin, None
        stream_start = float((self.stream.start_time or 0) * self.time_base)
        return origin, self.end - (origin - stream_start)

    def close(self) -> None:
        self.container.close()


def repaired_pts(pts: int | None, last: int | None, step: int, origin: int) -> int:
    """A frame's pts, or one ``step`` after ``last`` when it is missing or not increasing
    (some streams repeat or omit timestamps; muxers need them strictly increasing)."""
    if last is None:
        return pts if pts is not None else origin
    return pts if pts is not None and pts > last else last + step


def upright(frame) -> np.ndarray:
    """Decoded PyAV frame -> uint8 (H, W, 3) RGB, rotated as its display matrix asks."""
    image = frame.to_ndarray(format="rgb24")
    quarter_turns = round((frame.rotation or 0) / 90) % 4  # counter-clockwise, as np.rot90
    return np.ascontiguousarray(np.rot90(image, quarter_turns)) if quarter_turns else image


def check_readable_file(path: Path) -> None:
    if not path.exists():
        raise LpmatteError(f"{path}: no such file")
    if path.is_dir():
        raise LpmatteError(f"{path}: is a folder, not a video file")
    if path.stat().st_size == 0:
        raise LpmatteError(f"{path}: empty file")


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__
