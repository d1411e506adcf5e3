"""What a caller hears: spoken parts (words, pauses, say-as runs), plain or SSML, and the links kept out of them."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Iterable, Union


@dataclass(frozen=True)
class Pause:
    """A pause between the items of a list or the rows of a table: <break> in SSML, a comma in plain text."""

    time: str = "300ms"


@dataclass(frozen=True)
class SayAs:
    """A run the voice must say one way (SSML <say-as>): a phone number as "telephone", a code as "digits"."""

    text: str
    interpret_as: str


Part = Union[str, Pause, SayAs]

_SPACE_BEFORE_MARK = re.compile(r"\s+([,.;:!?…])")
_REPEATED_MARKS = re.compile(r"([,;:])\s*(?=[,.;:!?…])|\(\s*\)|\[\s*\]")
_COMMA_AFTER_MARK = re.compile(r"(?<=[.!?…:;])\s*,")
_SPACES = re.compile(r"\s+")
_OPEN_COLON = re.compile(r"[:;,]\s*$")  # "Details:" whose link was taken out


def tidy(text: str, closing: bool = True) -> str:
    """One line of speech: single spaces, no space before a mark, no empty brackets or marks doubled where a link or
    an emoji was taken out ("Details: ." → "Details.")."""
    text = _SPACES.sub(" ", text)
    for _ in range(2):  # taking out one leftover may leave the next next to a mark
        text = _REPEATED_MARKS.sub("", text)
        text = _COMMA_AFTER_MARK.sub("", text)
        text = _SPACE_BEFORE_MARK.sub(r"\1", text)
    text = text.strip()
    return _OPEN_COLON.sub(".", text).strip(" ,;") if closing else text


def merge(parts: Iterable[Part]) -> tuple[Part, ...]:
    """Neighbouring words joined into one string, tidied; empty strings dropped, and no pause at either end."""
    merged: list[Part] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    out: list[Part] = []
    for n, part in enumerate(merged):
        if isinstance(part, str):
            before, after = (part[:1].isspace(), part[-1:].isspace())
            text = tidy(part, closing=n == len(merged) - 1 or isinstance(merged[n + 1], Pause))
            if text:
                lead = " " if before and n > 0 else ""
                trail = " " if after and n < len(merged) - 1 else ""
                out.append(lead + text + trail)
        else:
            out.append(part)
    while out and isinstance(out[0], Pause):
        out.pop(0)
    while out and isinstance(out[-1], Pause):
        out.pop()
    return tuple(out)


@dataclass(frozen=True)
class Spoken:
    """A chatbot text made fit for the phone: `parts` for <Say> (all strings unless `ssml`), and the `links`
    (URLs, email addresses, images) found in it, for a text message; the chatbot's own text is never changed."""

    parts: tuple[Part, ...]
    language: str = "en-US"
    ssml: bool = False
    links: tuple[str, ...] = field(default=())

    @property
    def text(self) -> str:
        """The words as one plain string (logs, the monitor's "heard", the say-duration estimate)."""
        words = []
        for part in self.parts:
            if isinstance(part, str):
                words.append(part)
            elif isinstance(part, SayAs):
                words.append(" " + part.text + " ")
            else:
                words.append(", ")
        return tidy("".join(words))

    def then(self, *more: Part) -> "Spoken":
        """This speech followed by `more` (the options' menu, the sentence about the links)."""
        if not any(more):
            return self
        return replace(self, parts=merge((*self.parts, " ", *more)))
