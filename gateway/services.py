"""The long-lived collaborators every webhook and stream of a call works with, built once by the app factory."""
from __future__ import annotations

import logging
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from .calls.store import CallStore
from .chatbots import Chatbot
from .config import Config
from .calls.coordination import CallSignals, LocalSignals, LocalTurnLocks, TurnLocks, held_turn, process_name
from .dialogue.continuations import Continuations
from .calls.live_calls import LiveCalls
from .monitor import CallEvents
from .twilio.rest import CallUpdater

log = logging.getLogger(__name__)


@dataclass
class Services:
    """What a call needs: its state (store), one turn at a time (turns), word to its stream's process (signals)."""

    config: Config
    store: CallStore
    chatbot: Chatbot
    updater: CallUpdater
    executor: Executor
    live: LiveCalls  # the streams this process holds: the only call state that stays in a process
    turns: TurnLocks = field(default_factory=LocalTurnLocks)
    signals: CallSignals = field(default_factory=LocalSignals)
    me: str = field(default_factory=process_name)  # this process, as the store's stream owner
    deadlines: Any = None  # limits.CallDeadlines: MAX_CALL_SECONDS
    drain: Any = None  # drain.Drain: graceful shutdown
    continuations: Continuations = field(default_factory=Continuations)  # answers said a sentence at a time
    events: CallEvents = field(default_factory=CallEvents.disabled)  # monitor.CallEvents: watchers and history

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
