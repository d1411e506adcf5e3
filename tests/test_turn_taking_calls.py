"""Turn-taking through the real gunicorn: the prompt's end measured on the outbound track, backchannels over a prompt,
real interruptions, and answers only once the caller has finished."""
from __future__ import annotations

import requests

from standins.twilio_caller import AUDIO_DIR
from standins.twilio import Caller, TwilioStandIn
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, SPEED
from tests.test_barge_in import HELP, BYE
from tests.test_chatbot_calls import openai_api, start_openai, users  # noqa: F401 (the fixture)
from tests.test_phone_dialogue import GREETING, place

FAST_VOICE = 33.0  # characters a second: faster than SAY_CHARACTERS_PER_SECOND's 13, as neural voices are
TURNS = AUDIO_DIR / "turns"


def _fast_twilio():
    return TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN, speed=SPEED, say_chars_per_second=FAST_VOICE)


def test_a_fast_voice_answered_after_each_prompt_is_no_barge_in_and_the_history_keeps_every_word(
        chatbot, openai_api, start_gateway, tmp_path):
    from tests.test_chatbot_calls import HELLO, HELP as MODEL_HELP

    with _fast_twilio() as twilio:
        # The gateway's estimate is today's default pace (13 characters a second of call time).
        gateway = start_openai(_starter(start_gateway, twilio), openai_api, MONITOR_PASSWORD="pw",
                               SAY_CHARACTERS_PER_SECOND=str(13 * SPEED))
        call = place(twilio, Caller(["hello", "what_can_you_do", "goodbye"], think_time=0.4))
        assert call.wait_ended(timeout=60), call.transcript()
        assert not [d for _, k, d in call.events if k == "say-interrupted"], call.transcript()
        events = requests.get(f"{gateway.url}/monitor/api/calls/{call.sid}", auth=("operator", "pw"),
                              timeout=10).json()["events"]
        assert [e for e in events if e["type"] == "action" and e.get("text") == "barge-in"] == []
        assert "barge-in" not in [e.get("action") or e.get("text") for e in events if e["type"] == "action"]
        assert "barge-in, the caller spoke over the bot" not in gateway.logs()
        # Every history the model was sent carries its answers whole: the caller heard them to the end.
        for messages in openai_api.conversations():
            for message in messages:
                if message["role"] == "assistant" and message.get("content"):
                    assert message["content"] in (HELLO, MODEL_HELP), messages
        assert users(openai_api.conversations()[-1]) == ["hello", "whatcanyoudo", "goodbye"]


def _starter(start_gateway, twilio):
    """start_gateway, with this test's own Twilio stand-in taking the calls."""
    def start(**settings):
        process = start_gateway(TWILIO_API_URL=twilio.api_url, **settings)
        twilio.tunnel[PUBLIC_URL] = process.url
        return process
    return start


def _scripted(*phrases):
    """The Speech stand-in answering each utterance of the call with the next phrase (energy endpointing): what a
    recognizer makes of a backchannel or a speakerphone's echo, without depending on pocketsphinx hearing it."""
    from standins.speech import SpeechStandIn

    return SpeechStandIn(scripted=list(phrases), script_per_call=True)


def test_a_backchannel_over_the_prompt_does_not_stop_it_and_is_no_turn(twilio, chatbot, start_gateway):
    with _scripted("what can you do", "mm-hmm", "goodbye") as speech:
        start_gateway(SPEECH_EMULATOR_HOST=speech.address)
        call = place(twilio, ["what_can_you_do", ("barge-in", "hello", 0.8), "goodbye"])
        assert call.wait_ended(timeout=60), call.transcript()
    assert [d for _, k, d in call.events if k == "say-interrupted"] == [], call.transcript()
    assert call.said() == [GREETING, HELP, BYE], call.transcript()
    assert chatbot.messages() == ["what can you do", "goodbye"]


def test_the_same_word_after_the_prompt_is_an_answer(twilio, chatbot, start_gateway):
    with _scripted("okay", "goodbye") as speech:
        start_gateway(SPEECH_EMULATOR_HOST=speech.address)
        call = place(twilio, ["hello", "goodbye"])  # each said after the bot's prompt ended
        assert call.wait_ended(timeout=60), call.transcript()
    assert chatbot.messages() == ["okay", "goodbye"]


def test_the_prompts_own_echo_does_not_stop_it_and_is_no_turn(chatbot, start_gateway):
    # A speakerphone: the caller's microphone hears the bot's greeting, and the stand-in recognizes the leak as the
    # greeting's words (its final comes half a second after the greeting ended). Then the caller says goodbye.
    with _scripted("hello you are talking to chatline", "goodbye") as speech, \
            TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN, speed=SPEED, speakerphone_leak=0.5) as twilio:
        _starter(start_gateway, twilio)(SPEECH_EMULATOR_HOST=speech.address)
        call = place(twilio, Caller([("silence", 2), "goodbye"]))
        assert call.wait_ended(timeout=60), call.transcript()
    assert [d for _, k, d in call.events if k == "say-interrupted"] == [], call.transcript()
    assert chatbot.messages() == ["goodbye"], call.transcript()


def test_a_real_interruption_stops_the_bot_within_half_a_second_of_the_first_word(chatbot, start_gateway):
    # In real time: the stand-in's speed would multiply the gateway's own delays.
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN, speed=1.0) as twilio:
        gateway = _starter(start_gateway, twilio)(SAY_CHARACTERS_PER_SECOND=str(round(1 / 0.06, 1)))
        call = place(twilio, ["what_can_you_do", ("barge-in", "what_can_you_do", 0.8), "goodbye"])
        assert call.wait_ended(timeout=90), call.transcript()
    assert call.said() == [GREETING, HELP, HELP, BYE], call.transcript()
    first = [t for t, k, d in call.events if k == "caller-speaks" and d == "what can you do"][1]
    stopped = next(t for t, k, d in call.events if k == "say-interrupted" and d == HELP)
    # "what" is no prompt word: the recognizer's first interim stops the bot. Seconds from the caller's first
    # sound: the word itself (~0.3 s), then 0.5 s at most to the stop.
    print(f"\nthe bot stopped {stopped - first:.2f} s after the caller began")
    assert 0 < stopped - first < 0.3 + 0.5, call.transcript()
    assert "barge-in, the caller spoke over the bot" in gateway.logs()


def test_a_sentence_with_a_pause_in_the_middle_is_answered_once_whole(twilio, chatbot, start_gateway):
    start_gateway(HINTS="i would like to book a table for,two,goodbye")
    paused = str(TURNS / "paused_table_for.ulaw")
    call = place(twilio, [paused, "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    messages = chatbot.messages()
    assert len(messages) == 2 and messages[-1].replace(" ", "") == "goodbye", messages  # one message for the paused sentence


def test_a_pause_the_recognizer_is_unsure_of_is_waited_for_and_answered_whole(twilio, chatbot, start_gateway):
    # The recognizer loses "the" before the pause and is unsure (0.66) of "i want to order", a sentence that looks
    # finished: the caller's next words still join it.
    with _scripted("i want to order|0.66", "mushroom risotto", "goodbye") as speech:
        start_gateway(SPEECH_EMULATOR_HOST=speech.address)
        call = place(twilio, [str(TURNS / "paused_order_the.ulaw"), "goodbye"])
        assert call.wait_ended(timeout=60), call.transcript()
    assert chatbot.messages() == ["i want to order mushroom risotto", "goodbye"], call.transcript()
