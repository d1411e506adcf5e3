"""The Twilio stand-in against a small fake gateway: signed webhooks, TwiML, Media Streams, REST API, the caller."""
from __future__ import annotations

import base64
import json
import re
import threading
import time
from xml.sax.saxutils import escape

import pytest
from flask import Flask, Response, request
from flask_sock import Sock
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from werkzeug.serving import make_server

from standins.twilio import Caller, TwilioStandIn
from standins.twilio_caller import AUDIO_DIR
from standins.twilio_webhooks import Tunnel
from standins.twiml_runner import APP_ERROR_TEXT

ACCOUNT_SID = "AC" + "5eed" * 8
AUTH_TOKEN = "standin-test-token-0123456789abc"
PUBLIC = "https://chatline.test"
SILENT_FRAME = b"\xff" * 160


def twiml(*verbs: str) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response>' + "".join(verbs) + "</Response>"


STREAM = '<Start><Stream url="wss://chatline.test/media?leg=a&amp;x=1"><Parameter name="who" value="tester"/>' \
         '</Stream></Start>'


class StreamLog:
    """What the fake gateway received on one Media Stream websocket."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers
        self.messages: list[dict] = []
        self.arrivals: list[float] = []  # monotonic arrival time of each media message

    @property
    def media(self) -> list[dict]:
        return [m for m in self.messages if m["event"] == "media"]


class FakeGateway:
    """A stand-in for the gateway: serves scripted TwiML, checks every signature like the real one must."""

    def __init__(self) -> None:
        self.validator = RequestValidator(AUTH_TOKEN)
        self.pages: dict[str, object] = {}  # path -> TwiML, (status, body), or a function of the form
        self.hits: list[dict] = []
        self.streams: list[StreamLog] = []
        self.refuse_streams = False
        self.echo_media = False
        self.on_utterance = None  # called with the CallSid when the caller stops speaking
        app = Flask("fake_gateway")
        sock = Sock(app)

        @app.before_request
        def check_signature():
            # Rebuild the public URL from the tunnel's headers, as a gateway behind ngrok does.
            proto, host = request.headers.get("X-Forwarded-Proto", "http"), request.headers.get("X-Forwarded-Host")
            websocket = request.headers.get("Upgrade", "").lower() == "websocket"
            scheme = {"https": "wss", "http": "ws"}[proto] if websocket else proto
            url = f"{scheme}://{host}{request.path}" + (f"?{request.query_string.decode()}" if request.query_string else "")
            params = {} if websocket else request.form
            valid = self.validator.validate(url, params, request.headers.get("X-Twilio-Signature", ""))
            self.hits.append({"path": request.path, "url": url, "form": request.form.to_dict(), "valid": valid,
                              "headers": dict(request.headers), "signature": request.headers.get("X-Twilio-Signature")})
            if not valid or (websocket and self.refuse_streams):
                return Response("forbidden", status=403)
            return None

        @sock.route("/media")
        def media(ws):
            log = StreamLog(dict(request.headers))
            self.streams.append(log)
            speech_frames, quiet, announced = 0, 0, False
            while True:
                raw = ws.receive(timeout=10)
                if raw is None:
                    return
                message = json.loads(raw)
                log.messages.append(message)
                if message["event"] == "start" and self.echo_media:
                    ws.send(json.dumps({"event": "media", "streamSid": message["streamSid"],
                                        "media": {"payload": base64.b64encode(SILENT_FRAME).decode()}}))
                if message["event"] == "stop":
                    return
                if message["event"] != "media":
                    continue
                log.arrivals.append(time.monotonic())
                if base64.b64decode(message["media"]["payload"]) != SILENT_FRAME:
                    speech_frames, quiet = speech_frames + 1, 0
                elif speech_frames:
                    quiet += 1
                if speech_frames and quiet == 5 and not announced and self.on_utterance:
                    announced = True  # a crude endpointer: five silent frames after speech
                    call_sid = log.messages[1]["start"]["callSid"]
                    threading.Thread(target=self.on_utterance, args=(call_sid,), daemon=True).start()

        @app.route("/<path:page>", methods=["GET", "POST"])
        def page(page: str):
            answer = self.pages.get("/" + page, twiml())
            if callable(answer):
                answer = answer(request.form)
            status, body = answer if isinstance(answer, tuple) else (200, answer)
            return Response(body, status=status, mimetype="text/xml")

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def hits_on(self, path: str) -> list[dict]:
        return [hit for hit in self.hits if hit["path"] == path]


@pytest.fixture
def gateway():
    fake = FakeGateway()
    fake.thread.start()
    yield fake
    fake.server.shutdown()


@pytest.fixture
def standin(gateway):
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN, tunnel={PUBLIC: gateway.url}, speed=10) as twilio:
        yield twilio


def client_for(standin: TwilioStandIn, token: str = AUTH_TOKEN) -> Client:
    client = Client(ACCOUNT_SID, token)
    client.api.base_url = standin.api_url
    return client


def kinds(call) -> list[str]:
    return [kind for _, kind, _ in call.events]


def test_call_runs_twiml_streams_audio_and_hangs_up_when_twiml_runs_out(standin, gateway):
    gateway.echo_media = True
    gateway.pages["/voice"] = twiml(STREAM, "<Say>Hello &amp; welcome, &lt;caller&gt;!</Say>", '<Pause length="1"/>',
                                    '<Redirect method="POST">/next</Redirect>')
    gateway.pages["/next"] = twiml("<Say>Still here</Say>")
    call = standin.place_call(f"{PUBLIC}/voice", status_callback=f"{PUBLIC}/status")
    assert call.wait_ended(5), call.transcript()

    assert call.said() == ["Hello & welcome, <caller>!", "Still here"]
    assert call.status == "completed" and re.fullmatch(r"CA[0-9a-f]{32}", call.sid)
    order = [k for k in kinds(call) if k in ("webhook", "say", "pause", "redirect", "hangup", "stream-stop",
                                            "status-callback", "ended")]
    assert order == ["webhook", "say", "pause", "redirect", "webhook", "say", "hangup", "stream-stop",
                     "status-callback", "ended"]
    assert ("hangup", "end of TwiML") in [(k, d) for _, k, d in call.events]
    assert "stream-media-back" in kinds(call)  # the fake gateway sent audio back on a one-way stream

    # Webhooks: Twilio's parameters, signed over the public URL, through the tunnel.
    voice, nxt, status = gateway.hits_on("/voice")[0], gateway.hits_on("/next")[0], gateway.hits_on("/status")[0]
    assert all(hit["valid"] for hit in gateway.hits)
    assert voice["url"] == f"{PUBLIC}/voice" and nxt["url"] == f"{PUBLIC}/next"
    assert {k: voice["form"][k] for k in ("CallSid", "AccountSid", "From", "To", "CallStatus", "Direction",
                                          "ApiVersion", "Caller", "Called")} == {
        "CallSid": call.sid, "AccountSid": ACCOUNT_SID, "From": "+15551230001", "To": "+15557654321",
        "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01", "Caller": "+15551230001",
        "Called": "+15557654321"}
    assert nxt["form"]["CallStatus"] == "in-progress"
    assert voice["headers"]["X-Forwarded-Proto"] == "https" and voice["headers"]["X-Forwarded-Host"] == "chatline.test"
    assert voice["headers"]["User-Agent"] == "TwilioProxy/1.1"
    assert not RequestValidator("wrong-token").validate(voice["url"], voice["form"], voice["signature"])
    assert status["form"]["CallStatus"] == "completed" and status["form"]["CallDuration"].isdigit()

    # The Media Stream: signed handshake on the exact wss:// URL, then Twilio's messages in order.
    handshake = gateway.hits_on("/media")[0]
    assert handshake["url"] == "wss://chatline.test/media?leg=a&x=1" and handshake["valid"]
    assert handshake["headers"]["X-Forwarded-Proto"] == "https"
    (stream,) = gateway.streams
    connected, start, *media, stop = stream.messages
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    sid = start["streamSid"]
    assert re.fullmatch(r"MZ[0-9a-f]{32}", sid)
    assert start == {"event": "start", "sequenceNumber": "1", "streamSid": sid, "start": {
        "accountSid": ACCOUNT_SID, "streamSid": sid, "callSid": call.sid, "tracks": ["inbound"],
        "customParameters": {"who": "tester"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}
    assert len(media) > 20 and all(m["event"] == "media" and m["streamSid"] == sid for m in media)
    for i, message in enumerate(media):
        assert message["sequenceNumber"] == str(i + 2)
        assert message["media"]["track"] == "inbound" and message["media"]["chunk"] == str(i + 1)
        assert message["media"]["timestamp"] == str(i * 20)
        assert base64.b64decode(message["media"]["payload"]) == SILENT_FRAME  # a silent caller
    assert stop == {"event": "stop", "sequenceNumber": str(len(media) + 2), "streamSid": sid,
                    "stop": {"accountSid": ACCOUNT_SID, "callSid": call.sid}}
    assert "bot said: Hello & welcome, <caller>!" in call.transcript() and "hung up" in call.transcript()


def test_media_pacing_does_not_drift_at_speed_5(gateway):
    gateway.pages["/voice"] = twiml(STREAM, '<Pause length="3"/>')
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN, tunnel={PUBLIC: gateway.url}, speed=5) as standin:
        call = standin.place_call(f"{PUBLIC}/voice")
        assert call.wait_ended(5), call.transcript()
    arrivals = gateway.streams[0].arrivals
    # 3 s of call at 50 frames/s, less the few frames the handshake overlaps with the pause.
    assert 150 - 10 <= len(arrivals) <= 150 + 2
    interval = 0.02 / 5
    span = arrivals[-1] - arrivals[0]
    assert abs(span - (len(arrivals) - 1) * interval) < 0.03
    # No drift: every frame arrives close to its slot on the schedule, never accumulating lateness.
    lateness = [arrival - arrivals[0] - i * interval for i, arrival in enumerate(arrivals)]
    assert max(abs(x) for x in lateness) < 0.05


def test_gateway_updates_the_live_call_through_the_real_twilio_client(standin, gateway):
    client = client_for(standin)
    gateway.on_utterance = lambda sid: client.calls(sid).update(
        twiml=twiml("<Say>You said hello</Say>", "<Hangup/>"))
    gateway.pages["/voice"] = twiml(STREAM, "<Say>Hi, say something.</Say>", '<Pause length="30"/>')
    call = standin.place_call(f"{PUBLIC}/voice", Caller(["hello"]), status_callback=f"{PUBLIC}/status")
    assert call.wait_ended(5), call.transcript()

    assert call.said() == ["Hi, say something.", "You said hello"]
    events = [(k, d) for _, k, d in call.events]
    assert events.index(("say", "Hi, say something.")) < events.index(("caller-speaks", "hello"))
    assert ("hangup", "<Hangup/>") in events
    # The <Start><Stream> survives the update: stopped only once, after the new TwiML hung up.
    assert [k for k, _ in events if k in ("update", "hangup", "stream-stop")] == ["update", "hangup", "stream-stop"]
    frames = [base64.b64decode(m["media"]["payload"]) for m in gateway.streams[0].media]
    hello = (AUDIO_DIR / "hello.ulaw").read_bytes()
    spoken = b"".join(f for f in frames if f != SILENT_FRAME)
    assert spoken.rstrip(b"\xff") == hello.rstrip(b"\xff")  # the recording, verbatim, in 160-byte frames
    update = [r for r in standin.rest_requests if r["method"] == "POST" and call.sid in r["path"]]
    assert len(update) == 1 and update[0]["status"] == 200 and "You said hello" in update[0]["form"]["Twiml"]

    with pytest.raises(TwilioRestException) as ended:
        client.calls(call.sid).update(twiml=twiml("<Say>too late</Say>"))
    assert (ended.value.status, ended.value.code) == (400, 21220)
    with pytest.raises(TwilioRestException) as unknown:
        client.calls("CA" + "0" * 32).update(twiml=twiml("<Say>nobody</Say>"))
    assert (unknown.value.status, unknown.value.code) == (404, 20404)
    with pytest.raises(TwilioRestException) as unauthorized:
        client_for(standin, token="wrong").calls(call.sid).fetch()
    assert (unauthorized.value.status, unauthorized.value.code) == (401, 20003)
    assert client.calls(call.sid).fetch().status == "completed"


@pytest.mark.parametrize("answer, expected", [
    (("speech-result", "yes please", 0.8), {"SpeechResult": "yes please", "Confidence": "0.8"}),
    (("dtmf", "1#"), {"Digits": "1"}),
    ("hello", {"SpeechResult": "hello", "Confidence": "0.9"}),
])
def test_gather_posts_the_callers_answer(standin, gateway, answer, expected):
    gateway.pages["/voice"] = twiml('<Gather input="speech dtmf" action="/gathered" hints="yes, no" timeout="3">'
                                    "<Say>Say yes or press 1</Say></Gather>", "<Say>We did not hear you</Say>")
    gateway.pages["/gathered"] = lambda form: twiml(
        f"<Say>Got {escape(form.get('SpeechResult') or form.get('Digits', ''))}</Say>", "<Hangup/>")
    call = standin.place_call(f"{PUBLIC}/voice", Caller([answer]))
    assert call.wait_ended(5), call.transcript()
    form = gateway.hits_on("/gathered")[0]["form"]
    assert {k: form[k] for k in expected} == expected and form["CallSid"] == call.sid
    assert call.said() == ["Say yes or press 1", f"Got {next(iter(expected.values()))}"]
    assert call.wait_for_event("gather", 0, lambda d: d["hints"] == "yes, no")


@pytest.mark.parametrize("answer, heard", [(("dtmf", "42#"), "Got 42"), ("hello", "No key")])
def test_keys_barge_into_a_gathers_nested_pause_and_speech_does_not_in_a_keys_only_gather(standin, gateway,
                                                                                         answer, heard):
    gateway.pages["/voice"] = twiml('<Gather input="dtmf" action="/keys" timeout="1"><Say>Press a key</Say>'
                                    '<Pause length="20"/></Gather>', "<Say>No key</Say>")
    gateway.pages["/keys"] = lambda form: twiml(f"<Say>Got {escape(form.get('Digits', ''))}</Say>", "<Hangup/>")
    started = time.monotonic()
    call = standin.place_call(f"{PUBLIC}/voice", Caller([answer]))
    assert call.wait_ended(5), call.transcript()
    assert call.said() == ["Press a key", heard]
    barged = [d for _, kind, d in call.events if kind == "barge-in"]
    if heard == "No key":  # the whole 20 s pause ran (2 s at speed 10): speech is no input for a keys-only Gather
        assert not barged and time.monotonic() - started >= 2.0
    else:  # the key ended the pause at once
        assert barged == ["Pause"] and time.monotonic() - started < 1.5


@pytest.mark.parametrize("on_empty", [False, True])
def test_gather_without_input_times_out(standin, gateway, on_empty):
    empty = ' actionOnEmptyResult="true"' if on_empty else ""
    gateway.pages["/voice"] = twiml(f'<Gather input="speech" action="/gathered" timeout="2"{empty}/>',
                                    "<Say>We did not hear you</Say>")
    gateway.pages["/gathered"] = twiml("<Say>Empty result</Say>")
    call = standin.place_call(f"{PUBLIC}/voice")
    assert call.wait_ended(5), call.transcript()
    assert call.said() == (["Empty result"] if on_empty else ["We did not hear you"])
    if on_empty:
        assert "SpeechResult" not in gateway.hits_on("/gathered")[0]["form"]


@pytest.mark.parametrize("answer", [(500, "oops"), (200, "this is not TwiML"), (200, "<html><body/></html>"),
                                    (200, twiml('<Pause length="soon"/>'))])
def test_webhook_failure_is_an_application_error(standin, gateway, answer):
    gateway.pages["/voice"] = answer
    call = standin.place_call(f"{PUBLIC}/voice", status_callback=f"{PUBLIC}/status")
    assert call.wait_ended(5), call.transcript()
    assert call.said() == [APP_ERROR_TEXT] and call.error
    error = call.wait_for_event("webhook-error", 0)
    assert error[2][0] == f"{PUBLIC}/voice" and str(answer[0]) in str(error[2][1])
    assert gateway.hits_on("/status")[0]["form"]["CallStatus"] == "completed"


def test_wrong_auth_token_is_refused_by_the_gateway(gateway):
    gateway.pages["/voice"] = twiml("<Say>never heard</Say>")
    with TwilioStandIn(ACCOUNT_SID, "not-the-token", tunnel={PUBLIC: gateway.url}, speed=10) as standin:
        call = standin.place_call(f"{PUBLIC}/voice")
        assert call.wait_ended(5)
    assert call.wait_for_event("webhook-error", 0)[2] == (f"{PUBLIC}/voice", 403)
    assert call.said() == [APP_ERROR_TEXT]


def test_refused_stream_does_not_end_the_call(standin, gateway):
    gateway.refuse_streams = True
    gateway.pages["/voice"] = twiml(STREAM, '<Pause length="1"/>', "<Say>Still talking</Say>")
    call = standin.place_call(f"{PUBLIC}/voice")
    assert call.wait_ended(5), call.transcript()
    assert call.wait_for_event("stream-refused", 0)[2] == 403
    assert call.said() == ["Still talking"] and not gateway.streams
    assert ("hangup", "end of TwiML") in [(k, d) for _, k, d in call.events]


def test_outbound_call_through_the_rest_api(standin, gateway):
    client = client_for(standin)
    gateway.pages["/outbound"] = twiml("<Say>This is an outbound call</Say>")
    created = client.calls.create(to="+15550001111", from_="+15557654321", url=f"{PUBLIC}/outbound",
                                  status_callback=f"{PUBLIC}/status")
    assert created.status == "queued" and re.fullmatch(r"CA[0-9a-f]{32}", created.sid)
    call = standin.get_call(created.sid)
    assert call.wait_ended(5), call.transcript()
    assert call.said() == ["This is an outbound call"]
    form = gateway.hits_on("/outbound")[0]["form"]
    assert (form["Direction"], form["CallStatus"], form["To"]) == ("outbound-api", "in-progress", "+15550001111")
    assert gateway.hits_on("/status")[0]["form"]["CallSid"] == created.sid
    assert client.calls(created.sid).fetch().status == "completed"
    assert any(r["path"].endswith("/Calls.json") and r["status"] == 201 for r in standin.rest_requests)

    inline = client.calls.create(to="+15550001111", from_="+15557654321", twiml=twiml("<Say>Inline</Say>"))
    assert standin.get_call(inline.sid).wait_ended(5)
    assert standin.get_call(inline.sid).said() == ["Inline"]


def test_injected_faults_rest_hangup_and_twiml_limits(standin, gateway):
    client = client_for(standin)
    gateway.pages["/voice"] = twiml(STREAM, '<Pause length="30"/>')
    call = standin.place_call(f"{PUBLIC}/voice", status_callback=f"{PUBLIC}/status")
    assert call.wait_for_event("stream-start", 2)
    standin.fail_next_updates(status=429, count=1)
    with pytest.raises(TwilioRestException) as throttled:
        client.calls(call.sid).update(twiml=twiml("<Say>hi</Say>"))
    assert throttled.value.status == 429
    with pytest.raises(TwilioRestException) as too_long:
        client.calls(call.sid).update(twiml=twiml("<Say>" + "x" * 4000 + "</Say>"))
    assert (too_long.value.status, too_long.value.code) == (400, 32018)
    assert call.status == "in-progress" and "update" not in kinds(call)

    client.calls(call.sid).update(status="completed")
    assert call.wait_ended(5)
    assert ("hangup", "REST Status=completed") in [(k, d) for _, k, d in call.events]
    assert gateway.streams[0].messages[-1]["event"] == "stop"
    assert gateway.hits_on("/status")[0]["form"]["CallStatus"] == "completed"


def test_inline_twiml_needs_absolute_urls(standin, gateway):
    gateway.pages["/voice"] = twiml('<Pause length="30"/>')
    call = standin.place_call(f"{PUBLIC}/voice")
    assert call.wait_for_event("pause", 2)
    client_for(standin).calls(call.sid).update(twiml=twiml("<Redirect>/relative</Redirect>"))
    assert call.wait_ended(5)
    assert "15004" in str(call.wait_for_event("webhook-error", 0)[2]) and call.said() == [APP_ERROR_TEXT]


def test_caller_hangs_up_and_speaks_at_fixed_times(standin, gateway):
    gateway.pages["/voice"] = twiml(STREAM, '<Pause length="30"/>')
    call = standin.place_call(f"{PUBLIC}/voice", Caller.at_times([(1.0, "hello")], hangup_after_script=0.5),
                              status_callback=f"{PUBLIC}/status")
    assert call.wait_ended(5), call.transcript()
    assert ("hangup", "caller hung up") in [(k, d) for _, k, d in call.events]
    assert gateway.streams[0].messages[-1]["event"] == "stop" and gateway.hits_on("/status")
    spoken = [m for m in gateway.streams[0].media if base64.b64decode(m["media"]["payload"]) != SILENT_FRAME]
    assert spoken[0]["media"]["timestamp"] == "1000"  # exactly 1.0 s of stream audio in
    assert "caller said: hello" in call.transcript()


def test_manual_hang_up_and_update_after_it(standin, gateway):
    gateway.pages["/voice"] = twiml("<Say>Hello</Say>", '<Pause length="30"/>')
    call = standin.place_call(f"{PUBLIC}/voice")
    assert call.wait_for_say("Hello", 2)
    call.hang_up()
    assert call.wait_ended(5)
    assert call.request_update({"Twiml": twiml("<Say>late</Say>")}) is False
    assert call.transcript().splitlines()[-1].endswith("hung up (caller hung up)")


def test_tunnel_maps_http_and_websocket_urls():
    tunnel = Tunnel({"https://chatline.test": "http://127.0.0.1:8000", "https://x.test/api": "http://127.0.0.1:9/v1"})
    route = tunnel.route("https://chatline.test/voice?a=1")
    assert route.url == "http://127.0.0.1:8000/voice?a=1"
    assert route.headers["X-Forwarded-Proto"] == "https" and route.headers["X-Forwarded-Host"] == "chatline.test"
    assert tunnel.route("wss://chatline.test/media").url == "ws://127.0.0.1:8000/media"
    assert tunnel.route("https://x.test/api/status").url == "http://127.0.0.1:9/v1/status"
    assert tunnel.route("https://x.test/other").url == "https://x.test/other"
    assert tunnel.route("https://elsewhere.test/voice").headers == {}
    tunnel.mapping["https://elsewhere.test"] = "http://127.0.0.1:7"  # entries added later apply at once
    assert tunnel.route("https://elsewhere.test/voice").url == "http://127.0.0.1:7/voice"


BOTH_TRACKS = '<Start><Stream url="wss://chatline.test/media" track="both_tracks"/></Start>'


@pytest.mark.parametrize("leak, voice", [(0.0, "buzz"), (0.3, "buzz"), (0.3, "espeak")])
def test_both_tracks_carry_what_the_caller_hears_at_the_voices_pace(gateway, leak, voice):
    """With both_tracks the stream also carries the outbound track: speech while the <Say> runs, at the voice's
    pace (33 characters a second here), silence otherwise; a speakerphone leaks it into the caller's audio."""
    from gateway.dialogue.playback import PlaybackMeter

    text = "Good evening, Trattoria Bella. How can I help you this evening, sir?"  # 68 characters: ~2.06 s
    gateway.pages["/voice"] = twiml(BOTH_TRACKS, '<Pause length="1"/>', f"<Say>{text}</Say>", '<Pause length="2"/>')
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN, tunnel={PUBLIC: gateway.url}, speed=5,
                       say_chars_per_second=33, speakerphone_leak=leak, outbound_voice=voice) as standin:
        call = standin.place_call(f"{PUBLIC}/voice")
        assert call.wait_ended(8), call.transcript()
    (stream,) = gateway.streams
    assert stream.messages[1]["start"]["tracks"] == ["inbound", "outbound"]
    tracks = {"inbound": [], "outbound": []}
    for message in stream.media:
        tracks[message["media"]["track"]].append(message["media"])
    assert len(tracks["inbound"]) == len(tracks["outbound"]) > 150
    meter, changes = PlaybackMeter(), []
    for media in tracks["outbound"]:
        change = meter.feed(base64.b64decode(media["payload"]), int(media["timestamp"]))
        changes += [change] if change else []
    assert [c.kind for c in changes] == ["started", "ended"]
    assert abs(changes[1].at_ms - changes[0].at_ms - len(text) / 33 * 1000) < 250
    assert 700 <= changes[0].at_ms <= 1300  # after the first <Pause> (less the stream's handshake)
    leaked = [m for m in tracks["inbound"] if base64.b64decode(m["payload"]) != SILENT_FRAME]
    if leak:
        assert len(leaked) > len(text) / 33 * 50 * 0.5  # the caller's microphone picked the prompt up
    else:
        assert leaked == []  # a silent caller on a handset: the inbound track stays silent


def test_a_both_tracks_stream_counts_as_two_of_a_calls_four(standin, gateway):
    """Twilio forks at most 4 tracks per call: two both_tracks streams fit, a third stream of any kind is refused."""
    gateway.pages["/voice"] = twiml(BOTH_TRACKS, BOTH_TRACKS, STREAM, '<Pause length="2"/>')
    call = standin.place_call(f"{PUBLIC}/voice")
    assert call.wait_for_event("stream-refused", 5)[2] == "more than 4 streams"
    assert call.wait_ended(5)
    assert [s.tracks for s in call.streams] == [("inbound", "outbound")] * 2
