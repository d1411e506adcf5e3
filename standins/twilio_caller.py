"""The scripted human on the phone: what the caller says, when they say it, and the audio they put on the line."""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

log = logging.getLogger(__name__)

AUDIO_DIR = Path(__file__).resolve().parent.parent / "chatline" / "audio"
# Same values as gateway.audio, kept here so the stand-in never depends on the system it tests.
SAMPLE_RATE = 8000
FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law: one media message
MULAW_SILENCE = 0xFF
_LEAD = 0.04  # wall seconds: timed turns are queued this early so the stream can place them on the exact frame


def silence(milliseconds: int) -> bytes:
    """That many milliseconds of mu-law silence at 8 kHz."""
    return bytes([MULAW_SILENCE]) * (SAMPLE_RATE * milliseconds // 1000)


def _recording_texts() -> dict[str, str]:
    """Map each bundled recording's name to the words spoken in it, read from the script that generated them."""
    script = AUDIO_DIR / "make_audio.sh"
    try:
        return dict(re.findall(r'^say\s+(\w+)\s+"([^"]*)"', script.read_text(), flags=re.M))
    except OSError as exc:
        log.warning("twilio stand-in: cannot read %s (%s); recordings are named by file name only", script, exc)
        return {}


_TEXTS = _recording_texts()


@dataclass(frozen=True)
class Turn:
    """One thing the caller does: speak audio, press keys, give a Gather speech result, or stay silent."""

    kind: str  # "audio" | "dtmf" | "speech-result" | "silence"
    name: str  # label for events and transcripts
    audio: bytes = b""
    text: str = ""  # the words (what a <Gather> recognizer would return); digits for dtmf
    confidence: float = 0.9
    seconds: float = 0.0  # silence length
    at: float | None = None  # fixed offset from stream start, in call seconds (Caller.at_times)
    over_say: float | None = None  # speak this many call seconds into the bot's next <Say> (barge-in)


def load_audio(source: str | Path, text: str | None = None) -> Turn:
    """Return an audio turn from a .ulaw path or the name of a bundled recording ("hello", "book_a_table")."""
    path = Path(source)
    if not path.exists() and (AUDIO_DIR / f"{source}.ulaw").exists():
        path = AUDIO_DIR / f"{source}.ulaw"
    if not path.exists():
        raise FileNotFoundError(f"no caller audio {source!r} (not a file, nor a recording in {AUDIO_DIR})")
    words = text if text is not None else _TEXTS.get(path.stem, path.stem.replace("_", " "))
    return Turn("audio", words, audio=path.read_bytes(), text=words)


def make_turn(item: object) -> Turn:
    """Build a Turn from the short forms a script may use (see Caller)."""
    if isinstance(item, Turn):
        return item
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        return Turn("silence", f"{item:g}s of silence", seconds=float(item))
    if isinstance(item, (bytes, bytearray)):
        return Turn("audio", f"{len(item) * 1000 // SAMPLE_RATE} ms of audio", audio=bytes(item))
    if isinstance(item, (str, Path)):
        return load_audio(item)
    if isinstance(item, tuple) and item:
        kind, *rest = item
        if kind == "dtmf" and len(rest) == 1:
            return Turn("dtmf", f"pressed {rest[0]}", text=str(rest[0]))
        if kind == "speech-result" and 1 <= len(rest) <= 2:
            return Turn("speech-result", str(rest[0]), text=str(rest[0]), confidence=float(rest[1]) if rest[1:] else 0.9)
        if kind == "silence" and len(rest) == 1:
            return make_turn(float(rest[0]))
        if kind == "barge-in" and len(rest) == 2:
            turn = make_turn(rest[0])
            return Turn(turn.kind, turn.name, turn.audio, turn.text, turn.confidence, turn.seconds,
                        over_say=float(rest[1]))
        if kind == "audio" and 1 <= len(rest) <= 2:
            if isinstance(rest[0], (bytes, bytearray)):
                words = rest[1] if rest[1:] else ""
                return Turn("audio", words or make_turn(rest[0]).name, audio=bytes(rest[0]), text=words)
            return load_audio(rest[0], rest[1] if rest[1:] else None)
    raise ValueError(f"cannot make a caller turn from {item!r}")


class Caller:
    """A scripted caller. Turns: a .ulaw path or recording name, raw mu-law bytes, ("dtmf", "12#"),
    ("speech-result", "hello", 0.9) for <Gather>, ("audio", path_or_bytes, "words"), a silence
    (a number, or ("silence", seconds)), or ("barge-in", turn, seconds): that turn, spoken this many
    seconds into the bot's next <Say> instead of after it.

    Turn i is spoken once the bot has finished a <Say> since turn i-1 (the greeting cues the first turn)
    and then stayed quiet for `think_time` call seconds. A silence just delays the turn after it, which
    answers the same <Say>. All times are call seconds (wall time x speed). A Caller holds no state
    of its own, so one script may be used for several calls.
    """

    def __init__(self, turns: Iterable[object] = (), think_time: float = 0.3,
                 hangup_after_script: float | None = None) -> None:
        self.turns = [make_turn(t) for t in turns]
        self.think_time = think_time
        self.hangup_after_script = hangup_after_script

    @classmethod
    def at_times(cls, schedule: Iterable[tuple[float, object]], hangup_after_script: float | None = None) -> Caller:
        """A caller who speaks at fixed offsets (call seconds) from the stream's start, whatever the bot says."""
        turns = []
        for seconds, item in sorted(schedule, key=lambda pair: pair[0]):
            turn = make_turn(item)
            turns.append(Turn(turn.kind, turn.name, turn.audio, turn.text, turn.confidence, turn.seconds, float(seconds)))
        return cls(turns, hangup_after_script=hangup_after_script)


class Feed:
    """The caller audio one media stream still has to send, cut into 20 ms frames."""

    def __init__(self, primary: bool) -> None:
        self.primary = primary  # the call's first stream: the one Caller.at_times offsets refer to
        self._lock = threading.Lock()
        self._pending = bytearray()
        self._taken = 0  # frames sent so far

    def put(self, audio: bytes, at_frame: int | None = None) -> None:
        with self._lock:
            queued_until = self._taken + -(-len(self._pending) // FRAME_BYTES)
            if at_frame is not None and at_frame > queued_until:
                self._pending += silence(20 * (at_frame - queued_until))
            padding = -len(audio) % FRAME_BYTES
            self._pending += audio + bytes([MULAW_SILENCE]) * padding

    def take(self) -> bytes:
        """Return the next 160-byte frame: queued speech, or mu-law silence when the caller is quiet."""
        with self._lock:
            self._taken += 1
            if not self._pending:
                return silence(20)
            frame = bytes(self._pending[:FRAME_BYTES])
            del self._pending[:FRAME_BYTES]
            return frame


class Line:
    """The caller's side of the phone line: every open media stream hears what the caller says from now on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._feeds: list[Feed] = []
        self._had_feed = False

    def subscribe(self) -> Feed:
        with self._lock:
            feed = Feed(primary=not self._had_feed)
            self._had_feed = True
            self._feeds.append(feed)
            return feed

    def unsubscribe(self, feed: Feed) -> None:
        with self._lock:
            if feed in self._feeds:
                self._feeds.remove(feed)

    def speak(self, audio: bytes, at_seconds: float | None = None) -> None:
        with self._lock:
            feeds = list(self._feeds)
        for feed in feeds:
            at_frame = round(at_seconds * 50) if at_seconds is not None and feed.primary else None
            feed.put(audio, at_frame)


@dataclass
class GatherSlot:
    """A <Gather> waiting for input; the caller fills `result` with Twilio's form params."""

    inputs: frozenset[str]
    finish_on_key: str = "#"
    result: dict[str, str] | None = None
    pending: bool = False  # the caller is mid-utterance, so the Gather timeout must not fire yet

    def accepts(self, turn: Turn) -> bool:
        """Whether this <Gather> listens for the turn's kind of input (keys, or speech)."""
        return ("dtmf" if turn.kind == "dtmf" else "speech") in self.inputs


class Cues:
    """What the caller can perceive, updated by the call's other threads; every field is guarded by `cond`."""

    def __init__(self, cond: threading.Condition) -> None:
        self.cond = cond
        self.saying = False
        self.last_say_start: float | None = None
        self.last_say_end: float | None = None
        self.stream_started_at: float | None = None
        self.gather: GatherSlot | None = None
        self.over = False


class CallerRuntime:
    """Plays one Caller's script on one call, in its own daemon thread."""

    def __init__(self, caller: Caller, cues: Cues, line: Line, record: Callable[[str, object], None],
                 hang_up: Callable[[str], None], speed: float) -> None:
        self.caller, self.cues, self.line = caller, cues, line
        self._record, self._hang_up, self._speed = record, hang_up, speed
        self._thread = threading.Thread(target=self._run, name="twilio-standin-caller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            turn_end = float("-inf")
            for turn in self.caller.turns:
                if not self._wait_cue(turn, turn_end):
                    return
                self._perform(turn)
                if turn.kind != "silence":
                    # A silence only delays what comes next: the turn after it answers the same <Say>.
                    turn_end = time.monotonic()
            if self.caller.hangup_after_script is not None:
                if self._sleep(self.caller.hangup_after_script / self._speed):
                    self._hang_up("caller hung up")
        except Exception as exc:  # the boundary of the caller thread: report, never kill the process
            log.exception("twilio stand-in: caller script failed")
            self._record("error", f"caller script failed: {exc!r}")

    def _wait_cue(self, turn: Turn, turn_end: float) -> bool:
        """Wait until it is this turn's moment; False if the call ended first."""
        cues = self.cues
        with cues.cond:
            while not cues.over:
                due = None
                if turn.at is not None and cues.stream_started_at is not None:
                    due = cues.stream_started_at + turn.at / self._speed - _LEAD
                elif turn.over_say is not None:
                    if (cues.last_say_start or float("-inf")) > turn_end:  # a <Say> began since the last turn
                        due = cues.last_say_start + turn.over_say / self._speed
                elif turn.at is None and not cues.saying and (cues.last_say_end or float("-inf")) > turn_end:
                    due = cues.last_say_end + self.caller.think_time / self._speed
                now = time.monotonic()
                if due is not None and now >= due:
                    return True
                # The timeout is only a safety net: every change to the cues notifies the condition.
                cues.cond.wait(min(due - now, 0.5) if due is not None else 0.5)
            return False

    def _perform(self, turn: Turn) -> None:
        if turn.kind == "silence":
            self._record("caller-silent", turn.seconds)
            self._sleep(turn.seconds / self._speed)
            return
        if turn.kind == "dtmf":
            self._record("caller-dtmf", turn.text)
            duration = 0.15 * len(turn.text)
        elif turn.kind == "speech-result":
            self._record("caller-speaks", turn.name)
            duration = max(0.5, 0.06 * len(turn.text))
        else:
            self._record("caller-speaks", turn.name)
            self.line.speak(turn.audio, turn.at)
            duration = len(turn.audio) / SAMPLE_RATE + (_LEAD * self._speed if turn.at is not None else 0.0)
        self._mark_pending(True, turn)
        try:
            if self._sleep(duration / self._speed):
                self._deliver(turn)
        finally:
            self._mark_pending(False, turn)

    def _mark_pending(self, pending: bool, turn: Turn) -> None:
        """Tell a listening <Gather> the caller is mid-input; only input it takes counts (speech does not hold
        a keys-only Gather's timeout, nor barge into its prompt)."""
        with self.cues.cond:
            if self.cues.gather is not None:
                self.cues.gather.pending = pending and self.cues.gather.accepts(turn)
                self.cues.cond.notify_all()

    def _deliver(self, turn: Turn) -> None:
        """Hand the turn to a listening <Gather>, as Twilio's recognizer or DTMF detector would."""
        with self.cues.cond:
            slot = self.cues.gather
            if slot is None or slot.result is not None:
                return  # nobody is gathering: the words only reach a media stream, if any
            if turn.kind == "dtmf" and "dtmf" in slot.inputs:
                digits = turn.text.split(slot.finish_on_key)[0] if slot.finish_on_key else turn.text
                slot.result = {"Digits": digits}
            elif turn.kind in ("audio", "speech-result") and "speech" in slot.inputs and turn.text:
                slot.result = {"SpeechResult": turn.text, "Confidence": f"{turn.confidence:g}"}
            self.cues.cond.notify_all()

    def _sleep(self, seconds: float) -> bool:
        """Wait `seconds` of wall time; False if the call ended meanwhile."""
        deadline = time.monotonic() + seconds
        with self.cues.cond:
            while not self.cues.over:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True
                self.cues.cond.wait(remaining)
            return False
