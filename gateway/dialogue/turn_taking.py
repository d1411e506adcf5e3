"""One call's turn-taking, in one place: what the caller hears (outbound track), what their words over it are, and
when their turn is over. Pure and clock-explicit; the stream loop and the recognizer's callbacks share it (locked)."""
from __future__ import annotations

import logging
import threading
from typing import Sequence

from .end_of_turn import EndOfTurn, WordsEndOfTurn
from .listening import is_backchannel, is_echo, text_between, words_of
from .playback import Playback, PlaybackMeter, SpeakingRate, heard_text
from .turn_joiner import TurnJoiner

log = logging.getLogger(__name__)

# The caller's speech is the prompt's echo only if it started while the prompt played, or this soon after its
# measured end (the speakerphone's own delay, and the recognizer's start-of-speech landing a frame or two late).
ECHO_DELAY_MS = 300
# A recognizer's final comes a while after the words it covers: the window reaches this far past "now".
ECHO_LATE_MS = 1000

SPEECH, BACKCHANNEL, ECHO = "speech", "backchannel", "echo"
# Fewer words than this that are also the prompt's may be its echo's first words (an interim) or the caller picking a
# menu's option by saying it over the menu ("hello" over "you can say hello, good, ..."): MAYBE_ECHO. A final that
# short is an answer; a leaking speakerphone comes back as phrases.
MAYBE_ECHO = "maybe-echo"
MIN_ECHO_WORDS = 3


class CallTurnTaking:
    """Times are the stream's milliseconds (the media `timestamp`, one clock for both tracks) for what the caller
    hears and says, and `now` seconds (monotonic) for the turn's wait."""

    def __init__(self, *, language: str = "en-US", say_chars_per_second: float = 13.0,
                 turn_max_wait_seconds: float = 2.0, detector: EndOfTurn | None = None,
                 backchannel_words: Sequence[str] = (), echo_window_seconds: float = 2.0) -> None:
        self.language, self.backchannel_words = language, tuple(backchannel_words)
        self.echo_window_ms = int(echo_window_seconds * 1000)
        self.meter, self.rate = PlaybackMeter(), SpeakingRate(say_chars_per_second)
        self.turns = TurnJoiner(detector or WordsEndOfTurn(), turn_max_wait_seconds, language)
        self.prompt_text = ""  # what the prompt being heard (or the last one) says
        self.speech_started_ms: int | None = None  # when the caller's current utterance began
        self.stream_ms = 0  # the latest inbound frame's time: "now" on the stream's clock
        self._lock = threading.Lock()

    # ---- what the caller hears ------------------------------------------------------------------------------
    def prompt_sent(self, text: str) -> None:
        """A call update with this text went out: the next speech on the outbound track is it."""
        with self._lock:
            self.prompt_text = text

    def outbound_frames(self, frames: list[tuple[bytes, int | None]]) -> list[Playback]:
        """A read's outbound frames in order, under one lock; the changes they bring (a prompt "started" or "ended",
        dated on the stream's clock)."""
        with self._lock:
            changes = self.meter.feed_read(frames)
            for change in changes:
                self._learn(change)
        return changes

    def inbound_clock(self, timestamp_ms: int | None) -> Playback | None:
        """One inbound frame's time: ends the prompt by the clock when Twilio sends no outbound frames."""
        with self._lock:
            if timestamp_ms is not None:
                self.stream_ms = max(self.stream_ms, timestamp_ms)
            change = self.meter.silence_until(self.stream_ms)
            self._learn(change)
            return change

    @property
    def measured(self) -> bool:
        """Whether outbound audio has come at all (else the character estimate stands)."""
        return self.meter.frames > 0

    @property
    def prompt_playing(self) -> bool:
        with self._lock:
            return self.meter.speaking

    def heard(self, at_ms: int | None = None) -> str:
        """What the caller heard of the prompt by `at_ms` (default: now): all of it once it ended, else the share
        of its text its heard time gives at the voice's pace, back to a whole word."""
        with self._lock:
            at = self.stream_ms if at_ms is None else at_ms
            if self.meter.ended_ms is not None and at >= self.meter.ended_ms:
                return self.prompt_text
            return heard_text(self.prompt_text, self.rate.share(self.prompt_text, self.meter.heard_ms(at)))

    # ---- what the caller says over it -------------------------------------------------------------------------
    def speech_started(self, at_ms: int | None = None) -> None:
        """The recognizer heard the caller start speaking (default: at the latest inbound frame)."""
        with self._lock:
            self.speech_started_ms = self.stream_ms if at_ms is None else at_ms

    def classify(self, words: str) -> str:
        """SPEECH (stop the prompt, or answer it), BACKCHANNEL (over a prompt: neither), ECHO (drop it), or
        MAYBE_ECHO (a word or two of the prompt's: wait for more words, or the final)."""
        with self._lock:
            started = self.stream_ms if self.speech_started_ms is None else self.speech_started_ms
            if not (self.meter.playing_at(started) or self.meter.playing_at(started - ECHO_DELAY_MS)):
                return SPEECH  # said after the prompt ended: an answer, whatever its words (an echo starts with it)
            window = self._window(started)
            if is_echo(words, window):
                return ECHO if len(words_of(words)) >= MIN_ECHO_WORDS else MAYBE_ECHO
            if self.meter.playing_at(started) and is_backchannel(words, self.language, self.backchannel_words):
                return BACKCHANNEL
            return SPEECH

    def over_prompt(self) -> bool:
        """Whether the caller's current speech is heard over a prompt: it started while the prompt played and the
        prompt's voice went on past its start (or stopped only just before it). Speech that began in a silence
        after the prompt's voice, before the silence was long enough to end it, is not (yet): the prompt is over, or
        its voice resumes and a later interim finds it over the prompt."""
        with self._lock:
            started = self.stream_ms if self.speech_started_ms is None else self.speech_started_ms
            last_voice = self.meter.last_voice_ms
            return (self.meter.playing_at(started) and last_voice is not None
                    and started < last_voice + ECHO_DELAY_MS)

    def utterance_over(self) -> None:
        """The utterance's final was handled: the next one starts afresh."""
        with self._lock:
            self.speech_started_ms = None

    # ---- when the turn is over -----------------------------------------------------------------------------------
    def final(self, text: str, now: float, audio_tail: bytes | None = None, confidence: float = 1.0) -> str | None:
        """A final that is SPEECH: the turn to answer now, or None while an unfinished sentence waits."""
        with self._lock:
            return self.turns.final(text, now, audio_tail, confidence)

    def speaking_again(self, now: float) -> None:
        with self._lock:
            self.turns.speech(now)

    def due(self, now: float) -> str | None:
        with self._lock:
            return self.turns.due(now)

    def flush(self) -> str | None:
        with self._lock:
            return self.turns.flush()

    # ---- inside -----------------------------------------------------------------------------------------------
    def _learn(self, change: Playback | None) -> None:
        """A prompt heard to its end teaches the voice's pace."""
        if change is not None and change.kind == "ended" and self.meter.started_ms is not None:
            self.rate.prompt_heard(self.prompt_text, change.at_ms - self.meter.started_ms)

    def _window(self, started_ms: int) -> str:
        """The prompt's words heard from ECHO_WINDOW before the speech started to a little after now."""
        text, heard = self.prompt_text, self.meter.heard_ms
        late = max(self.stream_ms, started_ms) + ECHO_LATE_MS
        return text_between(text, self.rate.share(text, heard(started_ms - self.echo_window_ms)),
                            self.rate.share(text, heard(late)))
