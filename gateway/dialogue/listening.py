"""What a caller's words over a prompt are: a backchannel ("mm-hmm"), the prompt's own echo, or real speech."""
from __future__ import annotations

import math
import re
import unicodedata
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Iterable, Sequence, Union

Words = Union[str, Sequence[str]]

# Acknowledgements that do not ask the bot to stop, written without spaces or hyphens (recognizers write "mm-hmm",
# "mm hmm", "mhm", "Uh-huh."). Plain "yes"/"no" (and sí, ja, oui) are left out: over a question's tail they answer it.
BACKCHANNELS = {
    "en": "ok okay okey kay mhm mmhmm mhmm mmhm hmm hm mm mmm uhhuh uhuh aha ahha yeah yep yup yah right sure gotit "
          "isee alright allright",
    "es": "vale aja mhm mm claro ya bueno ok okey deacuerdo entiendo valevale",
    "de": "genau okay ok mhm mm aha achso allesklar stimmt richtig verstehe jaja",
    "fr": "ouais daccord ok okay mhm mm hmm voila entendu ouioui biensur jevois ahbon",
}
MAX_BACKCHANNEL_WORDS = 4  # "okay, got it" is an acknowledgement; a longer run of words is something said

_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*", re.UNICODE)
_DIGITS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven",
           "8": "eight", "9": "nine", "10": "ten"}


def _plain(word: str) -> str:
    """Lower case, accents off, apostrophes and hyphens out: "Mm-hmm" -> "mmhmm", "d'accord" -> "daccord"."""
    word = unicodedata.normalize("NFKD", word.lower())
    word = "".join(c for c in word if not unicodedata.combining(c) and c not in "'’-")
    return _DIGITS.get(word, word)


def words_of(words: Words) -> list[str]:
    """A transcript (or its words) as plain words."""
    text = words if isinstance(words, str) else " ".join(words)
    return [_plain(word) for word in _WORD.findall(text)]


@lru_cache(maxsize=64)
def backchannel_set(language: str, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """The backchannels of a language ("en-US" -> "en"; English for a language we do not list), plus `extra`."""
    listed = BACKCHANNELS.get(language[:2].lower(), BACKCHANNELS["en"]).split()
    return frozenset(listed) | frozenset("".join(words_of(word)) for word in extra)


def is_backchannel(words: Words, language: str = "en-US", extra: Iterable[str] = ()) -> bool:
    """Whether the words are only acknowledgements ("okay", "mm-hmm", "yeah yeah", "okay, got it"), at most four.
    Only meaningful over a prompt: the same word said after it ended is an answer."""
    plain = words_of(words)
    if not plain or len(plain) > MAX_BACKCHANNEL_WORDS:
        return False
    known = backchannel_set(language, tuple(extra))
    i = 0
    while i < len(plain):  # two-word acknowledgements first ("got it", "uh huh", "alles klar")
        if i + 1 < len(plain) and plain[i] + plain[i + 1] in known:
            i += 2
        elif plain[i] in known:
            i += 1
        else:
            return False
    return True


def _sound(word: str) -> str:
    """A rough sound key: the first letter, then consonants without repeats ("bella" and "bela", "two" and "too")."""
    rest = re.sub(r"[aeiouyhw]", "", word[1:])
    return word[:1] + re.sub(r"(.)\1+", r"\1", rest)


@lru_cache(maxsize=4096)
def _alike(heard: str, said: str) -> bool:
    """Whether a recognized word is a prompt word, spelt as the recognizer spells it."""
    if heard == said:
        return True
    shorter, longer = sorted((len(heard), len(said)))
    if shorter < 3 or longer > shorter * 1.6:  # too short to be misspelt, or too different in length to be alike
        return False
    if _sound(heard) == _sound(said):
        return True
    matcher = SequenceMatcher(None, heard, said)
    return shorter >= 4 and matcher.real_quick_ratio() >= 0.75 and matcher.ratio() >= 0.75


def _aligned(heard: list[str], said: list[str]) -> int:
    """How many recognized words match prompt words in order (words run together or split count too)."""
    n, m = len(heard), len(said)
    best = [[0] * (m + 2) for _ in range(n + 2)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            options = [best[i + 1][j], best[i][j + 1]]
            if _alike(heard[i], said[j]):
                options.append(1 + best[i + 1][j + 1])
            if j + 1 < m and _alike(heard[i], said[j] + said[j + 1]):  # "goodevening" for "good evening"
                options.append(1 + best[i + 1][j + 2])
            if i + 1 < n and _alike(heard[i] + heard[i + 1], said[j]):  # "sea food" for "seafood"
                options.append(2 + best[i + 2][j + 1])
            best[i][j] = max(options)
    return best[0][0]


ECHO_SHARE = 0.8  # this share of the recognized words must be the prompt's: a caller's own sentence rarely is


def is_echo(words: Words, heard_window: str) -> bool:
    """Whether the words are the prompt's own, as a speakerphone feeds them back: `heard_window` is the prompt text
    playing around the time they were said. The caller must have started speaking while the prompt played (or
    within the echo delay after it): a caller who speaks after it ended is never echo, whatever the words."""
    heard, said = words_of(words), words_of(heard_window)
    if not heard or not said:
        return False
    return _aligned(heard, said) >= max(1, math.ceil(len(heard) * ECHO_SHARE))


def text_between(text: str, share_from: float, share_to: float) -> str:
    """The words of `text` between two shares of it (0..1), widened to whole words: the prompt window for is_echo."""
    start = int(len(text) * max(0.0, min(1.0, share_from)))
    end = int(len(text) * max(0.0, min(1.0, share_to)))
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    while end < len(text) and not text[end].isspace():
        end += 1
    return text[start:end].strip()
