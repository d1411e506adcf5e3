"""How the processes serving a call agree: one turn of a call at a time, and word to the process holding its stream.

These are the in-process versions (one gateway process); gateway/calls/redis_store.py has the ones shared through Redis.
"""
from __future__ import annotations

import itertools
import logging
import os
import secrets
import socket
import threading
from typing import Callable, Protocol

log = logging.getLogger(__name__)

# Who this process is, in the store's stream ownership: unique across hosts, restarts and forked workers.
def process_name() -> str:
    """A name for this process no other process (here or on another host) has."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Turn(Protocol):
    """One call's turn, held: `token` grows with every turn of the call (the store's fencing check uses it)."""

    token: int

    def release(self) -> None: ...


class TurnLocks(Protocol):
    """One turn per call at a time, across every process serving the call."""

    def acquire(self, call_sid: str, timeout: float) -> Turn | None: ...


EventHandler = Callable[[str, dict], None]  # (call_sid, event) for the process holding the call's stream


class CallSignals(Protocol):
    """Word to the process holding a call's stream, which must act at once (a recognizer to re-tune, say)."""

    def publish(self, call_sid: str, event: dict) -> None: ...

    def subscribe(self, handler: EventHandler) -> None: ...

    def close(self) -> None: ...


class _LocalTurn:
    def __init__(self, locks: LocalTurnLocks, call_sid: str, lock: threading.Lock, token: int):
        self._locks, self._call_sid, self._lock, self.token = locks, call_sid, lock, token

    def release(self) -> None:
        self._lock.release()
        self._locks._done(self._call_sid)


class LocalTurnLocks:
    """Turn locks in this process: a lock per call, kept while anyone holds or waits for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, tuple[threading.Lock, int]] = {}  # call -> (its lock, holders and waiters)
        self._tokens = itertools.count(1)

    def acquire(self, call_sid: str, timeout: float) -> Turn | None:
        """Wait up to `timeout` seconds for the call's turn; None if another turn still holds it."""
        with self._lock:
            lock, users = self._calls.get(call_sid) or (threading.Lock(), 0)
            self._calls[call_sid] = (lock, users + 1)
        if not lock.acquire(timeout=timeout):
            self._done(call_sid)
            return None
        return _LocalTurn(self, call_sid, lock, next(self._tokens))

    def _done(self, call_sid: str) -> None:
        with self._lock:
            lock, users = self._calls[call_sid]
            if users <= 1:
                del self._calls[call_sid]
            else:
                self._calls[call_sid] = (lock, users - 1)


class LocalSignals:
    """Signals within this process: the handler runs at once, on the publisher's thread."""

    def __init__(self) -> None:
        self._handlers: list[EventHandler] = []

    def publish(self, call_sid: str, event: dict) -> None:
        for handler in list(self._handlers):
            try:
                handler(call_sid, event)
            except Exception:  # one handler's failure must not fail the webhook that published
                log.exception("call %s: handling %s failed", call_sid, event.get("type"))

    def subscribe(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    def close(self) -> None:
        """Nothing listens on a thread here."""


class held_turn:
    """`with held_turn(locks, sid, timeout) as turn:` the call's turn (None if it could not be had in time)."""

    def __init__(self, locks: TurnLocks, call_sid: str, timeout: float):
        self._locks, self._call_sid, self._timeout = locks, call_sid, timeout
        self.turn: Turn | None = None

    def __enter__(self) -> Turn | None:
        self.turn = self._locks.acquire(self._call_sid, self._timeout)
        return self.turn

    def __exit__(self, *exc) -> None:
        if self.turn is not None:
            self.turn.release()
