"""A chatbot's text as a caller should hear it (contract section 1): no markup, emoji or links read out, numbers
said for the phone, as SSML for the voices that take it and plain words for the others."""
from __future__ import annotations

import unicodedata

import emoji

from .markdown import read_markdown
from .numbers import speak_numbers
from .speech import Part, Pause, Spoken, merge

SSML_VOICES = ("Polly.", "Google.")  # Twilio's Amazon Polly and Google voices take SSML; man, woman, alice do not
KEPT_SYMBOLS = frozenset("°")  # a symbol a voice says ("20 °C"); every other pictograph is decoration
MARKUP_LEFTOVERS = frozenset("*_~`|#")  # markdown markers that no parse made into structure (unbalanced **)
DECORATIVE_NAMES = ("ARROW", "BULLET", "BOX DRAWINGS", "BLACK SQUARE", "WHITE SQUARE", "TRIANGLE")


def speaks_ssml(voice: str | None) -> bool:
    """Whether Twilio's voice `voice` takes SSML inside <Say> (Amazon Polly and Google voices)."""
    return bool(voice) and voice.startswith(SSML_VOICES)


def digits_interpretation(voice: str | None) -> str:
    """The say-as that reads digits one by one: Polly's "digits"; Google's TTS knows no "digits" and spells them
    with "characters" (Polly's "characters" would drop its neural voices to a standard one for the sentence)."""
    return "characters" if voice and voice.startswith("Google.") else "digits"


def _clean(text: str) -> str:
    """Emoji (the `emoji` package knows every sequence, skin tones and flags) and decorative symbols taken out."""
    text = emoji.replace_emoji(text, replace="")
    kept = []
    for char in text:
        category = unicodedata.category(char)
        decorative = (category == "So" and char not in KEPT_SYMBOLS) or (
            category in ("Sm", "Po") and not char.isascii() and any(n in unicodedata.name(char, "") for n in
                                                                     DECORATIVE_NAMES))
        if char in MARKUP_LEFTOVERS or char in "\u200d\ufe0f\ufe0e" or decorative:
            kept.append(" " if char == "|" else "")
        else:
            kept.append(char)
    return "".join(kept)


def render(text: str, language: str = "en-US", ssml: bool = False, *, voice: str | None = None) -> Spoken:
    """What the caller hears for a chatbot's `text`: plain words, or SSML parts (<break>, <say-as>) when `ssml`;
    the links, email addresses and images found are in `links`, out of the words. `text` itself is not changed."""
    pieces, links = read_markdown(text, language)
    parts: list[Part] = []
    digits_as = digits_interpretation(voice)
    for piece in pieces:
        if isinstance(piece, Pause):
            parts.append(piece if ssml else ", ")
        else:
            # Numbers first: a card's mask (**** 4242) is markup to _clean but tells that the digits are a card's.
            parts += [_clean(part) if isinstance(part, str) else part
                      for part in speak_numbers(piece, language, ssml, digits_as)]
    return Spoken(parts=merge(parts), language=language, ssml=ssml, links=tuple(links))
