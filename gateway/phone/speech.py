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
_COMMA_AFTER_MARK = re.compile(r"(?<=[.!?…:;])\s*,|(?<=[!?…])\s*\.|(?<=[.])\s+\.|(?<=[^.]\.)\.(?!\.)")
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
    return _OPEN_COLON.sub(".", text).rstrip(" ,;") if closing else text


def _joined(parts: Iterable[Part]) -> list[Part]:
    """Neighbouring strings joined into one."""
    joined: list[Part] = []
    for part in parts:
        if isinstance(part, str) and joined and isinstance(joined[-1], str):
            joined[-1] += part
        elif part != "":
            joined.append(part)
    return joined


def merge(parts: Iterable[Part]) -> tuple[Part, ...]:
    """Speech parts made sayable: neighbouring words joined and tidied, leftovers with no word in them (a lone mark
    where an emoji or a link was) dropped beside a pause or at either end, no pause doubled or at either end."""
    joined = _joined(parts)
    kept: list[Part] = []
    for n, part in enumerate(joined):
        if not isinstance(part, str):
            kept.append(part)
            continue
        opening = n == 0 or isinstance(joined[n - 1], Pause)
        closing = n == len(joined) - 1 or isinstance(joined[n + 1], Pause)
        text = tidy(part, closing)
        if not any(c.isalnum() for c in text) and opening and closing:  # not the "." after a say-as run
            continue
        if text:
            lead = part[:1].isspace() and n > 0 and not isinstance(joined[n - 1], Pause)
            kept.append((" " if lead else "") + text + (" " if part[-1:].isspace() and not closing else ""))
    out: list[Part] = []
    for part in _joined(kept):
        if isinstance(part, Pause) and (not out or isinstance(out[-1], Pause)):
            continue
        out.append(part)
    while out and isinstance(out[-1], Pause):
        out.pop()
    if out and isinstance(out[0], str):
        out[0] = out[0].lstrip(" ,;")
    if out and isinstance(out[-1], str):
        out[-1] = out[-1].rstrip()
    return tuple(part for part in out if part != "")


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
