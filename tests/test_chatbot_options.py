"""An answer's options and audio, through every protocol: parsed, validated, offered as a menu and chosen back."""
from __future__ import annotations

import json
import logging

import pytest

from gateway.calls.store import InMemoryCallStore
from gateway.chatbots import ChatlineChatbot, OpenAIChatbot, RasaChatbot
from gateway.chatbots.reply import ChatbotError, parse_reply
from gateway.phone import choose, menu, option_hints
from standins.openai_api import Answer, OpenAIStandIn
from standins.rasa import RasaStandIn
from tests.chatbot_spy import ChatbotSpy

OPTIONS = (("Book a table", "/book_table"), ("Opening hours", "/hours"), ("Talk to a person", "/agent"))


def test_options_are_kept_in_order_with_their_payloads_and_their_titles_become_hints():
    reply = parse_reply({"text": "How can I help?", "hints": ["help"], "options": [
        {"title": "Book a table", "payload": "/book_table"}, {"title": "Opening hours", "payload": "/hours"},
        {"title": "Talk to a person", "payload": "/agent"}]})
    assert reply.options == OPTIONS
    assert reply.hints == ("help", "Book a table", "Opening hours", "Talk to a person")


def test_malformed_options_are_left_out_with_one_log_line_each(caplog):
    with caplog.at_level(logging.WARNING, logger="gateway.chatbots.reply"):
        reply = parse_reply({"text": "Pick", "options": [{"title": "ok", "payload": "/ok"}, {"payload": "/x"},
                                                          "nope", {"title": "no payload"}, {"title": "", "payload": "y"},
                                                          {"title": "n", "payload": 5}]})
    assert reply.options == (("ok", "/ok"), ("no payload", "no payload"))
    assert caplog.text.count("option without a title") == 4
    assert parse_reply({"text": "x", "options": "a,b"}).options == ()


def test_audio_must_be_https_and_anything_else_is_refused_while_the_text_is_still_said(caplog):
    assert parse_reply({"text": "Listen:", "audio": "https://cdn.example.com/a.mp3"}).audio == \
        "https://cdn.example.com/a.mp3"
    with caplog.at_level(logging.WARNING, logger="gateway.chatbots.reply"):
        for bad in ("http://cdn.example.com/a.mp3", "file:///etc/passwd", "javascript:alert(1)", 42,
                    "https:///nohost.mp3", "https://a b.mp3"):
            reply = parse_reply({"text": "Listen:", "audio": bad})
            assert (reply.audio, reply.text) == (None, "Listen:")
    assert caplog.text.count("not an https:// URL") == 6


def test_an_answer_of_only_audio_or_only_options_is_speakable_but_an_empty_one_is_not():
    assert parse_reply({"text": "", "audio": "https://cdn.example.com/a.mp3"}).audio
    assert parse_reply({"text": "", "options": [{"title": "yes", "payload": "y"}]}).options
    with pytest.raises(ChatbotError, match="empty"):
        parse_reply({"text": "", "audio": "http://insecure.example.com/a.mp3"})


def test_the_chatline_protocol_reads_options_and_audio_and_sends_a_choice_as_an_option():
    with ChatbotSpy() as spy:
        spy.body = json.dumps({"text": "How can I help?", "audio": "https://cdn.example.com/hi.mp3",
                               "options": [{"title": t, "payload": p} for t, p in OPTIONS]})
        bot = ChatlineChatbot(spy.url, timeout=3)
        reply = bot.ask("hello", "CA1")
        assert (reply.options, reply.audio) == (OPTIONS, "https://cdn.example.com/hi.mp3")
        title, payload = choose(reply.options, key="2")
        bot.ask(payload, "CA1", "option")
        assert spy.requests[-1] == {"message": "/hours", "session_id": "CA1", "input": "option", "channel": "phone"}
        bot.close()


RASA = {
    "/greet": [{"text": "How can I help?", "buttons": [{"title": t, "payload": p} for t, p in OPTIONS]}],
    "/hours": [{"text": "We open at 9."}, {"image": "https://example.com/hours.png"},
               {"custom": {"audio": "https://cdn.example.com/hours.mp3"}}],
    "/agent": [{"custom": {"audio": "http://cdn.example.com/plain.mp3"}}, {"text": "One moment."}],
}


def test_rasa_buttons_are_options_a_click_is_the_payload_and_custom_audio_and_images_are_kept():
    with RasaStandIn(RASA) as rasa:
        bot = RasaChatbot(rasa.url, timeout=3, greeting_message="/greet")
        greeting = bot.ask("", "CA1", "start")
        assert greeting.options == OPTIONS and greeting.hints == option_hints(OPTIONS)
        _, payload = choose(greeting.options, words="what are your opening hours")
        hours = bot.ask(payload, "CA1", "option")
        assert rasa.messages("CA1") == ["/greet", "/hours"]  # the payload, as Rasa's web widgets send a click
        assert hours.text == "We open at 9. ![image](https://example.com/hours.png)"
        assert hours.audio == "https://cdn.example.com/hours.mp3" and hours.options == ()
        agent = bot.ask("/agent", "CA1", "option")
        assert (agent.audio, agent.text) == (None, "One moment.")
        bot.close()


def _model(messages):
    said = messages[-1]["content"] if messages[-1]["role"] == "user" else ""
    if said == "menu":
        return Answer("What would you like?", (("offer_options", {"options": ["Pizza", "Pasta", 3]}),))
    return Answer(f"Got {said}.")


def test_the_openai_protocol_offers_options_as_a_tool_and_a_choice_reads_as_one():
    store = InMemoryCallStore()
    store.open("CA1")
    with OpenAIStandIn(_model) as api:
        bot = OpenAIChatbot(api.url, store, model="m", prompt="p", api_key=api.api_key, timeout=3, stream=False)
        reply = bot.ask("menu", "CA1")
        assert (reply.text, reply.options) == ("What would you like?", (("Pizza", "Pizza"), ("Pasta", "Pasta")))
        assert "offer_options" in [t["function"]["name"] for t in api.requests[-1]["tools"]]
        _, payload = choose(reply.options, key="2")
        assert bot.ask(payload, "CA1", "option").text == "Got (the caller chose: Pasta)."
        bot.close()


def test_the_menu_says_the_titles_and_keys_in_the_answers_language():
    assert menu(OPTIONS, "en-US") == ("You can say book a table, opening hours, or talk to a person. "
                                      "Or press 1, 2, or 3.")
    assert menu(OPTIONS[:2], "es-ES") == "Puede decir book a table o opening hours. O pulse 1 o 2."
    assert menu((("Tisch reservieren", "/b"), ("Öffnungszeiten", "/h")), "de-DE") == (
        "Sie können Tisch reservieren oder Öffnungszeiten sagen. Oder drücken Sie 1 oder 2.")
    assert menu((("Réserver 🍽️", "/b"), ("**Horaires**", "/h")), "fr-FR") == (
        "Vous pouvez dire réserver ou horaires. Ou appuyez sur 1 ou 2.")
    assert menu(OPTIONS, "en-US", template="Say {titles}, or press {keys}.") == (
        "Say book a table, opening hours, or talk to a person, or press 1, 2, or 3.")
    assert menu((), "en-US") == ""


def test_past_nine_options_the_first_few_are_said_and_the_rest_can_still_be_said():
    many = tuple((f"Room {n}", f"/room{n}") for n in range(1, 13))
    assert menu(many, "en-US") == ("You can say room 1, room 2, room 3, room 4, room 5, or one of 7 more choices. "
                                   "Or press 1 to 5.")
    assert choose(many, words="room 12") == ("Room 12", "/room12")
    assert choose(many, key="9") == ("Room 9", "/room9")


@pytest.mark.parametrize("key, words, chosen", [
    ("1", None, OPTIONS[0]), ("3#", None, OPTIONS[2]), ("4", None, None), ("0", None, None), ("12", None, None),
    (None, "opening hours", OPTIONS[1]), (None, "Talk to a person.", OPTIONS[2]),
    (None, "I'd like to book a table please", OPTIONS[0]), (None, "talk to person", OPTIONS[2]),
    (None, "2", OPTIONS[1]), (None, "I don't know", None), (None, "", None), (None, "what's the weather", None),
])
def test_a_choice_by_key_or_by_words_and_never_a_wrong_one(key, words, chosen):
    assert choose(OPTIONS, key=key, words=words) == chosen


def test_an_ambiguous_title_chooses_nothing():
    tables = (("Book a table", "/book"), ("Cancel a table", "/cancel"))
    assert choose(tables, words="table") is None
    assert choose(tables, words="cancel my table") == tables[1]
