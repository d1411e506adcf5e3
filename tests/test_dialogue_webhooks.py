"""Dialogue logic in this process: what the caller hears in reply to words, keys, silence and chatbot faults.

Each test plays Twilio's side with signed webhooks against `create_app(Config)` and reads the TwiML answered; the
chatbot is the sample bot behind the spy (or the spy misbehaving), call updates go to the Twilio stand-in's REST API.
What only real processes show (a call run through gunicorn, the stream, signatures over the wire) stays end to end.
"""
from __future__ import annotations

import json
import logging

import pytest

from tests.conftest import PUBLIC_URL
from tests.in_process import Phone, gateway_app, lines
from tests.test_phone_dialogue import APOLOGY, GREETING

HI, BYE = "Hi, how are you?", "Goodbye! Thanks for calling."
STILL_THERE = "Are you still there?"
GOODBYE = "I haven't heard anything, so I'll hang up now. Goodbye!"
NOT_SURE = "Sorry, I didn't quite catch that. Could you say it again?"
SCRIPT_GREETING = "Hello! You are talking to the Chatline demo bot. How can I help?"
FAILED = "Sorry, nobody could take your call right now. Let's carry on."
TRANSFER = json.dumps({"text": "Putting you through to a person.",
                       "action": {"type": "transfer", "to": "+15550001111"}})


@pytest.fixture
def app(twilio, chatbot, tmp_path):
    """A factory: the gateway app with these settings (Gather mode unless STT_PROVIDER says otherwise)."""
    return lambda **overrides: gateway_app(twilio, chatbot, tmp_path, **overrides)


def call(app, sid: str = "CA" + "d1" * 16) -> Phone:
    """Twilio's side of one call to this app."""
    return Phone(app, sid)


def gathers_speech(answer, language: str = "en-US") -> bool:
    """The answer listens for the caller's words and keys in a <Gather> posting to /gather."""
    gather = answer.find("Gather")
    return (gather is not None and gather.get("action") == f"{PUBLIC_URL}/gather"
            and gather.get("input") == "speech dtmf" and gather.get("language") == language)


# ---- Gather mode (STT_PROVIDER=twilio) -------------------------------------------------------------------------
def test_gather_dialogue_by_speech_and_keys(app, chatbot):
    phone = call(app())
    first = phone.dial()
    assert first.said() == [GREETING] and gathers_speech(first) and first.find("Stream") is None
    assert phone.answer("/gather", SpeechResult="hello", Confidence="0.9").said() == [HI]
    keys = phone.answer("/gather", Digits="9")
    assert gathers_speech(keys) and keys.said()  # the sample bot's fallback, still listening
    assert phone.answer("/gather", SpeechResult="book a table").said() == ["For how many people?"]
    assert phone.answer("/gather", SpeechResult="for four people").said() == ["Your table for four is booked."]
    last = phone.answer("/gather", SpeechResult="goodbye")
    assert last.said() == [BYE] and last.verbs()[-1] == "Hangup" and last.find("Gather") is None
    assert [(r["input"], r["message"]) for r in chatbot.requests] == [
        ("speech", "hello"), ("dtmf", "9"), ("speech", "book a table"), ("speech", "for four people"),
        ("speech", "goodbye")]
    assert {r["session_id"] for r in chatbot.requests} == {phone.sid}


def test_gather_silence_reprompts_twice_then_hangs_up(app, chatbot):
    phone = call(app(NO_INPUT_SECONDS="3"))
    assert phone.dial().find("Gather").get("timeout") == "3"  # Twilio's own clock counts the silence
    for _ in range(2):
        again = phone.answer("/gather")  # the <Gather> timed out: no SpeechResult, no Digits
        assert again.said() == [STILL_THERE] and gathers_speech(again) and again.find("Gather").get("timeout") == "3"
    last = phone.answer("/gather")
    assert last.said() == [GOODBYE] and last.verbs()[-1] == "Hangup"
    assert chatbot.requests == []


def test_gather_caller_heard_after_a_reprompt_starts_the_count_again(app, chatbot):
    phone = call(app(NO_INPUT_SECONDS="3"))
    phone.dial()
    assert phone.answer("/gather").said() == [STILL_THERE]
    assert phone.answer("/gather", SpeechResult="hello").said() == [HI]
    # Two fresh reprompts after the answer, not just the one left before.
    assert [phone.answer("/gather").said() for _ in range(3)] == [[STILL_THERE], [STILL_THERE], [GOODBYE]]
    assert len(chatbot.requests) == 1


def test_gather_timeout_setting_is_the_silence_clock_without_no_input_seconds(app, chatbot):
    phone = call(app(GATHER_TIMEOUT="2", NO_INPUT_SECONDS="0"))
    assert phone.dial().find("Gather").get("timeout") == "2"
    assert phone.answer("/gather").said() == [STILL_THERE]
    assert phone.answer("/gather", SpeechResult="hello").said() == [HI] and chatbot.messages() == ["hello"]


def test_low_confidence_result_is_asked_again(app, chatbot):
    phone = call(app(GATHER_MIN_CONFIDENCE="0.5"))
    phone.dial()
    assert phone.answer("/gather", SpeechResult="hello", Confidence="0.2").said() == [NOT_SURE]
    assert phone.answer("/gather", SpeechResult="hello", Confidence="0.9").said() == [HI]
    assert phone.answer("/gather", SpeechResult="goodbye").said() == [BYE]
    assert chatbot.messages() == ["hello", "goodbye"]  # the unsure result never reached the chatbot


def test_gather_webhook_refuses_unsigned_results(app, chatbot):
    phone = call(app())
    assert phone.post("/gather", signed=False, SpeechResult="hello").status_code == 403 and chatbot.requests == []


def test_gather_mode_unanswered_transfer_brings_the_caller_back(app, chatbot):
    phone = call(app(TRANSFER_CALLER_ID="+15557654321", TRANSFER_TIMEOUT="20"))
    phone.dial()
    chatbot.body = TRANSFER
    transfer = phone.answer("/gather", SpeechResult="hello")
    dial = transfer.find("Dial")
    assert transfer.said() == ["Putting you through to a person."] and dial is not None
    assert (dial.get("action"), dial.get("callerId"), dial.get("timeout"), dial.find("Number").text) == (
        f"{PUBLIC_URL}/transfer", "+15557654321", "20", "+15550001111")
    back = phone.answer("/transfer", DialCallStatus="no-answer")
    assert back.said() == [FAILED] and gathers_speech(back) and "Hangup" not in back.verbs()  # the dialogue goes on
    chatbot.body = None
    assert phone.answer("/gather", SpeechResult="hello").said() == [HI]


def test_a_transfer_that_was_answered_ends_the_call(app, chatbot):
    phone = call(app())
    phone.dial()
    assert phone.answer("/transfer", DialCallStatus="completed").verbs() == ["Hangup"]


def test_gather_mode_greeting_comes_from_the_chatbot_when_asked(app, chatbot):
    phone = call(app(CHATBOT_GREETING="true"))
    first = phone.dial()
    assert first.said() == [SCRIPT_GREETING] and gathers_speech(first)
    assert (chatbot.requests[0]["message"], chatbot.requests[0]["input"], chatbot.requests[0]["session_id"]) == (
        "", "start", phone.sid)
    assert phone.answer("/gather", SpeechResult="hello").said() == [HI]
    assert phone.answer("/gather", SpeechResult="goodbye").said() == [BYE]
    assert [r["input"] for r in chatbot.requests] == ["start", "speech", "speech"]


def test_gather_mode_switches_the_language_of_the_next_gathers(app, chatbot):
    chatbot.amend = lambda request, answer: ({**answer, "language": "es-ES"}
                                            if request["message"] == "hello" else answer)
    phone = call(app(VOICE="Polly.Joanna"))
    first = phone.dial()
    assert gathers_speech(first, "en-US") and first.find("Say").get("voice") == "Polly.Joanna"
    switched = phone.answer("/gather", SpeechResult="hello")
    assert switched.said() == [HI] and gathers_speech(switched, "es-ES")
    assert switched.find("Say").get("language") == "es-ES"
    assert gathers_speech(phone.answer("/gather", SpeechResult="book a table"), "es-ES")  # for the rest of the call


# ---- Stream modes: the webhooks around the stream --------------------------------------------------------------
def test_a_failing_chatbot_greeting_falls_back_to_greeting(app, chatbot, caplog):
    chatbot.status = 503
    with caplog.at_level(logging.INFO):
        first = call(app(STT_PROVIDER="sphinx", CHATBOT_GREETING="true")).dial()
    assert first.said() == [GREETING] and first.find("Stream") is not None
    assert "chatbot greeting failed" in lines(caplog)


def test_a_greeting_that_hangs_up_starts_no_stream(app, chatbot):
    closed = {"text": "Sorry, we are closed today. Goodbye!", "action": "hangup"}
    chatbot.amend = lambda request, answer: closed if request["input"] == "start" else answer
    first = call(app(STT_PROVIDER="sphinx", CHATBOT_GREETING="true")).dial()
    assert first.said() == [closed["text"]] and first.verbs() == ["Say", "Hangup"]  # no <Start><Stream>


def test_stream_mode_greeting_comes_from_the_chatbot_and_starts_the_stream(app, chatbot):
    first = call(app(STT_PROVIDER="sphinx", CHATBOT_GREETING="true")).dial()
    assert first.said() == [SCRIPT_GREETING] and first.find("Stream") is not None
    keys = first.find("Gather")  # the greeting is said inside the keys-only <Gather>
    assert (keys.get("input"), keys.get("action")) == ("dtmf", f"{PUBLIC_URL}/dtmf")


def test_dtmf_webhook_refuses_unsigned_keys(app, chatbot):
    phone = call(app(STT_PROVIDER="sphinx"))
    assert phone.post("/dtmf", signed=False, Digits="1").status_code == 403 and chatbot.requests == []


@pytest.mark.parametrize("fault", ["down", "5xx", "slow", "garbage"])
def test_chatbot_failure_gives_an_apology_and_the_call_goes_on(fault, app, chatbot, caplog):
    if fault == "down":
        gateway = app(STT_PROVIDER="sphinx", CHATBOT_URL="http://127.0.0.1:9/message")
    else:
        gateway = app(STT_PROVIDER="sphinx", CHATBOT_TIMEOUT="1")
        chatbot.status, chatbot.body, chatbot.delay = {"5xx": (503, "{}", 0), "slow": (200, None, 2.5),
                                                        "garbage": (200, "<html>not json", 0)}[fault]
    phone = call(gateway)
    phone.dial()
    with caplog.at_level(logging.INFO):
        answer = phone.answer("/dtmf", Digits="1")
    # The apology, then the keep-alive loop: still listening, no hang-up.
    assert answer.said() == [APOLOGY] and "Hangup" not in answer.verbs(), answer.text
    assert answer.find("Redirect").text == f"{PUBLIC_URL}/listen"
    assert "chatbot failed for call" in lines(caplog) and "Traceback" not in caplog.text
    chatbot.status, chatbot.body, chatbot.delay = 200, None, 0
    if fault != "down":  # the next turn tries the chatbot afresh
        assert phone.answer("/dtmf", Digits="1").said() != [APOLOGY]


def test_keys_in_a_stream_mode_reach_the_chatbot_and_are_answered_in_the_webhook(app, chatbot, twilio):
    phone = call(app(STT_PROVIDER="sphinx"))
    phone.dial()
    answer = phone.answer("/dtmf", Digits="2")
    assert answer.said() and answer.find("Gather").get("action") == f"{PUBLIC_URL}/dtmf"
    assert answer.find("Redirect").text == f"{PUBLIC_URL}/listen"
    only_hash = phone.answer("/dtmf", Digits="")  # "#" alone: nothing to send, keep listening
    assert only_hash.said() == [] and only_hash.find("Redirect").text == f"{PUBLIC_URL}/listen"
    assert [(r["input"], r["message"]) for r in chatbot.requests] == [("dtmf", "2")]
    assert not [r for r in twilio.rest_requests if phone.sid in r["path"]]  # answered in the webhook, no update


@pytest.mark.parametrize("setting, amend, protected", [
    ({}, None, False),
    ({"BARGE_IN": "false"}, None, True),
    ({}, lambda request, answer: {**answer, "barge_in": False} if request["message"] == "what can you do" else answer,
     True),
])
def test_gather_mode_uses_twilios_own_barge_in(setting, amend, protected, app, chatbot):
    # Twilio itself stops a <Say> inside a <Gather> when the caller speaks, unless bargeIn="false": a protected
    # prompt carries it, and only that prompt.
    chatbot.amend = amend
    phone = call(app(**setting))
    phone.dial()
    help_prompt = phone.answer("/gather", SpeechResult="what can you do")
    assert help_prompt.said() == ["You can say hello, good, bad, book a table, or goodbye."]
    assert help_prompt.find("Gather").get("bargeIn") == ("false" if protected else None)
    hello = phone.answer("/gather", SpeechResult="hello")
    assert hello.said() == [HI] and hello.find("Gather").get("bargeIn") == ("false" if setting else None)
