"""The operator monitor through the real gunicorn gateway: auth, the JSON API and the live event stream during
simulated calls, a database that goes down mid-call, and a watcher on another process through Redis."""
from __future__ import annotations

import json
import threading
import time

import requests

from tests.real_servers import postgres_server, redis_server
from tests.test_phone_dialogue import GREETING, place, wait_until

PASSWORD = "s3cret-operator-pw"
AUTH = ("operator", PASSWORD)
PATHS = ("/monitor", "/monitor/api/calls", "/monitor/api/calls/{sid}", "/monitor/api/calls/{sid}/events",
         "/monitor/api/latency", "/monitor/static/monitor.js")


class EventStream:
    """A watcher reading a call's Server-Sent Events in the background, as a browser's EventSource would."""

    def __init__(self, url: str, auth=AUTH):
        self.response = requests.get(url, auth=auth, stream=True, timeout=(5, 30))
        self.events: list[tuple[float, dict]] = []
        self.done = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line and line.startswith("data: "):
                    self.events.append((time.monotonic(), json.loads(line[len("data: "):])))
        except requests.RequestException:
            pass
        finally:
            self.done.set()

    def kinds(self) -> list[tuple[str, str | None]]:
        return kinds(e for _, e in self.events)


def kinds(events) -> list[tuple[str, str | None]]:
    """(type, words or action) of each event; the recognizer may hear "goodbye" as "good bye" (a hint too)."""
    return [(e["type"], e["text"].replace(" ", "") if e["type"] == "caller" else e.get("text") or e.get("action"))
            for e in events]


def live_call(gateway, sid: str) -> dict | None:
    calls = requests.get(gateway.url + "/monitor/api/calls", auth=AUTH, timeout=5).json()["calls"]
    return next((c for c in calls if c["call_sid"] == sid), None)


def test_monitor_off_is_not_there_at_all(twilio, speech, chatbot, start_gateway):
    gateway = start_gateway()
    call = place(twilio, ["hello", "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    for path in PATHS:
        answer = requests.get(gateway.url + path.format(sid=call.sid), auth=AUTH, timeout=5)
        assert answer.status_code == 404, path
        assert call.sid not in answer.text and "+15551230001" not in answer.text


def test_no_password_or_a_wrong_one_sees_nothing(twilio, speech, chatbot, start_gateway):
    gateway = start_gateway(MONITOR_PASSWORD=PASSWORD)
    call = place(twilio, ["hello", "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    for auth in (None, ("operator", "wrong"), ("admin", PASSWORD), ("operator", PASSWORD + "x"), ("operator", "")):
        for path in PATHS:
            answer = requests.get(gateway.url + path.format(sid=call.sid), auth=auth, timeout=5)
            assert answer.status_code == 401, (auth, path)
            assert answer.headers["WWW-Authenticate"].startswith('Basic realm="Chatline monitor"')
            assert call.sid not in answer.text and "0001" not in answer.text and "Hi, how" not in answer.text
    page = requests.get(gateway.url + "/monitor", auth=AUTH, timeout=5)
    assert page.status_code == 200 and call.sid in page.text and page.headers["Cache-Control"] == "no-store"
    assert PASSWORD not in gateway.logs()


def test_api_and_event_stream_follow_a_call_as_it_happens(twilio, speech, chatbot, start_gateway):
    from standins.twilio import Caller

    gateway = start_gateway(MONITOR_PASSWORD=PASSWORD)
    call = place(twilio, Caller.at_times([(4.0, "hello"), (11.0, "goodbye")]))
    assert wait_until(lambda: live_call(gateway, call.sid), 10)
    listed = live_call(gateway, call.sid)
    assert (listed["status"], listed["caller"], listed["ended_at"]) == ("live", "+15551230001", None)
    stream = EventStream(f"{gateway.url}/monitor/api/calls/{call.sid}/events")
    assert stream.response.status_code == 200
    assert stream.response.headers["Content-Type"].startswith("text/event-stream")
    opened_before_goodbye = "Goodbye! Thanks for calling." not in call.said()
    assert wait_until(lambda: any(e.get("text") == "hello" for _, e in stream.events), 20), stream.kinds()
    mid_call = requests.get(f"{gateway.url}/monitor/api/calls/{call.sid}", auth=AUTH, timeout=5).json()
    assert mid_call["status"] == "live" and mid_call["events"][0] == {**mid_call["events"][0], "type": "bot",
                                                                       "text": GREETING}
    assert call.wait_ended(timeout=60), call.transcript()
    assert stream.done.wait(15), stream.kinds()  # the stream ends with the call
    assert opened_before_goodbye
    assert stream.kinds() == [("bot", GREETING), ("caller", "hello"), ("bot", "Hi, how are you?"),
                              ("caller", "goodbye"), ("bot", "Goodbye! Thanks for calling."), ("action", "hangup"),
                              ("end", None)]
    got = [e for _, e in stream.events]
    assert all(isinstance(e["at"], float) and e["call_sid"] == call.sid for e in got)
    answers = [e for e in got if e["type"] == "bot"][1:]
    assert all(e["chatbot_ms"] > 0 and e["gateway_ms"] >= 0 for e in answers)
    assert [e["input"] for e in got if e["type"] == "caller"] == ["speech", "speech"]
    ended = wait_until(lambda: (c := live_call(gateway, call.sid)) and c["status"] != "live" and c, 10)
    assert (ended["status"], ended["turns"]) == ("bot-hangup", 2) and ended["ended_at"] > ended["started_at"]
    detail = requests.get(f"{gateway.url}/monitor/api/calls/{call.sid}", auth=AUTH, timeout=5).json()
    assert kinds(detail["events"]) == stream.kinds()
    # A watcher arriving after the end gets the whole conversation, then the stream closes.
    late = EventStream(f"{gateway.url}/monitor/api/calls/{call.sid}/events")
    assert late.done.wait(10) and late.kinds() == stream.kinds()
    chart = requests.get(gateway.url + "/monitor/api/latency", auth=AUTH, timeout=5).json()["turns"]
    assert len(chart) == 2 and all(t["ms"] > 0 for t in chart)
    assert requests.get(f"{gateway.url}/monitor/api/calls/CAnope", auth=AUTH, timeout=5).status_code == 404
    searched = requests.get(gateway.url + "/monitor/api/calls?q=0001", auth=AUTH, timeout=5).json()["calls"]
    assert [c["call_sid"] for c in searched] == [call.sid]
    assert requests.get(gateway.url + "/monitor/api/calls?q=9999", auth=AUTH, timeout=5).json() == {"calls": []}


def test_a_database_down_mid_call_costs_history_not_the_call(twilio, speech, chatbot, start_gateway):
    from standins.twilio import Caller

    with postgres_server() as postgres:
        gateway = start_gateway(MONITOR_PASSWORD=PASSWORD, DATABASE_URL=postgres.url,
                                NO_INPUT_SECONDS="0")  # the caller's 9 s of thinking is room, not silence
        call = place(twilio, Caller.at_times([(2.0, "hello"), (12.0, "goodbye")]))
        assert call.wait_for_say("Hi, how are you?", timeout=30), call.transcript()
        assert wait_until(lambda: "Hi, how are you?" in json.dumps(
            requests.get(f"{gateway.url}/monitor/api/calls/{call.sid}", auth=AUTH, timeout=5).json()), 10)
        postgres.stop()
        assert call.wait_ended(timeout=60), call.transcript()
        assert call.said() == [GREETING, "Hi, how are you?", "Goodbye! Thanks for calling."], call.transcript()
        assert "hangup" in [kind for _, kind, _ in call.events]
        assert wait_until(lambda: "call history: database unavailable" in gateway.logs(), 15), gateway.logs()
        assert "calls go on" in gateway.logs() and "Traceback" not in gateway.logs()
        # The page still shows what this process saw, and says the database is unavailable.
        detail = requests.get(f"{gateway.url}/monitor/api/calls/{call.sid}", auth=AUTH, timeout=10).json()
        assert [text for kind, text in kinds(detail["events"]) if kind == "caller"] == ["hello", "goodbye"]
        page = requests.get(gateway.url + "/monitor", auth=AUTH, timeout=10)
        assert page.status_code == 200 and "database unavailable" in page.text


def test_a_watcher_on_another_process_follows_the_call_through_redis(twilio, speech, chatbot, start_gateway,
                                                                     tmp_path):
    from standins.twilio import Caller

    with redis_server() as redis_url:
        settings = {"MONITOR_PASSWORD": PASSWORD, "REDIS_URL": redis_url, "CALL_HISTORY": "off"}
        watching = start_gateway(**settings, PUBLIC_URL="https://watcher.chatline.test")
        serving = start_gateway(**settings)  # PUBLIC_URL routes to this one: it holds the call
        time.sleep(0.5)  # both listening on the channel
        call = place(twilio, Caller.at_times([(4.0, "hello"), (11.0, "goodbye")]))
        assert wait_until(lambda: live_call(watching, call.sid), 10), "the other process never heard of the call"
        stream = EventStream(f"{watching.url}/monitor/api/calls/{call.sid}/events")
        assert call.wait_ended(timeout=60), call.transcript()
        assert stream.done.wait(15), stream.kinds()
        assert stream.kinds() == [("bot", GREETING), ("caller", "hello"), ("bot", "Hi, how are you?"),
                                  ("caller", "goodbye"), ("bot", "Goodbye! Thanks for calling."),
                                  ("action", "hangup"), ("end", None)]
        assert f"call {call.sid}" not in watching.logs() and f"call {call.sid}" in serving.logs()
