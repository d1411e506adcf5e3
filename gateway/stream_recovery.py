"""A call outlives the process holding its stream: each process beats in Redis, and the others start a new stream
(the REST Streams subresource, which leaves what the caller hears uncut) for calls whose process stopped beating."""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import redis

from .security import stream_target
from .twilio_calls import UpdateResult

if TYPE_CHECKING:
    from flask import Flask

    from .redis_store import RedisCallStore
    from .services import Services

log = logging.getLogger(__name__)

BEAT_SECONDS = 0.5  # how often a process says it is alive...
ALIVE_SECONDS = 2.5  # ...and how long one beat holds: a process silent this long is dead (a GC pause is far shorter)


class StreamRecovery:
    """This process's heartbeat, and the watch for other processes' orphaned streams (one daemon thread)."""

    def __init__(self, app: Flask, services: Services, store: RedisCallStore):
        self.app, self.services, self.store = app, services, store
        self._thread = threading.Thread(target=self._run, name="stream-recovery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                self.store.beat(self.services.me, ALIVE_SECONDS)
                if not (self.services.drain is not None and self.services.drain.draining):
                    for call_sid, dead in self.store.orphaned_streams(self.services.me).items():
                        self._recover(call_sid, dead)
            except redis.RedisError as exc:  # Redis restarting: beat again once it is back
                log.warning("stream recovery: %s", exc)
            except Exception:  # the thread's boundary: the watch must go on for the next calls
                log.exception("stream recovery failed; watching on")
            time.sleep(max(0.0, BEAT_SECONDS - (time.monotonic() - started)))

    def _recover(self, call_sid: str, dead: str) -> None:
        """Take the call's stream over from `dead` (one process wins) and start a new one on the live call."""
        state = self.store.claim_stream(call_sid, dead, self.services.me)
        if state is None:  # another process took it, the stream moved on, or the call is over
            current = self.store.get(call_sid)
            if current is None or current.ended or not current.stream_owner:
                self.store.forget_stream(call_sid)
            return
        log.warning("call %s: the process holding its stream (%s) stopped; starting a new stream", call_sid, dead)
        # Were it only stalled, it lets its stream go on hearing this: two streams would answer every turn twice.
        self.services.events.publish(call_sid, {"type": "stream_taken", "from": dead})
        with self.app.app_context():  # the stream token is signed with the app's configuration
            url, parameters = stream_target(state.base_url, call_sid, state.caller)
        outcome = self.services.updater.start_stream(call_sid, url, parameters)
        if outcome is UpdateResult.CALL_ENDED:
            self.services.store.end(call_sid)
        log.info("call %s: new stream %s", call_sid, outcome.value)
