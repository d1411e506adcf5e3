"""Call state in Redis (REDIS_URL), so every gateway process serves every call; its turn locks and signals are in
redis_coordination.py."""
from __future__ import annotations

import json
import threading
import time
from typing import Callable

import redis

from chatline_common.redis_client import redis_client

from .store import (FORGET_ENDED_SECONDS, FORGET_OPEN_SECONDS, CallState, CallStore, Change, add_to_history,
                    cut_in_history)

PREFIX = "chatline:"
STREAMS = PREFIX + "streams"  # call -> the process holding its stream: where a dead process's streams are found
ALIVE = PREFIX + "alive:"  # + process name: set while the process beats (see stream_recovery.py)


def connect(url: str) -> redis.Redis:
    """A client for REDIS_URL (the project's one Redis client factory, shared with the sample chatbot)."""
    return redis_client(url)


# Compare-and-set a call's state: write ARGV[2] only if the call still holds ARGV[1], the value the change was computed
# from. One round trip where WATCH/GET/MULTI/EXEC took three; a call another process changed meanwhile comes back
# with its current value, so the change is computed again from that.
COMPARE_AND_SET = """
local now = redis.call('GET', KEYS[1])
if not now then return {0} end
if now ~= ARGV[1] then return {1, now} end
if ARGV[2] ~= ARGV[1] then
    if ARGV[3] ~= '0' then
        redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
    else
        redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
    end
end
return {2}
"""
_UNKNOWN, _CHANGED_MEANWHILE, _WRITTEN = 0, 1, 2
SEEN_MOST = 4096  # calls whose last seen value this process keeps: far more than one process streams


class RedisCallStore(CallStore):
    """Each call is one JSON value, changed by compare-and-set against the value this process last saw of it."""

    def __init__(self, client: redis.Redis, clock: Callable[[], float] = time.time,
                 forget_after_seconds: float = FORGET_ENDED_SECONDS,
                 forget_open_after_seconds: float = FORGET_OPEN_SECONDS):
        self._redis = client
        self._clock = clock
        self._forget_after = int(forget_after_seconds)
        self._forget_open_after = int(forget_open_after_seconds)
        self._compare_and_set = client.register_script(COMPARE_AND_SET)
        self._seen = _SeenValues(SEEN_MOST)

    def now(self) -> float:
        """Wall-clock seconds: every process's clock, kept in step by NTP."""
        return self._clock()

    @staticmethod
    def _key(call_sid: str) -> str:
        return f"{PREFIX}call:{call_sid}"

    def open(self, call_sid: str, caller: str = "", called: str = "") -> CallState:
        """Register a call (idempotent: SET NX keeps the first state a retried webhook would overwrite)."""
        state = CallState(call_sid, caller, called, started_at=self._clock())
        raw = _encode(state)
        if self._redis.set(self._key(call_sid), raw, nx=True, ex=self._forget_open_after):
            self._seen.keep(call_sid, raw.encode(), state)
            return state
        return self.get(call_sid) or state

    def get(self, call_sid: str) -> CallState | None:
        """The call's state, or None if unknown (or expired)."""
        raw = self._redis.get(self._key(call_sid))
        if raw is None:
            self._seen.forget(call_sid)
            return None
        return self._seen.keep(call_sid, raw)

    def _change(self, call_sid: str, change: Change) -> tuple[CallState | None, CallState | None]:
        """Apply `change` atomically: computed from the value last seen here (read first if none), and computed again
        from the current value whenever another process changed the call meanwhile."""
        seen = self._seen.get(call_sid)
        if seen is None:
            raw = self._redis.get(self._key(call_sid))
            if raw is None:
                return None, None
            seen = raw, self._seen.keep(call_sid, raw)
        raw, before = seen
        while True:
            after = change(before, self._clock())
            new = raw if after == before else _encode(after).encode()
            expire = self._forget_after if after.ended and not before.ended else 0  # then gone, after late events
            answer = self._compare_and_set(keys=[self._key(call_sid)], args=[raw, new, expire])
            if answer[0] == _WRITTEN:
                if new is raw:
                    return before, before
                self._seen.keep(call_sid, new, after)
                return before, after
            if answer[0] == _UNKNOWN:
                self._seen.forget(call_sid)
                return None, None
            raw = answer[1]  # _CHANGED_MEANWHILE: the change is computed again from the current value
            before = self._seen.keep(call_sid, raw)

    def __len__(self) -> int:
        return sum(1 for _ in self._redis.scan_iter(match=f"{PREFIX}call:*", count=1000))

    # ---- the chat history: its own key, expiring with the call's --------------------------------------------
    @staticmethod
    def _history_key(call_sid: str) -> str:
        return f"{PREFIX}history:{call_sid}"

    def history(self, call_sid: str) -> list[dict]:
        """The call's chat messages so far, oldest first."""
        raw = self._redis.get(self._history_key(call_sid))
        return json.loads(raw) if raw is not None else []

    def add_history(self, call_sid: str, messages: list[dict], keep: int) -> None:
        """Append one turn's messages to a known call's history (atomically) and keep only the last `keep`."""
        self._change_history(call_sid, lambda history: add_to_history(history, messages, keep))

    def cut_reply(self, call_sid: str, said: str, heard: str) -> bool:
        """The caller heard only `heard` of `said`: the history's last answer says only what was heard."""
        def cut(history: list[dict]) -> list[dict] | None:
            return history if cut_in_history(history, said, heard) else None

        return self._change_history(call_sid, cut)

    def _change_history(self, call_sid: str, change: Callable[[list[dict]], list[dict] | None]) -> bool:
        """Read, change and write the history in one transaction; it lives as long as the call's own key."""
        key, call_key = self._history_key(call_sid), self._key(call_sid)

        def transaction(pipe: redis.client.Pipeline) -> bool:
            ttl = pipe.ttl(call_key)
            if ttl is None or ttl < 0:  # an unknown call (-2), or one with no expiry, which ours always have
                return False
            raw = pipe.get(key)
            changed = change(json.loads(raw) if raw is not None else [])
            if changed is None:
                return False
            pipe.multi()
            pipe.set(key, json.dumps(changed, separators=(",", ":")), ex=ttl)
            return True

        return self._redis.transaction(transaction, key, call_key, value_from_callable=True)

    # ---- the index of held streams, for recovery: a hint, the call's own state is the truth ----------------
    def stream_started(self, call_sid: str, owner: str, base_url: str = "") -> CallState | None:
        state = super().stream_started(call_sid, owner, base_url)
        if state is not None and not state.ended:
            self._redis.hset(STREAMS, call_sid, owner)
        return state

    def claim_stream(self, call_sid: str, dead_owner: str, owner: str) -> CallState | None:
        state = super().claim_stream(call_sid, dead_owner, owner)
        if state is not None:
            self._redis.hset(STREAMS, call_sid, owner)
        return state

    def stream_gone(self, call_sid: str, owner: str, broken: bool) -> CallState | None:
        state = super().stream_gone(call_sid, owner, broken)
        if state is None or not state.stream_owner:
            self._redis.hdel(STREAMS, call_sid)
        return state

    def end(self, call_sid: str) -> CallState | None:
        before = super().end(call_sid)
        self._seen.forget(call_sid)  # late events read it afresh: nothing to keep for a call that is over
        pipe = self._redis.pipeline(transaction=False)
        pipe.hdel(STREAMS, call_sid)
        pipe.expire(self._history_key(call_sid), self._forget_after)
        pipe.execute()
        return before

    def beat(self, me: str, seconds: float) -> None:
        """This process is alive for the next `seconds`."""
        self._redis.set(ALIVE + me, b"1", px=int(seconds * 1000))

    def orphaned_streams(self, me: str) -> dict[str, str]:
        """Calls whose stream's process stopped beating: call -> that process."""
        held = {sid.decode(): owner.decode() for sid, owner in self._redis.hgetall(STREAMS).items()}
        owners = sorted({owner for owner in held.values() if owner != me})
        if not owners:
            return {}
        alive = dict(zip(owners, self._redis.mget([ALIVE + owner for owner in owners])))
        return {sid: owner for sid, owner in held.items() if owner != me and alive.get(owner) is None}

    def forget_stream(self, call_sid: str) -> None:
        """Drop a call from the index of held streams (its call is over or unknown)."""
        self._redis.hdel(STREAMS, call_sid)


def _encode(state: CallState) -> str:
    return json.dumps(state.to_dict(), separators=(",", ":"))


def _decode(raw: bytes) -> CallState:
    return CallState.from_dict(json.loads(raw))


class _SeenValues:
    """The value of each call this process last read or wrote, with its decoded state: what the next change of the
    call is computed from (compare-and-set finds out when it is stale). The oldest go first past `most` calls."""

    def __init__(self, most: int):
        self._most = most
        self._values: dict[str, tuple[bytes, CallState]] = {}
        self._lock = threading.Lock()

    def get(self, call_sid: str) -> tuple[bytes, CallState] | None:
        with self._lock:
            return self._values.get(call_sid)

    def keep(self, call_sid: str, raw: bytes, state: CallState | None = None) -> CallState:
        """Remember `raw` as the call's value (decoded unless `state` is given); returns its state."""
        with self._lock:
            seen = self._values.get(call_sid)
        if state is None:
            state = seen[1] if seen is not None and seen[0] == raw else _decode(raw)
        with self._lock:
            self._values.pop(call_sid, None)  # to the end: the oldest are first
            self._values[call_sid] = raw, state
            while len(self._values) > self._most:
                del self._values[next(iter(self._values))]
        return state

    def forget(self, call_sid: str) -> None:
        with self._lock:
            self._values.pop(call_sid, None)
