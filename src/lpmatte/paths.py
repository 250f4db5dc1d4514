"""Where lpmatte keeps what it can rebuild (ONNX exports of a model, generated trimaps)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$LPMATTE_CACHE``, else ``$XDG_CACHE_HOME/lpmatte``, else ``~/.cache/lpmatte``.
    ``$LPMATTE_CACHE_DIR``, an older name, is read when ``$LPMATTE_CACHE`` is unset."""
    for variable in ("LPMATTE_CACHE", "LPMATTE_CACHE_DIR"):
        if os.environ.get(variable):
            return Path(os.environ[variable])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lpmatte"
