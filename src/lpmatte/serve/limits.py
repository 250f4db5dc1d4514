"""What one server accepts and how much work it takes on at once."""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class ServeLimits:
    """``workers`` inferences run at once; ``max_queue`` more wait; beyond that: 503.

    ``max_upload_mb`` caps the request body (checked while it streams in) and
    ``max_pixels`` the image's declared width x height (checked from its header, before
    any pixel is decoded). ``timeout_s`` bounds one request from first byte to answer.
    """

    workers: int = 2
    max_queue: int = 8
    max_upload_mb: float = 20.0
    max_pixels: int = 25_000_000
    timeout_s: float = 60.0
    retry_after_s: int = 2

    def __post_init__(self):
        if self.workers < 1 or self.max_queue < 0:
            raise ValueError("workers must be >= 1 and max_queue >= 0")
        if self.max_upload_mb <= 0 or self.max_pixels < 1 or self.timeout_s <= 0:
            raise ValueError("max_upload_mb, max_pixels and timeout_s must be positive")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)
