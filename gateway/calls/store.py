"""Every fact about a call, in wall-clock time, behind one store interface: this process, or Redis for many."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Callable

log = logging.getLogger(__name__)

ENDED_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
FORGET_ENDED_SECONDS = 600.0  # an ended call is remembered this long, so late events see it ended
FORGET_OPEN_SECONDS = 6 * 3600.0  # far longer than MAX_CALL_SECONDS allows: a call never heard to end is over

Change = Callable[["CallState", float], "CallState"]  # a pure change of a call's state at store-clock time `now`


@dataclass(frozen=True)
class CallState:
    """What the gateway knows about one call; immutable, replaced on every change. Times are the store's clock."""

    call_sid: str
    caller: str = ""
    called: str = ""
    started_at: float = 0.0
    ended: bool = False
    turns: int = 0
    hints: tuple[str, ...] = ()
    reprompt: str = ""  # the chatbot's own words for a silent caller, from its last reply ("" for the default)
    last_heard: float | None = None  # time of the caller's last words or keys (None: not yet)
    reprompts: int = 0  # no-input reprompts since the caller was last heard
    language: str = ""  # the chatbot switched the call to this language ("" for LANGUAGE)
    voice: str = ""  # ...and to this voice ("" for VOICE)
    speech_down: bool = False  # stream modes: the recognizer reports an outage (it keeps retrying)
    speech_fallback: bool = False  # stream modes: the call listens through <Gather> (Twilio recognizes) meanwhile
    prompt: int = 0  # counts what the call was sent to say: a barge-in is for one prompt only
    prompt_until: float = 0.0  # the current prompt's <Say> should be over by then (an estimate)
    prompt_may_cut: bool = False  # the caller's speech may cut the current prompt short...
    prompt_cut: bool = False  # ...and already did
    prompt_text: str = ""  # what the current prompt says, and when it began, to tell how much of it was heard
    prompt_started: float = 0.0
    held: bool = False  # a hangup or transfer is under way: an update now would cut it short
    deadline_claimed: bool = False  # the MAX_CALL_SECONDS goodbye went out (from one process)
    fence: int = 0  # the newest turn token that touched the call: an older holder's answer is stale
    stream_owner: str = ""  # the process holding the call's Media Stream ("" for none)
    stream_seen: float = 0.0  # the owner's last heartbeat for that stream
    stream_broken: bool = False  # its stream broke without a `stop` while the call went on
    base_url: str = ""  # the gateway's public base URL as the call's stream saw it: where a new stream goes
    unanswered: str = ""  # the caller's words a turn is answering right now: a process that dies leaves them here
    options: tuple[tuple[str, str], ...] = ()  # the last answer's (title, payload) options: they hold until the next
    texts_sent: int = 0  # text messages with links sent to the caller (SMS_MAX_PER_CALL counts them in any process)
    owed: str = ""  # a sentence the caller hears before the next answer: a text message that could not be sent

    def to_dict(self) -> dict:
        """The state as plain JSON-ready values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CallState:
        """Read a state written by to_dict (unknown keys from another version are ignored)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["hints"] = tuple(values.get("hints") or ())
        values["options"] = tuple(tuple(option) for option in values.get("options") or ())  # JSON gives lists
        return cls(**values)


def _live(change: Change) -> Change:
    """A change that leaves ended calls alone."""
    return lambda state, now: state if state.ended else change(state, now)


class CallStore:
    """The named changes every store offers, each one atomic; a store supplies `_change`, `get`, `open`, `now`."""

    def _change(self, call_sid: str, change: Change) -> tuple[CallState | None, CallState | None]:
        raise NotImplementedError

    def _apply(self, call_sid: str, change: Change) -> CallState | None:
        return self._change(call_sid, _live(change))[1]

    def record_turn(self, call_sid: str, hints: tuple[str, ...], reprompt: str = "") -> CallState | None:
        """Count a finished turn and remember its hints and reprompt for the next one; no-op for ended calls."""
        return self._apply(call_sid, lambda s, now: replace(s, turns=s.turns + 1, hints=tuple(hints),
                                                            reprompt=reprompt))

    def claim_text_message(self, call_sid: str, most: int) -> bool:
        """Count one more text message to the caller, unless `most` were sent already (or the call is over)."""
        before, after = self._change(call_sid, _live(
            lambda s, now: replace(s, texts_sent=s.texts_sent + 1) if s.texts_sent < most else s))
        return before is not None and after is not None and after.texts_sent > before.texts_sent

    def owe(self, call_sid: str, sentence: str) -> CallState | None:
        """The caller is owed `sentence` before the next answer (a text message that could not be sent)."""
        return self._apply(call_sid, lambda s, now: replace(s, owed=sentence))

    def answer(self, call_sid: str, hints: tuple[str, ...], reprompt: str = "", language: str = "",
               voice: str = "", options: tuple[tuple[str, str], ...] = ()) -> CallState | None:
        """A turn's answer is about to go out: count the turn, keep its hints (else the last ones), reprompt and
        options (an answer without options ends the last ones), any switch of language or voice, and let go of the
        words it answers, all in one change. Letting them go before
        the call update (not after it) means a process killed between the two never has its answer said again by
        the process taking the call over: at worst that answer is lost and the silence reprompt follows."""
        def answered(s: CallState, now: float) -> CallState:
            switched = language or voice
            return replace(s, turns=s.turns + 1, hints=tuple(hints) or s.hints, reprompt=reprompt, unanswered="",
                           options=tuple(tuple(option) for option in options),
                           language=(language or s.language) if switched else s.language,
                           voice=voice if switched else s.voice)
        return self._apply(call_sid, answered)

    def said(self, call_sid: str, seconds: float, may_cut: bool, text: str = "", hold: bool = False,
             owed: str = "") -> CallState | None:
        """The caller hears a new prompt (see `speaking`), and with `hold` a hangup or transfer is under way, in one
        change; `owed`: the prompt began with the sentence the caller was owed (unless a newer one came meanwhile)."""
        return self._apply(call_sid, lambda s, now: replace(
            s, prompt=s.prompt + 1, prompt_until=now + seconds, prompt_may_cut=may_cut, prompt_cut=False,
            prompt_text=text, prompt_started=now, held=s.held or hold, owed="" if owed and s.owed == owed else s.owed))

    def heard(self, call_sid: str) -> CallState | None:
        """The caller spoke or pressed keys: note when, and count no-input reprompts afresh."""
        return self._apply(call_sid, lambda s, now: replace(s, last_heard=now, reprompts=0))

    def reprompted(self, call_sid: str, quiet_for: float = 0.0) -> int:
        """Count a no-input reprompt, unless the caller was heard less than `quiet_for` seconds ago.

        Returns the reprompts in a row so far (1, 2, ...), or 0 when none is due: the caller was heard
        recently (their turn is on its way), or the call is unknown or ended.
        """
        def count(s: CallState, now: float) -> CallState:
            if s.last_heard is not None and now - s.last_heard < quiet_for:
                return s
            return replace(s, reprompts=s.reprompts + 1)

        before, after = self._change(call_sid, _live(count))
        return after.reprompts if after is not None and after is not before and not after.ended else 0

    def speak_as(self, call_sid: str, language: str, voice: str) -> CallState | None:
        """Speak and recognize the call in another language (and voice) from now on."""
        return self._apply(call_sid, lambda s, now: replace(s, language=language, voice=voice))

    def set_speech(self, call_sid: str, *, down: bool | None = None, fallback: bool | None = None) -> CallState | None:
        """Set the speech outage flags given; returns the state before (None if unknown), so callers act only once."""
        return self._change(call_sid, _live(lambda s, now: replace(
            s, speech_down=s.speech_down if down is None else down,
            speech_fallback=s.speech_fallback if fallback is None else fallback)))[0]

    def end(self, call_sid: str) -> CallState | None:
        """Mark a call ended; returns the state it had, or None if it was unknown."""
        return self._change(call_sid, lambda s, now: replace(s, ended=True, stream_owner=""))[0]

    # ---- what the caller hears: barge-in ---------------------------------------------------------------
    def speaking(self, call_sid: str, seconds: float, may_cut: bool, text: str = "") -> CallState | None:
        """The caller hears a new prompt (saying `text`) for about `seconds`; speech may cut it when `may_cut`."""
        return self._apply(call_sid, lambda s, now: replace(s, prompt=s.prompt + 1, prompt_until=now + seconds,
                                                            prompt_may_cut=may_cut, prompt_cut=False,
                                                            prompt_text=text, prompt_started=now))

    def prompt_measured(self, call_sid: str, prompt: int, until: float) -> CallState | None:
        """The stream's outbound track measured prompt `prompt`: it is over at `until` (its end, or, while it is still
        heard, a moment ahead). Ignored once another prompt replaced it or a barge-in cut it."""
        return self._apply(call_sid, lambda s, now: replace(s, prompt_until=max(until, s.prompt_started))
                           if s.prompt == prompt and s.prompt_until > 0 else s)

    def barge_in(self, call_sid: str) -> int | None:
        """The caller started speaking: the prompt to stop, if it may be cut and is still being said (once)."""
        state = self.get(call_sid)  # most speech lands when nothing may be cut: no write for it
        if state is None or not _may_cut(state, self.now()):
            return None

        def cut(s: CallState, now: float) -> CallState:
            return replace(s, prompt_cut=True) if _may_cut(s, now) else s

        before, after = self._change(call_sid, cut)
        return after.prompt if after is not None and after is not before else None

    def prompt_stopped(self, call_sid: str, prompt: int) -> CallState | None:
        """The prompt `prompt` was cut short: nothing is being said now."""
        return self._apply(call_sid, lambda s, now: replace(s, prompt_until=0.0) if s.prompt == prompt else s)

    def answering(self, call_sid: str, words: str) -> CallState | None:
        """A turn is answering `words` ("": it is done), so another process can answer them if this one dies."""
        return self._apply(call_sid, lambda s, now: replace(s, unanswered=words))

    def hold(self, call_sid: str, held: bool = True) -> CallState | None:
        """A hangup or transfer is under way (or, `held` false, the caller is back with the bot)."""
        return self._apply(call_sid, lambda s, now: replace(s, held=held))

    # ---- once per call, whichever process asks -----------------------------------------------------------
    def claim_deadline(self, call_sid: str) -> bool:
        """True for the one caller that gets to end the call at MAX_CALL_SECONDS."""
        before, after = self._change(call_sid, _live(lambda s, now: replace(s, deadline_claimed=True)))
        return before is not None and not before.ended and not before.deadline_claimed

    def fenced(self, call_sid: str, token: int) -> bool:
        """Whether a turn holding `token` may still act: no newer turn of the call has acted since."""
        before, after = self._change(call_sid, lambda s, now: replace(s, fence=token) if token > s.fence else s)
        return before is None or token >= before.fence

    # ---- who holds the stream ----------------------------------------------------------------------------
    def stream_started(self, call_sid: str, owner: str, base_url: str = "") -> CallState | None:
        """`owner` holds the call's Media Stream from now on."""
        return self._apply(call_sid, lambda s, now: replace(s, stream_owner=owner, stream_seen=now,
                                                            stream_broken=False, base_url=base_url or s.base_url))

    def claim_stream(self, call_sid: str, dead_owner: str, owner: str) -> CallState | None:
        """`owner` takes over the stream `dead_owner` held (its process died); the state if it did, else None."""
        before, after = self._change(call_sid, _live(lambda s, now: replace(s, stream_owner=owner, stream_seen=now)
                                                     if s.stream_owner == dead_owner else s))
        return after if after is not None and after is not before else None

    def stream_gone(self, call_sid: str, owner: str, broken: bool) -> CallState | None:
        """`owner`'s stream of the call ended; `broken`: without a `stop`, so the call's next keep-alive restarts it."""
        return self._apply(call_sid, lambda s, now: replace(s, stream_owner="", stream_broken=broken)
                           if s.stream_owner == owner else s)

    def take_broken(self, call_sid: str) -> bool:
        """Whether the call's stream broke and no new one has started since (true once: then forgotten)."""
        before, _ = self._change(call_sid, _live(lambda s, now: replace(s, stream_broken=False)
                                                 if s.stream_broken and not s.stream_owner else s))
        return before is not None and not before.ended and before.stream_broken and not before.stream_owner

    def get(self, call_sid: str) -> CallState | None:
        raise NotImplementedError

    def now(self) -> float:
        raise NotImplementedError

    # A call's chat history for chatbots that keep none themselves (CHATBOT_PROTOCOL=openai): a list of
    # {"role", "content"} messages, kept apart from the state (it grows with every turn), forgotten with the call.
    def history(self, call_sid: str) -> list[dict]:
        raise NotImplementedError

    def add_history(self, call_sid: str, messages: list[dict], keep: int) -> None:
        raise NotImplementedError

    def cut_reply(self, call_sid: str, said: str, heard: str) -> bool:
        raise NotImplementedError


def add_to_history(history: list[dict], messages: list[dict], keep: int) -> list[dict]:
    """`history` with one turn's messages appended, only the last `keep` messages kept."""
    return (history + [dict(message) for message in messages])[-keep:]


def cut_in_history(history: list[dict], said: str, heard: str) -> bool:
    """The caller heard only `heard` of `said` (a barge-in): the last assistant message keeps what came before
    `said` and `heard`, and loses the rest (changed in place). False when no assistant message says `said`."""
    for message in reversed(history):
        if message.get("role") == "assistant":
            content = message.get("content") or ""
            at = content.rfind(said) if said else -1
            if at < 0:
                return False
            message["content"] = (content[:at] + heard).strip()
            return True
    return False


def protected_seconds(state: CallState | None, now: float, margin: float) -> float:
    """Seconds left at `now` of a prompt speech may not cut (plus `margin`); 0 when none plays."""
    if state is None or state.prompt_may_cut:
        return 0.0
    return max(0.0, state.prompt_until + margin - now)


def _may_cut(state: CallState, now: float) -> bool:
    return (not state.ended and not state.held and state.prompt_may_cut and not state.prompt_cut
            and now < state.prompt_until)


class InMemoryCallStore(CallStore):
    """The store in this process (the default, no Redis); ended calls are remembered a while for late events."""

    def __init__(self, forget_after_seconds: float = FORGET_ENDED_SECONDS, clock: Callable[[], float] = time.time,
                 forget_open_after_seconds: float = FORGET_OPEN_SECONDS):
        self._calls: dict[str, CallState] = {}
        self._history: dict[str, list[dict]] = {}
        self._ended_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._forget_after = forget_after_seconds
        self._forget_open_after = forget_open_after_seconds
        self._last_open_sweep = clock()
        self._clock = clock

    def now(self) -> float:
        """The store's clock (wall-clock seconds unless a test gives another)."""
        return self._clock()

    def open(self, call_sid: str, caller: str = "", called: str = "") -> CallState:
        """Register a call (idempotent: a retried webhook keeps the first state)."""
        with self._lock:
            self._sweep()
            state = self._calls.get(call_sid)
            if state is None:
                state = CallState(call_sid, caller, called, started_at=self._clock())
                self._calls[call_sid] = state
            return state

    def get(self, call_sid: str) -> CallState | None:
        """Return the call's state, or None if the call is unknown (or long forgotten)."""
        with self._lock:
            return self._calls.get(call_sid)

    def _change(self, call_sid: str, change: Change) -> tuple[CallState | None, CallState | None]:
        """Apply `change` under the lock; (before, after), both None for an unknown call."""
        with self._lock:
            before = self._calls.get(call_sid)
            if before is None:
                return None, None
            after = change(before, self._clock())
            if after != before:
                self._calls[call_sid] = after
                if after.ended and not before.ended:
                    self._ended_at[call_sid] = self._clock()
            else:
                after = before
            return before, after

    def history(self, call_sid: str) -> list[dict]:
        """The call's chat messages so far, oldest first (copies: changing them changes nothing here)."""
        with self._lock:
            return [dict(message) for message in self._history.get(call_sid, ())]

    def add_history(self, call_sid: str, messages: list[dict], keep: int) -> None:
        """Append one turn's messages to a known call's history and keep only the last `keep` messages."""
        with self._lock:
            if call_sid in self._calls:
                self._history[call_sid] = add_to_history(self._history.get(call_sid, []), messages, keep)

    def cut_reply(self, call_sid: str, said: str, heard: str) -> bool:
        """The caller heard only `heard` of `said`: the history's last answer says only what was heard."""
        with self._lock:
            return cut_in_history(self._history.get(call_sid, []), said, heard)

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)

    def _sweep(self) -> None:
        """Forget calls that ended long ago, and (once a minute) calls never heard to end (under the lock, on `open`)."""
        now = self._clock()
        for sid in [sid for sid, at in self._ended_at.items() if at < now - self._forget_after]:
            del self._ended_at[sid]
            self._calls.pop(sid, None)
            self._history.pop(sid, None)
        if now - self._last_open_sweep >= 60.0:
            self._last_open_sweep = now
            cutoff = now - self._forget_open_after
            for sid in [sid for sid, state in self._calls.items() if not state.ended and state.started_at < cutoff]:
                del self._calls[sid]
                self._history.pop(sid, None)
                log.warning("call %s never ended as far as we heard; forgotten after %.0f h", sid,
                            self._forget_open_after / 3600)
