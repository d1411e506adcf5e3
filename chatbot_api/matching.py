"""Phrase matching: normalize what the caller said and find the best matching phrase."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Generic, Iterable, TypeVar

Value = TypeVar("Value")

# Apostrophes are dropped rather than split on, so "what's" stays one word ("whats") and
# matches however the recognizer spelled it; any other punctuation separates words.
_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`]")
# A word is a run of letters/digits; "*" and "#" are words too because they are phone keys.
_WORD = re.compile(r"[^\W_]+|[*#]")


def normalize(text: str) -> str:
    """Lowercase, drop punctuation and collapse whitespace: "Hello,  THERE!" -> "hello there"."""
    return " ".join(_WORD.findall(_APOSTROPHES.sub("", text.casefold())))


def is_keypad_only(phrase: str) -> bool:
    """True for phrases made only of phone keys ("1", "42#"): pressed, never spoken."""
    return all(word.isdigit() or word in ("*", "#") for word in normalize(phrase).split())


@dataclass(frozen=True)
class _Candidate(Generic[Value]):
    phrase: str  # normalized, padded with spaces for whole-word containment checks
    word_count: int
    value: Value


class PhraseMatcher(Generic[Value]):
    """Maps phrases to values; a message matches a phrase equal to it or contained in it as whole words.

    When several phrases match, the longest wins (so "not good" beats "good", "good bye" beats
    "good"); on a tie the phrase added first wins.
    """

    def __init__(self, entries: Iterable[tuple[str, Value]]) -> None:
        candidates = []
        for phrase, value in entries:
            normalized = normalize(phrase)
            if normalized:
                candidates.append(_Candidate(f" {normalized} ", len(normalized.split()), value))
        # A stable sort keeps declaration order among equally long phrases.
        self._candidates = sorted(candidates, key=lambda c: (-c.word_count, -len(c.phrase)))

    def match(self, message: str) -> Value | None:
        """Return the value of the best phrase found in `message`, or None."""
        padded = f" {normalize(message)} "
        if not padded.strip():
            return None
        for candidate in self._candidates:
            if candidate.phrase in padded:
                return candidate.value
        return None
