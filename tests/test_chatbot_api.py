"""The sample chatbot over HTTP: the contract's POST /message, errors, sessions, config, gunicorn."""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[1]

from chatbot_api import ConfigError, ScriptError, SessionStore, create_app  # noqa: E402

DEFAULT_SCRIPT = REPO_ROOT / "chatbot_api" / "default_script.yaml"
FALLBACK = "Sorry, I didn't catch that. You can say hello, good, bad, book a table, or goodbye."
OWNER_SCRIPT = """\
fallback: Pardon?
states:
  lobby:
    intents:
      ping: {say: [ping], reply: pong}
"""


class FakeClock:
    """A monotonic clock the test moves by hand."""

    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def app(clock):
    config = {"CHATBOT_SCRIPT": str(DEFAULT_SCRIPT), "SESSION_STORE": SessionStore(60, clock=clock), "MAX_MESSAGE_CHARS": 50}
    return create_app(config)


@pytest.fixture
def client(app):
    return app.test_client()


def say(client, message, session_id="CA-test", **extra):
    """POST one turn and return the JSON answer, checking it has the contract's shape."""
    response = client.post("/message", json={"message": message, "session_id": session_id, **extra})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"text", "action", "hints"}
    assert isinstance(body["text"], str) and all(isinstance(hint, str) for hint in body["hints"])
    return body


def test_classic_dialogue(client):
    hello = say(client, "hello", input="speech", caller="+15551230001", channel="phone")
    assert hello["text"] == "Hi, how are you?" and hello["action"] is None
    assert {"good", "bad", "goodbye"} <= set(hello["hints"])
    assert say(client, "good")["text"].startswith("Glad to hear it")
    assert "sorry" in say(client, "bad")["text"].lower()
    assert say(client, "book a table")["text"] == "For how many people?"
    assert say(client, "for four people")["text"] == "Your table for four is booked."
    assert "say hello" in say(client, "what can you do")["text"]
    goodbye = say(client, "goodbye")
    assert goodbye == {"text": "Goodbye! Thanks for calling.", "action": "hangup", "hints": []}


@pytest.mark.parametrize(
    "message, intent_reply",
    [
        ("HELLO!!!", "Hi, how are you?"),
        ("  Hello,   there. ", "Hi, how are you?"),
        ("hey", "Hi, how are you?"),
        ("hi", "Hi, how are you?"),
        ("I'm fine, thanks", "Glad to hear it! What can I do for you?"),
        ("great", "Glad to hear it! What can I do for you?"),
        ("Not good.", "I'm sorry to hear that. I hope your day gets better."),
        ("awful", "I'm sorry to hear that. I hope your day gets better."),
        ("Good-bye!", "Goodbye! Thanks for calling."),
        ("please hang up", "Goodbye! Thanks for calling."),
        ("I would like to BOOK A TABLE, please", "For how many people?"),
        ("this", FALLBACK),  # "hi" only matches as a whole word
    ],
)
def test_matching_ignores_case_and_punctuation_and_knows_synonyms(client, message, intent_reply):
    assert say(client, message)["text"] == intent_reply


@pytest.mark.parametrize("answer, size", [("four", "four"), ("4", "four"), ("For 7 people.", "seven"),
                                          ("ten people please", "ten"), ("just me", "one"), ("10", "ten")])
def test_booking_tree_accepts_sizes_as_words_or_digits(client, answer, size):
    say(client, "book a table")
    assert say(client, answer)["text"] == f"Your table for {size} is booked."


def test_dialogue_state_is_per_session(client):
    say(client, "book a table", session_id="CA-a")
    assert say(client, "four", session_id="CA-b")["text"] == FALLBACK
    assert say(client, "four", session_id="CA-a")["text"] == "Your table for four is booked."
    assert say(client, "four", session_id="CA-a")["text"] == FALLBACK  # back in the main state


def test_keypad_digits_match_with_dtmf_input(client):
    say(client, "book a table")
    assert say(client, "3", input="dtmf")["text"] == "Your table for three is booked."


def test_fallback_keeps_the_state_and_explains(client):
    assert say(client, "purple elephants")["text"] == FALLBACK
    say(client, "book a table")
    retry = say(client, "purple elephants")
    assert retry["text"] == "Sorry, for how many people? Say a number from one to ten."
    assert "for four people" in retry["hints"]
    assert say(client, "two")["text"] == "Your table for two is booked."


def test_hints_list_what_can_be_said_next(client):
    main_hints = say(client, "hello")["hints"]
    for phrase in ("hello", "good", "fine", "not good", "book a table", "goodbye", "what can you do", "special characters"):
        assert phrase in main_hints
    assert "four" not in main_hints
    booking_hints = say(client, "book a table")["hints"]
    for phrase in ("four", "for four people", "ten", "cancel", "goodbye", "help"):
        assert phrase in booking_hints
    assert "hello" not in booking_hints
    assert not any(hint.isdigit() for hint in booking_hints), "keypad digits are pressed, not spoken"
    assert len(booking_hints) == len(set(booking_hints))


def test_special_characters_reply_is_exact(client):
    response = client.post("/message", json={"message": "special characters", "session_id": "CA1"})
    assert json.loads(response.get_data())["text"] == "Fish & chips < \"steak\" > 'pie'"


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"[" * 60_000, "not valid JSON"),  # deep nesting, yet under the 64 KB body limit
        (b'["hello"]', "JSON object"),
        (b'"hello"', "JSON object"),
        (b"null", "JSON object"),
        (b'{"session_id": "CA1"}', "missing 'message'"),
        (b'{"message": "hi"}', "missing 'session_id'"),
        (b'{"message": 42, "session_id": "CA1"}', "'message' must be a string"),
        (b'{"message": null, "session_id": "CA1"}', "'message' must be a string"),
        (b'{"message": "hi", "session_id": ["CA1"]}', "'session_id' must be a string"),
        (b'{"message": "hi", "session_id": ""}', "'session_id' must not be empty"),
        (b'{"message": "hi", "session_id": "CA1", "input": 5}', "'input' must be a string"),
        (json.dumps({"message": "x" * 51, "session_id": "CA1"}).encode(), "longer than 50"),
    ],
)
def test_bad_requests_get_400_with_a_reason_and_one_log_line(client, caplog, body, reason):
    caplog.set_level(logging.INFO, logger="chatbot_api")
    response = client.post("/message", data=body, content_type="application/json")
    assert response.status_code == 400
    assert reason in response.get_json()["error"]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("chatbot_api")]
    assert len(warnings) == 1 and reason in warnings[0].getMessage()


def test_lenient_about_extra_keys_content_type_and_longest_allowed_message(client):
    body = {"message": "hello", "session_id": "CA1", "caller": 123, "channel": "phone", "future": {"x": 1}}
    response = client.post("/message", data=json.dumps(body), content_type="text/plain")
    assert response.status_code == 200 and response.get_json()["text"] == "Hi, how are you?"
    assert say(client, "x" * 50)["text"] == FALLBACK


def test_health_and_http_errors_are_json(client):
    for path in ("/", "/health"):
        assert client.get(path).status_code == 200 and client.get(path).get_json() == {"status": "ok"}
    assert client.get("/message").status_code == 405
    assert "error" in client.get("/message").get_json()
    assert client.get("/nowhere").get_json()["error"].startswith("404")
    small = create_app({"CHATBOT_SCRIPT": str(DEFAULT_SCRIPT), "MAX_CONTENT_LENGTH": 100}).test_client()
    response = small.post("/message", json={"message": "x" * 200, "session_id": "CA1"})
    assert response.status_code == 413 and response.get_json()["error"].startswith("413")


def test_dotenv_file_configures_but_environment_wins(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("SESSION_TTL_SECONDS=42\nMAX_MESSAGE_CHARS=9\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SESSION_TTL_SECONDS", raising=False)
    monkeypatch.setenv("MAX_MESSAGE_CHARS", "11")
    app = create_app({"CHATBOT_SCRIPT": str(DEFAULT_SCRIPT)})
    assert app.config["SESSION_TTL_SECONDS"] == 42 and app.config["MAX_MESSAGE_CHARS"] == 11
    assert "SESSION_TTL_SECONDS" not in os.environ  # the process environment is left alone


def test_one_log_line_per_message(client, caplog):
    caplog.set_level(logging.INFO, logger="chatbot_api")
    say(client, "Goodbye!", session_id="CA-log")
    lines = [r.getMessage() for r in caplog.records if "session=" in r.getMessage()]
    assert len(lines) == 1
    assert all(part in lines[0] for part in ("session=CA-log", "'Goodbye!'", "intent=goodbye", "action=hangup"))


def test_session_expires_after_ttl_of_inactivity(client, clock):
    say(client, "book a table")
    clock.now += 59
    assert say(client, "nonsense")["text"].startswith("Sorry, for how many")  # still booking; activity renews
    clock.now += 59
    assert say(client, "four")["text"] == "Your table for four is booked."
    say(client, "book a table")
    clock.now += 60
    assert say(client, "four")["text"] == FALLBACK  # expired: back at the start


def test_session_ttl_and_limits_come_from_config_or_environment(monkeypatch):
    monkeypatch.delenv("CHATBOT_SCRIPT", raising=False)
    monkeypatch.setenv("SESSION_TTL_SECONDS", "7")
    monkeypatch.setenv("MAX_MESSAGE_CHARS", "3")
    app = create_app()
    assert app.extensions["chatbot_api"].sessions.ttl_seconds == 7
    assert app.test_client().post("/message", json={"message": "four", "session_id": "C"}).status_code == 400
    assert create_app({"SESSION_TTL_SECONDS": 0.5}).extensions["chatbot_api"].sessions.ttl_seconds == 0.5
    monkeypatch.setenv("SESSION_TTL_SECONDS", "soon")
    with pytest.raises(ConfigError, match="SESSION_TTL_SECONDS"):
        create_app()


def test_chatbot_script_env_var_loads_the_owners_script(tmp_path, monkeypatch):
    script = tmp_path / "owner.yaml"
    script.write_text(OWNER_SCRIPT)
    monkeypatch.setenv("CHATBOT_SCRIPT", str(script))
    client = create_app().test_client()
    assert say(client, "Ping?") == {"text": "pong", "action": None, "hints": ["ping"]}
    assert say(client, "hello")["text"] == "Pardon?"
    # An explicit config wins over the environment.
    client = create_app({"CHATBOT_SCRIPT": str(DEFAULT_SCRIPT)}).test_client()
    assert say(client, "hello")["text"] == "Hi, how are you?"


def test_broken_script_stops_create_app_naming_file_and_line(tmp_path):
    script = tmp_path / "broken.yaml"
    script.write_text(OWNER_SCRIPT.replace("reply: pong", "reply: pong, next: nowhere"))
    with pytest.raises(ScriptError) as caught:
        create_app({"CHATBOT_SCRIPT": str(script)})
    assert str(caught.value).startswith(f"{script}, line 5:") and "nowhere" in str(caught.value)
    with pytest.raises(ScriptError, match="cannot read"):
        create_app({"CHATBOT_SCRIPT": str(tmp_path / "missing.yaml")})


# --- the real thing under gunicorn ---------------------------------------------------------


@pytest.fixture
def gunicorn_url(tmp_path):
    with socket.socket() as sock:  # ask the OS for a free port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [str(Path(sys.executable).with_name("gunicorn")), "--worker-class", "gthread", "--threads", "4",
               "--bind", f"127.0.0.1:{port}", "chatbot_api:create_app()"]
    env = {key: value for key, value in os.environ.items() if key not in ("CHATBOT_SCRIPT", "MAX_MESSAGE_CHARS")}
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:  # a file, not a pipe nobody drains, so gunicorn never blocks
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while not _answers_health(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not come up:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers_health(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=0.5).ok
    except requests.ConnectionError:
        return False


def test_served_by_gunicorn(gunicorn_url):
    def post(message):
        response = requests.post(f"{gunicorn_url}/message", json={"message": message, "session_id": "CA-gu"}, timeout=5)
        return response.status_code, response.json()

    status, body = post("Hello!")
    assert status == 200 and body["text"] == "Hi, how are you?" and "good" in body["hints"]
    assert post("book a table")[1]["text"] == "For how many people?"
    assert post("for four people")[1]["text"] == "Your table for four is booked."
    assert post("goodbye")[1]["action"] == "hangup"
    status, body = post(None)
    assert status == 400 and "message" in body["error"]


def test_first_request_of_a_call_gets_the_scripts_greeting(client, tmp_path):
    assert say(client, "book a table")["text"] == "For how many people?"
    greeting = say(client, "", input="start")  # a new call on the same session starts afresh
    assert greeting["text"] == "Hello! You are talking to the Chatline demo bot. How can I help?"
    assert greeting["action"] is None and {"hello", "book a table", "goodbye"} <= set(greeting["hints"])
    assert say(client, "hello")["text"] == "Hi, how are you?"
    owner = tmp_path / "owner.yaml"
    owner.write_text(OWNER_SCRIPT)
    no_greeting = create_app({"CHATBOT_SCRIPT": str(owner), "SESSION_STORE": SessionStore(60)}).test_client()
    assert say(no_greeting, "", input="start") == {"text": "", "action": None, "hints": ["ping"]}
