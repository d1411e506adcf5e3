"""The recognizer interface shared by every speech-to-text backend, and the factory that picks one."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence


@dataclass(frozen=True)
class Transcript:
    """What a recognizer heard: a final (or interim) piece of the caller's speech."""

    text: str
    confidence: float = 1.0
    is_final: bool = True
    speech_started: bool = False  # voice activity: the caller just started speaking (text is empty); drives barge-in


ResultCallback = Callable[[Transcript], None]


class Recognizer(Protocol):
    """One caller's speech-to-text stream.

    `feed` is called from the websocket thread with 8 kHz mu-law bytes exactly as Twilio sent
    them and must never block for long; `on_result` may be called from any thread and is
    expected to return quickly (the gateway queues the turn elsewhere). Besides final results it
    gets interim ones and, as soon as the caller starts speaking, a `speech_started` one.
    """

    def start(self, on_result: ResultCallback) -> None: ...

    def feed(self, mulaw: bytes) -> None: ...

    def set_hints(self, hints: Sequence[str]) -> None: ...

    def set_language(self, language: str) -> None: ...

    def close(self) -> None: ...


def make_recognizer(config, hints: Sequence[str] = ()) -> Recognizer:
    """Build the recognizer STT_PROVIDER names; each backend imports its own library only when chosen."""
    if config.stt_provider == "google":
        from .google import GoogleRecognizer

        return GoogleRecognizer(language=config.language, hints=hints, emulator_host=config.speech_emulator_host)
    if config.stt_provider == "sphinx":
        from .sphinx import SphinxRecognizer

        return SphinxRecognizer(language=config.language, hints=hints)
    raise ValueError(f"STT provider {config.stt_provider!r} does not hear a Media Stream")
