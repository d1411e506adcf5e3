"""What the caller hears on a simulated call, as Twilio's outbound track carries it: speech-like audio while a <Say>
or <Play> runs, at a set speaking rate, silence otherwise; and the speakerphone that leaks it into the caller's audio."""
from __future__ import annotations

import logging
import threading
import time
from functools import lru_cache

import numpy as np

from gateway.audio import mulaw_to_pcm16

RATE = 8000
FRAME_BYTES = 160  # 20 ms
DEFAULT_SECONDS_PER_CHAR = 0.06  # the stand-in voice's pace by default: how long its <Say> takes
DEFAULT_CHARS_PER_SECOND = 1 / DEFAULT_SECONDS_PER_CHAR
SILENCE = b"\xff" * FRAME_BYTES
_PAUSES = ".,;:?!\n"  # the voice pauses at punctuation, as a TTS voice does between phrases and sentences

log = logging.getLogger(__name__)
VOICES = ("buzz", "espeak")

_DECODED = mulaw_to_pcm16(bytes(range(256))).astype(np.int32)
_ORDER = np.argsort(_DECODED)


def mulaw_encode(pcm: np.ndarray) -> bytes:
    """Nearest mu-law byte for each 16-bit sample (a lookup in the decoder's own table: exact round trips)."""
    values = _DECODED[_ORDER]
    index = np.clip(np.searchsorted(values, pcm), 1, len(values) - 1)
    nearer_left = (pcm - values[index - 1]) < (values[index] - pcm)
    return _ORDER[np.where(nearer_left, index - 1, index)].astype(np.uint8).tobytes()


def _voice_second() -> np.ndarray:
    """One second of the buzz (a 120 Hz voice with harmonics, ~8 syllables a second): it repeats every second."""
    t = np.arange(RATE) / RATE
    voice = sum(np.sin(2 * np.pi * 120 * k * t) / k for k in range(1, 12))
    return voice * (0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t) ** 2) * 4000


_VOICE_SECOND = _voice_second()


def speech_like(text: str, seconds: float) -> bytes:
    """`seconds` of a voice-like buzz (a 120 Hz voice with harmonics, syllable by syllable) shaped by `text`: each
    character its share of the time, softer between words, silent at punctuation. Empty text (a <Play>): a steady
    run of syllables. Deterministic, so tests can compare what the gateway measured with what was sent."""
    samples = max(FRAME_BYTES, int(seconds * RATE))
    voice = np.resize(_VOICE_SECOND, samples)
    envelope = np.ones(samples)
    if text:
        per_char = samples / len(text)
        for i, char in enumerate(text):
            level = 0.0 if char in _PAUSES else 0.5 if char.isspace() else 1.0
            if level < 1.0:
                envelope[int(i * per_char):int((i + 1) * per_char)] = level
    return mulaw_encode((voice * envelope).astype(np.int32))


@lru_cache(maxsize=64)
def spoken(text: str, seconds: float, chars_per_second: float) -> bytes:
    """`text` really spoken (espeak-ng, the demo's bot voice) at about `chars_per_second`, fitted to `seconds`: what
    a speakerphone leaks is then words a recognizer can transcribe, the prompt's own. A buzz without espeak-ng."""
    from chatline.console import ChatlineError
    from chatline.sound import BOT_VOICE, mulaw_encode as encode, speak

    try:
        pcm = speak(text, BOT_VOICE, words_per_minute=max(80, min(450, int(chars_per_second * 60 / 6))))
    except ChatlineError as exc:
        log.warning("twilio stand-in: outbound voice falls back to a buzz: %s", exc)
        return speech_like(text, seconds)
    audio = encode(pcm)[:int(seconds * RATE)]
    return audio + SILENCE[:1] * (int(seconds * RATE) - len(audio))


class OutboundTrack:
    """One call's outbound audio: the runner says when a prompt plays, the streams ask for "the frame now".

    Position is taken from the clock (scaled by the call's speed), so every stream of the call hears the same
    prompt at the same point, however many there are."""

    def __init__(self, speed: float = 1.0, chars_per_second: float = DEFAULT_CHARS_PER_SECOND,
                 leak: float = 0.0, voice: str = "buzz") -> None:
        if voice not in VOICES:
            raise ValueError(f"outbound voice must be one of {VOICES} (got {voice!r})")
        self.speed, self.chars_per_second, self.leak, self.voice = speed, chars_per_second, leak, voice
        self._lock = threading.Lock()
        self._audio: bytes = b""
        self._prompt: tuple[str, float] | None = None  # what plays now, its audio built when first asked for
        self._started = 0.0

    def say_seconds(self, text: str) -> float:
        """How long the voice takes to say `text` (in call seconds, before speed)."""
        return len(text) / self.chars_per_second

    def playing(self, text: str, seconds: float) -> None:
        """A <Say> of `text` (or, text empty, a <Play>) starts and lasts `seconds` of call time."""
        with self._lock:
            self._audio, self._prompt, self._started = b"", (text, seconds), time.monotonic()

    def silent(self) -> None:
        """The <Say>/<Play> ended or was cut short (an update, a barge-in)."""
        with self._lock:
            self._audio, self._prompt = b"", None

    def _audio_now(self) -> bytes:
        """The playing prompt's audio, built on the first frame asked for (a call nobody streams costs nothing)."""
        if self._prompt is not None and not self._audio:
            text, seconds = self._prompt
            if self.voice == "espeak" and text:
                self._audio = spoken(text, round(seconds, 3), self.chars_per_second)
            else:
                self._audio = speech_like(text, seconds)
        return self._audio

    def frame_now(self) -> bytes:
        """The 20 ms the caller hears now: the prompt's audio at its current position, or silence."""
        with self._lock:
            audio, started = self._audio_now(), self._started
        if not audio:
            return SILENCE
        at = int((time.monotonic() - started) * self.speed * RATE) // FRAME_BYTES * FRAME_BYTES
        frame = audio[at:at + FRAME_BYTES]
        return frame + SILENCE[len(frame):] if frame else SILENCE

    def leak_into(self, inbound: bytes, outbound: bytes) -> bytes:
        """The caller's audio with the prompt leaking in, as a speakerphone's microphone picks it up."""
        if self.leak <= 0 or outbound == SILENCE:
            return inbound
        n = min(len(inbound), len(outbound))
        mixed = (mulaw_to_pcm16(inbound[:n]).astype(np.int32)
                 + (mulaw_to_pcm16(outbound[:n]).astype(np.float64) * self.leak).astype(np.int32))
        return mulaw_encode(np.clip(mixed, -32124, 32124)) + inbound[n:]
