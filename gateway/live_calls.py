"""The conversations one gateway process is running, by CallSid: found by webhooks, released at the call's end."""
from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .conversation import Conversation

log = logging.getLogger(__name__)


class LiveCalls:
    """The conversations this process is running, by CallSid, so /status can release them."""

    def __init__(self):
        self._calls: dict[str, Conversation] = {}
        self._broken: set[str] = set()  # calls whose stream broke (no `stop`) while the call went on
        self._lock = threading.Lock()

    def add(self, conversation: Conversation) -> None:
        """Track a conversation, closing any older one for the same call (a reconnected stream)."""
        with self._lock:
            old = self._calls.get(conversation.call_sid)
            self._calls[conversation.call_sid] = conversation
        if old is not None:
            log.warning("call %s opened a second stream; closing the first", conversation.call_sid)
            old.close()

    def release(self, call_sid: str, conversation: Conversation | None = None, broken: bool = False) -> None:
        """Close and forget a call's conversation (only `conversation` itself, when given); `broken`: its stream
        broke while the call may go on, so the call's next keep-alive starts a new one (see take_broken)."""
        with self._lock:
            if broken:
                self._broken.add(call_sid)
            elif conversation is None:  # the call is over (/status)
                self._broken.discard(call_sid)
            current = self._calls.get(call_sid)
            if current is None or (conversation is not None and current is not conversation):
                current = None
            else:
                del self._calls[call_sid]
        if current is not None:
            current.close()

    def take_broken(self, call_sid: str) -> bool:
        """Whether the call's stream broke here and no new one has started since (asked once: then forgotten)."""
        with self._lock:
            if call_sid in self._calls or call_sid not in self._broken:
                return False
            self._broken.discard(call_sid)
            return True

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
