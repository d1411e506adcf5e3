"""Joining finals into one turn: an unfinished sentence waits for its end, a finished one is answered at once."""
from gateway.dialogue.end_of_turn import WordsEndOfTurn
from gateway.dialogue.turn_joiner import SPEECH_HOLD_SECONDS, TurnJoiner


def joiner(wait: float = 2.0) -> TurnJoiner:
    return TurnJoiner(WordsEndOfTurn(), wait)


def test_a_finished_sentence_is_answered_at_once():
    turns = joiner()
    assert turns.final("i would like to book a table for two", 10.0) == "i would like to book a table for two"
    assert not turns.waiting and turns.due(99.0) is None


def test_a_pause_mid_sentence_is_joined_with_what_follows():
    turns = joiner()
    assert turns.final("i'd like to book a table for", 10.0) is None
    assert turns.waiting and turns.deadline == 12.0
    assert turns.due(11.9) is None
    assert turns.final("two", 11.5) == "i'd like to book a table for two"
    assert turns.due(20.0) is None


def test_an_unfinished_sentence_is_answered_when_the_wait_runs_out():
    turns = joiner()
    assert turns.final("my name is", 10.0) is None
    assert turns.due(11.99) is None
    assert turns.due(12.0) == "my name is"
    assert not turns.waiting


def test_the_caller_speaking_again_holds_the_turn_until_the_next_final():
    turns = joiner()
    turns.final("we are a group of", 10.0)
    turns.speech(11.8)  # they went on speaking: the words of the rest are on their way, however long they take
    assert turns.due(15.0) is None
    assert turns.final("six people", 15.5) == "we are a group of six people"


def test_speech_that_never_becomes_words_holds_the_turn_for_a_while_only():
    turns = joiner()
    turns.final("we are a group of", 10.0)
    turns.speech(11.0)  # a cough: no final will come
    assert turns.due(11.0 + SPEECH_HOLD_SECONDS - 0.01) is None
    assert turns.due(11.0 + SPEECH_HOLD_SECONDS) == "we are a group of"


def test_still_unfinished_after_joining_waits_again():
    turns = joiner()
    assert turns.final("i want to order the", 10.0) is None
    assert turns.final("mushroom risotto and the", 11.0) is None and turns.deadline == 13.0
    assert turns.due(13.0) == "i want to order the mushroom risotto and the"


def test_no_wait_means_every_final_is_a_turn():
    assert joiner(0).final("i'd like to book a table for", 10.0) == "i'd like to book a table for"


def test_empty_finals_and_flush():
    turns = joiner()
    assert turns.final("   ", 10.0) is None and not turns.waiting
    turns.final("could you tell me if", 10.0)
    assert turns.flush() == "could you tell me if" and turns.flush() is None


def test_an_unsure_final_that_looks_finished_waits_briefly_for_the_caller_to_go_on():
    turns = joiner(2.0)
    assert turns.final("i want to order", 10.0, confidence=0.66) is None  # "the" lost in the pause
    assert turns.deadline == 11.0
    turns.speech(10.4)  # the caller speaks on: held for the final of what they say
    assert turns.due(11.5) is None
    assert turns.final("mushroom risotto", 12.0, confidence=0.62) == "i want to order mushroom risotto"


def test_an_unsure_final_alone_is_answered_after_the_brief_wait_and_sure_or_unset_ones_at_once():
    turns = joiner(2.0)
    assert turns.final("my name is john smith", 10.0, confidence=0.55) is None
    assert turns.due(10.9) is None and turns.due(11.0) == "my name is john smith"
    assert turns.final("can i see the menu please", 20.0, confidence=0.96) == "can i see the menu please"
    assert turns.final("can i see the menu please", 30.0, confidence=0.0) == "can i see the menu please"
    assert joiner(0).final("i want to order", 40.0, confidence=0.5) == "i want to order"
    assert turns.final("hello", 50.0, confidence=0.4) == "hello"  # a word or two is a whole reply
