"""Numbers as a caller should hear them: phone numbers, codes and card digits one digit at a time, dates and times
in words of the answer's language, "Mon–Fri 9–17" as "Monday to Friday 9 to 17"; amounts are left to the voice.

Phone numbers are found by Google's libphonenumber (the `phonenumbers` package) and dates, times and day names are
written by Babel; the small patterns below only find what no library looks for in free text (ISO and dotted dates,
booking codes, masked card digits) and are anchored so an amount or a year is never spelled out.
"""
from __future__ import annotations

import datetime
import re
from functools import lru_cache
from typing import Callable

import phonenumbers
from babel.dates import format_date, format_time, get_day_names

from . import phrases
from .speech import Part, SayAs

_ISO_DATE = re.compile(r"(?<![\d-])(\d{4})-(\d{2})-(\d{2})(?![\d-])")
_WRITTEN_DATE = re.compile(r"(?<![\d./])(\d{1,2})([./])(\d{1,2})\2(\d{4})(?![\d/]|\.\d)")
_TIME = re.compile(r"(?<![\d:])([01]?\d|2[0-3]):([0-5]\d)(?![\d:])(?!\s?[AaPp]\.?[Mm]\b)")
_MASKED_CARD = re.compile(r"(?:[*•xX]{2,}[\s-]?)+(\d{4})\b")
_KEYWORD_DIGITS = re.compile(
    r"\b(PIN|code|código|Code|Kennziffer|ending in|ending with|endet auf|terminada en|termina en|"
    r"se terminant par|finissant par|last four digits|last 4 digits)(?:\s+(?:is|es|ist|est|lautet))?\s*[:#]?\s*"
    r"(\d{3,8})\b", re.IGNORECASE)
_CODE = re.compile(r"\b(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9]+(?:-[A-Z0-9]+)+\b"  # BK-4821, X7-K29
                   r"|\b(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{5,}\b")  # AB12CD, 7QX9K
_LONG_DIGITS = re.compile(r"(?<![\d.,$€£¥#])(?<![\d.,][\s])\b\d{5,}\b(?![.,]\d)(?!\s?(?:€|EUR|USD|\$|%))")
_NUMBER_RANGE = re.compile(r"(?<![\d:/-])(?<!\d[.,])(\d{1,2}(?::\d\d)?)\s?[-–—]\s?(\d{1,2}(?::\d\d)?)"
                           r"(?![\d:/-]|[.,]\d)")
REGIONS = {"en": "US", "es": "ES", "de": "DE", "fr": "FR"}


@lru_cache(maxsize=64)
def _day_patterns(language: str) -> tuple[dict[str, str], re.Pattern | None, re.Pattern | None]:
    """Abbreviated day names ("Mon", "Mo.", "lun.") to their full names, the pattern finding them in a schedule
    (before a dash or a number, or after a dash), and the one finding a range of full names; once per language."""
    loc = phrases.locale(language)
    wide = get_day_names("wide", locale=loc)
    names = {str(short).rstrip(".").lower(): str(wide[n]) for n, short in get_day_names("abbreviated", locale=loc).items()}
    if not names:
        return names, None, None
    shorts = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    abbreviated = re.compile(rf"\b({shorts})\.?(?=\s*(?:[-–—]|\d|$)|\s*,)|(?<=[-–—])\s?({shorts})\b\.?", re.IGNORECASE)
    days = "|".join(re.escape(v) for v in names.values())
    return names, abbreviated, re.compile(rf"\b({days})\s?[-–—]\s?({days})\b")


def words_for_ranges(text: str, language: str) -> str:
    """Day-name abbreviations in a schedule spelled out, and the dashes of ranges said as "to" (localized)."""
    names, abbreviated, day_range = _day_patterns(language)
    to = phrases.pick(phrases.RANGE, language)
    if abbreviated is not None and day_range is not None:
        text = abbreviated.sub(lambda m: names[(m.group(1) or m.group(2)).lower()], text)
        text = day_range.sub(rf"\1 {to} \2", text)
    return _NUMBER_RANGE.sub(rf"\1 {to} \2", text)


def spaced(digits: str) -> str:
    """Digits said one at a time by any voice: "4242" → "4 2 4 2"."""
    return " ".join(digits)


def _date(match: re.Match, language: str) -> str | None:
    """A written date in words ("24 de diciembre de 2026"), or None when it is no real date."""
    if match.re is _ISO_DATE:
        year, month, day = int(match[1]), int(match[2]), int(match[3])
    else:
        first, second, year = int(match[1]), int(match[3]), int(match[4])
        us = match[2] == "/" and phrases.locale(language).territory == "US"
        month, day = (first, second) if us else (second, first)
    try:
        return format_date(datetime.date(year, month, day), "long", locale=phrases.locale(language))
    except ValueError:
        return None


def _time(match: re.Match, language: str) -> str:
    """A time as the language says it ("2:30 PM" in American English, "14:30" elsewhere), without a leading 0."""
    said = format_time(datetime.time(int(match[1]), int(match[2])), "short", locale=phrases.locale(language))
    return re.sub(r"^0(?=\d)", "", said.replace("\u202f", " ").replace("\xa0", " "))


def _phone(number: phonenumbers.PhoneNumber, written: str, language: str, ssml: bool) -> Part:
    """A phone number: <say-as interpret-as="telephone"> for SSML voices, else its groups digit by digit."""
    if ssml:
        return SayAs(written, "telephone")
    international = written.lstrip().startswith("+")
    grouped = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL if international
                                         else phonenumbers.PhoneNumberFormat.NATIONAL)
    groups = [spaced(group) for group in re.findall(r"\d+", grouped)]
    return (phrases.pick(phrases.PLUS, language) + " " if international else "") + ", ".join(groups)


def _digits(digits: str, ssml: bool, digits_as: str) -> Part:
    """A code or card digits, one digit at a time."""
    return SayAs(digits, digits_as) if ssml else spaced(digits)


def _code(code: str) -> str:
    """A booking code letter by letter and digit by digit, its groups apart: "BK-4821" → "B K, 4 8 2 1"."""
    return ", ".join(spaced(group) for group in code.split("-") if group)


def speak_numbers(text: str, language: str, ssml: bool, digits_as: str = "digits") -> list[Part]:
    """`text` with its numbers made fit for the phone: a list of strings and (for SSML voices) SayAs runs."""
    text = words_for_ranges(text, language)
    spans: list[tuple[int, int, Callable[[], Part | None]]] = []

    def claim(start: int, end: int, make: Callable[[], Part | None]) -> None:
        if all(end <= s or start >= e for s, e, _ in spans):
            spans.append((start, end, make))

    for pattern in (_ISO_DATE, _WRITTEN_DATE):
        for m in pattern.finditer(text):
            claim(m.start(), m.end(), lambda m=m: _date(m, language))
    for m in _TIME.finditer(text):
        claim(m.start(), m.end(), lambda m=m: _time(m, language))
    for m in _MASKED_CARD.finditer(text):
        claim(m.start(), m.end(), lambda m=m: _digits(m[1], ssml, digits_as))
    for m in _KEYWORD_DIGITS.finditer(text):
        claim(m.start(2), m.end(2), lambda m=m: _digits(m[2], ssml, digits_as))
    region = REGIONS.get(phrases.base(language)) or phrases.locale(language).territory or "US"
    for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.POSSIBLE):
        if sum(c.isdigit() for c in m.raw_string) >= 7:
            claim(m.start, m.end, lambda m=m: _phone(m.number, m.raw_string, language, ssml))
    for m in _CODE.finditer(text):
        claim(m.start(), m.end(), lambda m=m: _code(m[0]))
    for m in _LONG_DIGITS.finditer(text):
        claim(m.start(), m.end(), lambda m=m: _digits(m[0], ssml, digits_as))
    parts: list[Part] = []
    at = 0
    for start, end, make in sorted(spans, key=lambda span: span[0]):
        said = make()
        if said is None:
            continue
        parts += [text[at:start], said]
        at = end
    parts.append(text[at:])
    return [part for part in parts if part != ""]
