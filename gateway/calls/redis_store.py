"""Call state, turn locks and signals between processes in Redis (REDIS_URL): every gateway process serves every call."""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Callable

import redis
from redis.exceptions import LockError

from chatline_common.redis_client import redis_client

from .store import (FORGET_ENDED_SECONDS, FORGET_OPEN_SECONDS, CallState, CallStore, Change, add_to_history,
                    cut_in_history)
from .. import metrics
from .coordination import EventHandler, Turn

log = logging.getLogger(__name__)

PREFIX = "chatline:"
SIGNALS_CHANNEL = PREFIX + "signals"
STREAMS = PREFIX + "streams"  # call -> the process holding its stream: where a dead process's streams are found
ALIVE = PREFIX + "alive:"  # + process name: set while the process beats (see stream_recovery.py)
LISTEN_POLL_SECONDS = 1.0


def connect(url: str) -> redis.Redis:
    """A client for REDIS_URL (the project's one Redis client factory, shared with the sample chatbot)."""
    return redis_client(url)


class RedisCallStore(CallStore):
    """Each call is one JSON value; each change reads, changes and writes it in a WATCH/MULTI transaction."""

    def __init__(self, client: redis.Redis, clock: Callable[[], float] = time.time,
                 forget_after_seconds: float = FORGET_ENDED_SECONDS,
                 forget_open_after_seconds: float = FORGET_OPEN_SECONDS):
        self._redis = client
        self._clock = clock
        self._forget_after = int(forget_after_seconds)
        self._forget_open_after = int(forget_open_after_seconds)

    def now(self) -> float:
        """Wall-clock seconds: every process's clock, kept in step by NTP."""
        return self._clock()

    @staticmethod
    def _key(call_sid: str) -> str:
        return f"{PREFIX}call:{call_sid}"

    def open(self, call_sid: str, caller: str = "", called: str = "") -> CallState:
        """Register a call (idempotent: SET NX keeps the first state a retried webhook would overwrite)."""
        state = CallState(call_sid, caller, called, started_at=self._clock())
        if self._redis.set(self._key(call_sid), _encode(state), nx=True, ex=self._forget_open_after):
            return state
        return self.get(call_sid) or state

    def get(self, call_sid: str) -> CallState | None:
        """The call's state, or None if unknown (or expired)."""
        raw = self._redis.get(self._key(call_sid))
        return _decode(raw) if raw is not None else None

    def _change(self, call_sid: str, change: Change) -> tuple[CallState | None, CallState | None]:
        """Apply `change` atomically: optimistic (WATCH), retried when another process changed the call meanwhile."""
        key = self._key(call_sid)

        def transaction(pipe: redis.client.Pipeline):
            raw = pipe.get(key)
            if raw is None:
                return None, None
            before = _decode(raw)
            after = change(before, self._clock())
            if after == before:
                return before, before
            pipe.multi()
            if after.ended and not before.ended:  # remembered a while for late events, then gone
                pipe.set(key, _encode(after), ex=self._forget_after)
            else:
                pipe.set(key, _encode(after), keepttl=True)
            return before, after

        return self._redis.transaction(transaction, key, value_from_callable=True)

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
        self._redis.hdel(STREAMS, call_sid)
        self._redis.expire(self._history_key(call_sid), self._forget_after)
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


class _RedisTurn:
    def __init__(self, lock: redis.lock.Lock, token: int):
        self._lock, self.token = lock, token

    def release(self) -> None:
        try:
            self._lock.release()
        except LockError:  # it expired first (a turn longer than the expiry): the fencing check guarded it
            log.warning("a turn lock expired before its turn ended")


# Delete the lock only if its token starts with the dead process's name: one atomic step, so a turn another process
# took meanwhile is never freed.
FREE_IF_HELD_BY = """
local token = redis.call('GET', KEYS[1])
if token and string.sub(token, 1, string.len(ARGV[1])) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisTurnLocks:
    """One turn per call across processes: a Redis lock that expires (a dead holder frees it) plus a fencing token
    (INCR), which the store's `fenced` check uses to drop the answer of a holder whose lock expired."""

    def __init__(self, client: redis.Redis, expiry_seconds: float, owner: str = ""):
        self._redis = client
        self._expiry = expiry_seconds
        self._owner = owner  # this process: its name starts every lock token, so a dead holder's lock can be freed
        self._free_if_held_by = client.register_script(FREE_IF_HELD_BY)

    def acquire(self, call_sid: str, timeout: float) -> Turn | None:
        """Wait up to `timeout` seconds for the call's turn; None if another turn still holds it."""
        lock = self._redis.lock(f"{PREFIX}turn:{call_sid}", timeout=self._expiry, sleep=0.01,
                                blocking_timeout=timeout, thread_local=False)
        if not lock.acquire(token=f"{self._owner}|{uuid.uuid4().hex}"):
            return None
        pipe = self._redis.pipeline()
        pipe.incr(f"{PREFIX}fence:{call_sid}")
        pipe.expire(f"{PREFIX}fence:{call_sid}", int(FORGET_OPEN_SECONDS))
        token, _ = pipe.execute()
        return _RedisTurn(lock, int(token))

    def free_if_held_by(self, call_sid: str, process: str) -> bool:
        """Free the call's turn if `process` (found dead) holds it, so the next turn need not wait for its expiry; a
        holder that was only stalled loses its answer to the fencing check. True when a lock was freed."""
        return bool(self._free_if_held_by(keys=[f"{PREFIX}turn:{call_sid}"], args=[process + "|"]))


class RedisSignals:
    """Signals through Redis pub/sub: every process hears every signal, and acts on those for streams it holds."""

    def __init__(self, client: redis.Redis):
        self._redis = client
        self._handlers: list[EventHandler] = []
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def publish(self, call_sid: str, event: dict) -> None:
        self._redis.publish(SIGNALS_CHANNEL, json.dumps({"call": call_sid, **event}))

    def subscribe(self, handler: EventHandler) -> None:
        """Run `handler` for every event, on one listening thread (started on first use, reconnecting on its own)."""
        with self._lock:
            self._handlers.append(handler)
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="call-signals", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Stop listening (the gateway stops): the thread ends within a second, and logs nothing more."""
        self._stopped.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(LISTEN_POLL_SECONDS + 1.0)

    def _listen(self) -> None:
        while not self._stopped.is_set():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(SIGNALS_CHANNEL)
                while not self._stopped.is_set():  # polled, so close() is heard within a second
                    message = pubsub.get_message(timeout=LISTEN_POLL_SECONDS)
                    if message is not None and message.get("type") == "message":
                        self._dispatch(message.get("data"))
            except redis.RedisError as exc:  # Redis restarting: listen again once it is back
                metrics.redis_error("signals")
                if not self._stopped.is_set():
                    log.warning("call signals: %s; listening again in a second", exc)
                self._stopped.wait(1.0)
            finally:
                pubsub.close()

    def _dispatch(self, data) -> None:
        try:
            event = json.loads(data)
            call_sid = event.pop("call")
        except (TypeError, ValueError, KeyError, AttributeError):
            log.warning("call signals: ignored a message that is not ours")
            return
        for handler in list(self._handlers):
            try:
                handler(call_sid, event)
            except Exception:  # the listening thread's boundary: the next event must still be heard
                log.exception("call %s: handling %s failed", call_sid, event.get("type"))
