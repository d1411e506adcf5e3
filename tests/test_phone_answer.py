"""The one call the turn path makes per answer: rendered words, links offered by SMS, the options' menu."""
from __future__ import annotations

import time

from gateway.chatbots.reply import Reply, parse_reply
from gateway.config import Config
from gateway.dialogue.phone_answer import heard, next_message, offer_links
from gateway.phone import Pause, SayAs
from gateway.twilio.messages import MessageSender
from standins.twilio import TwilioStandIn

BASE = {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}
ANSWER = parse_reply({"text": "**Sure!** 😊 Call +1 555 123 4567 or see https://example.com/menu",
                      "options": [{"title": "Book a table", "payload": "/book"}, {"title": "Hours", "payload": "/h"}]})


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def test_a_basic_voice_hears_plain_words_the_sms_sentence_and_the_menu():
    with TwilioStandIn() as twilio:
        sender = MessageSender(twilio.account_sid, twilio.auth_token, twilio.api_url)
        config = Config.from_env(BASE)
        answer = offer_links(ANSWER, config, call_sid="CA1", caller="+15551230001", called="+15557654321",
                             sender=sender)
        spoken = heard(answer, config)
        assert spoken.parts == ("Sure! Call plus 1, 5 5 5, 1 2 3, 4 5 6 7 or see the link. I'm sending you the link by "
                                "text message. You can say book a table or hours. Or press 1 or 2.",)
        assert _wait_for(lambda: len(twilio.messages) == 1)
        assert twilio.messages[0]["body"].endswith("\nhttps://example.com/menu")
        sender.close()
    assert answer.text == ANSWER.text and ANSWER.text.startswith("**Sure!** 😊")  # the monitor and history keep it
    assert heard(ANSWER, config).parts[0].endswith("I couldn't send you the link by text message. You can say book a "
                                                   "table or hours. Or press 1 or 2.")  # not offered: not sent


def test_the_sentence_the_caller_is_owed_comes_first():
    owed = Reply("Here you are.", preface="I couldn't send you the link by text message.")
    assert heard(owed, Config.from_env(BASE)).parts == (
        "I couldn't send you the link by text message. Here you are.",)


def test_a_polly_voice_hears_ssml_and_sms_links_off_says_the_link_could_not_be_sent():
    config = Config.from_env({**BASE, "VOICE": "Polly.Lucia", "LANGUAGE": "es-ES", "SMS_LINKS": "false"})
    spoken = heard(offer_links(ANSWER, config, call_sid="CA1", caller="+15551230001", called="+15557654321",
                               sender=None), config)
    assert spoken.ssml and spoken.parts == (
        "Sure! Call ", SayAs("+1 555 123 4567", "telephone"),
        " or see el enlace. No he podido enviarle el enlace por SMS. Puede decir book a table o hours. O pulse 1 o 2.")


def test_a_reply_switching_language_is_heard_in_it_and_a_plain_answer_is_unchanged():
    german = Reply("Liste:\n- eins\n- zwei", language="de-DE", voice="Google.de-DE-Neural2-B")
    assert heard(german, Config.from_env(BASE)).parts == ("Liste: eins", Pause(), "zwei.")
    assert heard(Reply("Hello there."), Config.from_env(BASE)).parts == ("Hello there.",)


def test_keys_and_words_become_the_next_message():
    options = (("Book a table", "/book"), ("Hours", "/h"))
    assert next_message(options, key="2") == ("/h", "option")
    assert next_message(options, key="7") == ("7", "dtmf")  # no such option: the keys as keys
    assert next_message(options, words="book a table please") == ("/book", "option")
    assert next_message(options, words="what's the weather") == ("what's the weather", "speech")
    assert next_message((), key="1") == ("1", "dtmf")
