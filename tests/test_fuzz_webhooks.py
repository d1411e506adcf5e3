"""Fuzzing every webhook of the real gunicorn gateway with correctly signed, oddly filled forms."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL
from tests.figures import count
from tests.test_fuzz_parsers import _speaks_or_continues
from tests.test_phone_dialogue import GREETING, place

E2E = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
TUNNEL_HEADERS = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "chatline.test"}
STREAM_PATHS = ["/voice", "/status", "/listen", "/dtmf", "/transfer"]
TWILIO_FORM = {"CallSid": "CA" + "f0" * 16, "AccountSid": ACCOUNT_SID, "From": "+15551230001", "To": "+15557654321",
               "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01", "Digits": "12",
               "DialCallStatus": "no-answer", "SpeechResult": "hello", "Confidence": "0.9"}
ODD_TEXT = (st.text(max_size=60) | st.sampled_from(["", " ", "#", "\x00", "0" * 5000, "é" * 3000, "<Say>x</Say>",
                                                   "completed", "answered", "-1", "nan", "CA", "\ud7ff\ue000"]))


@st.composite
def odd_forms(draw):
    """Twilio's form with some fields dropped, some given odd values, and some unknown fields added."""
    form = {key: value for key, value in TWILIO_FORM.items() if not draw(st.booleans()) or key == "AccountSid"}
    for key in draw(st.lists(st.sampled_from(sorted(TWILIO_FORM)), max_size=4)):
        form[key] = draw(ODD_TEXT)
    form.update(draw(st.dictionaries(st.text(min_size=1, max_size=20), ODD_TEXT, max_size=3)))
    return form


def post_signed(gateway, path: str, form: dict) -> requests.Response:
    """POST a webhook exactly as Twilio would: through the tunnel, signed for the public URL and these params."""
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + path, form)
    return requests.post(gateway.url + path, data=form, timeout=15,
                         headers={**TUNNEL_HEADERS, "X-Twilio-Signature": signature})


def check_answer(gateway, path: str, form: dict, first_verb: str) -> None:
    """No 5xx, a TwiML answer that keeps the caller in a dialogue, and one log line for a webhook without a call."""
    missing = form.get("CallSid", "").strip() == ""
    before = gateway.logs().count(f"POST {path} without a CallSid")
    response = post_signed(gateway, path, form)
    assert response.status_code < 500, (path, form, response.status_code, response.text[:300])
    if path == "/status":
        assert response.status_code == 204
    else:
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/xml")
        _speaks_or_continues(response.text)
        if path == "/voice" and not missing:
            root = ET.fromstring(response.text)  # a real call starts its dialogue: stream or Gather, and the greeting
            assert root[0].tag == first_verb and GREETING in "".join(s.text or "" for s in root.iter("Say"))
    assert gateway.logs().count(f"POST {path} without a CallSid") == before + missing, gateway.logs()[-2000:]


def test_stream_mode_webhooks_survive_odd_forms(start_gateway, twilio, chatbot):
    gateway = start_gateway()

    @E2E
    @given(path=st.sampled_from(STREAM_PATHS), form=odd_forms())
    @example(path="/dtmf", form={"AccountSid": ACCOUNT_SID, "Digits": "1"})
    @example(path="/dtmf", form={**TWILIO_FORM, "Digits": "9" * 3000})  # too long for the sample bot: an apology
    @example(path="/transfer", form={"AccountSid": ACCOUNT_SID, "DialCallStatus": "answered"})
    @example(path="/voice", form={"CallSid": " ", "AccountSid": ACCOUNT_SID})
    @example(path="/status", form={"CallSid": "CA-never-seen", "CallStatus": "completed"})
    @example(path="/voice", form={**TWILIO_FORM, "From": "+1555\x1b\x00"})  # found: unparsable TwiML
    def fuzz(path, form):
        count("webhooks, stream mode (signed, real gunicorn)")
        check_answer(gateway, path, form, "Start")

    fuzz()
    assert "Traceback" not in gateway.logs()
    call = place(twilio, ["hello", "goodbye"])  # the same process still holds a normal call
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said()[-1] == "Goodbye! Thanks for calling.", call.transcript()


def test_gather_mode_webhooks_survive_odd_forms(start_gateway, twilio, chatbot):
    from standins.twilio import Caller

    gateway = start_gateway(STT_PROVIDER="twilio")

    @E2E
    @given(path=st.sampled_from(["/voice", "/gather", "/transfer", "/status"]), form=odd_forms())
    @example(path="/gather", form={"AccountSid": ACCOUNT_SID, "SpeechResult": "hello"})  # found: reached the bot
    @example(path="/gather", form={**TWILIO_FORM, "Confidence": "-inf", "SpeechResult": "\x00"})
    def fuzz(path, form):
        count("webhooks, Gather mode (signed, real gunicorn)")
        check_answer(gateway, path, form, "Gather")

    fuzz()
    assert all(request["session_id"].strip() for request in chatbot.requests)  # no call, no chatbot session
    assert "Traceback" not in gateway.logs()
    call = place(twilio, Caller([("speech-result", "hello", 0.9), ("speech-result", "goodbye", 0.9)]))
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said()[-1] == "Goodbye! Thanks for calling.", call.transcript()
