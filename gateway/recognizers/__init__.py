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
    end_seconds: float | None = None  # where the words ended, in seconds of the audio fed to the recognizer


ResultCallback = Callable[[Transcript], None]
HealthCallback = Callable[[bool], None]  # False: the backend has been failing past its threshold; True: it is back


class Recognizer(Protocol):
    """One caller's speech-to-text stream.

    `feed` is called from the websocket thread with 8 kHz mu-law bytes exactly as Twilio sent
    them and must never block for long; `on_result` may be called from any thread and is
    expected to return quickly (the gateway queues the turn elsewhere). Besides final results it
    gets interim ones and, as soon as the caller starts speaking, a `speech_started` one. A recognizer whose backend
    can go away
    (Google) calls `on_health(False)` once it has been unable to keep a stream working for its outage threshold
    (it goes on retrying), and `on_health(True)` once a stream works again; one that cannot fail ignores it.
    """

    def start(self, on_result: ResultCallback, on_health: HealthCallback | None = None) -> None: ...

    def feed(self, mulaw: bytes) -> None: ...

    def set_hints(self, hints: Sequence[str]) -> None: ...

    def set_language(self, language: str) -> None: ...

    def close(self) -> None: ...


def make_recognizer(config, hints: Sequence[str] = ()) -> Recognizer:
    """Build the recognizer STT_PROVIDER names; each backend imports its own library only when chosen."""
    if config.stt_provider == "google":
        from .google import GoogleRecognizer

        return GoogleRecognizer(language=config.language, hints=hints, emulator_host=config.speech_emulator_host,
                                outage_seconds=config.speech_outage_seconds)
    if config.stt_provider == "sphinx":
        from .sphinx import SphinxRecognizer

        return SphinxRecognizer(language=config.language, hints=hints)
    if config.stt_provider == "deepgram":
        from .deepgram import deepgram_recognizer

        return deepgram_recognizer(config, hints)
    if config.stt_provider == "assemblyai":
        from .assemblyai import assemblyai_recognizer

        return assemblyai_recognizer(config, hints)
    raise ValueError(f"STT provider {config.stt_provider!r} does not hear a Media Stream")
