"""Background threads with small bounded queues, so decoding, inference and encoding overlap.

:func:`prefetch` runs a producer (a decoder) ahead of its consumer; :class:`BackgroundWorker`
runs a consumer (an encoder) behind its producer. Both hand a thread's exception to the
calling thread, and both stop their thread when the caller stops.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_STOP = object()


def prefetch(items: Iterator, maxsize: int = 8) -> Iterator:
    """Iterate ``items`` in a background thread, up to ``maxsize`` items ahead.

    Exceptions raised by ``items`` are re-raised in the consumer; closing the returned
    generator (or dropping it) stops the thread.
    """
    buffer: queue.Queue = queue.Queue(maxsize)
    stop = threading.Event()

    def produce():
        try:
            for item in items:
                if not _put(buffer, item, stop):
                    return
            _put(buffer, _STOP, stop)
        except BaseException as error:  # handed to the consumer, which re-raises it
            _put(buffer, _Failure(error), stop)

    thread = threading.Thread(target=produce, name="lpmatte-decode", daemon=True)
    thread.start()
    try:
        while (item := buffer.get()) is not _STOP:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


@dataclass
class _Failure:
    error: BaseException


def _put(buffer: queue.Queue, item, stop: threading.Event) -> bool:
    """Put ``item`` unless ``stop`` is set first; True if it was put."""
    while not stop.is_set():
        try:
            buffer.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class BackgroundWorker:
    """Call ``work(item)`` for every :meth:`put` item, in order, in one background thread.

    An exception in ``work`` is re-raised by the next :meth:`put` or by :meth:`finish`.
    """

    def __init__(self, work: Callable, maxsize: int = 8, name: str = "lpmatte-encode"):
        self.work = work
        self.queue: queue.Queue = queue.Queue(maxsize)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self):
        while (item := self.queue.get()) is not _STOP:
            if self.error is None and not self.stop.is_set():
                try:
                    self.work(item)
                except BaseException as error:
                    self.error = error

    def _raise_error(self):
        if self.error is not None:
            raise self.error

    def put(self, item) -> None:
        self._raise_error()
        self.queue.put(item)  # blocks while the queue is full: decoding waits for encoding

    def finish(self) -> None:
        """Wait until every item is done; re-raise the worker's exception, if any."""
        self.queue.put(_STOP)
        self.thread.join()
        self._raise_error()

    def cancel(self) -> None:
        """Skip the remaining items and wait for the thread to end."""
        self.stop.set()
        self.queue.put(_STOP)
        self.thread.join()
