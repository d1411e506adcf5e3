"""Phone-fit answers in the dialogue, in this process: what the caller hears of a chat answer (its menu, its links by
text message, SSML for Polly, its recording), and how a key or words choose one of its options, in Gather and stream
modes. The chatbot is the sample bot behind the spy, its answers amended with the contract's `options` and `audio`;
text messages go to the Twilio stand-in's Messages resource."""
from __future__ import annotations

import time

import pytest

from tests.in_process import CALLED, CALLER, Phone, gateway_app

OPTIONS = [{"title": "Book a table", "payload": "/book"}, {"title": "Opening hours", "payload": "/hours"}]
MENU = "You can say book a table or opening hours. Or press 1 or 2."
LINKED = "**Our menu** is online 😊: https://example.com/menu"
SENDING = "I'm sending you the link by text message."
NOT_SENT = "I couldn't send you the link by text message."


@pytest.fixture
def app(twilio, chatbot, tmp_path):
    return lambda **overrides: gateway_app(twilio, chatbot, tmp_path, **overrides)


def amended(chatbot, **by_message):
    """The spy answers these caller messages ("" for the greeting) with the sample bot's answer amended by them."""
    chatbot.amend = lambda request, answer: {**answer, **by_message.get(request["message"], {})}


def sent(twilio, count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while len(twilio.messages) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return twilio.messages


def test_gather_mode_options_are_said_and_chosen_by_key_or_by_words(app, chatbot):
    amended(chatbot, **{"": {"options": OPTIONS}, "/hours": {"text": "We open at nine.", "options": OPTIONS}})
    phone = Phone(app(CHATBOT_GREETING="true"), "CA" + "e1" * 16)
    first = phone.dial()
    assert first.said() == ["Hello! You are talking to the Chatline demo bot. How can I help? " + MENU]
    assert "Opening hours" in first.find("Gather").get("hints")  # the titles guide Twilio's recognizer
    assert first.find("Gather").get("numDigits") == "1"  # while options hold, one key is a choice at once
    assert phone.answer("/gather", Digits="2").said() == ["We open at nine. " + MENU]
    phone.answer("/gather", SpeechResult="opening hours please", Confidence="0.9")
    no_options = phone.answer("/gather", Digits="7")  # no seventh option: the key reaches the chatbot as a key
    assert no_options.find("Gather").get("numDigits") is None  # an answer without options: keys as entered
    assert [(r["input"], r["message"]) for r in chatbot.requests] == [
        ("start", ""), ("option", "/hours"), ("option", "/hours"), ("dtmf", "7")]
    phone.answer("/gather", Digits="1")  # the sample bot's answer to "7" had no options: they ended
    assert chatbot.requests[-1]["input"] == "dtmf"


def test_stream_mode_keys_choose_an_option_in_the_dtmf_webhook(app, chatbot):
    amended(chatbot, **{"": {"options": OPTIONS}})
    phone = Phone(app(STT_PROVIDER="sphinx", CHATBOT_GREETING="true"), "CA" + "e2" * 16)
    first = phone.dial()
    assert first.said()[0].endswith(MENU) and first.find("Stream") is not None
    assert first.find("Gather").get("numDigits") == "1"
    phone.answer("/dtmf", Digits="1")
    assert (chatbot.requests[-1]["input"], chatbot.requests[-1]["message"]) == ("option", "/book")


def test_links_go_by_text_message_and_a_refusal_is_said_before_the_next_answer(app, chatbot, twilio):
    amended(chatbot, hello={"text": LINKED})
    phone = Phone(app(MONITOR_PASSWORD="operator-password"), "CA" + "e3" * 16)
    phone.dial()
    said = phone.answer("/gather", SpeechResult="hello").said()
    assert said == ["Our menu is online. " + SENDING]
    message = sent(twilio, 1)[0]
    assert (message["to"], message["from"]) == (CALLER, CALLED) and message["body"].endswith("https://example.com/menu")
    twilio.refuse_sms_to(CALLER, 21614)  # a landline: the next message is refused
    phone.answer("/gather", SpeechResult="hello")
    time.sleep(0.5)  # the refusal comes back on the sender's thread, after the answer went out
    assert phone.answer("/gather", SpeechResult="what can you do").said()[0].startswith(NOT_SENT + " ")
    assert not phone.answer("/gather", SpeechResult="what can you do").said()[0].startswith(NOT_SENT)  # said once
    # The operator sees each message as an action, and the chatbot's own text as it wrote it.
    events = phone.app.extensions["chatline.monitor"].call(phone.sid)["events"]
    assert [(e.get("action"), e.get("text")) for e in events if e["type"] == "action"] == [
        ("sms-sent", f"text message {message['sid']} sent"), ("sms-refused", "text message refused (Twilio 21614)")]
    assert [e["text"] for e in events if e["type"] == "bot"][1:3] == [LINKED, LINKED]


def test_a_polly_voice_hears_ssml_the_default_voice_plain_words_and_audio_plays_first(app, chatbot):
    booking = {"text": "Your code is **AB12CD**. Call +1 555 123 4567 😊", "audio": "https://example.com/hi.mp3"}
    amended(chatbot, hello=booking)
    polly = Phone(app(VOICE="Polly.Joanna", SMS_LINKS="false"), "CA" + "e4" * 16)
    polly.dial()
    answer = polly.answer("/gather", SpeechResult="hello")
    assert answer.verbs()[:3] == ["Gather", "Play", "Say"]  # the recording, then the words, inside the <Gather>
    assert answer.find("Play").text == "https://example.com/hi.mp3"
    assert '<say-as interpret-as="telephone">+1 555 123 4567</say-as>' in answer.text
    assert "**" not in answer.text and "😊" not in answer.text
    plain = Phone(app(), "CA" + "e5" * 16)
    plain.dial()
    answer = plain.answer("/gather", SpeechResult="hello")
    assert answer.find("say-as") is None and "**" not in answer.said()[0] and "😊" not in answer.said()[0]
    assert chatbot.requests[-1]["message"] == "hello"
