"""The long-lived collaborators every webhook and stream of a call works with: built once, at start-up, by
gateway/wiring.py from the configuration, and never changed afterwards."""
from __future__ import annotations

import logging
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .calls.store import CallStore
from .chatbots import Chatbot
from .config import Config
from .calls.coordination import CallSignals, LocalSignals, LocalTurnLocks, TurnLocks, held_turn, process_name
from .dialogue.continuations import Continuations
from .dialogue.phone_answer import LinkSender
from .dialogue.end_of_turn import EndOfTurn, WordsEndOfTurn
from .calls.live_calls import LiveCalls
from .monitor import CallEvents
from .twilio.rest import CallUpdater
from .twilio.socket_reader import SocketReader

if TYPE_CHECKING:
    from .chatbots.reply import Reply

log = logging.getLogger(__name__)

HEARD_THREADS = 8  # Services.heard: started as first needed, never more


class Deadlines(Protocol):
    """MAX_CALL_SECONDS as the webhooks use it (ops/limits.CallDeadlines)."""

    def watch(self, call_sid: str, started_at: float | None = None) -> float: ...


class Draining(Protocol):
    """Graceful shutdown as the webhooks use it (ops/drain.Drain)."""

    @property
    def draining(self) -> bool: ...

    def pass_on_new_call(self, call_sid: str, base_url: str) -> str: ...

    def handoff_twiml(self, call_sid: str, base_url: str, reply: Reply | None = None) -> str: ...


class NoDeadlines:
    """No call clock (a Services built for a test of something else)."""

    def watch(self, call_sid: str, started_at: float | None = None) -> float:
        return started_at if started_at is not None else time.time()


class NeverDraining:
    """A process that never shuts down gracefully (a Services built for a test of something else)."""

    draining = False

    def pass_on_new_call(self, call_sid: str, base_url: str) -> str:
        raise RuntimeError("not draining")

    def handoff_twiml(self, call_sid: str, base_url: str, reply: Reply | None = None) -> str:
        raise RuntimeError("not draining")


@dataclass(frozen=True)
class Services:
    """What a call needs: its state (store), one turn at a time (turns), word to its stream's process (signals).
    The in-process and Redis kinds of store, turns and signals are chosen once, by wiring.py."""

    config: Config
    store: CallStore
    chatbot: Chatbot
    updater: CallUpdater
    executor: Executor
    live: LiveCalls  # the streams this process holds: the only call state that stays in a process
    turns: TurnLocks = field(default_factory=LocalTurnLocks)
    signals: CallSignals = field(default_factory=LocalSignals)
    me: str = field(default_factory=process_name)  # this process, as the store's stream owner
    deadlines: Deadlines = field(default_factory=NoDeadlines)  # MAX_CALL_SECONDS
    drain: Draining = field(default_factory=NeverDraining)  # graceful shutdown
    continuations: Continuations = field(default_factory=Continuations)  # answers said a sentence at a time
    events: CallEvents = field(default_factory=CallEvents.disabled)  # monitor.CallEvents: watchers and history
    messages: LinkSender | None = None  # twilio.messages.MessageSender: an answer's links to the caller by SMS
    end_of_turn: EndOfTurn = field(default_factory=WordsEndOfTurn)  # TURN_DETECTOR, one model for every call
    streams: SocketReader = field(default_factory=SocketReader)  # reads every Media Stream's socket, on one thread
    # Short work on the call's state handed off the threads every call shares (transcripts, measured prompt times):
    # its own threads, so it never waits behind turns waiting for the chatbot.
    heard: Executor = field(default_factory=lambda: ThreadPoolExecutor(HEARD_THREADS, thread_name_prefix="heard"))

    def turn(self, call_sid: str) -> held_turn:
        """`with services.turn(sid) as turn:` the call's one turn at a time (None: not had within the wait)."""
        return held_turn(self.turns, call_sid, self.config.chatbot_timeout + 5)

    def tell_stream(self, call_sid: str, event: dict) -> None:
        """Tell the process holding the call's stream (this one, or another through the signals) to act on `event`."""
        conversation = self.live.get(call_sid)
        if conversation is not None:
            conversation.on_event(event)
            return
        state = self.store.get(call_sid)
        if state is not None and state.stream_owner and state.stream_owner != self.me:
            self.signals.publish(call_sid, event)

    def heard_signal(self, call_sid: str, event: dict) -> None:
        """An event from another process: acted on when the call's stream is held here."""
        conversation = self.live.get(call_sid)
        if conversation is not None:
            conversation.on_event(event)
