"""Issue 4: the greeting fetched from the chatbot at call start, and a reply switching the call's language mid-call."""
from __future__ import annotations

from tests.test_phone_dialogue import GREETING, place, updates

SCRIPT_GREETING = "Hello! You are talking to the Chatline demo bot. How can I help?"
HI = "Hi, how are you?"
BYE = "Goodbye! Thanks for calling."


def test_greeting_comes_from_the_chatbot_when_asked(twilio, chatbot, start_gateway):
    # Gather mode, a failing greeting and a greeting that hangs up: in process, test_dialogue_webhooks.py.
    start_gateway(CHATBOT_GREETING="true")
    call = place(twilio, ["hello", "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [SCRIPT_GREETING, HI, BYE], call.transcript()
    first = chatbot.requests[0]
    assert (first["message"], first["input"], first["session_id"]) == ("", "start", call.sid)
    assert [r["input"] for r in chatbot.requests] == ["start", "speech", "speech"]


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

