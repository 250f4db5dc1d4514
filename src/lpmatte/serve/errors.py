"""The one exception the server turns into a JSON error response."""

from __future__ import annotations


class HTTPError(Exception):
    """Answer ``status`` with ``{"error": message}`` (and ``headers``, e.g. Retry-After)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
