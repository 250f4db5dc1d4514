"""Writing frames: into a video container (:class:`ContainerWriter`) or as a PNG sequence."""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np

from lpmatte.errors import LpmatteError
from lpmatte.media.image_io import png_bytes
from lpmatte.media.video.encoders import Encoder
from lpmatte.media.video.pyav import import_av

FRAME_NAME = "{:06d}.png"  # PNG sequence file names: 000000.png, 000001.png, ...
FRAME_NAME_PATTERN = re.compile(r"\d{6}\.png")  # what FRAME_NAME makes


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


class PngSequenceWriter:
    """Write frames as ``000000.png, 000001.png, ...`` (RGBA) into an existing folder."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.count = 0

    def write(self, rgb: np.ndarray, alpha: np.ndarray | None, pts: int) -> None:
        path = self.folder / FRAME_NAME.format(self.count)
        # OpenCV's libpng releases the GIL while compressing, so the model thread goes on
        data = png_bytes(pack_frame(rgb, alpha, "rgba"))
        try:
            path.write_bytes(data)
        except OSError as error:
            raise LpmatteError(f"{path}: could not write ({error.strerror})") from None
        self.count += 1

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass
