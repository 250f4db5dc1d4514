"""Video reading and writing with PyAV (FFmpeg): decoding and encoding run in threads.

Reading (:class:`VideoSource`) decodes in a background thread into a bounded queue, turns
each frame upright (the container's display rotation is applied to the pixels, so outputs
need no rotation flag) and gives timestamps relative to the first frame kept.

Writing (:class:`ContainerWriter`, :class:`PngSequenceWriter`) happens in a
:class:`BackgroundWorker` thread. A container keeps the input's time base and every frame's
timestamp, so frame rate (also a variable one) and audio sync survive; the first audio
track is copied as is, or re-encoded when the output container cannot hold its codec.
Outputs are written under a temporary name next to the final one and renamed at the end
(:class:`AtomicOutput`), so an interrupted run never leaves a broken file under that name.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from lpmatte import files
from lpmatte.errors import LpmatteError
from lpmatte.media import image_io

FRAME_NAME = "{:06d}.png"  # PNG sequence file names: 000000.png, 000001.png, ...
_FRAME_NAME_PATTERN = re.compile(r"\d{6}\.png")
_STOP = object()


def import_av():
    """Import PyAV lazily (it is the optional ``video`` extra)."""
    try:
        import av
    except ImportError:
        raise LpmatteError("video needs PyAV: pip install 'lpmatte[video]' (or: pip install av)"
                           ) from None
    return av


# --------------------------------------------------------------------------- threads


def prefetch(items: Iterator, maxsize: int = 8) -> Iterator:
    """Iterate ``items`` in a background thread, up to ``maxsize`` items ahead.

    Exceptions raised by ``items`` are re-raised in the consumer; closing the returned
    generator (or dropping it) stops the thread.
    """
    buffer: queue.Queue = queue.Queue(maxsize)
    stop = threading.Event()

    def produce():
        try:
            for item in items:
                if not _put(buffer, item, stop):
                    return
            _put(buffer, _STOP, stop)
        except BaseException as error:  # handed to the consumer, which re-raises it
            _put(buffer, _Failure(error), stop)

    thread = threading.Thread(target=produce, name="lpmatte-decode", daemon=True)
    thread.start()
    try:
        while (item := buffer.get()) is not _STOP:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


@dataclass
class _Failure:
    error: BaseException


def _put(buffer: queue.Queue, item, stop: threading.Event) -> bool:
    """Put ``item`` unless ``stop`` is set first; True if it was put."""
    while not stop.is_set():
        try:
            buffer.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class BackgroundWorker:
    """Call ``work(item)`` for every :meth:`put` item, in order, in one background thread.

    An exception in ``work`` is re-raised by the next :meth:`put` or by :meth:`finish`.
    """

    def __init__(self, work: Callable, maxsize: int = 8, name: str = "lpmatte-encode"):
        self.work = work
        self.queue: queue.Queue = queue.Queue(maxsize)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self):
        while (item := self.queue.get()) is not _STOP:
            if self.error is None and not self.stop.is_set():
                try:
                    self.work(item)
                except BaseException as error:
                    self.error = error

    def _raise_error(self):
        if self.error is not None:
            raise self.error

    def put(self, item) -> None:
        self._raise_error()
        self.queue.put(item)  # blocks while the queue is full: decoding waits for encoding

    def finish(self) -> None:
        """Wait until every item is done; re-raise the worker's exception, if any."""
        self.queue.put(_STOP)
        self.thread.join()
        self._raise_error()

    def cancel(self) -> None:
        """Skip the remaining items and wait for the thread to end."""
        self.stop.set()
        self.queue.put(_STOP)
        self.thread.join()


# --------------------------------------------------------------------------- reading


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


# --------------------------------------------------------------------------- encoders


@dataclass(frozen=True)
class Encoder:
    """An FFmpeg video encoder and the frames it is fed.

    ``frame_format`` is what :meth:`ContainerWriter.write` packs (rgb, alpha) into:
    ``rgba64le`` (16-bit, so alpha keeps 10 bits in ProRes), ``rgba`` or ``rgb24``.
    ``even_size``: 4:2:0 encoders that reject odd sizes get one edge row/column repeated.
    """

    codec: str
    pix_fmt: str
    frame_format: str
    options: dict = field(default_factory=dict)
    even_size: bool = False

    @property
    def has_alpha(self) -> bool:
        return self.frame_format.startswith("rgba")


PRORES_4444 = Encoder("prores_ks", "yuva444p10le", "rgba64le",
                      {"profile": "4444", "vendor": "apl0"})
VP9_ALPHA = Encoder("libvpx-vp9", "yuva420p", "rgba",
                    {"deadline": "good", "cpu-used": "5", "row-mt": "1", "crf": "30", "b": "0"})
VP9 = Encoder("libvpx-vp9", "yuv420p", "rgb24",
              {"deadline": "good", "cpu-used": "5", "row-mt": "1", "crf": "30", "b": "0"})
H264 = Encoder("libx264", "yuv420p", "rgb24", {"crf": "18", "preset": "fast"}, even_size=True)
MPEG4 = Encoder("mpeg4", "yuv420p", "rgb24", {"b": "8M"}, even_size=True)


def has_encoder(name: str) -> bool:
    av = import_av()
    try:
        av.codec.Codec(name, "w")
        return True
    except (av.codec.codec.UnknownCodecError, ValueError):
        return False


def first_available(candidates: list[Encoder], purpose: str) -> Encoder:
    """The first encoder of ``candidates`` that this FFmpeg build has, else a clear error."""
    for encoder in candidates:
        if has_encoder(encoder.codec):
            return encoder
    names = ", ".join(encoder.codec for encoder in candidates)
    raise LpmatteError(f"{purpose} needs an FFmpeg encoder this PyAV build lacks ({names})")


# --------------------------------------------------------------------------- writing


def pack_frame(rgb: np.ndarray, alpha: np.ndarray | None, frame_format: str) -> np.ndarray:
    """uint8 (H, W, 3) RGB and float (H, W) alpha in [0, 1] -> the array for ``frame_format``:
    (H, W, 4) uint16 for ``rgba64le``, (H, W, 4) uint8 for ``rgba``, (H, W, 3) uint8 otherwise."""
    if frame_format == "rgb24":
        return np.ascontiguousarray(rgb)
    if alpha is None:
        alpha = np.ones(rgb.shape[:2], np.float32)
    if frame_format == "rgba64le":
        alpha16 = np.clip(alpha * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
        return np.dstack([rgb.astype(np.uint16) * 257, alpha16])
    alpha8 = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.dstack([rgb, alpha8])


def pad_to_even(array: np.ndarray) -> np.ndarray:
    """Repeat the last row and/or column so height and width are even (4:2:0 chroma)."""
    pad_h, pad_w = array.shape[0] % 2, array.shape[1] % 2
    if not (pad_h or pad_w):
        return array
    widths = [(0, pad_h), (0, pad_w)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, widths, mode="edge")


class ContainerWriter:
    """Encode frames into a video container, copying the input's first audio track.

    Args:
        path: output file (a temporary name; the container format is given by ``container``).
        container: FFmpeg muxer name (``mov``, ``webm``, ``mp4``, ``matroska``).
        encoder: the video :class:`Encoder`.
        frame_rate: nominal frame rate; time_base: time base of the ``pts`` given to :meth:`write`.
        audio: an :class:`AudioCopier` factory ``(output_container) -> AudioCopier`` or None.
        notice: called with one-line messages for the user.
    """

    def __init__(self, path, container: str, encoder: Encoder, frame_rate: Fraction,
                 time_base: Fraction, audio=None, notice: Callable[[str], None] = print):
        self.path, self.container_name, self.encoder = str(path), container, encoder
        self.frame_rate, self.time_base = frame_rate, time_base
        self.audio_factory, self.notice = audio, notice
        self.output = self.stream = self.audio = None

    def _open(self, width: int, height: int) -> None:
        av = import_av()
        self.output = av.open(self.path, mode="w", format=self.container_name)
        stream = self.output.add_stream(self.encoder.codec, rate=self.frame_rate)
        stream.width, stream.height, stream.pix_fmt = width, height, self.encoder.pix_fmt
        stream.time_base = stream.codec_context.time_base = self.time_base
        stream.codec_context.options = dict(self.encoder.options)
        stream.thread_type = "AUTO"
        self.stream = stream
        if self.audio_factory is not None:
            self.audio = self.audio_factory(self.output)

    def write(self, rgb: np.ndarray, alpha: np.ndarray | None, pts: int) -> None:
        """Encode one frame: uint8 (H, W, 3) RGB, float (H, W) alpha in [0, 1] or None."""
        av = import_av()
        array = pack_frame(rgb, alpha, self.encoder.frame_format)
        if self.encoder.even_size:
            array = pad_to_even(array)
        if self.output is None:
            if array.shape[:2] != rgb.shape[:2]:
                self.notice(f"{rgb.shape[1]}x{rgb.shape[0]}: {self.encoder.codec} needs even "
                            f"sizes, so the last row/column is repeated "
                            f"({array.shape[1]}x{array.shape[0]})")
            self._open(array.shape[1], array.shape[0])
        frame = av.VideoFrame.from_ndarray(array, format=self.encoder.frame_format)
        frame.pts, frame.time_base = pts, self.time_base
        self.output.mux(self.stream.encode(frame))
        if self.audio is not None:
            self.audio.copy_until(float(pts * self.time_base))

    def close(self) -> None:
        """Flush the encoders and finish the file."""
        if self.output is None:
            return
        self.output.mux(self.stream.encode(None))
        if self.audio is not None:
            self.audio.copy_until(float("inf"))
            self.audio.finish()
        self.output.close()
        self.output = None

    def abort(self) -> None:
        """Close without flushing (the file is going to be deleted)."""
        if self.audio is not None:
            self.audio.close()
        if self.output is not None:
            try:
                self.output.close()
            except Exception:
                pass  # a half-written file is removed by AtomicOutput anyway
            self.output = None


class AudioCopier:
    """Copy the first audio track of ``source`` into ``output``, interleaved with the video.

    Packets are copied untouched when the output container can hold the codec, otherwise
    decoded and re-encoded with the container's default audio codec. Audio before
    ``origin`` (seconds, the first video frame) or from ``origin + duration`` on is dropped.
    """

    def __init__(self, source: str, output, origin: float, duration: float | None,
                 notice: Callable[[str], None] = print):
        av = import_av()
        self.input = av.open(source)
        self.in_stream = self.input.streams.audio[0]
        self.origin, self.duration = origin, duration
        self.output = output
        self.packets = self.input.demux(self.in_stream)
        self.pending = None
        codec = self.in_stream.codec_context.name
        self.copy = codec in output.supported_codecs
        if self.copy:
            self.out_stream = output.add_stream_from_template(self.in_stream)
        else:
            target = output.default_audio_codec
            target = "libopus" if target == "opus" and has_encoder("libopus") else target
            rate = 48000 if "opus" in target else self.in_stream.codec_context.sample_rate
            self.out_stream = output.add_stream(target, rate=rate)
            notice(f"audio: {codec} cannot go into {output.format.name}; re-encoded as {target}")
        self.shift = round(origin / self.in_stream.time_base)  # origin in audio pts

    def copy_until(self, seconds: float) -> None:
        """Write every audio packet that starts before ``seconds`` (relative to the origin)."""
        while True:
            packet = self.pending if self.pending is not None else next(self.packets, None)
            self.pending = None
            if packet is None:
                return
            if packet.pts is None:
                continue
            time = float(packet.pts * self.in_stream.time_base) - self.origin
            if time > seconds:
                self.pending = packet
                return
            if time < 0 or self.duration is not None and time >= self.duration:
                continue
            self._write(packet)

    def _write(self, packet) -> None:
        if self.copy:
            packet.pts -= self.shift
            packet.dts = packet.dts - self.shift if packet.dts is not None else packet.pts
            packet.stream = self.out_stream
            self.output.mux(packet)
            return
        for frame in self.in_stream.decode(packet):
            frame.pts = None  # the encoder counts samples itself
            self.output.mux(self.out_stream.encode(frame))

    def finish(self) -> None:
        if not self.copy:
            self.output.mux(self.out_stream.encode(None))
        self.close()

    def close(self) -> None:
        self.input.close()


class PngSequenceWriter:
    """Write frames as ``000000.png, 000001.png, ...`` (RGBA) into an existing folder."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.count = 0

    def write(self, rgb: np.ndarray, alpha: np.ndarray | None, pts: int) -> None:
        import cv2

        rgba = pack_frame(rgb, alpha, "rgba")
        path = self.folder / FRAME_NAME.format(self.count)
        # OpenCV releases the GIL while compressing; level 3 is much faster than Pillow's 6
        if not cv2.imwrite(str(path), rgba[..., [2, 1, 0, 3]], [cv2.IMWRITE_PNG_COMPRESSION, 3]):
            raise LpmatteError(f"{path}: could not write")
        self.count += 1

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


# --------------------------------------------------------------------------- atomic output


def is_frame_folder(path: Path) -> bool:
    """True if ``path`` is an empty folder or holds only PNG frames named as ours."""
    return path.is_dir() and all(
        entry.is_file() and _FRAME_NAME_PATTERN.fullmatch(entry.name) for entry in path.iterdir())


class AtomicOutput(files.AtomicOutput):
    """:class:`lpmatte.files.AtomicOutput` that refuses to replace a folder holding
    anything but frames of an earlier run (see :func:`check_output_path`)."""

    def __init__(self, path, folder: bool = False):
        check_output_path(Path(path), folder)
        super().__init__(path, folder)


def check_output_path(path: Path, folder: bool) -> None:
    """Refuse outputs that would clobber something that is not ours to replace."""
    if folder and path.exists() and not is_frame_folder(path):
        raise LpmatteError(f"{path}: exists and holds other files; choose an empty or new folder")
    if not folder and path.is_dir():
        raise LpmatteError(f"{path}: is a folder; give a file name such as {path / 'out.mov'}")
