"""An answer's options on the phone: the spoken menu after its text, and the caller's choice by key or by words."""
from __future__ import annotations

import re
from typing import Sequence

from babel.lists import format_list
from rapidfuzz import fuzz, process, utils

from . import phrases
from .render import render

Option = tuple[str, str]  # (title, payload)
KEYS = 9  # keys 1 to 9 choose the first nine options
SAID_OF_MANY = 5  # past nine options the menu says this many titles; the caller may say any title
MATCH_SCORE = 80  # rapidfuzz's token_set_ratio a spoken title must reach...
MATCH_MARGIN = 10  # ...ahead of the next best title, or the words go to the chatbot as words


def option_hints(options: Sequence[Option]) -> tuple[str, ...]:
    """The recognizer's hints for a menu: the titles the caller may say."""
    return tuple(title for title, _ in options)


def _keys(count: int, language: str) -> str:
    """The keys a caller may press, as said: "1, 2 or 3", or "1 to 7" for a long menu."""
    if count <= 4:
        return format_list([str(n) for n in range(1, count + 1)], style="or", locale=phrases.locale(language))
    return f"1 {phrases.pick(phrases.RANGE, language)} {count}"


def _said_title(title: str, language: str) -> str:
    """A title as said inside the menu's sentence: no emoji or markup, no full stop, and (but in German, whose nouns
    keep their capital) a lower-case first letter unless it is an acronym: "Book a table" → "book a table"."""
    said = render(title, language).text.rstrip(".") or title
    if phrases.base(language) != "de" and said[:1].isupper() and not said[1:2].isupper():
        said = said[0].lower() + said[1:]
    return said


def menu(options: Sequence[Option], language: str = "en-US", *, template: str = "", template_more: str = "") -> str:
    """The sentence that offers `options` after an answer's text ("You can say book a table, opening hours, or talk
    to a person. Or press 1, 2 or 3."), in the answer's language unless the operator's `template` (with {titles},
    {keys}, and {more} in `template_more`) is set. Past nine options the first few are said; the caller may say any."""
    if not options:
        return ""
    titles = [_said_title(title, language) for title, _ in options]
    if len(titles) > KEYS:
        said = titles[:SAID_OF_MANY]
        text = template_more or phrases.pick(phrases.MENU_MORE, language)
        return text.format(titles=", ".join(said), keys=_keys(len(said), language), more=len(titles) - len(said))
    text = template or phrases.pick(phrases.MENU, language)
    return text.format(titles=format_list(titles, style="or", locale=phrases.locale(language)),
                       keys=_keys(len(titles), language), more=0)


def choose(options: Sequence[Option], key: str | None = None, words: str | None = None) -> Option | None:
    """The option the caller chose: by `key` (1 to 9; a key with no option chooses nothing), or by `words` that say
    its title or close to it. Weak or ambiguous words choose nothing: they go to the chatbot as words instead."""
    if not options:
        return None
    if key is not None:
        key = key.strip().rstrip("#")
        if re.fullmatch(r"[1-9]", key) and int(key) <= min(len(options), KEYS):
            return tuple(options[int(key) - 1])
        return None
    spoken = utils.default_process(words or "")
    if not spoken:
        return None
    if re.fullmatch(r"[1-9]", spoken):  # a recognizer may write "two" as "2": the caller said the key
        return choose(options, key=spoken)
    titles = [utils.default_process(title) for title, _ in options]
    if titles.count(spoken) == 1:
        return tuple(options[titles.index(spoken)])
    ranked = process.extract(spoken, titles, scorer=fuzz.token_set_ratio, limit=2)
    best = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    if best[1] >= MATCH_SCORE and best[1] - runner_up >= MATCH_MARGIN:
        return tuple(options[best[2]])
    return None
