"""Per-call state behind a small store interface, so it can later live in a shared store for many workers."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Protocol

log = logging.getLogger(__name__)

ENDED_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


@dataclass(frozen=True)
class CallState:
    """What the gateway knows about one call; immutable, replaced on every change."""

    call_sid: str
    caller: str = ""
    called: str = ""
    started_at: float = 0.0
    ended: bool = False
    turns: int = 0
    hints: tuple[str, ...] = ()
    reprompt: str = ""  # the chatbot's own words for a silent caller, from its last reply ("" for the default)
    last_heard: float | None = None  # store-clock time of the caller's last words or keys (None: not yet)
    reprompts: int = 0  # no-input reprompts since the caller was last heard
    language: str = ""  # the chatbot switched the call to this language ("" for LANGUAGE)
    voice: str = ""  # ...and to this voice ("" for VOICE)
    speech_down: bool = False  # stream modes: the recognizer reports an outage (it keeps retrying)
    speech_fallback: bool = False  # stream modes: the call listens through <Gather> (Twilio recognizes) meanwhile


class CallStore(Protocol):
    """Where call state lives: one process today, a shared store (Redis) later."""

    def open(self, call_sid: str, caller: str = "", called: str = "") -> CallState: ...

    def get(self, call_sid: str) -> CallState | None: ...

    def record_turn(self, call_sid: str, hints: tuple[str, ...], reprompt: str = "") -> CallState | None: ...

    def heard(self, call_sid: str) -> CallState | None: ...

    def reprompted(self, call_sid: str, quiet_for: float = 0.0) -> int: ...

    def set_speech(self, call_sid: str, *, down: bool | None = None,
                   fallback: bool | None = None) -> CallState | None: ...

    def end(self, call_sid: str) -> CallState | None: ...

    def speak_as(self, call_sid: str, language: str, voice: str) -> CallState | None: ...

    # A call's chat history for chatbots that keep none themselves (CHATBOT_PROTOCOL=openai): a list of
    # {"role", "content"} messages, oldest first, appended a turn at a time and kept to the last `keep` messages.
    def history(self, call_sid: str) -> list[dict]: ...

    def add_history(self, call_sid: str, messages: list[dict], keep: int) -> None: ...

    def cut_reply(self, call_sid: str, said: str, heard: str) -> bool: ...


class InMemoryCallStore:
    """A thread-safe CallStore in this process; ended calls are remembered a while so late events see them ended."""

    def __init__(self, forget_after_seconds: float = 600.0, clock: Callable[[], float] = time.monotonic,
                 forget_open_after_seconds: float = 6 * 3600.0):
        self._calls: dict[str, CallState] = {}
        self._ended_at: dict[str, float] = {}
        self._history: dict[str, list[dict]] = {}
        self._lock = threading.Lock()
        self._forget_after = forget_after_seconds
        # A call whose end never reached us (no status callback configured, a lost request) is not kept forever:
        # far longer than MAX_CALL_SECONDS allows, it can only be a call that is over.
        self._forget_open_after = forget_open_after_seconds
        self._last_open_sweep = clock()
        self._clock = clock

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

    def record_turn(self, call_sid: str, hints: tuple[str, ...], reprompt: str = "") -> CallState | None:
        """Count a finished turn and remember its hints and reprompt for the next one; no-op for unknown or ended calls."""
        with self._lock:
            state = self._calls.get(call_sid)
            if state is None or state.ended:
                return state
            state = replace(state, turns=state.turns + 1, hints=hints, reprompt=reprompt)
            self._calls[call_sid] = state
            return state

    def heard(self, call_sid: str) -> CallState | None:
        """The caller spoke or pressed keys: note when, and count no-input reprompts afresh."""
        with self._lock:
            state = self._calls.get(call_sid)
            if state is None or state.ended:
                return state
            state = replace(state, last_heard=self._clock(), reprompts=0)
            self._calls[call_sid] = state
            return state

    def reprompted(self, call_sid: str, quiet_for: float = 0.0) -> int:
        """Count a no-input reprompt, unless the caller was heard less than `quiet_for` seconds ago.

        Returns the reprompts in a row so far (1, 2, ...), or 0 when none is due: the caller was heard
        recently (their turn is on its way), or the call is unknown or ended.
        """
        with self._lock:
            state = self._calls.get(call_sid)
            if state is None or state.ended:
                return 0
            if state.last_heard is not None and self._clock() - state.last_heard < quiet_for:
                return 0
            state = replace(state, reprompts=state.reprompts + 1)
            self._calls[call_sid] = state
            return state.reprompts

    def speak_as(self, call_sid: str, language: str, voice: str) -> CallState | None:
        """Speak and recognize the call in another language (and voice) from now on."""
        with self._lock:
            state = self._calls.get(call_sid)
            if state is None or state.ended:
                return state
            state = replace(state, language=language, voice=voice)
            self._calls[call_sid] = state
            return state

    def set_speech(self, call_sid: str, *, down: bool | None = None, fallback: bool | None = None) -> CallState | None:
        """Set the speech outage flags given; returns the state before (None if unknown), so callers act only once."""
        with self._lock:
            state = self._calls.get(call_sid)
            if state is None or state.ended:
                return state
            self._calls[call_sid] = replace(state, speech_down=state.speech_down if down is None else down,
                                            speech_fallback=state.speech_fallback if fallback is None else fallback)
            return state

    def history(self, call_sid: str) -> list[dict]:
        """The call's chat messages so far, oldest first (copies: changing them changes nothing here)."""
        with self._lock:
            return [dict(message) for message in self._history.get(call_sid, ())]

    def add_history(self, call_sid: str, messages: list[dict], keep: int) -> None:
        """Append one turn's messages to a known call's history and keep only the last `keep` messages."""
        with self._lock:
            if call_sid not in self._calls:
                return
            history = self._history.setdefault(call_sid, [])
            history.extend(dict(message) for message in messages)
            del history[:-keep]

    def cut_reply(self, call_sid: str, said: str, heard: str) -> bool:
        """The caller heard only `heard` of `said` (a barge-in): the last assistant message keeps what came before
        `said` and `heard`, and loses the rest. False when no assistant message says `said`."""
        with self._lock:
            for message in reversed(self._history.get(call_sid, ())):
                if message.get("role") == "assistant":
                    content = message.get("content") or ""
                    at = content.rfind(said) if said else -1
                    if at < 0:
                        return False
                    message["content"] = (content[:at] + heard).strip()
                    return True
            return False

    def end(self, call_sid: str) -> CallState | None:
        """Mark a call ended; returns the state it had, or None if it was unknown."""
        with self._lock:
            state = self._calls.get(call_sid)
            if state is None:
                return None
            if not state.ended:
                self._calls[call_sid] = replace(state, ended=True)
                self._ended_at[call_sid] = self._clock()
            return state

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
