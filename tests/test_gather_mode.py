"""Gather mode (STT_PROVIDER=twilio): Twilio recognizes, no websocket and no Google involved."""
from __future__ import annotations

from tests.test_phone_dialogue import GREETING, place


def test_gather_dialogue_by_speech_and_keys(twilio, chatbot, start_gateway):
    gateway = start_gateway(STT_PROVIDER="twilio")
    call = place(twilio, ["hello", ("dtmf", "9"), "book_a_table", "for_four_people", "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said()[0] == GREETING
    assert "Hi, how are you?" in call.said() and "Your table for four is booked." in call.said()
    assert call.said()[-1] == "Goodbye! Thanks for calling."
    assert [r["input"] for r in chatbot.requests] == ["speech", "dtmf", "speech", "speech", "speech"]
    assert chatbot.messages()[1] == "9"
    kinds = [kind for _, kind, _ in call.events]
    assert "stream-start" not in kinds and "hangup" in kinds
    gathers = [detail for _, kind, detail in call.events if kind == "gather"]
    assert gathers, call.transcript()
    assert "Traceback" not in gateway.logs()


def test_gather_silence_comes_back_and_reprompts(twilio, chatbot, start_gateway):
    start_gateway(STT_PROVIDER="twilio", GATHER_TIMEOUT="2", NO_INPUT_SECONDS="0")  # GATHER_TIMEOUT is the clock
    call = place(twilio, [("silence", 6), "hello"])
    assert call.wait_for_say("Hi, how are you?", timeout=40), call.transcript()
    assert "Are you still there?" in call.said()
    assert chatbot.messages() == ["hello"]
    call.hang_up()
    assert call.wait_ended(timeout=10)


def test_gather_webhook_refuses_unsigned_results(twilio, chatbot, start_gateway):
    import requests

    gateway = start_gateway(STT_PROVIDER="twilio")
    response = requests.post(gateway.url + "/gather", data={"CallSid": "CA1", "SpeechResult": "hello"},
                             headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "chatline.test"}, timeout=5)
    assert response.status_code == 403 and chatbot.requests == []


def test_low_confidence_result_is_asked_again(twilio, chatbot, start_gateway):
    start_gateway(STT_PROVIDER="twilio", GATHER_MIN_CONFIDENCE="0.5")
    call = place(twilio, [("speech-result", "hello", 0.2), ("speech-result", "hello", 0.9), "goodbye"])
    assert call.wait_ended(timeout=40), call.transcript()
    said = call.said()
    assert said[1] == "Sorry, I didn't quite catch that. Could you say it again?" and said[2] == "Hi, how are you?"
    assert chatbot.messages() == ["hello", "goodbye"]  # the unsure result never reached the chatbot
