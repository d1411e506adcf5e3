"""One call's work run in order on a shared pool: at most one task at a time per queue, no thread held while idle.

The threads every call shares (the stream reader, the speech loop) must never wait on the call's state, which with
Redis is a network round trip (seconds while Redis is away): what touches the store goes through one of these.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import Executor
from typing import Callable

log = logging.getLogger(__name__)


class SerialWork:
    """A call's queue of work: `submit` returns at once; the work runs on `executor`, one item after another."""

    def __init__(self, executor: Executor, failed: str, on_error: Callable[[], None] | None = None) -> None:
        self._executor, self._failed, self._on_error = executor, failed, on_error  # failed: the log line
        self._lock = threading.Lock()
        self._work: deque[Callable[[], None]] = deque()
        self._running = False

    def submit(self, work: Callable[[], None]) -> None:
        """Queue `work` behind what is queued, starting the one task that runs them if none is."""
        with self._lock:
            self._work.append(work)
            if self._running:
                return
            self._running = True
        self._executor.submit(self._run)

    def _run(self) -> None:
        """The executor's boundary: run the queued work in order; a failure is logged, never lost in a Future."""
        while True:
            with self._lock:
                if not self._work:
                    self._running = False
                    return
                work = self._work.popleft()
            try:
                work()
            except Exception:
                log.exception("%s", self._failed)
                if self._on_error is not None:
                    self._on_error()
