"""Running the app under uvicorn: logging, a model loaded in the background, and a clean
drain on SIGTERM (stop accepting, finish what is in flight, exit 0)."""

from __future__ import annotations

import logging
import os
import signal
import sys

from lpmatte.serve.limits import ServeLimits

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger("lpmatte.serve")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def share_cores(workers: int) -> None:
    """Give each worker its share of the cores: N workers each running PyTorch's default
    pool (one thread per core) would oversubscribe the CPU N times. Set before the model
    loads, since onnxruntime sizes its sessions from it."""
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def serve(loader, host: str = "127.0.0.1", port: int = 7860,
          limits: ServeLimits | None = None) -> int:
    """Serve the model ``loader()`` returns until SIGTERM or Ctrl-C; the exit code.

    The socket opens at once (so /healthz answers while the model loads); a model that
    fails to load stops the server with exit code 2.
    """
    import uvicorn

    from lpmatte.serve.app import create_app

    setup_logging()
    limits = limits or ServeLimits()
    failed: list[BaseException] = []

    def stop(error: BaseException) -> None:
        failed.append(error)
        server.should_exit = True

    share_cores(limits.workers)
    app = create_app(limits=limits, loader=loader, on_load_error=stop)
    config = uvicorn.Config(app, host=host, port=port, access_log=False,
                            timeout_graceful_shutdown=limits.timeout_s + 5,
                            log_level="info")
    server = uvicorn.Server(config)
    logging.getLogger("lpmatte.serve").info(
        "lpmatte serve on http://%s:%d (workers %d, queue %d, upload %g MB, %d pixels)",
        host, port, limits.workers, limits.max_queue, limits.max_upload_mb, limits.max_pixels)
    # uvicorn drains on SIGTERM, then re-raises the signal under the handler it found;
    # a no-op handler there makes a drained shutdown exit 0 instead of dying by signal
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if failed:
        print(f"lpmatte: error: model failed to load: {failed[0]}", file=sys.stderr)
        return 2
    return 0 if server.started else 1
