"""A cheap, honest recognizer for the Speech stand-in: energy endpointing on the mu-law audio, scripted transcripts.

Pocketsphinx costs far too much CPU to recognize hundreds of streams at once; this engine only decides *when* the
caller spoke (20 ms windows above an energy level; an utterance ends after `end_silence` of quiet) and answers each
utterance with the next phrase of a script, so load tests see Google's timing and result shapes at little cost.
"""
from __future__ import annotations

import itertools
import threading
import time
from typing import Callable, Sequence

from gateway.audio import mulaw_to_pcm16
from gateway.recognizers.sphinx_engine import Utterance

BYTES_PER_SECOND = 8000
WINDOW_BYTES = 160  # 20 ms, Twilio's frame
LOUD_LEVEL = 200  # linear amplitude a sample must exceed to count as loud (line silence is 0, speech is thousands)
LOUD_SAMPLES = 16  # a window with at least this many loud samples (10 %) is speech

# bytes.translate() with this table turns mu-law into 1 (loud) / 0 (quiet) per sample, counted in C.
_LOUD = bytes(1 if abs(int(v)) > LOUD_LEVEL else 0 for v in mulaw_to_pcm16(bytes(range(256))))
_streams = itertools.count(1)


def _confidence(phrase: str) -> tuple[str, float]:
    """A script phrase's words and the confidence its final carries: "words|0.66" (real recognizers' finals carry
    one; an unsure one may have lost words), else 0.9."""
    words, _, confidence = phrase.partition("|")
    return words, float(confidence) if confidence else 0.9


class SharedScript:
    """One script for all of a stand-in's streams, in order: a gateway opens a recognizer stream per utterance, so
    a one-call test's phrases follow the call, not each stream."""

    def __init__(self, phrases: Sequence[str]) -> None:
        self.phrases = list(phrases) or ["hello"]
        self.count = 0
        self.lock = threading.Lock()

    def current(self) -> str:
        with self.lock:
            return self.phrases[self.count % len(self.phrases)]

    def take(self) -> str:
        with self.lock:
            self.count += 1
            return self.phrases[(self.count - 1) % len(self.phrases)]


class ScriptedEngine:
    """Endpoints utterances by energy and answers each with the next script phrase (interim, then final).

    Same interface as SphinxEngine as the stand-in uses it. With `tag`, each final carries a unique
    `#<stream>.<n>` suffix so a load test can follow one turn from the stand-in to the call update.
    """

    def __init__(self, script: Sequence[str], on_final: Callable[[Utterance], None],
                 on_partial: Callable[[str], None] | None = None,
                 on_speech: Callable[[bool, float], None] | None = None,
                 end_silence: float = 0.5, interim_after: float = 0.3, tag: bool = False) -> None:
        self._shared = script if isinstance(script, SharedScript) else None
        self._script = list(script.phrases if self._shared else script) or ["hello"]
        self._on_final, self._on_partial, self._on_speech = on_final, on_partial, on_speech
        self._end_windows = max(1, round(end_silence * BYTES_PER_SECOND / WINDOW_BYTES))
        self._interim_windows = max(1, round(interim_after * BYTES_PER_SECOND / WINDOW_BYTES))
        self._stream = next(_streams) if tag else 0
        self._partial = bytearray()  # audio not yet a whole window
        self._windows = 0  # whole windows seen: the stream position
        self._speech_start: int | None = None  # window where the current utterance began
        self._last_loud = 0  # window index just past the current utterance's last loud window
        self._interim_sent = False
        self._count = 0
        self.sent_at: list[float] = []  # wall-clock time.time() of each final, in order

    @property
    def position(self) -> float:
        """Seconds of audio received."""
        return (self._windows * WINDOW_BYTES + len(self._partial)) / BYTES_PER_SECOND

    def feed(self, mulaw: bytes) -> None:
        """Take audio; callbacks run inside this call as utterances start, progress and end."""
        self._partial += mulaw
        whole = len(self._partial) - len(self._partial) % WINDOW_BYTES
        if not whole:
            return
        loud = bytes(self._partial[:whole]).translate(_LOUD)
        del self._partial[:whole]
        for offset in range(0, whole, WINDOW_BYTES):
            self._window(loud.count(1, offset, offset + WINDOW_BYTES) >= LOUD_SAMPLES)

    def flush(self) -> None:
        """The audio ended: an utterance under way ends here."""
        if self._speech_start is not None:
            self._finish()

    def close(self) -> None:
        """Nothing to release (kept for SphinxEngine's interface)."""

    def _window(self, loud: bool) -> None:
        self._windows += 1
        if loud:
            if self._speech_start is None:
                self._speech_start, self._interim_sent = self._windows - 1, False
                if self._on_speech:
                    self._on_speech(True, self._speech_start * WINDOW_BYTES / BYTES_PER_SECOND)
            self._last_loud = self._windows
        if self._speech_start is None:
            return
        if (not self._interim_sent and self._on_partial
                and self._windows - self._speech_start >= self._interim_windows):
            self._interim_sent = True
            self._on_partial(_confidence(self._phrase())[0].split()[0])
        if self._windows - self._last_loud >= self._end_windows:
            self._finish()

    def _phrase(self) -> str:
        if self._shared is not None:
            return self._shared.current()
        return self._script[self._count % len(self._script)]

    def _finish(self) -> None:
        start, end = self._speech_start, self._last_loud
        self._speech_start = None
        phrase, confidence = _confidence(self._shared.take() if self._shared is not None else self._phrase())
        text = phrase + (f" #{self._stream}.{self._count + 1}" if self._stream else "")
        self._count += 1
        if self._on_speech:
            self._on_speech(False, end * WINDOW_BYTES / BYTES_PER_SECOND)
        if self._on_partial and not self._interim_sent:
            self._on_partial(text.split()[0])
        self.sent_at.append(time.time())
        self._on_final(Utterance(text, confidence, start * WINDOW_BYTES / BYTES_PER_SECOND,
                                 end * WINDOW_BYTES / BYTES_PER_SECOND, True))
