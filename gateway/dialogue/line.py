"""What a call's stream conversation offers the parts of a turn that act on the live call (first sentences, the
speech outage fallback): a Protocol, so they need not import the conversation that holds them."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:
    from ..chatbots.reply import Reply
    from .prompt import PromptClock


class StreamCall(Protocol):
    """One call heard through its Media Stream in this process (conversation.Conversation)."""

    call_sid: str
    base_url: str
    prompt: PromptClock
    reply_twiml: Callable[[Reply], str] | None

    @property
    def held(self) -> bool: ...

    @property
    def closed(self) -> bool: ...

    def speaking(self, text: str, interruptible: bool = True) -> int: ...

    def wait_for_protected_prompt(self) -> bool: ...

    def reply_document(self, reply: Reply) -> str: ...

    def answered(self, reply: Reply) -> None: ...

    def close(self) -> None: ...
