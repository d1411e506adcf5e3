"""Turn locks and signals between processes through Redis: the shared versions of those in coordination.py."""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid

import redis

from .. import metrics
from .coordination import EventHandler, Turn
from .redis_store import PREFIX
from .store import FORGET_OPEN_SECONDS

log = logging.getLogger(__name__)

SIGNALS_CHANNEL = PREFIX + "signals"
LISTEN_POLL_SECONDS = 1.0

# Take a call's turn and its fencing token in one round trip: the lock (expiring, so a dead holder frees it) and, only
# when it was free, the next token.
TAKE_TURN = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    local token = redis.call('INCR', KEYS[2])
    redis.call('EXPIRE', KEYS[2], ARGV[3])
    return token
end
return 0
"""
# Free the turn only if this holder still has it (it may have expired, and another process taken it).
RELEASE_TURN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
# Delete the lock only if its token starts with the dead process's name: one atomic step, so a turn another process
# took meanwhile is never freed.
FREE_IF_HELD_BY = """
local token = redis.call('GET', KEYS[1])
if token and string.sub(token, 1, string.len(ARGV[1])) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
TURN_POLL_SECONDS = 0.01


class _RedisTurn:
    def __init__(self, locks: RedisTurnLocks, call_sid: str, holder: str, token: int):
        self._locks, self._call_sid, self._holder, self.token = locks, call_sid, holder, token

    def release(self) -> None:
        self._locks.release(self._call_sid, self._holder)


class RedisTurnLocks:
    """One turn per call across processes: a Redis lock that expires (a dead holder frees it) plus a fencing token
    (INCR), which the store's `fenced` check uses to drop the answer of a holder whose lock expired."""

    def __init__(self, client: redis.Redis, expiry_seconds: float, owner: str = ""):
        self._expiry_ms = max(1, int(expiry_seconds * 1000))
        self._owner = owner  # this process: its name starts every lock token, so a dead holder's lock can be freed
        self._take = client.register_script(TAKE_TURN)
        self._release = client.register_script(RELEASE_TURN)
        self._free_if_held_by = client.register_script(FREE_IF_HELD_BY)

    @staticmethod
    def _keys(call_sid: str) -> list[str]:
        return [f"{PREFIX}turn:{call_sid}", f"{PREFIX}fence:{call_sid}"]

    def acquire(self, call_sid: str, timeout: float) -> Turn | None:
        """Wait up to `timeout` seconds for the call's turn; None if another turn still holds it."""
        holder = f"{self._owner}|{uuid.uuid4().hex}"
        deadline = time.monotonic() + timeout
        while True:
            token = int(self._take(keys=self._keys(call_sid), args=[holder, self._expiry_ms, int(FORGET_OPEN_SECONDS)]))
            if token:
                return _RedisTurn(self, call_sid, holder, token)
            if time.monotonic() + TURN_POLL_SECONDS > deadline:
                return None
            time.sleep(TURN_POLL_SECONDS)

    def release(self, call_sid: str, holder: str) -> None:
        """End `holder`'s turn of the call (logged, not raised, if it had expired first)."""
        if not self._release(keys=self._keys(call_sid)[:1], args=[holder]):
            log.warning("a turn lock expired before its turn ended")  # the fencing check guarded it

    def free_if_held_by(self, call_sid: str, process: str) -> bool:
        """Free the call's turn if `process` (found dead) holds it, so the next turn need not wait for its expiry; a
        holder that was only stalled loses its answer to the fencing check. True when a lock was freed."""
        return bool(self._free_if_held_by(keys=self._keys(call_sid)[:1], args=[process + "|"]))


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
