"""Fuzzing the chatbot's side: a real HTTP chatbot answering garbage; the caller always hears an answer or an apology."""
from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.chatbots.reply import ChatbotError, parse_reply
from gateway.config import Config
from gateway.dialogue.phone_answer import heard
from tests.figures import count
from tests.test_fuzz_parsers import _speaks_or_continues, json_values
from tests.test_fuzz_webhooks import TWILIO_FORM, post_signed
from tests.test_phone_dialogue import APOLOGY, place, updates

E2E = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
_sids = itertools.count(1)
PLAIN = Config.from_env({"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"})  # the default voice: no SSML

replies = st.fixed_dictionaries({"text": st.text(max_size=300) | json_values}, optional={
    "action": json_values | st.sampled_from(["hangup", "dance", {"type": "transfer", "to": "+15550001111"},
                                             {"type": "transfer", "to": "not a number"}, {"type": "transfer"}]),
    "hints": json_values | st.lists(st.text(max_size=20), max_size=5), "reprompt": json_values})
bodies = (replies.map(json.dumps) | json_values.map(json.dumps) | st.text(max_size=200)
          | st.sampled_from(["", "<html><body>502 Bad Gateway</body></html>", '{"text": "cut', "[" * 100_000,
                             json.dumps({"text": "x" * 300_000}), "1" * 5000, '{"text": NaN}']))


def expected(status: int, body: str):
    """What the caller should hear: the parsed reply, or None for the apology (the pure parser is the oracle)."""
    if status != 200:
        return None
    try:
        return parse_reply(json.loads(body)) if len(body.encode()) <= 256 * 1024 else None
    except (ValueError, RecursionError, ChatbotError):
        return None


def test_garbage_from_the_chatbot_becomes_an_apology_and_the_call_goes_on(twilio, chatbot, start_gateway):
    gateway = start_gateway()

    @E2E
    @given(status=st.sampled_from([200, 200, 200, 201, 204, 302, 404, 500, 503]), body=bodies)
    @example(status=200, body="[" * 100_000)  # found: a RecursionError escaped the chatbot client (a 500, or silence)
    @example(status=200, body=json.dumps({"text": " \t"}))  # found: an empty text left the caller in silence
    @example(status=200, body=json.dumps({"text": "ok", "action": {"type": "transfer", "to": "+15550001111"}}))
    def fuzz(status, body):
        count("chatbot answers (real HTTP chatbot, real gunicorn)")
        chatbot.status, chatbot.body = status, body
        call_sid = f"CA{next(_sids):032x}"
        response = post_signed(gateway, "/dtmf", {**TWILIO_FORM, "CallSid": call_sid, "Digits": "1"})
        assert response.status_code == 200, response.text[:300]
        root = _speaks_or_continues(response.text)
        said = " ".join("".join(s.text or "" for s in root.iter("Say")).split())
        reply = expected(status, body)
        logs = gateway.logs()
        if reply is None:
            assert said == APOLOGY and root.find("Redirect") is not None, (status, body[:200], response.text)
            assert logs.count(f"chatbot failed for call {call_sid}") == 1, (status, body[:200], logs[-2000:])
        else:
            # The caller hears the text made fit for the phone (this call's webhooks name no called number: its
            # links are not sent, and the caller hears so).
            heard_text = " ".join("".join(heard(reply, PLAIN).parts).split())
            assert said == heard_text and logs.count(f"chatbot failed for call {call_sid}") == 0
            assert root.find({"hangup": "Hangup", "transfer": "Dial"}.get(reply.action_type, "Redirect")) is not None

    fuzz()
    assert "Traceback" not in gateway.logs()


def test_a_slow_chatbot_gets_an_apology_at_the_timeout(twilio, chatbot, start_gateway):
    gateway = start_gateway(CHATBOT_TIMEOUT="1")
    chatbot.delay, chatbot.body = 3.0, json.dumps({"text": "too late"})
    started = time.monotonic()
    response = post_signed(gateway, "/dtmf", {**TWILIO_FORM, "Digits": "1"})
    assert APOLOGY in response.text and time.monotonic() - started < 2.5
    assert "no answer within 1 s" in gateway.logs()


class _DrippingChatbot(BaseHTTPRequestHandler):
    """Answers a valid reply one byte every 0.2 s: each read is quick, the whole answer is far too slow."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"text": "finally"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for byte in body:
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return  # the gateway gave up, as it should
            time.sleep(0.2)

    def log_message(self, *args):
        pass


def test_a_chatbot_dripping_its_answer_is_cut_off_at_the_timeout(twilio, start_gateway):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DrippingChatbot)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        gateway = start_gateway(CHATBOT_URL=f"http://127.0.0.1:{server.server_port}/message", CHATBOT_TIMEOUT="1")
        started = time.monotonic()
        response = post_signed(gateway, "/dtmf", {**TWILIO_FORM, "Digits": "1"})
        assert APOLOGY in response.text and time.monotonic() - started < 2.5
        assert "no complete answer within 1 s" in gateway.logs()
    finally:
        server.shutdown()
        server.server_close()


def test_a_speech_turn_with_a_garbage_answer_is_an_apology(twilio, chatbot, gateway):
    chatbot.body = "[" * 100_000  # used to escape as a RecursionError: the turn died and the caller heard nothing
    call = place(twilio, ["hello"])
    assert call.wait_for_say(APOLOGY, timeout=30), call.transcript()
    assert "<Redirect" in updates(twilio, call)[-1] and call.status != "completed"  # still listening
    call.hang_up()
    assert call.wait_ended(timeout=10) and "Traceback" not in gateway.logs()
