"""Listing image folders and pairing their files by stem."""

from __future__ import annotations

from pathlib import Path

from lpmatte.errors import LpmatteError
from lpmatte.media.image_io import IMAGE_SUFFIXES


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a folder, else an error naming it and what was expected there."""
    if not path.is_dir():
        raise LpmatteError(f"{path}: no such folder (expected {what})")
    return path


def files_by_stem(folder: str | Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> dict:
    """``{stem: path}`` of the image files directly in ``folder``, sorted by stem.

    Hidden files (``.name``, e.g. half-written ``.x.part.png``) are ignored. Two files
    with one stem (``a.jpg`` and ``a.png``) are an error, since pairing would be ambiguous.
    """
    folder = Path(folder)
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in suffixes or not path.is_file():
            continue
        if path.stem in found:
            raise LpmatteError(f"{folder}: two files named '{path.stem}' "
                               f"({found[path.stem].name}, {path.name}); keep one")
        found[path.stem] = path
    return dict(sorted(found.items()))


def describe_missing(names: list[str], limit: int = 10) -> str:
    """``"3: a, b, c"`` or ``"25: a, b, ... (15 more)"``."""
    shown = ", ".join(names[:limit])
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return f"{len(names)}: {shown}{more}"


def pair_by_stem(images: dict, others: dict, images_dir: Path, others_dir: Path) -> None:
    """Raise unless every stem of ``images`` has a file in ``others``; names the missing."""
    missing = [stem for stem in images if stem not in others]
    if missing:
        raise LpmatteError(f"{others_dir}: no file for {describe_missing(missing)} "
                           f"(stems of the files in {images_dir})")
