"""Backchannels and echo: what a caller's words over a prompt are, across recognizers' spellings and languages."""
import pytest

from gateway.dialogue.listening import is_backchannel, is_echo, text_between, words_of


@pytest.mark.parametrize("words", [
    "okay", "OK", "Okay.", "ok ok", "mm-hmm", "Mm-hmm.", "mm hmm", "mmhmm", "Mhm.", "MHM", "uh-huh", "Uh huh.",
    "uhhuh", "yeah", "Yeah, yeah.", "yep", "right", "Right.", "sure", "got it", "Okay, got it.", "alright",
    "all right", "I see", "hmm", ["mm", "hmm"], ["okay"],
])
def test_english_acknowledgements_are_backchannels(words):
    assert is_backchannel(words, "en-US")


@pytest.mark.parametrize("words, language", [
    ("vale", "es-ES"), ("Ajá.", "es-MX"), ("aja", "es-ES"), ("claro", "es-ES"), ("de acuerdo", "es-ES"),
    ("genau", "de-DE"), ("Alles klar.", "de-DE"), ("mhm", "de-DE"), ("ja ja", "de-DE"), ("Ach so", "de-DE"),
    ("d'accord", "fr-FR"), ("D’accord.", "fr-FR"), ("ouais", "fr-FR"), ("oui oui", "fr-FR"), ("Bien sûr", "fr-FR"),
    ("okay", "it-IT"),  # a language we do not list: English acknowledgements
])
def test_other_languages_acknowledgements_are_backchannels(words, language):
    assert is_backchannel(words, language)


@pytest.mark.parametrize("words, language", [
    ("yes", "en-US"), ("no", "en-US"), ("stop", "en-US"), ("wait", "en-US"), ("okay but i want fish", "en-US"),
    ("okay okay okay okay okay", "en-US"), ("", "en-US"), ("right now please", "en-US"), ("sí", "es-ES"),
    ("nein", "de-DE"), ("non", "fr-FR"), ("vale", "en-US"), ("genau", "fr-FR"), ("uh", "en-US"), ("...", "en-US"),
])
def test_answers_and_requests_are_not_backchannels(words, language):
    assert not is_backchannel(words, language)


def test_extra_backchannels_from_settings():
    assert not is_backchannel("perfect", "en-US")
    assert is_backchannel("Perfect!", "en-US", extra=("perfect", "sounds good"))
    assert is_backchannel("sounds good", "en-US", extra=("perfect", "sounds good"))


PROMPT = "Good evening, Trattoria Bella. Tonight we have a very good house wine and fresh seafood risotto."


@pytest.mark.parametrize("words", [
    "good evening trattoria bella", "Good evening, Trattoria Bela.", "trattoria bella tonight we have",
    "a very good house wine", "very good house wine and fresh", "sea food risotto", "fresh seafood risoto",
    "we have a very good", "tonight", "house wine and fresh sea food", "good evening trattoria bella tonight",
    "have a very good house whine",
])
def test_the_prompts_own_words_are_echo(words):
    assert is_echo(words, PROMPT)


@pytest.mark.parametrize("words", [
    "i'd like to book a table", "do you have a table for two", "what is the house wine", "stop",
    "can i order the risotto please", "no thanks", "", "two people at eight",
])
def test_the_callers_own_words_are_not_echo(words):
    assert not is_echo(words, PROMPT)


def test_echo_needs_a_window():
    assert not is_echo("good evening", "")


def test_recognizer_spellings_of_numbers():
    assert is_echo("table for 2", "We have a table for two at eight.")
    assert words_of("It's 2 o'clock") == ["its", "two", "oclock"]


def test_text_between_widens_to_whole_words():
    text = "Good evening, Trattoria Bella. How can I help you?"
    assert text_between(text, 0.0, 0.3) == "Good evening, Trattoria"  # a word heard in part is in the window
    assert text_between(text, 0.3, 0.62) == "Trattoria Bella. How"
    assert text_between(text, 0.9, 1.5) == "help you?"
    assert text_between(text, 0.0, 0.0) == "Good"
