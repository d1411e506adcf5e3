"""One call's turn-taking: a 33-characters-a-second voice on the outbound track, the caller's words over it."""
from gateway.dialogue.turn_taking import BACKCHANNEL, ECHO, SPEECH, CallTurnTaking
from standins.outbound_audio import SILENCE, speech_like

GREETING = "Good evening, Trattoria Bella. How can I help you?"
MENU = "Tonight we have a very good house wine, fresh seafood risotto, and a lemon tart for dessert."


def play(turns: CallTurnTaking, text: str, start_ms: int, cps: float = 33.0, then_ms: int = 1500,
         cut_at_ms: int | None = None) -> int:
    """The prompt on the outbound track from `start_ms` (cut short at `cut_at_ms`), then silence; inbound frames
    keep the clock. Returns the time of the last frame."""
    turns.prompt_sent(text)
    audio = speech_like(text, len(text) / cps)
    if cut_at_ms is not None:
        audio = audio[:(cut_at_ms - start_ms) * 8]
    frames = [audio[i:i + 160] for i in range(0, len(audio), 160)] + [SILENCE] * (then_ms // 20)
    for n, frame in enumerate(frames):
        turns.outbound_frames([(frame.ljust(160, b"\xff"), start_ms + 20 * n)])
        turns.inbound_clock(start_ms + 20 * n)
    return start_ms + 20 * (len(frames) - 1)


def test_an_answer_after_a_fast_voice_ended_is_not_a_barge_in():
    """A 33 cps voice ends long before 13 cps would say: the answer comes after it, and all of it was heard."""
    turns = CallTurnTaking(say_chars_per_second=13.0)
    play(turns, GREETING, 0, then_ms=800)  # the caller answers 0.8 s after the greeting's last word
    assert turns.measured and not turns.prompt_playing
    turns.speech_started()
    assert turns.classify("a table for two please") == SPEECH
    assert turns.heard() == GREETING
    assert abs(turns.meter.ended_ms - len(GREETING) / 33 * 1000) < 100


def test_backchannels_over_a_prompt_and_the_same_word_after_it():
    turns = CallTurnTaking()
    turns.prompt_sent(MENU)
    audio = speech_like(MENU, len(MENU) / 33)
    for n in range(0, 40):  # 0.8 s into the menu
        turns.outbound_frames([(audio[n * 160:(n + 1) * 160], 20 * n)])
        turns.inbound_clock(20 * n)
    turns.speech_started()
    assert turns.prompt_playing and turns.classify("Mm-hmm.") == BACKCHANNEL
    assert turns.classify("okay") == BACKCHANNEL and turns.classify("wait, how much is the wine") == SPEECH
    turns.utterance_over()
    end = play(turns, MENU, 1000, then_ms=1200)
    turns.speech_started(end)
    assert turns.classify("okay") == SPEECH  # after the prompt: an answer


def test_echo_over_a_prompt_and_its_late_final_but_not_a_caller_repeating_it_after():
    turns = CallTurnTaking()
    end = play(turns, MENU, 0, then_ms=300)  # the final lands 0.3 s after the prompt ended
    turns.speech_started(int(len(MENU) / 33 * 1000 * 0.3))  # the speakerphone fed the menu back, a third in
    assert turns.classify("a very good house wine fresh seafood") == ECHO
    assert turns.classify("could i book for eight") == SPEECH
    turns.utterance_over()
    play(turns, MENU, end + 20, then_ms=1500)
    turns.speech_started()  # the caller speaks 1.5 s after the menu ended
    assert turns.classify("good") == SPEECH and turns.classify("a very good house wine") == SPEECH


def test_what_was_heard_of_a_prompt_cut_short_follows_the_voices_measured_pace():
    turns = CallTurnTaking(say_chars_per_second=13.0)
    end = play(turns, GREETING, 0)  # heard whole: the pace is learnt (33 cps, not 13)
    assert abs(turns.rate.chars_per_second - 33) < 2
    start = end + 20
    play(turns, MENU, start, cut_at_ms=start + 1000, then_ms=0)
    heard = turns.heard(start + 1000)
    assert MENU.startswith(heard) and 25 <= len(heard) <= 40, heard  # ~33 characters in one second


def test_an_unfinished_sentence_waits_and_is_joined():
    turns = CallTurnTaking(turn_max_wait_seconds=2.0)
    assert turns.final("i'd like to book a table for", 10.0) is None
    turns.speaking_again(11.0)
    assert turns.due(12.5) is None
    assert turns.final("two", 12.6) == "i'd like to book a table for two"
