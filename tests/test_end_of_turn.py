"""End of turn: a sentence left hanging waits for more words; a finished one is answered at once."""
import csv
import time
from pathlib import Path

import pytest

from gateway.dialogue.end_of_turn import FINISHED, SmartTurn, WordsEndOfTurn, detector, smart_turn_files

AUDIO = Path(__file__).resolve().parent.parent / "chatline" / "audio"
ROWS = [row for row in csv.reader((AUDIO / "turns.tsv").open(), delimiter="\t") if row and not row[0].startswith("#")]


@pytest.mark.parametrize("text", [
    "i'd like to book a table for", "can i get a table at", "my phone number is", "i want to order the",
    "we are a group of", "could you tell me if", "and i would also like", "we will arrive around",
    "I'd like a table by the...", "so, um", "Quisiera reservar una mesa para", "Ich möchte einen Tisch für",
    "Je voudrais réserver une table pour", "i was thinking,",
])
def test_a_sentence_left_hanging_is_not_finished(text):
    language = {"Q": "es-ES", "I": "de-DE", "J": "fr-FR"}.get(text[0], "en-US")
    assert WordsEndOfTurn().finished(text, language=language) < FINISHED


@pytest.mark.parametrize("text", [
    "i would like to book a table for two", "can i see the menu please", "thank you very much", "yes", "Okay.",
    "my name is john smith", "¿Tienen mesa para dos?", "Einen Tisch für zwei, bitte.", "Une table pour deux.", "",
])
def test_a_finished_sentence_is_answered_at_once(text):
    language = {"¿": "es-ES", "E": "de-DE", "U": "fr-FR"}.get(text[:1], "en-US")
    assert WordsEndOfTurn().finished(text, language=language) >= FINISHED


def test_the_recorded_set_by_words():
    """Every recorded mid-sentence pause waits ("under the name ... garcia": the name announces what comes)."""
    early = [name for name, before, _, after in ROWS if after and WordsEndOfTurn().finished(before) >= FINISHED]
    finished_waiting = [name for name, before, _, after in ROWS if not after and WordsEndOfTurn().finished(before) < FINISHED]
    assert early == [] and finished_waiting == []


def test_words_cost_microseconds():
    started = time.perf_counter()
    for _ in range(1000):
        WordsEndOfTurn().finished("i would like to book a table for two people tonight")
    assert (time.perf_counter() - started) / 1000 < 200e-6


def test_the_detector_falls_back_to_words():
    assert isinstance(detector("words"), WordsEndOfTurn) and isinstance(detector("nonsense"), WordsEndOfTurn)


@pytest.mark.skipif(smart_turn_files() is None, reason="the `turn` extra (pipecat-ai, onnxruntime) is not installed")
def test_smart_turn_runs_on_the_callers_audio():
    """The model loads from the installed wheel and hears a clearly unfinished sentence as unfinished."""
    pytest.importorskip("onnxruntime")
    model = detector("smart-turn")
    assert isinstance(model, SmartTurn)
    audio = (AUDIO / "turns" / "paused_table_for.ulaw").read_bytes()
    first_part = audio[:audio.find(b"\xff" * 6000)] + b"\xff" * 1600
    assert model.finished("i'd like to book a table for", first_part) < FINISHED
    assert model.finished("", None) == 1.0  # no audio: decided on words
