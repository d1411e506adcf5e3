"""One thread reads every live Media Stream's websocket, each a batch of messages every 100 ms.

Why not a thread per stream: each of 300 streams' threads woke ten times a second to read its socket, and every
wake-up is a handover of the GIL (a quarter of the process's busy time in py-spy's --gil profile at 300 calls,
all in the sleep between reads). Here one wake-up every 100 ms reads every socket that has data (epoll says which),
in passes that never hand the GIL over between streams. The streams are spread over ten slots read one after
another, a slot every 10 ms: each stream is still read every 100 ms, but the work comes in ten small passes rather
than one long one, so a turn (or a transcript) waiting for the GIL waits behind a tenth of the streams, and the
audio the passes feed reaches the recognizers' loop spread out too. The stream's own request thread, which gunicorn holds
for the connection anyway, blocks without waking until its stream is over, then finishes it (releases the call,
sends any last call update) on its own time, so nothing slow ever runs on the shared pass.
"""
from __future__ import annotations

import enum
import itertools
import logging
import os
import selectors
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from .websocket import ConnectionClosed, WebSocket

log = logging.getLogger(__name__)

# Twilio sends a frame every 20 ms: five of them (ten with both tracks) per read. The recognizers send audio in
# 100 ms batches anyway, so reading no more often than this adds no delay to recognition.
READ_INTERVAL_SECONDS = 0.1
SLOTS = 10  # the streams are read a tenth at a time, one slot every READ_INTERVAL_SECONDS / SLOTS
SILENCE_SECONDS = 60  # a minute with no message means the peer is gone


class Ended(enum.Enum):
    """Why a stream's reading stopped."""

    DONE = "done"  # the handler has finished with the stream (a stop message, a refusal, its call gone)
    CLOSED = "closed"  # the peer closed the websocket, or the connection broke
    SILENT = "silent"  # nothing arrived for SILENCE_SECONDS


class Batches(Protocol):
    """What one stream does with its messages (on the reader's thread: it must never block)."""

    def take(self, messages: list) -> bool:
        """Handle one read's messages; False once the stream is over."""

    @property
    def finished(self) -> bool:
        """True once the stream should stop being read although nothing ended it on the socket."""


@dataclass(eq=False)
class _Reading:
    ws: WebSocket
    batches: Batches
    last_message: float
    ended: Ended | None = None
    done: threading.Event = field(default_factory=threading.Event)


class SocketReader:
    """The process's one reader of stream sockets; `read` is called from each stream's request thread."""

    def __init__(self, interval: float = READ_INTERVAL_SECONDS, silence_seconds: float = SILENCE_SECONDS,
                 slots: int = SLOTS):
        self.interval, self.silence_seconds, self.slots = interval, silence_seconds, slots
        self._lock = threading.Lock()
        self._arriving: list[_Reading] = []  # registered by request threads, taken in by the reader's next pass
        self._selectors: list[selectors.BaseSelector] = []  # one per slot
        self._pid: int | None = None  # the process whose thread runs the reader (a forked child starts its own)

    def start(self) -> None:
        """Start the reader's thread (once per process; `read` starts it too)."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid, self._arriving = os.getpid(), []
            self._selectors = [selectors.DefaultSelector() for _ in range(self.slots)]
            threading.Thread(target=self._run, args=(self._selectors,), name="stream-reader", daemon=True).start()

    def read(self, ws: WebSocket, batches: Batches) -> Ended:
        """Hand `ws` to the reader and wait, without waking, until its stream is over; returns why."""
        self.start()
        reading = _Reading(ws, batches, time.monotonic())
        with self._lock:
            self._arriving.append(reading)
        reading.done.wait()
        return reading.ended or Ended.DONE

    @property
    def streams(self) -> int:
        """How many streams are being read now."""
        return sum(len(selector.get_map()) for selector in self._selectors)

    def _run(self, slots: list[selectors.BaseSelector]) -> None:
        """The reader's thread: a slot's pass every interval / slots, for as long as the process lives."""
        tick = self.interval / len(slots)
        due = time.monotonic()
        for slot in itertools.cycle(slots):
            try:
                self._take_arriving(slots)
                self._pass(slot, time.monotonic())
            except Exception:  # the thread's boundary: one pass's failure must not leave every stream unread
                log.exception("stream reader: a pass failed; reading on")
            due = max(due + tick, time.monotonic() - self.interval)  # behind by a whole round: start afresh
            time.sleep(max(0.0, due - time.monotonic()))

    def _take_arriving(self, slots: list[selectors.BaseSelector]) -> None:
        """New streams join the slot with the fewest, so every slot's pass is about as long."""
        with self._lock:
            arriving, self._arriving = self._arriving, []
        for reading in arriving:
            selector = min(slots, key=lambda slot: len(slot.get_map()))
            try:
                selector.register(reading.ws.sock, selectors.EVENT_READ, reading)
            except (OSError, ValueError):  # the socket closed before it got here
                self._end(selector, reading, Ended.CLOSED, registered=False)

    def _pass(self, selector: selectors.BaseSelector, now: float) -> None:
        """Read every stream of one slot that has data, and check the others for their end."""
        ready = {key.data for key, _ in selector.select(0)}
        for key in list(selector.get_map().values()):
            reading = key.data
            try:
                ended = self._read(reading, now) if reading in ready else self._idle(reading, now)
            except Exception:  # one stream's boundary: it ends, the others are read on
                log.exception("stream reader: reading a stream failed; ending it")
                ended = Ended.DONE
            if ended is not None:
                self._end(selector, reading, ended)

    def _read(self, reading: _Reading, now: float) -> Ended | None:
        try:
            messages = reading.ws.receive(timeout=0)
        except ConnectionClosed:
            return Ended.CLOSED
        if messages:
            reading.last_message = now
            if not reading.batches.take(messages):
                return Ended.DONE
        if not reading.ws.connected:  # the peer's close frame came in this read (or ours, for a message too big)
            return Ended.CLOSED
        return self._idle(reading, now)

    def _idle(self, reading: _Reading, now: float) -> Ended | None:
        if reading.batches.finished:
            return Ended.DONE
        if now - reading.last_message >= self.silence_seconds:
            return Ended.SILENT
        return None

    @staticmethod
    def _end(selector: selectors.BaseSelector, reading: _Reading, ended: Ended, registered: bool = True) -> None:
        if registered:
            selector.unregister(reading.ws.sock)
        reading.ended = ended
        reading.done.set()
