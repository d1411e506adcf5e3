"""What the caller is hearing right now, for barge-in: the current prompt, its estimated end, who may cut it."""
from __future__ import annotations

import threading
import time

# What must not be cut waits this much past the estimated end of its <Say>: Twilio starts saying it a moment after
# the update that carried it returned, and an answer a quarter second late is not noticed.
SAY_END_MARGIN = 0.25


def say_seconds(text: str, chars_per_second: float) -> float:
    """How long the caller hears `text` from the moment its update is sent. The default pace (13 characters a second,
    a little slower than Twilio's voices) leaves room for the update's way to Twilio: a guess too long only means a
    barge-in that finds the bot already quiet (the keep-alive starts again), too short a caller who cannot cut in."""
    return len(text) / chars_per_second


class PromptClock:
    """One call's current prompt. `lock` is held while a call update is sent, so a barge-in can never land after
    (and cut) the answer that followed it: each update moves on to a new prompt under the lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._prompt = 0  # counts prompts the call was sent
        self._talking_until = 0.0  # monotonic time the current prompt's <Say> should be over by
        self._may_barge_in = False  # the caller's speech may cut the current prompt short...
        self._barged = False  # ...and already did
        self._text = ""  # what the current prompt says, and when it began, to tell how much of it was heard
        self._started = 0.0

    def speaking(self, seconds: float, may_barge_in: bool, text: str = "") -> int:
        """A new prompt the caller hears for about `seconds` (saying `text`, when known); returns its number."""
        with self.lock:
            self.next_prompt()
            self._started = time.monotonic()
            self._talking_until = self._started + seconds
            self._may_barge_in = may_barge_in
            self._text = text
            return self._prompt

    def next_prompt(self) -> None:
        """An update replaced what the caller hears (call with `lock` held): pending barge-ins are for the old one."""
        self._prompt += 1
        self._barged = False

    def barge_in(self) -> int | None:
        """The caller started speaking: the prompt to stop, if it may be cut and is still being said (once)."""
        with self.lock:
            if not self._may_barge_in or self._barged or time.monotonic() >= self._talking_until:
                return None
            self._barged = True
            return self._prompt

    def heard(self, at: float) -> tuple[str, str]:
        """The current prompt's text and the part of it heard by monotonic time `at` (estimated from its pace,
        back to the last whole word)."""
        with self.lock:
            text, started, until = self._text, self._started, self._talking_until
        if not text or until <= started or at >= until:
            return text, text
        cut = text[:int(len(text) * max(0.0, at - started) / (until - started))]
        if not text[len(cut):len(cut) + 1].isspace():  # mid-word: that word was not heard whole
            cut = cut[:cut.rfind(" ") + 1]
        return text, cut.rstrip()

    def is_current(self, prompt: int) -> bool:
        """Whether `prompt` is still what the caller hears (call with `lock` held)."""
        return prompt == self._prompt

    def plays_on(self, prompt: int) -> bool:
        """Whether `prompt` is still what the caller hears, and no barge-in cut it short (call with `lock` held)."""
        return prompt == self._prompt and not self._barged

    def stopped(self) -> None:
        """The prompt was cut short (call with `lock` held)."""
        self._talking_until = 0.0

    def protected_for(self) -> float:
        """Seconds left of a prompt speech may not cut (BARGE_IN off, or "barge_in": false): an answer waits."""
        with self.lock:
            return 0.0 if self._may_barge_in else max(0.0, self._talking_until + SAY_END_MARGIN - time.monotonic())

    @property
    def speaking_until(self) -> float:
        """Monotonic time after which an update no longer cuts the prompt being said (an estimate)."""
        with self.lock:
            return self._talking_until + SAY_END_MARGIN
