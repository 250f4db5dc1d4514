"""From uploaded bytes to the encoded answer: the request options, the checks made before
decoding, and the matting itself (which runs on a worker thread, never the event loop)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lpmatte.serve.adapter import (
    FORMATS,
    LpmatteError,
    check_pixels,
    parse_color,
    png_bytes,
    read_rgb,
    render,
    to_uint8,
)
from lpmatte.serve.errors import HTTPError

# Only these decoders may see an upload: Pillow's rarer plugins (EPS runs Ghostscript)
# are attack surface a matting service does not need.
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
OUTPUTS = ("png", "jpeg")
MIN_SIDE = 8
JPEG_QUALITY = 92
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError,
                 Image.DecompressionBombError)


@dataclass(frozen=True)
class MatteOptions:
    """What to send back: ``fmt`` (one of FORMATS), the composite ``background`` colour,
    the longest side to work at (None: the upload's own size) and the encoding."""

    fmt: str = "alpha"
    background: tuple[float, float, float] | None = None
    max_side: int | None = None
    output: str = "png"

    @property
    def media_type(self) -> str:
        return f"image/{self.output}"


@dataclass(frozen=True)
class MatteResult:
    content: bytes
    media_type: str
    width: int
    height: int


def parse_options(params: Mapping[str, str]) -> MatteOptions:
    """Query parameters (or form fields) -> :class:`MatteOptions`; a mistake is a 400."""
    fmt = params.get("format") or "alpha"
    if fmt not in FORMATS:
        raise HTTPError(400, f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
    output = (params.get("output") or "png").lower().replace("jpg", "jpeg")
    if output not in OUTPUTS:
        raise HTTPError(400, f"unknown output '{output}' (choose from png, jpeg)")
    if output == "jpeg" and fmt != "composite":
        raise HTTPError(400, "output=jpeg is only for format=composite (JPEG has no alpha "
                             "and would blur a matte)")
    return MatteOptions(fmt, _background(params.get("background"), fmt),
                        _max_side(params.get("max_side")), output)


def _background(spec: str | None, fmt: str):
    if not spec:
        return parse_color("#00ff00") if fmt == "composite" else None
    if fmt != "composite":
        raise HTTPError(400, "background= only applies to format=composite")
    try:
        return parse_color(spec)  # colours only: a server must not open paths it is sent
    except LpmatteError:
        raise HTTPError(400, f"background '{spec}' is not a colour (a name, #rrggbb or "
                             "r,g,b)") from None


def _max_side(text: str | None) -> int | None:
    if not text:
        return None
    if not text.isdigit() or int(text) < MIN_SIDE:
        raise HTTPError(400, f"max_side must be a whole number >= {MIN_SIDE}, got '{text}'")
    return int(text)


def open_upload(data: bytes, max_pixels: int) -> Image.Image:
    """Read only the header of ``data``: what it is and how many pixels it declares are
    checked before any pixel is decoded, so a small file cannot expand into gigabytes."""
    if not data:
        raise HTTPError(400, "empty upload: send an image as the body or a 'file' form field")
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as error:
        raise HTTPError(413, f"image has too many pixels ({error})") from None
    except (UnidentifiedImageError, *DECODE_ERRORS):
        raise HTTPError(415, "not an image (send PNG, JPEG, WebP, BMP, TIFF or GIF)") from None
    width, height = image.size
    try:
        check_pixels("upload", width, height, max_pixels)  # the CLI's limit, as a 413
    except LpmatteError as error:
        raise HTTPError(413, str(error)) from None
    if width < 1 or height < 1:
        raise HTTPError(422, f"image has no pixels ({width}x{height})")
    return image


def decode(image: Image.Image, max_side: int | None) -> np.ndarray:
    """Decode, turn upright (EXIF), shrink to ``max_side`` -> HxWx3: uint8 for an 8-bit
    image, else float32 in [0, 1], as ``lpmatte matte`` decodes files."""
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
        rgb = read_rgb(image)
    except DECODE_ERRORS as error:
        raise HTTPError(422, f"corrupt or truncated image ({error})") from None
    except LpmatteError as error:
        raise HTTPError(422, str(error)) from None
    return _shrink(rgb, max_side) if max_side else rgb


def _shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(to_uint8(rgb)).resize(size, Image.LANCZOS))


def matte_image(matter, image: Image.Image, options: MatteOptions) -> MatteResult:
    """The whole CPU-bound part of a request: decode, predict, render, encode."""
    rgb = decode(image, options.max_side)
    try:
        alpha, trimap = matter.predict(rgb, return_trimap=True)
        pixels = render(rgb, alpha, trimap, options.fmt, options.background)
    except LpmatteError as error:
        raise HTTPError(422, str(error)) from None
    return MatteResult(encode(pixels, options.output), options.media_type,
                       pixels.shape[1], pixels.shape[0])


def encode(pixels: np.ndarray, output: str) -> bytes:
    if output != "jpeg":
        return png_bytes(pixels)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="JPEG",
                                                       quality=JPEG_QUALITY)
    return buffer.getvalue()
