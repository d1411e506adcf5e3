"""A call outlives the process holding its stream: each process beats in Redis, and the others start a new stream
(the REST Streams subresource, which leaves what the caller hears uncut) for calls whose process stopped beating."""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING

import redis

from .. import metrics
from ..dialogue.answers import listening_reply
from ..dialogue.turn import Heard, answer_by_update
from ..twilio.rest import UpdateResult
from ..twilio.security import stream_target

if TYPE_CHECKING:
    from ..calls.redis_coordination import RedisTurnLocks
    from ..calls.redis_store import RedisCallStore
    from .drain import Drain
    from ..services import Services

log = logging.getLogger(__name__)

BEAT_SECONDS = 0.5  # how often a process says it is alive...
ALIVE_SECONDS = 2.5  # ...and how long one beat holds
# A process is dead once its beat has been missing this long as well: one scan's miss may be a process the machine
# starved for a moment, and taking its streams over would cut calls that were fine.
CONFIRM_SECONDS = 0.75


class StreamRecovery:
    """This process's heartbeat (its own thread, never held up by recovery work), and the watch for other
    processes' orphaned streams, each recovered on the turn executor."""

    def __init__(self, services: Services, store: RedisCallStore, turns: RedisTurnLocks, drain: Drain):
        self.services, self.store, self.turns, self.drain = services, store, turns, drain
        self._suspects: dict[str, float] = {}  # call -> when its stream's process was first seen without a beat
        self._recovering: set[str] = set()

    def start(self) -> None:
        threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()
        threading.Thread(target=self._watch, name="stream-recovery", daemon=True).start()

    def _beat(self) -> None:
        while True:
            try:
                self.store.beat(self.services.me, ALIVE_SECONDS)
            except redis.RedisError as exc:  # Redis restarting: beat again once it is back
                log.warning("heartbeat: %s", exc)
            time.sleep(BEAT_SECONDS)

    def _watch(self) -> None:
        while True:
            try:
                if not self.drain.draining:
                    self._scan(time.monotonic())
            except redis.RedisError as exc:
                metrics.redis_error("stream-recovery")
                log.warning("stream recovery: %s", exc)
            except Exception:  # the thread's boundary: the watch must go on for the next calls
                log.exception("stream recovery failed; watching on")
            time.sleep(BEAT_SECONDS)

    def _scan(self, now: float) -> None:
        orphans = self.store.orphaned_streams(self.services.me)
        self._suspects = {sid: self._suspects.get(sid, now) for sid in orphans}
        for call_sid, dead in orphans.items():
            if now - self._suspects[call_sid] >= CONFIRM_SECONDS and call_sid not in self._recovering:
                self._recovering.add(call_sid)
                self.services.executor.submit(self._recover, call_sid, dead)

    def _recover(self, call_sid: str, dead: str) -> None:
        """Take the call's stream over from `dead` (one process wins) and start a new one on the live call."""
        try:
            state = self.store.claim_stream(call_sid, dead, self.services.me)
            if state is None:  # another process took it, the stream moved on, or the call is over
                current = self.store.get(call_sid)
                if current is None or current.ended or not current.stream_owner:
                    self.store.forget_stream(call_sid)
                return
            log.warning("call %s: the process holding its stream (%s) stopped; starting a new stream", call_sid,
                        dead)
            # Were it only stalled, it lets its stream go: two streams would answer every turn twice.
            self.services.signals.publish(call_sid, {"type": "stream_taken", "from": dead})
            # A turn it was taking dies with it: the caller's next words need not wait for its lock to expire.
            if self.turns.free_if_held_by(call_sid, dead):
                log.warning("call %s: freed the turn the stopped process held", call_sid)
            url, parameters = stream_target(state.base_url, call_sid, state.caller,
                                            self.services.config.twilio_auth_token)
            # A both_tracks stream is two of the call's four forked tracks: the stalled one's two and these fit, and
            # the stalled process closes its stream on "stream_taken" (a dead one's closed with its sockets).
            outcome = self.services.updater.start_stream(call_sid, url, parameters,
                                                         self.services.config.stream_track)
            if outcome is UpdateResult.CALL_ENDED:
                self.services.store.end(call_sid)
            log.info("call %s: new stream %s", call_sid, outcome.value)
            if state.unanswered and outcome is UpdateResult.SENT:
                self._answer_lost_turn(call_sid, state.unanswered, state.base_url)
        except Exception:  # the executor's boundary
            log.exception("call %s: starting a new stream failed", call_sid)
        finally:
            self._recovering.discard(call_sid)

    def _answer_lost_turn(self, call_sid: str, words: str, base_url: str) -> None:
        """The stopped process died answering the caller's `words` before its answer went out: answer them here, the
        one turn path (turn.py), so the caller is not left in silence (the chatbot may see them twice if it had
        already answered the dead process)."""
        services = self.services
        with services.turn(call_sid) as turn:
            if turn is None:
                log.warning("call %s: a turn is still running; the lost words are not answered again", call_sid)
                return
            log.warning("call %s: the stopped process died answering %d characters; answering them here", call_sid,
                        len(words))
            state = services.store.get(call_sid)
            heard = Heard(call_sid, words, "speech", state.caller if state else "")
            answer_by_update(services, heard, _RecoveredLine(services, call_sid, base_url), turn)


class _RecoveredLine:
    """A recovered turn's way to the call: a plain call update on the call's stream TwiML (no prompt to wait for,
    the new stream's conversation starts fresh)."""

    def __init__(self, services: Services, call_sid: str, base_url: str):
        self.services, self.call_sid, self.base_url = services, call_sid, base_url
        self.lock = contextlib.nullcontext()

    def document(self, reply, state) -> str:
        return listening_reply(self.services, self.call_sid, reply, self.base_url, state)

    def ready(self, turn, state) -> bool:
        return True

    def not_delivered(self, reply, outcome) -> None:
        pass
