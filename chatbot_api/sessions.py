"""Per-call dialogue state kept by session id, forgotten after a period of inactivity."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable

Clock = Callable[[], float]


class SessionStore:
    """Thread-safe in-memory map of session id -> dialogue state name, with an inactivity TTL.

    The interface is deliberately tiny (`get`, `put`, `forget`) and stores plain strings, so
    a Redis-backed store (GET / SET EX / DEL) can replace it without touching the dialogue.
    Expiry is lazy: an expired session reads as absent, and a sweep at most every
    `sweep_interval` seconds drops abandoned sessions; beyond `max_sessions` the least recently
    active one is dropped at once, so a flood of new session ids cannot fill memory within the TTL.
    """

    def __init__(self, ttl_seconds: float, clock: Clock = time.monotonic, sweep_interval: float | None = None,
                 max_sessions: int = 10_000) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds!r}")
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {max_sessions!r}")
        self.max_sessions = max_sessions
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._sweep_interval = ttl_seconds if sweep_interval is None else sweep_interval
        self._lock = threading.Lock()
        # session id -> (state, last activity), least recently active first
        self._states: OrderedDict[str, tuple[str, float]] = OrderedDict()
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
            self._states.move_to_end(session_id)
            while len(self._states) > self.max_sessions:
                self._states.popitem(last=False)

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


class RedisSessionStore:
    """The same interface in Redis (REDIS_URL): GET / SET EX / DEL, so several chatbot workers share every dialogue.
    Redis's own expiry is the inactivity TTL; its maxmemory policy, not MAX_SESSIONS, bounds memory."""

    PREFIX = "chatline:chatbot-session:"

    def __init__(self, url: str, ttl_seconds: float) -> None:
        from chatline_common.redis_client import redis_client  # only with REDIS_URL: redis-py is not needed without

        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds!r}")
        self.ttl_seconds = ttl_seconds
        self._redis = redis_client(url, decode_responses=True)

    def get(self, session_id: str) -> str | None:
        """The session's state, or None if it is unknown or has expired."""
        return self._redis.get(self.PREFIX + session_id)

    def put(self, session_id: str, state: str) -> None:
        """Record the session's state and mark it active now."""
        self._redis.set(self.PREFIX + session_id, state, ex=max(1, int(self.ttl_seconds)))

    def forget(self, session_id: str) -> None:
        """Drop the session (the call ended); unknown ids are fine."""
        self._redis.delete(self.PREFIX + session_id)
