"""The only module of :mod:`lpmatte.serve` that imports lpmatte itself.

Everything the server needs from the package goes through these names, so moving the
package's modules around means editing the imports here and nowhere else.
"""

from __future__ import annotations

from lpmatte.apps.images import FORMATS, render
from lpmatte.errors import LpmatteError
from lpmatte.inference.temporal import video_predictor
from lpmatte.media.compose import parse_color
from lpmatte.media.image_io import check_pixels, load_rgb, png_bytes, read_rgb, to_uint8
from lpmatte.model.registry import list_models
from lpmatte.version import __version__

__all__ = ["FORMATS", "LpmatteError", "__version__", "check_pixels", "list_models",
           "load_rgb", "parse_color", "png_bytes", "render", "read_rgb", "to_uint8",
           "video_predictor"]
