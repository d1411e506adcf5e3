"""Writes call events to the history off the turn's path: queued, batched, and lost (counted, logged) if the database fails."""
from __future__ import annotations

import logging
import queue
import threading
import time

from sqlalchemy.exc import SQLAlchemyError

from .. import metrics
from .history import HistoryStore

log = logging.getLogger(__name__)

QUEUE_SIZE = 20_000  # about an hour of events at 150 calls if the database stalls; past it events are dropped
BATCH_SIZE = 500
FLUSH_SECONDS = 0.5  # how far behind the calls the history may be
PRUNE_SECONDS = 3600.0
LOG_EVERY_SECONDS = 30.0  # a database that stays down gets one line per half minute, not one per batch


class HistoryWriter:
    """One daemon thread draining a queue into the database; `add` never blocks."""

    def __init__(self, store: HistoryStore, keep_days: int = 30):
        self.store = store
        self.keep_days = keep_days  # 0: keep every call
        self.lost = 0  # events that never reached the database
        self.written = 0
        self.healthy = True
        self._queue: queue.Queue = queue.Queue(QUEUE_SIZE)
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._pending = 0  # queued and not yet written or given up
        self._logged_at = 0.0
        self._unlogged = 0
        self._thread: threading.Thread | None = None
        self._next_prune = 0.0
        self._schema_ready = False
        self._closing = threading.Event()  # shutting down: write what is queued at once, no batching wait

    def start(self) -> HistoryWriter:
        """Start the thread that writes (once per process, lazily, so a forking server starts it in each worker)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="call-history", daemon=True)
                self._thread.start()
        return self

    def add(self, event: dict) -> None:
        """Queue an event for the database; a full queue drops it (counted) rather than hold a turn."""
        if self._thread is None:
            self.start()
        with self._lock:
            self._pending += 1
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            with self._settled:
                self._pending -= 1
                self._settled.notify_all()
            self._lose(1, "the database is not keeping up (queue full)")

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far has been written or given up (tests, shutdown)."""
        with self._settled:
            return self._settled.wait_for(lambda: self._pending <= 0, timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """At shutdown: write everything queued now, waiting at most `timeout` (the process must exit within its
        graceful timeout); what is still unwritten then is counted lost and logged. True when nothing was lost."""
        self._closing.set()
        if self._thread is None and self._queue.empty():
            return True
        if self._thread is None:
            self.start()
        if self.flush(timeout):
            return True
        with self._lock:
            unwritten = self._pending
        self._lose(unwritten, f"still unwritten {timeout:g} s into the shutdown", always=True)
        return False

    def _run(self) -> None:
        """Batch what is queued, write it, prune now and then; nothing here may end the thread."""
        self._schema()
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + (0.0 if self._closing.is_set() else FLUSH_SECONDS)
            while len(batch) < BATCH_SIZE:  # what is queued now goes in; more is waited for until the deadline
                left = deadline - time.monotonic()
                try:
                    batch.append(self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(batch)
                self._prune_now_and_then()
            except Exception:  # the thread's boundary: anything unexpected is logged and the next batch goes on
                log.exception("call history: writing %d events failed unexpectedly", len(batch))
            finally:
                with self._settled:
                    self._pending -= len(batch)
                    self._settled.notify_all()

    def _schema(self) -> None:
        """Create or migrate the schema before the first write; a database down now is retried at each batch."""
        try:
            self.store.create_schema()
            self._schema_ready = True
        except SQLAlchemyError as exc:
            self._schema_ready = False
            self._failed(exc, "creating the schema")

    def _write(self, batch: list[dict]) -> None:
        if not self._schema_ready:
            self._schema()
            if not self._schema_ready:
                self._lose(len(batch), "the database is unavailable")
                return
        try:
            self.store.write(batch)
        except SQLAlchemyError as exc:
            self._failed(exc, f"writing {len(batch)} events")
            self._lose(len(batch), "the database is unavailable")
            return
        self.written += len(batch)
        if not self.healthy:
            self.healthy = True
            log.warning("call history: the database is back; %d events were lost while it was not", self.lost)

    def _failed(self, exc: Exception, doing: str) -> None:
        """Note a database failure; the pool is dropped so the next batch connects afresh."""
        self.healthy = False
        self.store.engine.dispose()
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_SECONDS:
            self._logged_at = now
            log.error("call history: database unavailable while %s (%s: %s); calls go on, their history is lost "
                      "until it is back", doing, type(exc).__name__, str(exc).splitlines()[0][:200])

    def _lose(self, count: int, why: str, always: bool = False) -> None:
        """Count lost events; one log line at most every LOG_EVERY_SECONDS (`always`: the last word, at shutdown)."""
        metrics.call_events_lost(count, "history")
        with self._lock:
            self.lost += count
            self._unlogged += count
            now = time.monotonic()
            if now - self._logged_at < LOG_EVERY_SECONDS and self.lost != count and not always:
                return
            self._logged_at, unlogged, self._unlogged = now, self._unlogged, 0
        log.error("call history: %d events not stored (%s; %d lost in all); calls are not affected", unlogged, why,
                  self.lost)

    def _prune_now_and_then(self) -> None:
        """Delete calls older than CALL_HISTORY_DAYS at the first write, then hourly."""
        if not self.keep_days or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_SECONDS
        try:
            removed = self.store.prune(self.keep_days)
        except SQLAlchemyError as exc:
            self._failed(exc, "pruning old calls")
            return
        if removed:
            log.info("call history: removed %d calls older than %d days", removed, self.keep_days)
