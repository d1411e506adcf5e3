"""Links sent to the caller by SMS: the Twilio stand-in's Messages resource as Twilio serves it, and the sender's
policy (one message per answer, SMS_MAX_PER_CALL, refusals not retried, never holding a turn)."""
from __future__ import annotations

import logging
import threading
import time

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from gateway.config import Config
from gateway.twilio.messages import MessageSender, message_body
from standins.twilio import TwilioStandIn

CALLER, CALLED = "+15551230001", "+15557654321"


@pytest.fixture
def twilio():
    with TwilioStandIn() as standin:
        yield standin


class Results:
    """The sender's on_result callback: what the monitor and the caller would be told."""

    def __init__(self):
        self.got: list[tuple[str, bool, str]] = []
        self._event = threading.Condition()

    def __call__(self, call_sid, sent, detail):
        with self._event:
            self.got.append((call_sid, sent, detail))
            self._event.notify_all()

    def wait(self, count, timeout=5.0):
        with self._event:
            self._event.wait_for(lambda: len(self.got) >= count, timeout)
        return self.got


def _sender(twilio, results, **options):
    return MessageSender(twilio.account_sid, twilio.auth_token, twilio.api_url, on_result=results, **options)


def test_the_messages_resource_answers_as_twilio_does(twilio):
    message = twilio.client().messages.create(to=CALLER, from_=CALLED, body="Hi")
    assert message.sid.startswith("SM") and len(message.sid) == 34 and message.status == "queued"
    assert (message.to, message.from_, message.body) == (CALLER, CALLED, "Hi")
    assert twilio.messages[0]["sid"] == message.sid
    twilio.refuse_sms_to("+15550000002", 21610)
    for to, body, code in (("555-1234", "Hi", 21211), (CALLER, "", 21602), ("+15550000002", "Hi", 21610)):
        with pytest.raises(TwilioRestException) as refused:
            twilio.client().messages.create(to=to, from_=CALLED, body=body)
        assert (refused.value.status, refused.value.code) == (400, code)
    twilio.sms_senders = {"+15550009999"}
    with pytest.raises(TwilioRestException) as refused:
        twilio.client().messages.create(to=CALLER, from_=CALLED, body="Hi")
    assert refused.value.code == 21606
    wrong = Client(twilio.account_sid, "wrong-token")
    wrong.api.base_url = twilio.api_url
    with pytest.raises(TwilioRestException) as refused:
        wrong.messages.create(to=CALLER, from_=CALLED, body="Hi")
    assert (refused.value.status, refused.value.code) == (401, 20003)
    assert len(twilio.messages) == 1


def test_one_message_per_answer_with_all_its_links_from_the_number_called(twilio):
    results = Results()
    sender = _sender(twilio, results)
    assert sender.offer("CA1", CALLER, CALLED, ["https://example.com/menu", "info@example.com"], "es-ES")
    assert results.wait(1) == [("CA1", True, f"text message {twilio.messages[0]['sid']} sent")]
    assert [(m["to"], m["from"], m["body"]) for m in twilio.messages] == [
        (CALLER, CALLED, "Esto es lo que comentamos por teléfono:\nhttps://example.com/menu\ninfo@example.com")]
    sender.close()


def test_at_most_sms_max_per_call_messages_to_one_call(twilio):
    results = Results()
    sender = _sender(twilio, results, max_per_call=2)
    offered = [sender.offer("CA1", CALLER, CALLED, [f"https://example.com/{n}"]) for n in range(4)]
    assert offered == [True, True, False, False]
    assert sender.offer("CA2", CALLER, CALLED, ["https://example.com/other-call"])  # another call has its own count
    results.wait(3)
    sender.close()
    assert len(twilio.messages) == 3


def test_sms_links_off_or_no_links_sends_nothing(twilio):
    results = Results()
    sender = _sender(twilio, results, enabled=False)
    assert not sender.offer("CA1", CALLER, CALLED, ["https://example.com"])
    assert not _sender(twilio, results).offer("CA1", CALLER, CALLED, [])
    sender.close()
    assert twilio.messages == [] and results.got == []


def test_a_refused_message_is_one_log_line_not_retried_and_the_calls_next_links_are_not_tried(twilio, caplog):
    twilio.refuse_sms_to(CALLER, 21614)  # a landline
    results = Results()
    sender = _sender(twilio, results)
    with caplog.at_level(logging.WARNING, logger="gateway.twilio.messages"):
        assert sender.offer("CA1", CALLER, CALLED, ["https://example.com"])
        assert results.wait(1) == [("CA1", False, "text message refused (Twilio 21614)")]
    assert sender.refused("CA1")
    assert not sender.offer("CA1", CALLER, CALLED, ["https://example.com/again"])
    sender.close()
    posts = [r for r in twilio.rest_requests if r["path"].endswith("/Messages.json")]
    assert len(posts) == 1 and caplog.text.count("text message refused") == 1


def test_a_slow_or_down_messages_api_never_holds_the_turn(twilio):
    twilio.messages_delay = 2.0
    results = Results()
    sender = _sender(twilio, results, timeout=0.5)
    started = time.monotonic()
    assert sender.offer("CA1", CALLER, CALLED, ["https://example.com"])
    assert time.monotonic() - started < 0.2  # the turn goes on at once
    sid, sent, detail = results.wait(1)[0]
    assert (sid, sent) == ("CA1", False) and "not sent" in detail
    down = MessageSender(twilio.account_sid, twilio.auth_token, "http://127.0.0.1:9", on_result=results)
    assert down.offer("CA2", CALLER, CALLED, ["https://example.com"])
    assert results.wait(2)[1][:2] == ("CA2", False)
    sender.close()
    down.close()


def test_a_failing_callback_does_not_break_the_sender(twilio, caplog):
    def broken(*_):
        raise RuntimeError("monitor down")
    sender = MessageSender(twilio.account_sid, twilio.auth_token, twilio.api_url, on_result=broken)
    with caplog.at_level(logging.ERROR, logger="gateway.twilio.messages"):
        assert sender.offer("CA1", CALLER, CALLED, ["https://example.com"])
        sender.close()
    assert "could not be reported" in caplog.text and len(twilio.messages) == 1


def test_the_body_is_one_line_of_context_and_stays_within_twilios_limit():
    assert message_body(["https://a.example"], "de-DE") == (
        "Hier ist, worüber wir am Telefon gesprochen haben:\nhttps://a.example")
    assert len(message_body([f"https://example.com/{'x' * 300}/{n}" for n in range(10)], "en-US")) <= 1600


def test_sms_settings_are_read_and_checked():
    base = {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}
    config = Config.from_env(base)
    assert (config.sms_links, config.sms_max_per_call, config.options_menu) == (True, 3, "")
    config = Config.from_env({**base, "SMS_LINKS": "false", "SMS_MAX_PER_CALL": "1",
                              "OPTIONS_MENU": "Say {titles} or press {keys}."})
    assert (config.sms_links, config.sms_max_per_call, config.options_menu) == (False, 1, "Say {titles} or press {keys}.")
    with pytest.raises(ValueError, match="SMS_MAX_PER_CALL.*|OPTIONS_MENU_MORE") as problems:
        Config.from_env({**base, "SMS_MAX_PER_CALL": "-1", "OPTIONS_MENU_MORE": "{titles} {oops}"})
    assert "SMS_MAX_PER_CALL" in str(problems.value) and "OPTIONS_MENU_MORE" in str(problems.value)


def test_the_standins_caller_hears_ssml_says_as_words_with_pauses():
    import xml.etree.ElementTree as ET

    from standins.twiml_runner import _spoken
    say = ET.fromstring('<Say voice="Polly.Joanna">Call <say-as interpret-as="telephone">+1 555 123 4567</say-as>'
                        ' now<break time="300ms" />bye.</Say>')
    assert _spoken(say) == "Call +1 555 123 4567 now, bye."
    assert _spoken(ET.fromstring("<Say> Hello  there </Say>")) == "Hello  there"


def test_the_cap_can_be_the_call_stores_count_shared_by_every_process(twilio):
    from gateway.calls.store import InMemoryCallStore
    store = InMemoryCallStore()
    store.open("CA1")
    results = Results()
    one, other = (_sender(twilio, results, max_per_call=2, claim=store.claim_text_message) for _ in range(2))
    assert [one.offer("CA1", CALLER, CALLED, ["https://e.com/1"]), other.offer("CA1", CALLER, CALLED, ["https://e.com/2"]),
            one.offer("CA1", CALLER, CALLED, ["https://e.com/3"])] == [True, True, False]

    def broken(call_sid, most):
        raise ConnectionError("redis down")
    assert not _sender(twilio, results, claim=broken).offer("CA1", CALLER, CALLED, ["https://e.com/4"])
    results.wait(2)
    one.close()
    other.close()
    assert len(twilio.messages) == 2
