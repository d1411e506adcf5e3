"""One stream's turn-taking tied to the call's state: the outbound track's measured prompt times go to the store (any
process's webhooks read them there), and the caller's words are told apart and joined into turns (CallTurnTaking)."""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from .end_of_turn import AUDIO_TAIL_BYTES
from .serial import SerialWork
from .turn_taking import MAYBE_ECHO, SPEECH, CallTurnTaking
from .playback import Playback, is_voiced

if TYPE_CHECKING:
    from ..services import Services

log = logging.getLogger(__name__)

# An update's <Say> can start playing before the process that sent it has recorded it (said() follows the REST
# call's return): a prompt recorded this soon after its audio started is the one that audio says.
RECORDED_LATE_SECONDS = 1.0
# While a prompt is still heard past the store's estimate of its end, that end is pushed this far ahead, a little
# before it comes (a voice slower than SAY_CHARACTERS_PER_SECOND): one store write a second, not one a frame.
EXTEND_SECONDS = 2.0
EXTEND_BEFORE_SECONDS = 0.5
# No outbound frame in this much of the caller's audio: Twilio sends none (an inbound-only stream), say it once.
NO_OUTBOUND_AFTER_MS = 3000
# The caller's speech begins at the first voiced inbound frame after this much quiet: the recognizer's own "speech
# started" comes hundreds of milliseconds later (more under load), too late to tell speech over a prompt from speech
# after it. An onset older than ONSET_RECENT_MS is not this utterance's.
ONSET_GAP_MS = 300
ONSET_RECENT_MS = 5000
FRAME = 160  # bytes of mu-law in a 20 ms frame


class StreamTurns:
    """What the caller hears and says on one call's stream. The stream loop feeds frames (`outbound`, `inbound`) and
    polls `tick`; the recognizer's callback asks `interrupts`, `classify` and `final`."""

    def __init__(self, services: Services, call_sid: str, language: str) -> None:
        config = services.config
        self.services, self.call_sid = services, call_sid
        self.turns = CallTurnTaking(language=language, say_chars_per_second=config.say_chars_per_second,
                                    turn_max_wait_seconds=config.turn_max_wait_seconds, detector=services.end_of_turn,
                                    backchannel_words=config.backchannel_words,
                                    echo_window_seconds=config.echo_window_seconds)
        self.prompt = 0  # the store's number of the prompt the outbound track is playing (or played last)
        self.until = 0.0  # that prompt's end as this process last wrote it to the store
        self.started_wall: float | None = None  # when its audio started (store clock), while its number is unsure
        self.settled = False  # that audio's prompt was found in the store
        self._settling = False  # a look-up of it is queued
        # The store's reads and writes happen off the stream reader, in order (serial.py).
        self._store_work = SerialWork(services.heard, f"call {call_sid}: a measured prompt time could not be kept")
        self.latest_ms = 0  # the latest frame's time on the stream's clock (both tracks share it)
        self.first_ms: int | None = None
        self.told_estimated = False
        self.speaking = False  # an interim of the current utterance was speech: its final is too
        self.onset_ms: int | None = None  # where the caller's latest stretch of voice began (stream clock)
        self.voiced_until_ms: int | None = None
        # The caller's last 8 s of audio, for a detector that listens (smart-turn); the words detector needs none.
        self.tail: bytearray | None = bytearray() if config.turn_detector == "smart-turn" else None

    @property
    def measured(self) -> bool:
        """Outbound audio came: prompt times are measured (else the character estimate stands)."""
        return self.turns.measured

    # ---- the stream loop ------------------------------------------------------------------------------------------
    def outbound_frames(self, frames: list[tuple[bytes, int | None]]) -> None:
        """A read's frames of what the caller hears, (payload, timestamp) in order (never the recognizer's)."""
        latest = frames[-1][1] if frames else None  # in order: the last is the latest
        if latest is not None and latest > self.latest_ms:
            self.latest_ms = latest
        for change in self.turns.outbound_frames(frames):
            self._changed(change)

    def inbound(self, timestamp_ms: int | None, audio: bytes = b"") -> None:
        """A read's caller audio, ending with the frame at `timestamp_ms`: the stream's clock moves on, and where the
        caller's voice began is noted."""
        if timestamp_ms is not None:
            self.latest_ms = max(self.latest_ms, timestamp_ms)
            self.first_ms = timestamp_ms if self.first_ms is None else self.first_ms
            if self.tail is not None and audio:
                self.tail += audio
                del self.tail[:-AUDIO_TAIL_BYTES]
            start = timestamp_ms + 20 - len(audio) // 8
            for offset in range(0, len(audio) - FRAME + 1, FRAME):
                if is_voiced(audio[offset:offset + FRAME]):
                    at = start + offset // 8
                    if self.voiced_until_ms is None or at - self.voiced_until_ms >= ONSET_GAP_MS:
                        self.onset_ms = at
                    self.voiced_until_ms = at + 20
        change = self.turns.inbound_clock(timestamp_ms)
        if change is not None:
            self._changed(change)

    def tick(self) -> str | None:
        """After each read: settle the prompt's number, keep a long prompt's end ahead; a joined turn whose wait ran
        out (to answer now), else None."""
        if not self.measured:
            if (not self.told_estimated and self.first_ms is not None
                    and self.latest_ms - self.first_ms >= NO_OUTBOUND_AFTER_MS):
                self.told_estimated = True
                log.info("call %s: no outbound audio on its stream; prompt ends are estimated from their length "
                         "(SAY_CHARACTERS_PER_SECOND)", self.call_sid)
        else:
            started = self.started_wall
            if (started is not None and not self.settled and not self._settling
                    and self.services.store.now() <= started + RECORDED_LATE_SECONDS):
                self._settling = True  # until the prompt recorded late is found: after that a read costs no look-up
                self._store_work.submit(lambda: self._settle(started, looking=True))
            if self.turns.prompt_playing and self.prompt:
                now = self.services.store.now()
                if self.until - now < EXTEND_BEFORE_SECONDS:
                    self._write_until(self.prompt, now + EXTEND_SECONDS)
        return self.turns.due(time.monotonic())

    # ---- the recognizer's callback --------------------------------------------------------------------------------
    def speech_started(self) -> None:
        self.turns.speech_started(self._onset())
        self.turns.speaking_again(time.monotonic())

    def _onset(self) -> int | None:
        """Where the caller's voice began, if recently (None: the latest frame's time)."""
        if self.onset_ms is not None and self.latest_ms - self.onset_ms <= ONSET_RECENT_MS:
            return self.onset_ms
        return None

    def classify(self, words: str, final: bool = False) -> str:
        """speech, backchannel or echo (turn_taking.py), or for an interim maybe-echo (a word or two of the
        prompt's: its echo's first words, or an option said over a menu; its final tells). An utterance found to be
        speech stays speech."""
        if self.speaking:
            return SPEECH
        if self.turns.speech_started_ms is None:  # a recognizer that reports no start of speech
            self.turns.speech_started(self._onset())
        kind = self.turns.classify(words)
        if kind == MAYBE_ECHO and final:
            kind = SPEECH
        self.speaking = kind == SPEECH
        return kind

    def interrupts(self, words: str, final: bool = False) -> bool:
        """Whether these words (an interim or a final) should stop the prompt: speech that is neither backchannel
        nor echo, said while a prompt was heard (measured), or while the estimate says so (no outbound audio)."""
        if self.classify(words, final) != SPEECH:
            return False
        return not self.measured or self.turns.over_prompt()

    def final(self, text: str, confidence: float = 1.0) -> str | None:
        """A final that is speech: the turn to answer now, or None while an unfinished (or unsure) sentence waits."""
        try:
            return self.turns.final(text, time.monotonic(), bytes(self.tail) if self.tail is not None else None,
                                    confidence)
        finally:
            self.dropped()

    def dropped(self) -> None:
        """A final was handled (or dropped as a backchannel or echo): the next words start afresh."""
        self.speaking = False
        self.turns.utterance_over()

    def flush(self) -> str | None:
        """The words waiting for the caller to finish their sentence, at once (None: nothing waits)."""
        return self.turns.flush()

    def heard(self, said: str, heard: str) -> tuple[str, str]:
        """What the caller heard of the prompt a barge-in cuts: measured on the outbound track when it came (its
        heard share of the prompt's audio), else the estimate given."""
        if not self.measured or self.started_wall is None and not self.prompt:
            return said, heard
        self._settle(self.started_wall)
        text = self.turns.prompt_text
        return (text, self.turns.heard()) if text else (said, heard)

    # ---- inside ---------------------------------------------------------------------------------------------------
    def _changed(self, change: Playback) -> None:
        """A prompt's audio started or ended (on the stream reader): the store learns it on the `heard` pool."""
        at = self.services.store.now() - max(0, self.latest_ms - change.at_ms) / 1000
        if change.kind == "started":
            self.started_wall, self.settled = at, False
            self._store_work.submit(lambda: self._settle(at))
        else:
            started, self.started_wall = self.started_wall, None
            self._store_work.submit(lambda: self._ended(started, at))

    def _ended(self, started: float | None, at: float) -> None:
        self._settle(started)
        if self.prompt:
            self.until = at
            self.services.store.prompt_measured(self.call_sid, self.prompt, at)

    def _settle(self, started: float | None, looking: bool = False) -> None:
        """The prompt the audio that started at `started` (store clock) says: the newest recorded by shortly after."""
        try:
            state = self.services.store.get(self.call_sid)
            if state is None or started is None:
                return
            if state.prompt != self.prompt and state.prompt_started <= started + RECORDED_LATE_SECONDS:
                self.prompt, self.until, self.settled = state.prompt, state.prompt_until, True
                self.turns.prompt_sent(state.prompt_text)
        finally:
            if looking:
                self._settling = False

    def _write_until(self, prompt: int, until: float) -> None:
        """Keep a long prompt's end ahead (the reader's own copy at once, the store's on the `heard` pool)."""
        self.until = until
        self._store_work.submit(lambda: self.services.store.prompt_measured(self.call_sid, prompt, until))
