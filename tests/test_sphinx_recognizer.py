"""The offline pocketsphinx recognizer, fed real recordings as Twilio would: 20 ms mu-law frames."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from gateway.audio import FRAME_BYTES, silence
from gateway.recognizers import Transcript
from gateway.recognizers.sphinx import SphinxRecognizer
from gateway.recognizers.sphinx_engine import SphinxEngine, build_grammar, normalize_phrase

AUDIO = Path(__file__).resolve().parent.parent / "chatline" / "audio"
SAID = {
    "hello": "hello", "good": "good", "bad": "bad", "goodbye": "goodbye", "how_are_you": "how are you",
    "book_a_table": "i would like to book a table", "for_four_people": "for four people",
    "what_can_you_do": "what can you do",
}
CLASSIC = list(SAID.values())
# What the sample chatbot offers as hints in its main state: many short phrases, some sharing words.
CHATBOT_HINTS = [
    "hello", "hi", "hey", "hello there", "how are you", "how are you doing", "good", "fine", "great", "well",
    "very good", "i am good", "i'm good", "bad", "not good", "not well", "not great", "terrible", "awful",
    "book a table", "reserve a table", "a table", "table for", "make a reservation", "reservation", "goodbye",
    "good bye", "bye", "bye bye", "hang up", "what can you do", "help", "menu", "options", "special characters",
]


def recording(name: str) -> bytes:
    return (AUDIO / f"{name}.ulaw").read_bytes()


def call_audio(*names: str, gap_ms: int = 800) -> bytes:
    """The recordings with silence around them, as one call's audio."""
    return silence(300) + b"".join(recording(n) + silence(gap_ms) for n in names)


def hear(recognizer: SphinxRecognizer, audio: bytes, starts: list[Transcript] | None = None) -> list[Transcript]:
    """Feed `audio` in Twilio's 20 ms frames and return every final result once it is all recognized (the
    speech-start signals, for barge-in, go to `starts` when given)."""
    results: list[Transcript] = []
    recognizer.start(lambda t: results.append(t) if t.is_final else starts is not None and starts.append(t))
    for i in range(0, len(audio), FRAME_BYTES):
        recognizer.feed(audio[i:i + FRAME_BYTES])
    assert recognizer.drain(timeout=20)
    recognizer.close()
    return results


def test_the_start_of_speech_is_reported_before_its_words():
    starts: list[Transcript] = []
    assert [r.text for r in hear(SphinxRecognizer(hints=CLASSIC), call_audio("hello", "goodbye"), starts)] == [
        "hello", "goodbye"]
    assert [(t.speech_started, t.text, t.is_final) for t in starts] == [(True, "", False)] * 2


@pytest.mark.parametrize("name", list(SAID))
def test_each_recording_is_recognized_exactly_with_the_classic_hints(name):
    results = hear(SphinxRecognizer(hints=CLASSIC), call_audio(name))
    assert [r.text for r in results] == [SAID[name]]
    assert results[0].is_final and 0.2 <= results[0].confidence <= 1.0


def test_a_call_with_the_sample_chatbots_hints():
    # "book" of "book a table" used to crowd "good" out of the search: the engine decodes again without it.
    results = hear(SphinxRecognizer(hints=CHATBOT_HINTS), call_audio("hello", "good", "goodbye"))
    assert [r.text for r in results] in (["hello", "good", "goodbye"], ["hello", "good", "good bye"])


def test_small_command_set_recognizes_its_words():
    assert [r.text for r in hear(SphinxRecognizer(hints=["good", "bad"]), call_audio("good", "bad"))] == ["good", "bad"]


def test_hello_then_goodbye_gives_two_finals_in_order():
    results = hear(SphinxRecognizer(hints=CLASSIC), call_audio("hello", "goodbye", gap_ms=1000))
    assert [r.text for r in results] == ["hello", "goodbye"]


def test_without_hints_the_full_language_model_is_used():
    results = hear(SphinxRecognizer(), call_audio("hello", "how_are_you"))
    assert [r.text for r in results] == ["hello", "how are you"]


@pytest.mark.parametrize("hints", [["good", "bad"], ["yes", "no"], ["hello"], CLASSIC])
def test_out_of_grammar_speech_yields_nothing(hints):
    assert hear(SphinxRecognizer(hints=hints), call_audio("weather")) == []


@pytest.mark.parametrize("hints", [["good", "bad"], ["goodbye", "bye"]])
def test_speech_outside_a_small_grammar_is_not_forced_onto_a_hint(hints):
    others = [name for name, text in SAID.items() if text not in hints]
    assert hear(SphinxRecognizer(hints=hints), call_audio(*others)) == []


def test_hints_apply_from_the_next_utterance():
    recognizer = SphinxRecognizer(hints=["good", "bad"])
    results: list[Transcript] = []
    recognizer.start(lambda t: t.is_final and results.append(t))
    recognizer.feed(call_audio("hello"))
    assert recognizer.drain() and results == []
    recognizer.set_hints(["hello", "goodbye"])
    recognizer.feed(call_audio("hello"))
    assert recognizer.drain()
    recognizer.close()
    assert [r.text for r in results] == ["hello"]


def test_hints_are_normalized_and_unknown_words_dropped(caplog):
    caplog.set_level(logging.WARNING, "gateway.recognizers.sphinx")
    results = hear(SphinxRecognizer(hints=["Hello!", "How are you?", "Zorblaxify now"]), call_audio("how_are_you"))
    assert [r.text for r in results] == ["how are you"]
    assert "zorblaxify" in caplog.text


def test_grammar_keeps_decoys_away_from_hint_words():
    lookup = {"good": "G UH D", "bad": "B AE D", "look": "L UH K", "the": "DH AH"}.get
    jsgf, kept = build_grammar(["Good!", "bad", "bad"], lambda w: lookup(w) or "Z Z Z Z Z")
    assert kept == ("good", "bad")
    assert "<hint> = good | bad;" in jsgf
    assert " look " not in jsgf and " the " in jsgf  # "look" is two phones from "good": it would steal it
    assert normalize_phrase("  I'd like: Table-4 ") == "i'd like table 4"


def test_close_stops_results_and_is_idempotent():
    results: list[Transcript] = []
    recognizer = SphinxRecognizer(hints=CLASSIC)
    recognizer.start(results.append)
    recognizer.feed(call_audio("hello", "goodbye"))
    recognizer.close()
    recognizer.close()
    recognizer.feed(call_audio("hello"))
    time.sleep(0.3)
    assert results == []
    assert not recognizer.drain(timeout=0.2)


def test_close_from_inside_the_callback_stops_further_results():
    results: list[Transcript] = []
    recognizer = SphinxRecognizer(hints=CLASSIC)

    def first_only(result: Transcript) -> None:
        if result.is_final:  # not the speech-start signal that comes before it
            results.append(result)
            recognizer.close()

    recognizer.start(first_only)
    recognizer.feed(call_audio("hello", "goodbye"))
    time.sleep(1.0)
    assert [r.text for r in results] == ["hello"]


def test_other_languages_are_refused_at_construction():
    with pytest.raises(ValueError, match="fr-FR"):
        SphinxRecognizer(language="fr-FR")
    SphinxRecognizer(language="en_us").close()


def test_engine_reports_where_each_utterance_ends_in_the_stream():
    finals = []
    engine = SphinxEngine(CLASSIC, on_final=finals.append)
    audio = call_audio("hello", "book_a_table")
    engine.feed(audio)
    engine.close()
    hello_end = 0.3 + len(recording("hello")) / 8000
    book_end = hello_end + 0.8 + len(recording("book_a_table")) / 8000
    assert [u.text for u in finals] == ["hello", "i would like to book a table"]
    # Within 0.2 s (a fresh decoder places the end of the first word up to ~0.15 s late): good enough to tell which
    # words came before a moment of the call, which is what `end` is for.
    assert finals[0].end == pytest.approx(hello_end, abs=0.2) and finals[1].end == pytest.approx(book_end, abs=0.2)
    assert engine.position == len(audio) / 8000
