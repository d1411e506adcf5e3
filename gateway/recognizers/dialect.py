"""What a websocket recognizer needs to know of one provider's protocol (deepgram.py, assemblyai.py speak one each)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from . import Transcript

NORMAL_CLOSE = 1000


@dataclass(frozen=True)
class Finalized:
    """The provider will not revise audio up to `seconds` (of the current stream): a restart need not re-send it."""

    seconds: float


class Dialect(Protocol):
    """One provider's wire protocol: where to connect, and what its messages mean. State lives per recognizer."""

    name: str
    keepalive: str | None  # a text message that keeps a quiet stream open, or None
    close_message: str  # the text message that ends a stream cleanly
    # Optionally `limits`, a pacing.AudioLimits: the provider's rules for audio messages (none when absent).

    def url(self, language: str, hints: Sequence[str]) -> str: ...

    def headers(self) -> dict[str, str]: ...

    def hints_message(self, hints: Sequence[str]) -> str | None: ...  # None: new hints need a new stream

    def handle(self, message: dict) -> list[Transcript | Finalized]: ...

    def stream_ended(self) -> list[Transcript]: ...  # what a half-heard utterance already gave, when a stream ends

    def refusal(self, exc: Exception) -> str | None: ...  # why an error means the provider refused us, or None

    def expected_close(self, code: int | None) -> bool: ...  # a close the provider makes by design (limits)
