"""Limits on what one peer or one call may take: stream message rate, concurrent streams, call duration."""
from __future__ import annotations

import heapq
import logging
import threading
import time
from typing import TYPE_CHECKING, Callable

from ..twilio import twiml
from ..dialogue.answers import gather_document
from ..calls.coordination import held_turn
from ..chatbots.reply import Reply
from ..config import MEASURED_STREAMS, Config, default_streams

if TYPE_CHECKING:
    from ..calls.coordination import TurnLocks
    from ..calls.store import CallStore
    from ..monitor import CallEvents
    from ..twilio.rest import CallUpdater
    from ..dialogue.conversation import Conversation
    from ..services import Services

log = logging.getLogger(__name__)

BURST_SECONDS = 2.0  # a stream may catch up this much (Twilio delivers frames held back by a network stall at once)
FLOOD_WINDOW_SECONDS = 10.0
FLOOD_FACTOR = 5  # more than this many seconds' worth of the limit dropped within one window is a flood, not a burst
DROP_LOG_SECONDS = 10.0  # drops are summarized at most this often per stream


class MessageRate:
    """A token bucket for one stream's messages: bursts up to BURST_SECONDS are fine, excess is dropped, and a
    stream that keeps flooding is told to stop. Logs one line when drops start, then a summary at most every 10 s."""

    def __init__(self, per_second: int, clock: Callable[[], float] = time.monotonic, tracks: int = 1):
        # The limit is per track: a both_tracks stream carries twice the messages of the caller's audio alone.
        self.configured, self.per_second = per_second, per_second * tracks
        self.capacity = self.per_second * BURST_SECONDS
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()
        self.window_start = self.updated
        self.window_drops = 0
        self.dropped = 0
        self.unlogged = 0
        self.logged_at: float | None = None
        self.flooded = False
        self.name = "a stream not yet started"  # the call, once the stream says which

    def admit_many(self, count: int) -> tuple[int, bool]:
        """Take one read's `count` messages at once (one clock reading, not one per message): how many of them to
        accept, the first ones, and whether the stream is flooding (it should be closed)."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        taken = min(count, int(self.tokens))
        self.tokens -= taken
        drops = count - taken
        if not drops:
            return taken, False
        if now - self.window_start >= FLOOD_WINDOW_SECONDS:
            self.window_start, self.window_drops = now, 0
        self.window_drops += drops
        self.dropped += drops
        self.unlogged += drops
        if self.window_drops > self.per_second * FLOOD_FACTOR:
            if not self.flooded:
                self.flooded = True
                log.warning("%s: Media Stream flood, %d messages over MAX_STREAM_MESSAGES_PER_SECOND=%d dropped; "
                            "closing the stream", self.name, self.dropped, self.configured)
            return taken, True
        if self.logged_at is None or now - self.logged_at >= DROP_LOG_SECONDS:
            log.warning("%s: Media Stream over MAX_STREAM_MESSAGES_PER_SECOND=%d; dropped %d message(s)%s", self.name,
                        self.configured, self.unlogged, "" if self.logged_at is None else " since the last report")
            self.logged_at, self.unlogged = now, 0
        return taken, False


def stream_capacity(config: Config) -> str:
    """The start-up log's account of how many calls this process streams at once, and why that many."""
    streams, threads = config.max_concurrent_streams, config.gateway_threads
    if streams != default_streams(threads):
        source = f"MAX_CONCURRENT_STREAMS={streams}"
    elif streams == MEASURED_STREAMS:
        source = "the measured limit of one process for answers within 100 ms"
    else:
        source = f"three quarters of GATEWAY_THREADS={threads}"
    return (f"{streams} concurrent streams ({source}: each live stream holds one of the {threads} gunicorn threads "
            f"for its whole call, the other {threads - streams} serve webhooks; calls beyond are answered in "
            "Gather mode)")


def streams_full(services: Services) -> bool:
    """True when this process already runs MAX_CONCURRENT_STREAMS streams."""
    return len(services.live) >= services.config.max_concurrent_streams


def switch_to_gather(services: Services, call_sid: str, base_url: str, text: str,
                     conversation: Conversation | None = None) -> None:
    """Hand a call's listening to Twilio (<Gather input="speech dtmf">) instead of leaving it deaf; its stream ends.

    A conversation's turn in flight finishes first; it and any turn still queued are answered inside a <Gather> too.
    """
    answered_in_gather = threading.Event()

    def in_gather(reply: Reply) -> str:
        answered_in_gather.set()
        return gather_document(services, call_sid, base_url, reply)

    if conversation is not None:
        conversation.reply_twiml = in_gather
        conversation.close()
        with services.turn(call_sid) as turn:
            if turn is None:
                log.warning("call %s: its turn is still running; switching to <Gather> anyway", call_sid)
    if answered_in_gather.is_set():
        return  # the turn's own answer already left the call listening in a <Gather>
    services.updater.update(call_sid, gather_document(services, call_sid, base_url, Reply(text)))


class CallDeadlines:
    """Ends calls that reach MAX_CALL_SECONDS: one daemon thread, woken at the next deadline."""

    def __init__(self, config: Config, store: CallStore, updater: CallUpdater, events: CallEvents, turns: TurnLocks,
                 clock: Callable[[], float] = time.time):
        self.config, self.store, self.updater, self.events, self.turns = config, store, updater, events, turns
        self.clock = clock  # wall clock: a call's start time travels to the next process in a handoff
        self._heap: list[tuple[float, str]] = []
        self._started: dict[str, float] = {}
        self._cond = threading.Condition()

    def start(self) -> None:
        """Start the clock's thread (wiring.start does, when MAX_CALL_SECONDS is set)."""
        threading.Thread(target=self._run, name="call-deadlines", daemon=True).start()

    def watch(self, call_sid: str, started_at: float | None = None) -> float:
        """Start the call's clock in this process (idempotent: the first start time wins; give the store's, so every
        process serving the call counts from the same moment); returns the call's start time."""
        limit = self.config.max_call_seconds
        with self._cond:
            if call_sid in self._started:
                return self._started[call_sid]
            started = self._started[call_sid] = started_at if started_at is not None else self.clock()
            if limit:
                heapq.heappush(self._heap, (started + limit, call_sid))
                self._cond.notify()
            return started

    def started(self, call_sid: str) -> float | None:
        """When the call started (wall clock), if this process knows."""
        with self._cond:
            return self._started.get(call_sid)

    def _run(self) -> None:
        """Wait for the earliest deadline; end each call whose time is up."""
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > self.clock():
                    self._cond.wait(None if not self._heap else max(0.0, self._heap[0][0] - self.clock()))
                _, call_sid = heapq.heappop(self._heap)
                self._started.pop(call_sid, None)
            try:
                self._end(call_sid)
            except Exception:  # the thread's boundary: one failed goodbye must not stop the clock for the others
                log.exception("call %s: ending it at MAX_CALL_SECONDS failed", call_sid)

    def _end(self, call_sid: str) -> None:
        """Say MAX_CALL_GOODBYE and hang up, after any turn in flight; later turns of the call get no answer."""
        config = self.config
        if not self.store.claim_deadline(call_sid):  # over, unknown, or another process says the goodbye
            return
        with held_turn(self.turns, call_sid, config.chatbot_timeout + 5) as turn:
            if turn is None:
                log.warning("call %s: its turn is still running at MAX_CALL_SECONDS; hanging up anyway", call_sid)
            self.store.hold(call_sid)  # no more turns, no barge-in: the goodbye plays out
        log.info("call %s reached MAX_CALL_SECONDS=%d; saying goodbye and hanging up", call_sid, config.max_call_seconds)
        outcome = self.updater.update(call_sid, twiml.say_and_hang_up(config.max_call_goodbye,
                                                                       language=config.language, voice=config.voice))
        log.info("call %s: time-limit goodbye %s", call_sid, outcome.value)
        self.events.action(call_sid, "call-limit", text=config.max_call_goodbye)
