"""A bounded pool for inference: ``workers`` threads, at most ``max_queue`` jobs waiting.

Threads, not processes: PyTorch and onnxruntime release the GIL inside their kernels, one
model in memory serves every worker, and nothing has to be pickled across processes.
Admission is counted here rather than in the executor (whose queue is unbounded): a job
holds its slot until it really ends, so requests that time out cannot pile up work.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor


class QueueFull(Exception):
    """Every worker is busy and the queue is full: the caller should answer 503."""


class InferencePool:
    def __init__(self, workers: int, max_queue: int):
        self.workers = workers
        self.capacity = workers + max_queue
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="lpmatte-infer")
        self._lock = threading.Lock()
        self._busy = 0  # admitted jobs, running or waiting
        self._closed = False

    @property
    def busy(self) -> int:
        return self._busy

    def check_room(self) -> None:
        """QueueFull now if a job would be refused, so a busy server need not read a body."""
        if self._closed or self._busy >= self.capacity:
            raise QueueFull

    async def run(self, function, *args, timeout: float | None = None):
        """``function(*args)`` on a worker; raises QueueFull at once when no slot is free
        and TimeoutError after ``timeout`` seconds. A caller that gives up (timeout,
        cancellation) drops its job if it has not started yet."""
        future = self._submit(function, *args)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        finally:
            future.cancel()  # no-op once finished; stops a queued job if we gave up on it

    def _submit(self, function, *args) -> Future:
        with self._lock:
            if self._closed or self._busy >= self.capacity:
                raise QueueFull
            self._busy += 1
        try:
            future = self._executor.submit(function, *args)
        except RuntimeError:  # the executor shut down between the check and here
            self._release()
            raise QueueFull from None
        future.add_done_callback(self._release)
        return future

    def _release(self, _future=None) -> None:
        with self._lock:
            self._busy -= 1

    def shutdown(self) -> None:
        """Refuse new jobs, finish the admitted ones."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=True)
