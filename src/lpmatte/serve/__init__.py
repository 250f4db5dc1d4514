"""``lpmatte serve``: an HTTP API and an offline web page over one loaded model.

Needs the ``serve`` extra (FastAPI, uvicorn, python-multipart). :func:`create_app` builds the
ASGI app from a :class:`~lpmatte.Matter` (or a loader) and :class:`ServeLimits`;
:func:`lpmatte.serve.server.serve` runs it under uvicorn.
"""

from lpmatte.serve.limits import ServeLimits

__all__ = ["ServeLimits", "create_app"]


def create_app(*args, **kwargs):
    """See :func:`lpmatte.serve.app.create_app` (imported lazily: FastAPI is an extra)."""
    from lpmatte.serve.app import create_app as _create_app

    return _create_app(*args, **kwargs)
