"""Per-call dialogue state kept by session id, forgotten after a period of inactivity."""
from __future__ import annotations

import threading
import time
from typing import Callable

Clock = Callable[[], float]


class SessionStore:
    """Thread-safe in-memory map of session id -> dialogue state name, with an inactivity TTL.

    The interface is deliberately tiny (`get`, `put`, `forget`) and stores plain strings, so
    a Redis-backed store (GET / SET EX / DEL) can replace it without touching the dialogue.
    Expiry is lazy: an expired session reads as absent, and a sweep at most every
    `sweep_interval` seconds drops abandoned sessions so memory stays bounded.
    """

    def __init__(self, ttl_seconds: float, clock: Clock = time.monotonic, sweep_interval: float | None = None) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds!r}")
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._sweep_interval = ttl_seconds if sweep_interval is None else sweep_interval
        self._lock = threading.Lock()
        self._states: dict[str, tuple[str, float]] = {}  # session id -> (state, last activity)
        self._last_sweep = clock()

    def get(self, session_id: str) -> str | None:
        """The session's state, or None if it is unknown or has expired."""
        with self._lock:
            now = self._clock()
            self._sweep_if_due(now)
            entry = self._states.get(session_id)
            if entry is None:
                return None
            state, last_active = entry
            if self._expired(last_active, now):
                del self._states[session_id]
                return None
            return state

    def put(self, session_id: str, state: str) -> None:
        """Record the session's state and mark it active now."""
        with self._lock:
            now = self._clock()
            self._sweep_if_due(now)
            self._states[session_id] = (state, now)

    def forget(self, session_id: str) -> None:
        """Drop the session (the call ended); unknown ids are fine."""
        with self._lock:
            self._states.pop(session_id, None)

    def __len__(self) -> int:
        """Number of sessions held, including expired ones not yet swept."""
        with self._lock:
            return len(self._states)

    def sweep(self) -> int:
        """Drop every expired session now; return how many were dropped."""
        with self._lock:
            return self._sweep(self._clock())

    def _expired(self, last_active: float, now: float) -> bool:
        return now - last_active >= self.ttl_seconds

    def _sweep_if_due(self, now: float) -> None:
        if now - self._last_sweep >= self._sweep_interval:
            self._sweep(now)

    def _sweep(self, now: float) -> int:
        expired = [sid for sid, (_, last_active) in self._states.items() if self._expired(last_active, now)]
        for session_id in expired:
            del self._states[session_id]
        self._last_sweep = now
        return len(expired)
