"""Unsigned or badly signed webhooks and streams are refused, and nothing reaches the recognizer or the chatbot."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
import requests
import simple_websocket
from twilio.request_validator import RequestValidator

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL
from tests.shared_gateway import shared_gateway_fixtures
from tests.test_phone_dialogue import wait_until

# Every test here needs only the default settings: one gateway for the module, spies seen fresh by each test.
shared, gateway, chatbot, speech, twilio = shared_gateway_fixtures()

HELLO = (Path(__file__).resolve().parent.parent / "chatline" / "audio" / "hello.ulaw").read_bytes()
FORM = {"CallSid": "CA" + "ab" * 16, "AccountSid": ACCOUNT_SID, "From": "+15551230001", "To": "+15557654321",
        "CallStatus": "ringing", "Direction": "inbound"}
TUNNEL_HEADERS = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "chatline.test"}


def sign(url: str, params: dict, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


@pytest.mark.parametrize("path", ["/voice", "/listen", "/status"])
@pytest.mark.parametrize("signature", [None, "bm90IGEgc2lnbmF0dXJl", "wrong-token", "wrong-url", "wrong-params"])
def test_webhooks_refuse_bad_signatures(path, signature, gateway, chatbot):
    headers = dict(TUNNEL_HEADERS)
    if signature == "wrong-token":
        headers["X-Twilio-Signature"] = sign(PUBLIC_URL + path, FORM, token="not-the-token")
    elif signature == "wrong-url":
        headers["X-Twilio-Signature"] = sign("https://evil.example" + path, FORM)
    elif signature == "wrong-params":
        headers["X-Twilio-Signature"] = sign(PUBLIC_URL + path, {**FORM, "From": "+19999999999"})
    elif signature:
        headers["X-Twilio-Signature"] = signature
    response = requests.post(gateway.url + path, data=FORM, headers=headers, timeout=5)
    assert response.status_code == 403
    assert wait_until(lambda: "invalid X-Twilio-Signature" in gateway.logs(), timeout=5)
    assert chatbot.requests == []


def test_a_signed_webhook_is_accepted(gateway):
    headers = {**TUNNEL_HEADERS, "X-Twilio-Signature": sign(PUBLIC_URL + "/voice", FORM)}
    response = requests.post(gateway.url + "/voice", data=FORM, headers=headers, timeout=5)
    assert response.status_code == 200 and "<Stream" in response.text and "wss://chatline.test/stream" in response.text


def _stream_messages(call_sid: str, parameters: dict | None = None) -> list[str]:
    start = {"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
        "accountSid": ACCOUNT_SID, "streamSid": "MZ1", "callSid": call_sid, "tracks": ["inbound"],
        "customParameters": parameters or {}, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}
    frames = [HELLO[i:i + 160] for i in range(0, len(HELLO), 160)] + [b"\xff" * 160] * 50
    media = [json.dumps({"event": "media", "sequenceNumber": str(n + 2), "streamSid": "MZ1", "media": {
        "track": "inbound", "chunk": str(n + 1), "timestamp": str(n * 20),
        "payload": base64.b64encode(frame).decode()}}) for n, frame in enumerate(frames)]
    return [json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}), json.dumps(start), *media]


@pytest.mark.parametrize("signature", [None, "garbage", "https-url", "other-path", "wrong-token"])
def test_stream_handshake_refused_without_a_valid_signature(signature, gateway, speech, chatbot):
    wss = "wss://chatline.test/stream"
    headers = dict(TUNNEL_HEADERS)
    if signature == "garbage":
        headers["X-Twilio-Signature"] = "Z2FyYmFnZQ=="
    elif signature == "https-url":  # signed for https:// instead of the exact wss:// URL in the TwiML
        headers["X-Twilio-Signature"] = sign("https://chatline.test/stream", {})
    elif signature == "other-path":
        headers["X-Twilio-Signature"] = sign("wss://chatline.test/other", {})
    elif signature == "wrong-token":
        headers["X-Twilio-Signature"] = sign(wss, {}, token="nope")
    with pytest.raises(simple_websocket.ConnectionError) as refused:
        ws = simple_websocket.Client.connect(gateway.url.replace("http://", "ws://") + "/stream", headers=headers)
        for message in _stream_messages(FORM["CallSid"]):
            ws.send(message)
        ws.close()
    assert refused.value.status_code == 403
    assert speech.streams == [] and chatbot.requests == []
    assert wait_until(lambda: "refused Media Stream handshake" in gateway.logs(), timeout=5)


@pytest.mark.parametrize("token", ["missing", "forged", "valid-for-an-unknown-call"])
def test_signed_stream_without_a_known_call_reaches_nothing(token, gateway, speech, chatbot):
    call_sid = "CA" + "99" * 16
    parameters = {"missing": {}, "forged": {"token": "0" * 32},
                  "valid-for-an-unknown-call": {"token": hmac.new(AUTH_TOKEN.encode(), b"stream:" + call_sid.encode(),
                                                                  hashlib.sha256).hexdigest()[:32]}}[token]
    headers = {**TUNNEL_HEADERS, "X-Twilio-Signature": sign("wss://chatline.test/stream", {})}
    ws = simple_websocket.Client.connect(gateway.url.replace("http://", "ws://") + "/stream", headers=headers)
    try:
        for message in _stream_messages(call_sid, parameters):
            ws.send(message)
        ws.close()
    except simple_websocket.ConnectionClosed:
        pass  # the gateway hung up on it, as it should
    expected = "for an unknown call" if token.startswith("valid") else "missing or wrong stream token"
    assert wait_until(lambda: expected in gateway.logs(), timeout=5), gateway.logs()
    assert speech.streams == [] and chatbot.requests == []
