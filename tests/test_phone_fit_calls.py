"""Chat answers made fit for the phone, in whole calls through gunicorn: a Rasa bot's buttons heard as a menu and
chosen by voice or key in Gather mode with its recording played first, and an OpenAI-compatible model's markdown,
emoji, link, email, phone number and booking code heard as a caller should hear them, links by text message."""
from __future__ import annotations

import re
import time

import requests

from standins.openai_api import Answer, OpenAIStandIn
from standins.rasa import RasaStandIn
from standins.twilio import Caller
from tests.test_chatbot_calls import start_openai
from tests.test_phone_dialogue import place, updates

CALLER = "+15551230001"
RECORDING = "https://example.com/welcome.mp3"
SENDING = "I'm sending you the link by text message."
SENDING_BOTH = "I'm sending you the links by text message."
NOT_SENT = "I couldn't send you the link by text message."
CHAT_ANSWER = ("**Sure!** 😊 Here is what you need:\n"
               "- Booking code: AB12CD\n"
               "- Call us: +1 555 123 4567\n\n"
               "Details at https://example.com/booking or write to frontdesk@example.com")
SECOND = "See [our menu](https://example.com/menu) too ✨"


def model(messages):
    """The stand-in model: a chat-style answer to hello, another link to what can you do, goodbye ends the call."""
    said = messages[-1]["content"].replace(" ", "") if messages[-1]["role"] == "user" else ""
    if said == "goodbye":
        return Answer("Goodbye!", (("end_call", {}),))
    if said == "whatcanyoudo":
        return Answer(SECOND)
    return Answer(CHAT_ANSWER)


def test_rasa_buttons_in_gather_mode_chosen_by_voice_and_by_key_with_a_recording_first(twilio, chatbot,
                                                                                          start_gateway):
    buttons = [{"title": "Opening hours", "payload": "/hours"}, {"title": "Book a table", "payload": "/book"}]
    script = {
        "/greet": [{"text": "Welcome to the bakery!", "buttons": buttons}],
        "/hours": [{"custom": {"audio": RECORDING}}, {"text": "We open at 9.", "buttons": buttons}],
        "/book": [{"text": "Booked, see you soon."}, {"custom": {"action": "hangup"}}],
    }
    with RasaStandIn(script) as rasa:
        start_gateway(CHATBOT_PROTOCOL="rasa", CHATBOT_URL=rasa.url, CHATBOT_GREETING="true", STT_PROVIDER="twilio")
        call = place(twilio, Caller([("speech-result", "opening hours", 0.9), ("dtmf", "2")]))
        assert call.wait_ended(timeout=60), call.transcript()
        menu = "You can say opening hours or book a table. Or press 1 or 2."
        assert call.said() == ["Welcome to the bakery! " + menu, "We open at 9. " + menu,
                               "Booked, see you soon."], call.transcript()
        assert rasa.messages() == ["/greet", "/hours", "/book"]
        # The recording plays before the words of its answer, inside the <Gather> that takes the caller's key.
        kinds = [(kind, detail) for _, kind, detail in call.events]
        played = kinds.index(("play", RECORDING))
        assert [k for k, _ in kinds[played:]].index("say") < [k for k, _ in kinds[played:]].index("gather-result")
        gathers = [detail for kind, detail in kinds if kind == "gather"]
        assert all("Opening hours" in g.get("hints", "") for g in gathers)  # the titles guide Twilio's recognizer


def test_an_openai_answer_with_a_polly_voice_is_ssml_its_links_go_by_text_up_to_sms_max_per_call(
        twilio, speech, chatbot, start_gateway):
    with OpenAIStandIn(model) as api:
        start_openai(start_gateway, api, VOICE="Polly.Joanna", SMS_MAX_PER_CALL="1")
        call = place(twilio, ["hello", "what_can_you_do", "goodbye"])
        assert call.wait_ended(timeout=60), call.transcript()
        said = call.said()
        assert said[1] == ("Sure! Here is what you need: Booking code: A B 1 2 C D, Call us: +1 555 123 4567., Details"
                           " at the link or write to the email address. " + SENDING_BOTH), call.transcript()
        # Past SMS_MAX_PER_CALL the link is left out of the speech and the caller is told it was not sent.
        assert said[2] == "See our menu too. " + NOT_SENT, call.transcript()
        sent = updates(twilio, call)[0]
        # Polly hears SSML: the list's items apart with <break>, the phone number as one.
        assert ('Booking code: A B 1 2 C D<break time="300ms" />Call us: <say-as interpret-as="telephone">'
                '+1 555 123 4567</say-as>.<break time="300ms" />Details at the link') in sent, sent
        assert [(m["to"], m["body"].splitlines()[1:]) for m in twilio.messages] == [
            (CALLER, ["https://example.com/booking", "frontdesk@example.com"])]
        # The model's own history keeps the chat text as the model wrote it.
        assert {"role": "assistant", "content": CHAT_ANSWER} in api.conversations()[-1], api.conversations()[-1]


def test_a_refused_text_message_is_said_before_the_next_answer_with_the_default_voice(twilio, speech, chatbot,
                                                                                        start_gateway):
    twilio.refuse_sms_to(CALLER, 21614)  # the caller's number is a landline
    with OpenAIStandIn(model) as api:
        gateway = start_openai(start_gateway, api, MONITOR_PASSWORD="operator-password")
        call = place(twilio, ["hello", "what_can_you_do", "goodbye"])
        assert call.wait_ended(timeout=60), call.transcript()
        said = call.said()
        assert said[1].startswith("Sure! Here is what you need: Booking code: A B 1 2 C D") and "**" not in said[1]
        assert "😊" not in said[1] and "https" not in said[1] and "@" not in said[1], call.transcript()
        # The refusal came back after the answer went out: the caller hears it first thing on the next answer.
        assert said[2] == NOT_SENT + " See our menu too. " + NOT_SENT, call.transcript()
        assert "<say-as" not in "".join(updates(twilio, call))  # the default voice takes no SSML
        assert twilio.messages == []
        metrics = requests.get(gateway.url + "/metrics", auth=("operator", "operator-password"), timeout=5).text
        assert re.search(r'chatline_text_messages_refused_total\{code="21614"\} 1\.0', metrics), metrics
