"""What the caller is hearing right now, for barge-in: the current prompt, its estimated end, who may cut it."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ..calls.store import protected_seconds

if TYPE_CHECKING:
    from ..calls.store import CallState, CallStore

# What must not be cut waits this much past the estimated end of its <Say>: Twilio starts saying it a moment after
# the update that carried it returned, and an answer a quarter second late is not noticed.
SAY_END_MARGIN = 0.25


def say_seconds(text: str, chars_per_second: float) -> float:
    """How long the caller hears `text` from the moment its update is sent. The default pace (13 characters a second,
    a little slower than Twilio's voices) leaves room for the update's way to Twilio: a guess too long only means a
    barge-in that finds the bot already quiet (the keep-alive starts again), too short a caller who cannot cut in."""
    return len(text) / chars_per_second


class PromptClock:
    """One call's current prompt, as the store keeps it (any process may have sent it). `lock` is held while this
    process sends a call update, so its own barge-in can never land after (and cut) the answer that followed it."""

    def __init__(self, store: CallStore, call_sid: str) -> None:
        self.lock = threading.Lock()
        self._store, self._call_sid = store, call_sid

    def speaking(self, seconds: float, may_barge_in: bool, text: str = "") -> int:
        """A new prompt the caller hears for about `seconds` (saying `text`, when known); returns its number."""
        state = self._store.speaking(self._call_sid, seconds, may_barge_in, text)
        return state.prompt if state is not None else 0

    def next_prompt(self) -> None:
        """An update replaced what the caller hears: pending barge-ins are for the old prompt."""
        self._store.speaking(self._call_sid, 0.0, False)

    def heard(self, at: float) -> tuple[str, str]:
        """The current prompt's text and the part of it heard by store-clock time `at` (estimated from its pace,
        back to the last whole word)."""
        state = self._store.get(self._call_sid)
        if state is None:
            return "", ""
        text, started, until = state.prompt_text, state.prompt_started, state.prompt_until
        if not text or until <= started or at >= until:
            return text, text
        cut = text[:int(len(text) * max(0.0, at - started) / (until - started))]
        if not text[len(cut):len(cut) + 1].isspace():  # mid-word: that word was not heard whole
            cut = cut[:cut.rfind(" ") + 1]
        return text, cut.rstrip()

    def plays_on(self, prompt: int) -> bool:
        """Whether `prompt` is still what the caller hears, and no barge-in cut it short."""
        state = self._store.get(self._call_sid)
        return state is not None and state.prompt == prompt and not state.prompt_cut

    def barge_in(self) -> int | None:
        """The caller started speaking: the prompt to stop, if it may be cut and is still being said (once)."""
        return self._store.barge_in(self._call_sid)

    def is_current(self, prompt: int) -> bool:
        """Whether `prompt` is still what the caller hears, and nothing holds the call."""
        state = self._store.get(self._call_sid)
        return state is not None and state.prompt == prompt and not state.held and not state.ended

    def stopped(self, prompt: int) -> None:
        """The prompt was cut short."""
        self._store.prompt_stopped(self._call_sid, prompt)

    def protected_for(self, state: CallState | None = None) -> float:
        """Seconds left of a prompt speech may not cut (BARGE_IN off, or "barge_in": false): an answer waits.
        `state`: the call's, when just read (else it is read here)."""
        return protected_seconds(state or self._store.get(self._call_sid), self._store.now(), SAY_END_MARGIN)

    def speaking_for(self) -> float:
        """Seconds until an update no longer cuts the prompt being said (an estimate; 0 when it is over)."""
        state = self._store.get(self._call_sid)
        return 0.0 if state is None else max(0.0, state.prompt_until + SAY_END_MARGIN - self._store.now())
