"""The conversations one gateway process is running, by CallSid: found by webhooks, released at the call's end."""
from __future__ import annotations

import logging
import threading
from typing import Protocol

from .. import metrics

class Conversation(Protocol):
    """What this module needs of a call's live conversation (dialogue/conversation.py): calls/ knows no dialogue."""

    call_sid: str

    def on_event(self, event: dict) -> None: ...

    def close(self) -> None: ...

log = logging.getLogger(__name__)


class LiveCalls:
    """The conversations this process is running, by CallSid, so /status can release them."""

    def __init__(self):
        self._calls: dict[str, Conversation] = {}
        self._lock = threading.Lock()

    def add(self, conversation: Conversation) -> None:
        """Track a conversation, closing any older one for the same call (a reconnected stream)."""
        with self._lock:
            old = self._calls.get(conversation.call_sid)
            self._calls[conversation.call_sid] = conversation
            metrics.live_calls(len(self._calls))
        if old is not None:
            log.warning("call %s opened a second stream; closing the first", conversation.call_sid)
            old.close()

    def release(self, call_sid: str, conversation: Conversation | None = None) -> None:
        """Close and forget a call's conversation (only `conversation` itself, when given)."""
        with self._lock:
            current = self._calls.get(call_sid)
            if current is None or (conversation is not None and current is not conversation):
                current = None
            else:
                del self._calls[call_sid]
                metrics.live_calls(len(self._calls))
        if current is not None:
            current.close()

    def get(self, call_sid: str) -> Conversation | None:
        """The call's live conversation in this process, if its stream is open here."""
        with self._lock:
            return self._calls.get(call_sid)

    def all(self) -> list[Conversation]:
        """Every conversation running in this process right now."""
        with self._lock:
            return list(self._calls.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)
