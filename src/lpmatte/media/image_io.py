"""Reading images of any common mode, and saving PNGs atomically.

Pillow decodes (it knows EXIF orientation, palettes and 16-bit PNG); OpenCV is not
used here because it drops EXIF orientation for PNG and mishandles palettes.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from struct import error as struct_error

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lpmatte.errors import LpmatteError
from lpmatte.files import atomic_write

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

# 100 MP: well above 8K photos (33 MP) and 100 MP sensors' 11648x8736 = 102 MP is the rare
# exception that needs --max-pixels; a decoded 100 MP RGB image is 1.2 GB as float32.
DEFAULT_MAX_PIXELS = 100_000_000

# zlib level of every PNG written (masks, cutouts, frames, server answers). Levels 1-3 use
# zlib's run-length strategy: on six HD photos of flickr-portraits it was the fastest and,
# for cutouts, 7 % larger than Pillow's default (level 6, 1507 vs 1406 KB, 96 vs 422 ms a
# cutout; masks 48 vs 51 KB, 13 vs 16 ms; AMD EPYC). At level 6 encoding bounded a folder
# of HD cutouts at a quarter of the model's rate (README "Large folders and clusters").
PNG_COMPRESSION = 1


def check_pixels(name, width: int, height: int, max_pixels: int | None) -> None:
    """Refuse a ``width`` x ``height`` image above ``max_pixels`` (None: no limit) before any
    memory is spent on decoding it."""
    pixels = int(width) * int(height)
    if max_pixels is not None and pixels > max_pixels:
        raise LpmatteError(f"{name}: image has {pixels} pixels ({width}x{height}), more than "
                           f"the limit of {max_pixels} (--max-pixels)")


def open_image(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS
               ) -> Image.Image:
    """Open ``path`` fully decoded and upright (EXIF orientation applied).

    The size in the header is checked against ``max_pixels`` before decoding (Pillow's
    ``Image.open`` reads only the header), so a tiny file declaring a huge image costs nothing.
    """
    path = Path(path)
    if not path.is_file():
        raise LpmatteError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise LpmatteError(f"{path}: empty file")
    try:
        with warnings.catch_warnings():
            # our own limit applies; Pillow's warning would only be noise on stderr
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                check_pixels(path, *image.size, max_pixels)
                image.load()
                return ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as error:
        size = header_size(path)  # Pillow refused before our check could see the size
        if size is not None:
            check_pixels(path, *size, max_pixels)
        raise LpmatteError(f"{path}: refused by Pillow's decompression-bomb check "
                           f"({error})") from None
    except MemoryError:
        # a corrupt chunk length can make Pillow ask for gigabytes (found by fuzzing)
        raise LpmatteError(f"{path}: not a readable image (a corrupt size field asks for "
                           "more memory than there is)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
            IndexError, TypeError, KeyError, struct_error, ZeroDivisionError) as error:
        # Pillow's plugins signal malformed files with any of these
        raise LpmatteError(f"{path}: not a readable image ({_describe(error)})") from None


def header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the header, read by the Pillow plugin that accepts the file,
    without Pillow's bomb check (which ``Image.open`` applies before returning)."""
    Image.init()
    with open(path, "rb") as handle:
        prefix = handle.read(16)
        for name in Image.ID:
            factory, accept = Image.OPEN[name]
            if accept is not None and not accept(prefix):
                continue
            handle.seek(0)
            try:
                return factory(handle, str(path)).size
            except Exception:  # noqa: BLE001 - not this plugin's format; try the next
                continue
    return None


def _describe(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return text[:200] or type(error).__name__


def pil_to_float(image: Image.Image) -> np.ndarray:
    """Pillow image of any mode -> float32 array in [0, 1], HxW or HxWxC (C = 3 or 4)."""
    if image.mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float32) / 65535.0
    if image.mode == "I":  # 32-bit ints: Pillow's mode for some 16-bit PNGs
        array = np.asarray(image, dtype=np.float32)
        return np.clip(array / (65535.0 if array.max() > 255 else 255.0), 0, 1)
    if image.mode == "F":  # 32-bit floats (TIFF): [0, 1] or 0..255, as a float array is read
        return array_to_float(np.asarray(image, dtype=np.float32))
    return np.asarray(eight_bit(image), dtype=np.float32) / 255.0


def is_eight_bit(image: Image.Image) -> bool:
    """Whether ``image`` holds 8 bits per channel (JPEG, most PNGs, WebP, ...), not 16-bit
    or 32-bit integers or floats."""
    return not (image.mode.startswith("I") or image.mode == "F")


def eight_bit(image: Image.Image) -> Image.Image:
    """An 8-bit image in mode L, RGB or RGBA (palettes and other modes converted)."""
    if image.mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode not in ("L", "RGB", "RGBA"):
        return image.convert("RGBA" if "A" in image.mode else "RGB")
    return image


# A float image whose largest value is above this is read as 0..255. Floats meant as [0, 1]
# overshoot it a little after cubic resampling or sharpening (1.046-1.069 on three real
# portraits, cubic 2.2x); read as 0..255 they became a black image and an empty matte.
FLOAT_BYTE_SCALE_ABOVE = 2.0


def array_to_float(array: np.ndarray) -> np.ndarray:
    """Integer or float array -> float32 in [0, 1] (uint16 scaled by 65535, uint8 by 255;
    floats clipped to [0, 1], or divided by 255 first when above
    :data:`FLOAT_BYTE_SCALE_ABOVE`)."""
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        return np.clip(array.astype(np.float32) / 255.0, 0, 1)
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise LpmatteError("the image holds NaN or infinite values")
    if array.size and array.max() > FLOAT_BYTE_SCALE_ABOVE:
        array = array / 255.0  # float images given in 0..255
    return np.clip(array, 0, 1)


def to_rgb(array: np.ndarray) -> np.ndarray:
    """HxW, HxWx1, HxWx3 or HxWx4 float -> HxWx3 (RGBA composited over black is wrong
    for portraits with transparent backgrounds, so the alpha channel is simply dropped)."""
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2)
    if array.ndim == 3 and array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return array[..., :3]
    raise LpmatteError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {array.shape}")


def load_rgb(image, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Path, Pillow image or numpy array -> contiguous float32 HxWx3 RGB in [0, 1].

    A file above ``max_pixels`` is refused before decoding (see :func:`open_image`)."""
    if isinstance(image, (str, os.PathLike)):
        image = open_image(image, max_pixels)
    if isinstance(image, Image.Image):
        array = pil_to_float(image)
    elif isinstance(image, np.ndarray):
        array = array_to_float(image)
    elif _is_tensor(image):
        array = array_to_float(tensor_to_hwc(image))
    else:
        raise LpmatteError(f"unsupported image type {type(image).__name__}")
    return _non_empty(np.ascontiguousarray(to_rgb(array), dtype=np.float32))


def read_rgb(image, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Path, Pillow image or array -> contiguous HxWx3 RGB: uint8 when the input holds 8
    bits per channel (8-bit files and Pillow images, uint8 arrays), which the model reads
    fastest, as bytes; anything else (16-bit, float, tensors) float32 in [0, 1] as
    :func:`load_rgb` gives. The same values as :func:`load_rgb` (uint8 / 255), the same
    checks and errors."""
    if isinstance(image, (str, os.PathLike)):
        image = open_image(image, max_pixels)
    if isinstance(image, Image.Image) and is_eight_bit(image):
        image = np.asarray(eight_bit(image))
    if isinstance(image, np.ndarray) and image.dtype == np.uint8:
        return _non_empty(np.ascontiguousarray(to_rgb(image)))
    return load_rgb(image, max_pixels)


def _non_empty(rgb: np.ndarray) -> np.ndarray:
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise LpmatteError(f"empty image of shape {rgb.shape}")
    return rgb


def _is_tensor(image) -> bool:
    torch = sys.modules.get("torch")  # no tensor can exist unless torch was imported
    return torch is not None and isinstance(image, torch.Tensor)


def tensor_to_hwc(tensor) -> np.ndarray:
    """A PyTorch image, (C, H, W) or (1, C, H, W) as PyTorch lays images out, or (H, W)
    -> numpy (H, W[, C])."""
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise LpmatteError(f"one image at a time: got a batch of {tensor.shape[0]}")
        tensor = tensor[0]
    if tensor.ndim == 3 and tensor.shape[0] not in (1, 3, 4) and tensor.shape[-1] in (1, 3, 4):
        raise LpmatteError(f"a PyTorch image is (C, H, W), got {tuple(tensor.shape)}, which "
                           "looks like (H, W, C): pass tensor.permute(2, 0, 1)")
    tensor = tensor.detach().cpu()
    array = (tensor.float() if tensor.is_floating_point() else tensor).numpy()
    if array.ndim == 3:
        array = array.transpose(1, 2, 0)
    return array


def load_alpha(path: str | os.PathLike) -> np.ndarray:
    """An alpha matte file (8/16-bit gray, or RGBA whose alpha is used) -> float32 HxW in [0, 1]."""
    image = open_image(path)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        return np.asarray(image.convert("RGBA"), dtype=np.float32)[..., 3] / 255.0
    array = pil_to_float(image)
    if array.ndim == 3:
        channels = array[..., :3]
        if not (np.allclose(channels[..., 0], channels[..., 1], atol=1 / 255)
                and np.allclose(channels[..., 0], channels[..., 2], atol=1 / 255)):
            raise LpmatteError(f"{path}: a colour image, not an alpha matte")
        array = channels[..., 0]
    return array.astype(np.float32)


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Float in [0, 1] -> uint8 with rounding; a uint8 array as it is."""
    if isinstance(array, np.ndarray) and array.dtype == np.uint8:
        return array
    return np.clip(np.asarray(array, dtype=np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def save_png(path: str | os.PathLike, array: np.ndarray,
             compression: int = PNG_COMPRESSION) -> None:
    """Save a uint8 HxW (gray), HxWx3 (RGB) or HxWx4 (RGBA) array as PNG, atomically, at
    zlib level ``compression`` (0-9; see :func:`png_bytes`)."""
    data = png_bytes(array, compression)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def png_bytes(array: np.ndarray, compression: int = PNG_COMPRESSION) -> bytes:
    """A uint8 HxW, HxWx3 (RGB) or HxWx4 (RGBA) array as PNG file contents (OpenCV's libpng).
    Levels 1-3 use zlib's run-length strategy (see :data:`PNG_COMPRESSION`), 4-9 its
    default one, 0 stores the pixels uncompressed."""
    params = [cv2.IMWRITE_PNG_COMPRESSION, check_png_compression(compression)]
    if 1 <= compression <= 3:
        params += [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or array.size == 0 or (
            array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise LpmatteError(f"PNG needs a non-empty uint8 HxW, HxWx3 or HxWx4 array, got "
                           f"{array.dtype} {array.shape}")
    if array.ndim == 3:
        code = cv2.COLOR_RGB2BGR if array.shape[2] == 3 else cv2.COLOR_RGBA2BGRA
        array = cv2.cvtColor(array, code)
    ok, data = cv2.imencode(".png", array, params)
    if not ok:  # pragma: no cover - libpng refuses none of the arrays checked above
        raise LpmatteError(f"PNG encoding failed for a {array.shape} array")
    return data.tobytes()


def check_png_compression(level) -> int:
    """``level`` if it is a zlib level (a whole number 0-9), else a one-line error."""
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 9:
        raise LpmatteError(f"PNG compression must be a whole number from 0 to 9 (got "
                           f"{level!r})")
    return level
