"""Where a video output goes: a file or a frame folder that appears only complete, and
never over something that is not ours to replace."""

from __future__ import annotations

from pathlib import Path

from lpmatte import files
from lpmatte.errors import LpmatteError
from lpmatte.media.video.writer import FRAME_NAME_PATTERN


def is_frame_folder(path: Path) -> bool:
    """True if ``path`` is an empty folder or holds only PNG frames named as ours."""
    return path.is_dir() and all(
        entry.is_file() and FRAME_NAME_PATTERN.fullmatch(entry.name) for entry in path.iterdir())


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
