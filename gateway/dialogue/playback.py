"""What the caller hears, measured on the outbound track: when each prompt started and stopped being spoken."""
from __future__ import annotations

from dataclasses import dataclass

from ..audio import SAMPLE_RATE, mulaw_to_pcm16

# A sample louder than this (of 32767, about -32 dBFS) is speech; line noise and Twilio's comfort noise stay below.
VOICED_AMPLITUDE = 800
# A frame is speech when this share of its samples is: a click or a single loud sample is not.
VOICED_SHARE = 0.1
# A prompt is over after this much silence. TTS voices pause ~0.2-0.6 s between words and sentences (and between
# consecutive <Say>s); a longer pause ends the prompt. The end is dated back to its last speech frame.
END_SILENCE_MS = 700
# Speech shorter than this at a prompt's start (a click on the line) does not start a prompt.
MIN_SPEECH_MS = 40

# bytes.translate with this table maps each mu-law byte to 1 (loud) or 0: the whole per-frame test runs in C,
# about a microsecond, so the outbound track costs almost nothing (no numpy array per frame, no Python loop).
_LOUD = bytes(1 if abs(int(value)) >= VOICED_AMPLITUDE else 0 for value in mulaw_to_pcm16(bytes(range(256))))
FRAME_MS, FRAME_BYTES = 20, SAMPLE_RATE * 20 // 1000  # Twilio's media frame: 20 ms of 8 kHz mu-law
_FRAME_LOUD = max(1, int(FRAME_BYTES * VOICED_SHARE))  # loud samples that make a whole frame speech


def is_voiced(payload: bytes) -> bool:
    """Whether one outbound frame carries speech (enough loud samples), not silence or line noise."""
    return payload.translate(_LOUD).count(1) >= max(1, int(len(payload) * VOICED_SHARE))


@dataclass(frozen=True)
class Playback:
    """A change in what the caller hears: a prompt "started" or "ended" at `at_ms` on the stream's clock."""

    kind: str
    at_ms: int


class PlaybackMeter:
    """Follows one call's outbound track frame by frame; knows whether a prompt is being heard and since when.

    Times are the stream's own milliseconds (media `timestamp`, one clock for both tracks), so a prompt's end is
    known to the frame however late the frames arrive. Not thread-safe: one stream's reader feeds it."""

    def __init__(self, end_silence_ms: int = END_SILENCE_MS, min_speech_ms: int = MIN_SPEECH_MS) -> None:
        self.end_silence_ms, self.min_speech_ms = end_silence_ms, min_speech_ms
        self.speaking = False
        self.started_ms: int | None = None  # the current (or last) prompt's first speech
        self.ended_ms: int | None = None  # the last prompt's end (its last speech frame's end); None while speaking
        self.frames = 0  # outbound frames seen: 0 means no outbound audio came (the character estimate stands)
        self._clock_ms = 0  # end of the last frame fed
        self._last_voice_ms: int | None = None  # end of the last speech frame
        self._run_start_ms: int | None = None  # first frame of the speech run not yet long enough to start a prompt

    def feed(self, payload: bytes, timestamp_ms: int | None) -> Playback | None:
        """One outbound frame; returns the change it brings (a prompt started, or ended), if any."""
        start = self._clock_ms if timestamp_ms is None else timestamp_ms
        end = start + len(payload) * 1000 // SAMPLE_RATE
        self.frames += 1
        change = self.silence_until(start)  # a gap in the frames is silence: it may end the prompt
        self._clock_ms = max(self._clock_ms, end)
        if not is_voiced(payload):
            self._run_start_ms = None
            return change or self.silence_until(end)
        self._last_voice_ms = end
        if self.speaking:
            return change
        if self._run_start_ms is None:
            self._run_start_ms = start
        if change is not None or end - self._run_start_ms < self.min_speech_ms:
            return change  # a prompt that ended here is reported first; the new one starts on the next frame
        self.speaking, self.started_ms, self.ended_ms = True, self._run_start_ms, None
        return Playback("started", self._run_start_ms)

    def feed_read(self, frames: list[tuple[bytes, int | None]]) -> list[Playback]:
        """A read's frames in order (about five); the changes they bring. A read that only goes on as it was (all
        silence while nothing plays, or all speech while a prompt plays, without gaps) is taken whole: one loudness
        count for the read, not a Python step per frame."""
        first, last = frames[0][1], frames[-1][1]
        steady = (first is not None and last is not None and first == self._clock_ms
                  and last - first == (len(frames) - 1) * FRAME_MS
                  and all(len(payload) == FRAME_BYTES for payload, _ in frames))
        if steady:
            loud = b"".join(payload for payload, _ in frames).translate(_LOUD)
            if not self.speaking and self._run_start_ms is None and loud.count(1) < _FRAME_LOUD:
                self.frames += len(frames)  # nothing playing, nothing starting: only the clock moves
                self._clock_ms = last + FRAME_MS
                return []
            if self.speaking and all(loud.count(1, at, at + FRAME_BYTES) >= _FRAME_LOUD
                                     for at in range(0, len(loud), FRAME_BYTES)):
                self.frames += len(frames)  # the prompt goes on
                self._clock_ms = self._last_voice_ms = last + FRAME_MS
                return []
        changes = []
        for payload, timestamp_ms in frames:
            change = self.feed(payload, timestamp_ms)
            if change is not None:
                changes.append(change)
        return changes

    def silence_until(self, now_ms: int) -> Playback | None:
        """Time has reached `now_ms` (e.g. an inbound frame's timestamp) with no speech since the last: the prompt
        ends once the silence is long enough. Lets the end be found when Twilio sends no outbound frames."""
        if self.speaking and self._last_voice_ms is not None and now_ms - self._last_voice_ms >= self.end_silence_ms:
            self.speaking, self.ended_ms = False, self._last_voice_ms
            return Playback("ended", self._last_voice_ms)
        return None

    @property
    def last_voice_ms(self) -> int | None:
        """The end of the last speech frame (None before any)."""
        return self._last_voice_ms

    def heard_ms(self, at_ms: int) -> int:
        """How long of the current (or last) prompt the caller had heard at `at_ms`, its pauses included."""
        if self.started_ms is None or at_ms <= self.started_ms:
            return 0
        until = at_ms if self.ended_ms is None else min(at_ms, self.ended_ms)
        return until - self.started_ms

    def playing_at(self, at_ms: int) -> bool:
        """Whether the caller was hearing a prompt at `at_ms` (from its first speech to its dated end)."""
        if self.started_ms is None or at_ms < self.started_ms:
            return False
        return self.ended_ms is None or at_ms < self.ended_ms


class SpeakingRate:
    """The voice's pace on this call, learnt from the prompts heard to their end: a cut prompt's heard share is its
    heard time over the time the whole text takes at this pace. Until one prompt ends, the configured pace."""

    def __init__(self, default_chars_per_second: float, min_seconds: float = 1.0) -> None:
        self.chars_per_second = default_chars_per_second
        self.learnt = False
        self._chars, self._seconds, self._min_seconds = 0, 0.0, min_seconds

    def prompt_heard(self, text: str, heard_ms: int) -> None:
        """A prompt of `text` was heard to its end in `heard_ms`: the pace over every such prompt so far."""
        if heard_ms < self._min_seconds * 1000 or not text.strip():
            return  # too short to say anything about the pace (a one-word prompt is mostly its pauses)
        self._chars += len(text)
        self._seconds += heard_ms / 1000
        self.chars_per_second, self.learnt = self._chars / self._seconds, True

    def share(self, text: str, heard_ms: int) -> float:
        """The share of `text` heard in `heard_ms`, between 0 and 1."""
        if not text:
            return 1.0
        return max(0.0, min(1.0, heard_ms / 1000 * self.chars_per_second / len(text)))


def heard_text(text: str, share: float) -> str:
    """The part of `text` heard when `share` of it was spoken: back to the last whole word."""
    if share >= 1.0:
        return text
    cut = text[:int(len(text) * max(0.0, share))]
    if not text[len(cut):len(cut) + 1].isspace():  # mid-word: that word was not heard whole
        cut = cut[:cut.rfind(" ") + 1]
    return cut.rstrip()

