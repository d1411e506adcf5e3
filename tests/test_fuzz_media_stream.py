"""Fuzzing the real gateway's Media Stream websocket: odd, malformed and out-of-order messages on signed streams."""
from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import re

import requests
import simple_websocket
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from gateway.twilio.media_stream import Media, ProtocolError, StreamStart, StreamStop, parse_message
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.figures import count
from tests.test_fuzz_parsers import mutated_twilio_messages
from tests.test_fuzz_webhooks import TWILIO_FORM, post_signed
from tests.test_phone_dialogue import place, wait_until

E2E = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
WSS = "wss://chatline.test/stream"
HEADERS = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "chatline.test",
           "X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(WSS, {})}
BAD = "ignored a bad Media Stream message"
# Every way the gateway's stream loop can end writes one of these lines.
ENDED = re.compile(r"stream stopped for call|closed without a stop message|closed after a message over|"
                   r"has ended; closing its Media Stream|the call is no longer heard here|stream token|for an unknown call|for an ended call|ended while its stream|no start message")
_sids = itertools.count(1)


def token(call_sid: str) -> str:
    """The per-call token the gateway puts in the TwiML's <Parameter>."""
    return hmac.new(AUTH_TOKEN.encode(), b"stream:" + call_sid.encode(), hashlib.sha256).hexdigest()[:32]


def start(call_sid: str) -> str:
    return json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
        "accountSid": ACCOUNT_SID, "streamSid": "MZ1", "callSid": call_sid, "tracks": ["inbound"],
        "customParameters": {"token": token(call_sid)}, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}})


media = st.builds(lambda audio, ts, seq, track: json.dumps({"event": "media", "sequenceNumber": seq, "media": {
    "track": track, "timestamp": ts, "payload": base64.b64encode(audio).decode()}}),
    st.binary(max_size=480), st.none() | st.integers(-10**6, 10**9).map(str) | st.sampled_from(["", "x", 1e300]),
    st.integers(-5, 10**6).map(str), st.sampled_from(["inbound", "outbound"]))  # both_tracks streams send both
odd = (st.text(max_size=200) | st.binary(max_size=200) | mutated_twilio_messages()
       | st.sampled_from(['{"event": "stop"}', '{"event": "clear"}', '{"event": "media", "media": {"payload": "==="}}']))
# Markers filled in per example: this call's valid start message, and a payload over the 64 KB limit.
HUGE = json.dumps({"event": "media", "media": {"payload": "A" * 90_000}})
steps = st.lists(media | odd | st.sampled_from(["start", "huge"]), max_size=12)


def expected_logs(call_sid: str, messages: list) -> dict[str, int]:
    """What the gateway should log for these messages, using the pure parser as the oracle."""
    counts = {BAD: 0, "media before the stream's start": 0, "duplicate start": 0}
    started = False
    for raw in messages:
        try:
            event = parse_message(raw)
        except ProtocolError:
            counts[BAD] += 1
            continue
        if isinstance(event, Media) and not started:
            counts["media before the stream's start"] = 1  # warned once per stream
        elif isinstance(event, StreamStart):
            if started:
                counts["duplicate start"] += 1
            elif event.call_sid != call_sid or event.custom_parameters.get("token") != token(call_sid):
                break  # refused: the gateway stops reading
            started = True
        elif isinstance(event, StreamStop):
            break
    counts[BAD] = min(counts[BAD], 5)  # the gateway caps these lines per stream
    return counts


def run_stream(gateway, messages: list, ending: str) -> None:
    """Open a signed stream for a fresh call, send the messages, end it as `ending` says; check the log."""
    call_sid = f"CA{next(_sids):032x}"
    assert post_signed(gateway, "/voice", {**TWILIO_FORM, "CallSid": call_sid}).status_code == 200
    messages = [{"start": start(call_sid), "huge": HUGE}.get(m, m) if isinstance(m, str) else m for m in messages]
    logs = gateway.logs()
    before = {line: logs.count(line) for line in expected_logs(call_sid, [])} | {"ended": len(ENDED.findall(logs))}
    ws = simple_websocket.Client.connect(gateway.url.replace("http://", "ws://") + "/stream", headers=HEADERS)
    try:
        for message in messages:
            ws.send(message)
        if ending == "stop":
            ws.send(json.dumps({"event": "stop", "stop": {"callSid": call_sid}}))
        elif ending == "call ends, stream goes on":  # the status callback races the stream; the peer keeps sending
            post_signed(gateway, "/status", {**TWILIO_FORM, "CallSid": call_sid, "CallStatus": "completed"})
            assert wait_until(lambda: _send_until_closed(ws, messages), 10, interval=0.005), gateway.logs()[-3000:]
    except (simple_websocket.ConnectionClosed, OSError):
        pass  # the gateway hung up on a stream it refused or closed: fine, the log says which
    finally:
        with contextlib.suppress(simple_websocket.ConnectionClosed):  # already closed by the gateway
            ws.close()
    assert wait_until(lambda: len(ENDED.findall(gateway.logs())) > before["ended"], timeout=10), gateway.logs()[-3000:]
    post_signed(gateway, "/status", {**TWILIO_FORM, "CallSid": call_sid, "CallStatus": "completed"})
    logs = gateway.logs()
    for line, expected in expected_logs(call_sid, messages).items():
        logged = logs.count(line) - before[line]
        # When the call ends first, the gateway rightly stops reading early: fewer lines, never more.
        assert logged == expected or (ending.startswith("call ends") and logged < expected), \
            (line, logged, expected, [m[:200] for m in messages], logs[-3000:])


def _send_until_closed(ws, sent: list) -> bool:
    """Send one more media frame (noted in `sent`); True once the gateway has closed the socket."""
    try:
        ws.send(frame := json.dumps({"event": "media", "media": {"payload": base64.b64encode(b"\xff" * 160).decode()}}))
        sent.append(frame)
    except (simple_websocket.ConnectionClosed, OSError):  # OSError: the gateway's end is already gone
        return True
    return not ws.connected


def test_media_stream_survives_odd_messages(twilio, speech, chatbot, gateway):
    @E2E
    @given(messages=steps, ending=st.sampled_from(["stop", "close", "call ends, stream goes on"]))
    @example(messages=[json.dumps({"event": "media", "sequenceNumber": 1e999, "media": {"payload": ""}}), "start"],
             ending="stop")  # found: an OverflowError used to kill the stream
    @example(messages=["1" * 5000, "start", "start", "{", b"\x00"], ending="close")  # found: a bare ValueError
    @example(messages=["start", "huge"] * 4,
             ending="call ends, stream goes on")  # found: a stream started as the call ended lived on
    @example(messages=[], ending="call ends, stream goes on")  # found: a stream that never starts was read forever
    def fuzz(messages, ending):
        count("Media Stream messages (signed websocket, real gunicorn)")
        run_stream(gateway, messages, ending)

    fuzz()
    assert "Traceback" not in gateway.logs()
    assert wait_until(lambda: all(s.ended for s in speech.streams), timeout=10)  # every recognizer stream closed
    assert wait_until(lambda: "Live calls in this process: 0" in requests.get(gateway.url + "/", timeout=5).text, 5)
    call = place(twilio, ["hello", "goodbye"])  # the same process still holds a normal call
    assert call.wait_ended(timeout=60) and call.said()[-1] == "Goodbye! Thanks for calling.", call.transcript()


def test_a_huge_message_closes_only_that_stream(twilio, speech, gateway):
    call_sid = f"CA{next(_sids):032x}"
    post_signed(gateway, "/voice", {**TWILIO_FORM, "CallSid": call_sid})
    ws = simple_websocket.Client.connect(gateway.url.replace("http://", "ws://") + "/stream", headers=HEADERS)
    ws.send(start(call_sid))
    with contextlib.suppress(simple_websocket.ConnectionClosed):
        ws.send(json.dumps({"event": "media", "media": {"payload": "A" * 1_000_000}}))
    assert wait_until(lambda: not ws.connected, timeout=10)
    assert wait_until(lambda: f"call {call_sid} closed after a message over" in gateway.logs(), timeout=10)
    assert f"stream MZ1 started for call {call_sid}" in gateway.logs()
    assert wait_until(lambda: all(s.ended for s in speech.streams), timeout=10)  # none, if closed before it opened
    call = place(twilio, ["hello", "goodbye"])
    assert call.wait_ended(timeout=60) and call.said()[-1] == "Goodbye! Thanks for calling.", call.transcript()
