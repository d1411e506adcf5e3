"""The sample chatbot validates and bounds what it takes: fuzzed bodies, the 64 KB limit, and a bounded session count."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chatbot_api import SessionStore, create_app
from chatbot_api.message_request import BadMessageRequest, MessageRequest, parse_message_request
from tests.figures import count
from tests.test_fuzz_parsers import json_values

SCRIPT = str(Path(__file__).resolve().parents[1] / "chatbot_api" / "default_script.yaml")
MANY = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))

requests_ = st.fixed_dictionaries({}, optional={
    "message": st.text(max_size=60) | json_values, "session_id": st.text(max_size=40) | json_values,
    "input": st.sampled_from(["speech", "dtmf"]) | json_values, "caller": json_values, "extra": json_values})
bodies = st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()) | requests_.map(
    lambda v: json.dumps(v).encode())


@pytest.fixture(scope="module")
def client():
    return create_app({"CHATBOT_SCRIPT": SCRIPT, "MAX_MESSAGE_CHARS": 50}).test_client()


@MANY
@given(body=bodies)
@example(body=b"[" * 100_000)
@example(body=b'{"message": "hi", "session_id": "CA1", "n": ' + b"1" * 5000 + b"}")
def test_parse_message_request_gives_a_request_or_one_clear_error(body):
    count("sample chatbot request parser")
    try:
        turn = parse_message_request(body, max_message_chars=50)
    except BadMessageRequest as error:
        assert str(error)
        return
    assert isinstance(turn, MessageRequest) and isinstance(turn.message, str) and len(turn.message) <= 50
    assert isinstance(turn.session_id, str) and turn.session_id.strip() and len(turn.session_id) <= 256


@MANY
@given(body=bodies)
def test_any_body_gets_a_contract_answer_or_a_json_error(client, body):
    count("sample chatbot POST /message (Flask app)")
    response = client.post("/message", data=body, content_type="application/json")
    answer = response.get_json()
    if response.status_code == 200:
        assert set(answer) == {"text", "action", "hints"} and isinstance(answer["text"], str) and answer["text"]
        assert all(isinstance(hint, str) for hint in answer["hints"])
    else:
        assert response.status_code == 400 and isinstance(answer["error"], str), (response.status_code, answer)


def test_a_body_over_64_kb_is_refused_before_parsing(client):
    response = client.post("/message", data=json.dumps({"message": "hi", "session_id": "CA1", "pad": "x" * 65_536}),
                           content_type="application/json")
    assert response.status_code == 413 and response.get_json()["error"].startswith("413")


def test_sessions_are_bounded_least_recently_active_first():
    store = SessionStore(3600, max_sessions=3)
    for sid in ("CA1", "CA2", "CA3"):
        store.put(sid, "booking")
    store.put("CA1", "booking")  # CA1 is active again: CA2 is now the oldest
    store.put("CA4", "booking")
    assert len(store) == 3 and store.get("CA2") is None
    assert [store.get(sid) for sid in ("CA1", "CA3", "CA4")] == ["booking"] * 3


def test_a_flood_of_sessions_keeps_the_dialogue_of_recent_callers():
    app = create_app({"CHATBOT_SCRIPT": SCRIPT, "MAX_SESSIONS": 50})
    client = app.test_client()
    client.post("/message", json={"message": "book a table", "session_id": "CA-old"})
    for n in range(200):
        client.post("/message", json={"message": "book a table", "session_id": f"CA-flood-{n}"})
    assert len(app.extensions["chatbot_api"].sessions) == 50
    assert client.post("/message", json={"message": "four", "session_id": "CA-flood-199"}).get_json()["text"] \
        == "Your table for four is booked."
    assert "booked" not in client.post("/message", json={"message": "four", "session_id": "CA-old"}).get_json()["text"]
