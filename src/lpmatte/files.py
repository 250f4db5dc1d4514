"""Writing outputs atomically: a file or folder appears under its final name only complete.

The lowest layer (like :mod:`lpmatte.errors`): weights, checkpoints, exports, manifests and
media outputs all write through here, so none of them needs another's package for it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from lpmatte.errors import LpmatteError

TEMP_MARK = ".part-"  # in every temporary output name: ``.<name>.part-<random>[suffix]``


def is_temporary(path: Path) -> bool:
    """True for a temporary output of :class:`AtomicOutput` (a leftover if its run died)."""
    return path.name.startswith(".") and TEMP_MARK in path.name


class AtomicOutput:
    """A temporary file or folder next to ``path`` that becomes ``path`` only on success.

    ``with AtomicOutput(path) as tmp:`` write to ``tmp``; if the block raises (or is
    interrupted) ``tmp`` is removed and ``path`` is untouched, so a file under its final name
    is always complete. The temporary name keeps the suffix, so writers pick the format from it.
    An existing folder is replaced by moving it aside first.
    """

    def __init__(self, path, folder: bool = False):
        self.path, self.folder = Path(path), folder
        if not folder and self.path.is_dir():
            raise LpmatteError(f"{self.path}: is a folder, expected a file name")

    def __enter__(self) -> Path:
        make_parent(self.path)
        prefix = f".{self.path.name}{TEMP_MARK}"
        if self.folder:
            self.tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=self.path.parent))
        else:
            fd, name = tempfile.mkstemp(prefix=prefix, suffix=self.path.suffix,
                                        dir=self.path.parent)
            os.close(fd)
            self.tmp = Path(name)
        return self.tmp

    def __exit__(self, kind, error, traceback) -> None:
        if kind is not None:
            remove(self.tmp)
        elif self.folder:
            self._replace_folder()
        else:
            try:
                os.chmod(self.tmp, 0o666 & ~_umask())  # mkstemp makes 0600
                os.replace(self.tmp, self.path)
            except BaseException:
                remove(self.tmp)
                raise

    def _replace_folder(self) -> None:
        if not self.path.exists():
            os.replace(self.tmp, self.path)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.old-", dir=self.path.parent))
        os.replace(self.path, old / "previous")
        os.replace(self.tmp, self.path)
        shutil.rmtree(old, ignore_errors=True)


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(tmp_path)`` inside an :class:`AtomicOutput` for ``path``."""
    with AtomicOutput(path) as tmp:
        write(str(tmp))


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def make_parent(path: Path) -> None:
    make_folder(path.parent)


def make_folder(folder: Path) -> None:
    """``mkdir -p``; a user's bad path (e.g. below a file) is a one-line error."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LpmatteError(f"{folder}: cannot create this folder ({error.strerror})") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
