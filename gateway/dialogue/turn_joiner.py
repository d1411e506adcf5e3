"""One caller turn from the recognizer's finals: an unfinished sentence waits for more words and is joined with them."""
from __future__ import annotations

from .end_of_turn import FINISHED, EndOfTurn

# How long speech heard while words wait holds them for its final: longer than a sentence takes to say.
SPEECH_HOLD_SECONDS = 8.0
# A final the recognizer is unsure of may have lost its last words ("i want to order [the]" heard as "i want to
# order", at 0.66), so that it only looks finished: it waits this long for the caller to speak on (their speech holds
# it as above) before it is answered. Confident finals (0.9 and up on the recorded set) are answered at once, and so
# are finals with no confidence (0: Google's "not set"), and short ones: a reply of a word or two ("hello", "yes",
# "two") is whole however unsure the recognizer is of it, and is answered at once.
UNSURE_CONFIDENCE = 0.7
UNSURE_WAIT_SECONDS = 1.0
UNSURE_MIN_WORDS = 3


class TurnJoiner:
    """One call's turn being said. Pure: the caller of these methods gives the time (any monotonic clock, seconds)
    and the caller's recent audio, and sends what they return to the chatbot; `due` is polled (or timed) for the
    wait running out. Not thread-safe: one call's results are handled in order."""

    def __init__(self, detector: EndOfTurn, max_wait_seconds: float, language: str = "en-US") -> None:
        self.detector, self.max_wait, self.language = detector, max_wait_seconds, language
        self.pending = ""  # the finals heard so far of a turn not yet answered
        self.deadline: float | None = None  # when the pending words are answered even if unfinished
        self.last_probability: float | None = None

    def final(self, text: str, now: float, audio_tail: bytes | None = None, confidence: float = 1.0) -> str | None:
        """A final transcript: the whole turn to answer now (joined with the words before it), or None while the
        sentence is unfinished (then it is answered by `due` at the latest after TURN_MAX_WAIT_SECONDS) or, the
        first final of a turn, while the recognizer is unsure of its words (UNSURE_WAIT_SECONDS)."""
        text = text.strip()
        if not text:
            return None
        first = not self.pending  # the words after a pause already waited for are taken as they come
        self.pending = f"{self.pending} {text}".strip()
        if self.max_wait <= 0:
            return self._take()
        self.last_probability = self.detector.finished(self.pending, audio_tail, self.language)
        if self.last_probability < FINISHED:
            self.deadline = now + self.max_wait
        elif first and 0 < confidence < UNSURE_CONFIDENCE and len(text.split()) >= UNSURE_MIN_WORDS:
            self.deadline = now + min(self.max_wait, UNSURE_WAIT_SECONDS)
        else:
            return self._take()
        return None

    def speech(self, now: float) -> None:
        """The caller is speaking again (speech started, or an interim): the pending words wait for the final of
        what they are saying, SPEECH_HOLD_SECONDS at most (noise that never becomes words does not hold the turn)."""
        if self.pending and self.deadline is not None:
            self.deadline = max(self.deadline, now + max(self.max_wait, SPEECH_HOLD_SECONDS))

    def due(self, now: float) -> str | None:
        """The pending words, once their wait has run out; else None."""
        if self.pending and self.deadline is not None and now >= self.deadline:
            return self._take()
        return None

    def flush(self) -> str | None:
        """Whatever is pending, at once (a key pressed, the call moving to another process or ending)."""
        return self._take() if self.pending else None

    @property
    def waiting(self) -> bool:
        return bool(self.pending)

    def _take(self) -> str:
        turn, self.pending, self.deadline = self.pending, "", None
        return turn
