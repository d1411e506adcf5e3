"""The hooks the call flow calls when something happens on a call; each returns at once, whatever the stores do."""
from __future__ import annotations

import itertools
import logging
import time
import uuid
from typing import TYPE_CHECKING, Protocol

from .. import metrics

if TYPE_CHECKING:
    from ..chatbots.reply import Reply
    from .history import HistoryStore
    from .live import LiveView
    from .writer import HistoryWriter

log = logging.getLogger(__name__)

# Event ids: unique across processes, and in publishing order within one (events of the same millisecond sort by id).
_PROCESS = uuid.uuid4().hex[:10]
_COUNTER = itertools.count()


class Bus(Protocol):
    def send(self, event: dict) -> None: ...


class CallEvents:
    """Publishes a call's events to the watchers (the bus) and the history (the writer), both may be absent; turns,
    barge-ins and reprompts are also counted in the metrics (gateway/metrics.py), whatever is absent."""

    def __init__(self, view: LiveView | None = None, bus: Bus | None = None, writer: HistoryWriter | None = None,
                 store: HistoryStore | None = None, mode: str = "off"):
        self.view, self.bus, self.writer, self.store = view, bus, writer, store
        self.mode = mode  # CALL_HISTORY: full, metadata or off
        self.enabled = bus is not None or writer is not None

    @classmethod
    def disabled(cls) -> CallEvents:
        """Events that go nowhere (no monitor, no history)."""
        return cls()

    def close(self, timeout: float = 6.0) -> bool:
        """The process stops: everything published so far goes to the history and the other processes first,
        within `timeout` seconds in all (whatever is left is counted lost and logged). True when nothing was lost."""
        deadline = time.monotonic() + timeout
        written = self.writer.close(timeout * 2 / 3) if self.writer is not None else True
        close_bus = getattr(self.bus, "close", None)
        published = close_bus(max(0.5, deadline - time.monotonic())) if close_bus is not None else True
        return written and published

    def lost(self) -> int:
        """Events that did not reach the history or the other processes (a database or Redis down, or too slow)."""
        return (self.writer.lost if self.writer is not None else 0) + getattr(self.bus, "lost", 0)

    def publish(self, call_sid: str, kind: str, event_id: str | None = None, at: float | None = None,
                **fields) -> None:
        """Send one event: `kind` is start, caller, bot, action or end; `at` is now unless given (epoch seconds);
        fields without a value are left out."""
        if not self.enabled or not call_sid:
            return
        event = {"id": event_id or f"{_PROCESS}-{next(_COUNTER):010d}", "call_sid": call_sid, "type": kind,
                 "at": at if at is not None else time.time(),
                 **{key: value for key, value in fields.items() if value is not None}}
        try:
            if self.writer is not None:
                self.writer.add(event)
            if self.bus is not None:
                self.bus.send(event)
        except Exception:  # the boundary between a call and its monitoring: a call never fails for it
            log.exception("monitor: publishing a %s event of call %s failed; the call goes on", kind, call_sid)

    def call_started(self, call_sid: str, caller: str, called: str, recognizer: str, mode: str,
                     started_at: float | None = None) -> None:
        """A call came in, or moved here from another process (then `started_at` is when it began); recognizer:
        STT_PROVIDER, mode: stream or gather."""
        self.publish(call_sid, "start", at=started_at, caller=caller, called=called, recognizer=recognizer, mode=mode)

    def caller_said(self, call_sid: str, text: str, input_type: str = "speech") -> None:
        """The caller's final words, or keys (`input_type` dtmf)."""
        self.publish(call_sid, "caller", text=text, input=input_type)

    def bot_said(self, call_sid: str, reply: Reply, chatbot_ms: float | None = None, total_ms: float | None = None,
                 error: str | None = None, delivered: bool = True) -> None:
        """The bot answered (how long the chatbot took, and the whole turn from the caller's words to the call
        hearing it), and what its answer does to the call."""
        gateway_ms = None if chatbot_ms is None or total_ms is None else max(0.0, total_ms - chatbot_ms)
        if chatbot_ms is not None:  # a turn (the greeting comes with no timings): counted with the monitor on or off
            metrics.chatbot_answered(chatbot_ms / 1000, failed=error is not None)
        if total_ms is not None and delivered:
            metrics.turn_answered(total_ms / 1000)
        if reply.text:  # an empty GREETING says nothing: no bubble
            self.publish(call_sid, "bot", text=reply.text, chatbot_ms=_ms(chatbot_ms), gateway_ms=_ms(gateway_ms),
                         error=error, status=None if delivered else "not delivered")
        if delivered and reply.action_type is not None:
            self.action(call_sid, reply.action_type, target=reply.transfer_to)

    def action(self, call_sid: str, name: str, text: str | None = None, target: str | None = None) -> None:
        """Something done to the call: hangup, transfer, transferred, transfer-failed, barge-in, reprompt,
        no-input, call-limit, speech-outage, speech-back, sms-sent, sms-refused (a text message with an answer's
        links)."""
        if name == "barge-in":
            metrics.barge_in()
        elif name == "reprompt":
            metrics.reprompt()
        self.publish(call_sid, "action", action=name, text=text, target=target)

    def call_ended(self, call_sid: str, status: str = "completed") -> None:
        """The call is over; told by /status or the stream's stop alike, it is one event (its id is the call's)."""
        self.publish(call_sid, "end", event_id=f"{call_sid}:end", status=status)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
