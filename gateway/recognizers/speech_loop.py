"""One asyncio event loop thread per process for every call's speech stream, whichever provider hears it."""
from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any, Callable

log = logging.getLogger(__name__)

THREAD_NAME = "speech-loop"

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_pid = os.getpid()
_due: list[Callable[[], None]] = []  # callbacks for the loop's next wake-up (see run_soon)
_due_lock = threading.Lock()
_wake_pending = False
_on_new_loop: list[Callable[[], None]] = []  # what belongs to a dead loop: dropped when a new one starts


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def _log_exception(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """The loop's last resort: log what no task boundary caught, and keep the loop running for the other calls."""
    log.error("speech event loop: %s", context.get("message", "unhandled error"), exc_info=context.get("exception"))


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    """The loop thread: run every call's stream tasks until the process exits."""
    asyncio.set_event_loop(loop)
    while True:
        try:
            loop.run_forever()
        except Exception:  # run_forever itself should not raise; if it ever does, the calls must not go deaf
            log.exception("speech event loop stopped unexpectedly; running it again")


def event_loop() -> asyncio.AbstractEventLoop:
    """The process's speech loop, its thread started on first use (again in a forked child, whose copy is dead)."""
    global _loop, _loop_pid
    loop = _loop
    if loop is not None and _loop_pid == _pid:
        return loop  # the common case, on every feed: no lock
    with _lock:
        if _loop is None or _loop_pid != _pid:
            loop = asyncio.new_event_loop()
            loop.set_exception_handler(_log_exception)
            threading.Thread(target=_serve, args=(loop,), name=THREAD_NAME, daemon=True).start()
            _loop, _loop_pid = loop, _pid
            for forget in _on_new_loop:
                forget()
        return _loop


def call_soon(callback: Callable[..., None], *args: Any) -> None:
    """Run `callback(*args)` on the loop thread, from any thread."""
    loop = event_loop()
    if _on_loop(loop):
        callback(*args)
    else:
        loop.call_soon_threadsafe(callback, *args)


def run_soon(callback: Callable[[], None]) -> None:
    """Run `callback()` on the loop thread soon, from any thread: every call's audio shares one wake-up of the loop.

    Waking the loop costs a self-pipe write and a loop pass; with hundreds of calls each feeding every 100 ms, the
    callbacks due by the time the loop gets to them run in one pass (an idle loop still wakes at once).
    """
    global _wake_pending
    with _due_lock:
        _due.append(callback)
        if _wake_pending:
            return
        _wake_pending = True
    event_loop().call_soon_threadsafe(_run_due)


def _run_due() -> None:
    """Run the callbacks due; each one's failure is logged and costs only that callback."""
    global _wake_pending
    with _due_lock:
        due = _due[:]
        _due.clear()
        _wake_pending = False
    for callback in due:
        try:
            callback()
        except Exception:
            log.exception("speech loop callback failed")


def run_on_loop(callback: Callable[[], None], timeout: float = 5.0) -> None:
    """Run `callback()` on the loop thread and wait until it has run (at once when already on it)."""
    loop = event_loop()
    if _on_loop(loop):
        callback()
        return
    done = threading.Event()

    def run() -> None:
        try:
            callback()
        finally:
            done.set()

    loop.call_soon_threadsafe(run)
    if not done.wait(timeout):
        log.warning("speech event loop did not answer within %g s", timeout)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def forget_on_new_loop(callback: Callable[[], None]) -> None:
    """Have `callback()` drop what belonged to the old loop (channels, clients) whenever a new loop starts."""
    _on_new_loop.append(callback)


class AudioInbox:
    """Caller audio on its way from the websocket thread to a recognizer on the loop: `put` is cheap (one drain is
    scheduled at a time, sharing the loop's wake-up with other calls), and nothing passes once it is closed."""

    def __init__(self, drain: Callable[[bytes], None]):
        self._drain = drain  # called on the loop thread with the audio put since the last drain
        self._lock = threading.Lock()
        self._audio = bytearray()
        self._scheduled = self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, mulaw: bytes) -> None:
        """Queue audio for the loop (any thread)."""
        with self._lock:
            if self._closed:
                return
            self._audio += mulaw
            if self._scheduled:
                return
            self._scheduled = True
        run_soon(self._take)

    def close(self) -> bool:
        """Let nothing more through; False if it was closed already."""
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            self._audio.clear()
            return True

    def _take(self) -> None:
        with self._lock:
            self._scheduled = False
            if self._closed or not self._audio:
                return
            audio = bytes(self._audio)
            self._audio.clear()
        self._drain(audio)


class LoopRecognizer:
    """The public half of a recognizer whose streams live on the shared loop: each method may be called from any
    thread and only hands work to the loop. A subclass sets `language`, `_hints`, `_inbox` (an AudioInbox) and
    `_health` (a StreamHealth), and supplies the loop-thread steps `_begin`, `_shutdown`, `_restart`,
    `_hints_changed`; `_emit` and `_report_health` pass results and health on from the loop thread."""

    language: str
    _hints: tuple[str, ...]
    _inbox: AudioInbox
    _health: Any

    def start(self, on_result: Callable, on_health: Callable | None = None) -> None:
        """Open the first stream on the shared loop; `on_health(False)`/`(True)` tell of an outage and its end."""
        self._on_result, self._on_health = on_result, on_health
        self._health.on_change = self._report_health
        call_soon(self._begin)

    def feed(self, mulaw: bytes) -> None:
        """Queue caller audio for the loop (a wake-up shared with other calls): cheap, for the websocket thread."""
        self._inbox.put(mulaw)

    def set_hints(self, hints) -> None:
        """Use new hints from the next stream on (or the open one, where the provider takes them there)."""
        hints = tuple(hints)
        if hints != self._hints:
            self._hints = hints
            call_soon(self._hints_changed)

    def set_language(self, language: str) -> None:
        """Recognize another language from now on: a new stream, re-sending the audio not yet finalized."""
        if language != self.language:
            self.language = language
            call_soon(self._restart)

    def close(self) -> None:
        """End the stream and its task (idempotent); once this returns, no result or health report is delivered."""
        if not self._inbox.close():
            return
        # Waits for the loop: a result being delivered right now finishes first, and none follows.
        run_on_loop(self._shutdown)

    def _report_health(self, ok: bool) -> None:
        """Pass a health change on unless the recognizer was closed meanwhile."""
        if not self._inbox.closed and self._on_health is not None:
            self._on_health(ok)

    def _emit(self, transcript) -> None:
        """Deliver a result unless the recognizer was closed meanwhile; a failing callback costs only that result."""
        if self._inbox.closed or self._on_result is None:
            return
        try:
            self._on_result(transcript)
        except Exception:  # the callback's boundary: the stream goes on
            log.exception("speech result callback failed")
