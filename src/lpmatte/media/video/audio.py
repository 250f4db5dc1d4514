"""Audio passthrough: the input's first audio track copied (or re-encoded) into the output."""

from __future__ import annotations

from collections.abc import Callable

from lpmatte.media.video.encoders import has_encoder
from lpmatte.media.video.pyav import import_av


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
