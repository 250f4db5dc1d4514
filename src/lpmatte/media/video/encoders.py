"""The FFmpeg video encoders the output formats use, and which of them this build has."""

from __future__ import annotations

from dataclasses import dataclass, field

from lpmatte.errors import LpmatteError
from lpmatte.media.video.pyav import import_av


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
