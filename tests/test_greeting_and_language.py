"""Issue 4: the greeting fetched from the chatbot at call start, and a reply switching the call's language mid-call."""
from __future__ import annotations

import pytest

from tests.test_phone_dialogue import GREETING, place, updates

SCRIPT_GREETING = "Hello! You are talking to the Chatline demo bot. How can I help?"
HI = "Hi, how are you?"
BYE = "Goodbye! Thanks for calling."


@pytest.mark.parametrize("provider", ["google", "twilio"])
def test_greeting_comes_from_the_chatbot_when_asked(provider, twilio, chatbot, start_gateway):
    start_gateway(STT_PROVIDER=provider, CHATBOT_GREETING="true")
    turns = ["hello", "goodbye"] if provider == "google" else [("speech-result", "hello"), ("speech-result", "goodbye")]
    call = place(twilio, turns)
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [SCRIPT_GREETING, HI, BYE], call.transcript()
    first = chatbot.requests[0]
    assert (first["message"], first["input"], first["session_id"]) == ("", "start", call.sid)
    assert [r["input"] for r in chatbot.requests] == ["start", "speech", "speech"]


def test_a_failing_chatbot_greeting_falls_back_to_greeting(twilio, chatbot, start_gateway):
    gateway = start_gateway(CHATBOT_GREETING="true")
    chatbot.status = 503
    call = place(twilio, ["hello", "goodbye"])
    assert call.wait_for_say(GREETING, timeout=15), call.transcript()
    chatbot.status = 200  # the chatbot is back for the caller's first words
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, HI, BYE], call.transcript()
    assert "chatbot greeting failed" in gateway.logs()


def test_a_greeting_that_hangs_up_starts_no_stream(twilio, speech, chatbot, start_gateway):
    closed = {"text": "Sorry, we are closed today. Goodbye!", "action": "hangup"}
    chatbot.amend = lambda request, answer: closed if request["input"] == "start" else answer
    start_gateway(CHATBOT_GREETING="true")
    call = place(twilio, ["hello"])
    assert call.wait_ended(timeout=30), call.transcript()
    assert call.said() == [closed["text"]], call.transcript()
    assert [d for _, k, d in call.events if k == "hangup"] == ["<Hangup/>"]
    assert not call.streams and not speech.streams


def test_a_reply_can_switch_the_language_of_the_rest_of_the_call(twilio, speech, chatbot, start_gateway):
    chatbot.amend = lambda request, answer: ({**answer, "language": "en-GB", "voice": "Polly.Amy"}
                                            if request["message"] == "hello" else answer)
    start_gateway(VOICE="Polly.Joanna")
    call = place(twilio, ["hello", "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, HI, BYE], call.transcript()
    sent = updates(twilio, call)
    assert '<Say language="en-GB" voice="Polly.Amy">Hi, how are you?</Say>' in sent[0]
    assert '<Say language="en-GB" voice="Polly.Amy">Goodbye! Thanks for calling.</Say>' in sent[1]
    # Recognition follows: the streams after the switch ask Google for en-GB, and still hear the caller.
    languages = [record.language_code for record in speech.streams]
    assert languages[0] == "en-US" and languages[-1] == "en-GB", languages
    assert [m.replace(" ", "") for m in chatbot.messages()] == ["hello", "goodbye"]


def test_gather_mode_switches_the_language_of_the_next_gathers(twilio, chatbot, start_gateway):
    chatbot.amend = lambda request, answer: ({**answer, "language": "es-ES"}
                                            if request["message"] == "hello" else answer)
    start_gateway(STT_PROVIDER="twilio", VOICE="Polly.Joanna")
    call = place(twilio, [("speech-result", "hello"), ("speech-result", "goodbye")])
    assert call.wait_ended(timeout=60), call.transcript()
    gathers = [d for _, k, d in call.events if k == "gather"]
    assert [g["language"] for g in gathers] == ["en-US", "es-ES"]
    says = [d for _, k, d in call.events if k == "say"]
    assert says == [GREETING, HI, BYE]
