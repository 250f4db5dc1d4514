"""PyAV, the optional ``video`` extra: imported on first use, with a one-line error if absent."""

from __future__ import annotations

from lpmatte.errors import LpmatteError


def import_av():
    """Import PyAV lazily (it is the optional ``video`` extra)."""
    try:
        import av
    except ImportError:
        raise LpmatteError("video needs PyAV: pip install 'lpmatte[video]' (or: pip install av)"
                           ) from None
    return av
