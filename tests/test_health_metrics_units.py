"""/healthz, /readyz and /metrics in-process (Flask's test client), the metric hooks, and the gunicorn metrics dir."""
from __future__ import annotations

import base64
import importlib
import os

import pytest
from prometheus_client import REGISTRY

from gateway import create_app, metrics
from gateway.chatbots.reply import Reply
from gateway.config import Config
from gateway.monitor import CallEvents

PASSWORD = "s3cret-pw"


def app_with(tmp_path, **settings):
    settings.setdefault("database_url", f"sqlite:///{tmp_path}/history.db")
    config = Config(twilio_account_sid="AC" + "0" * 32, twilio_auth_token="token", stt_provider="twilio", **settings)
    return create_app(config)


def basic(password: str, user: str = "operator") -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_healthz_answers_without_auth_or_signature(tmp_path):
    client = app_with(tmp_path, monitor_password=PASSWORD).test_client()
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.get_json() == {"status": "ok"}


def test_readyz_is_ready_then_503_with_the_reason_while_draining(tmp_path):
    app = app_with(tmp_path)
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    assert client.get("/readyz").get_json() == {"ready": True}
    app.extensions["chatline"].drain.begin()
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json()["ready"] is False and answer.get_json()["reason"].startswith("draining")
    assert client.get("/healthz").status_code == 200  # alive all the same: the platform must not kill it


def test_readyz_is_503_when_the_history_database_cannot_be_reached(tmp_path):
    client = app_with(tmp_path, database_url=f"sqlite:///{tmp_path}/no-such-dir/history.db").test_client()
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json()["reason"] == "history database unreachable (OperationalError)"


def test_readyz_does_not_check_a_history_that_is_off(tmp_path):
    client = app_with(tmp_path, call_history="off",
                      database_url=f"sqlite:///{tmp_path}/no-such-dir/history.db").test_client()
    assert client.get("/readyz").status_code == 200


def test_metrics_is_404_without_monitor_password(tmp_path):
    client = app_with(tmp_path).test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=basic("anything")).status_code == 404


def test_metrics_needs_the_operators_password(tmp_path):
    client = app_with(tmp_path, monitor_password=PASSWORD).test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
    assert client.get("/metrics", headers=basic("wrong")).status_code == 401
    assert client.get("/metrics", headers=basic(PASSWORD, user="admin")).status_code == 401
    answer = client.get("/metrics", headers=basic(PASSWORD))
    assert answer.status_code == 200 and answer.content_type.startswith("text/plain; version=")
    text = answer.get_data(as_text=True)
    for name in ("chatline_live_calls", "chatline_live_streams", "chatline_turn_seconds_bucket",
                 "chatline_chatbot_seconds_count", "chatline_recognizer_reconnects_total",
                 "chatline_recognizer_outages_total", "chatline_barge_ins_total", "chatline_reprompts_total",
                 "chatline_text_messages_sent_total"):
        assert name in text, name


def test_a_turn_reported_to_the_call_events_is_counted_with_its_latencies():
    events = CallEvents.disabled()  # counted with the monitor and the history off too
    turns, chatbot_sum = sample("chatline_turn_seconds_count"), sample("chatline_chatbot_seconds_sum")
    fast = sample("chatline_turn_seconds_bucket", le="0.5")
    events.bot_said("CA1", Reply("Hi"), chatbot_ms=120.0, total_ms=340.0)
    assert sample("chatline_turn_seconds_count") == turns + 1
    assert sample("chatline_turn_seconds_bucket", le="0.5") == fast + 1
    assert sample("chatline_chatbot_seconds_sum") == pytest.approx(chatbot_sum + 0.12)
    events.bot_said("CA1", Reply("Hello"))  # the greeting: no turn
    events.bot_said("CA1", Reply("Hi"), 100.0, 200.0, delivered=False)  # never reached the caller: no turn answered
    assert sample("chatline_turn_seconds_count") == turns + 1
    errors = sample("chatline_chatbot_errors_total")
    events.bot_said("CA1", Reply("Sorry"), 5000.0, 5100.0, error="timed out")
    assert sample("chatline_chatbot_errors_total") == errors + 1


def test_barge_ins_and_reprompts_are_counted_from_their_actions():
    events = CallEvents.disabled()
    barge_ins, reprompts = sample("chatline_barge_ins_total"), sample("chatline_reprompts_total")
    events.action("CA1", "barge-in")
    events.action("CA1", "reprompt", text="Are you still there?")
    events.action("CA1", "reprompt", text="Are you still there?")
    events.action("CA1", "no-input", text="Goodbye")
    assert sample("chatline_barge_ins_total") == barge_ins + 1
    assert sample("chatline_reprompts_total") == reprompts + 2


def test_recognizer_failures_count_reconnects_and_one_outage():
    from gateway.recognizers.health import StreamHealth

    now = [0.0]
    health = StreamHealth(5.0, clock=lambda: now[0])
    reconnects, outages = sample("chatline_recognizer_reconnects_total"), sample("chatline_recognizer_outages_total")
    for second in (0, 2, 4, 6, 8):
        now[0] = second
        health.failed()
    assert sample("chatline_recognizer_reconnects_total") == reconnects + 5
    assert sample("chatline_recognizer_outages_total") == outages + 1  # down once, not once per failure


def test_a_refused_stream_is_an_outage_at_once_and_counted_once():
    from gateway.recognizers.health import StreamHealth

    health = StreamHealth(5.0, clock=lambda: 0.0)
    reconnects, outages = sample("chatline_recognizer_reconnects_total"), sample("chatline_recognizer_outages_total")
    health.refused()
    health.refused()
    assert sample("chatline_recognizer_outages_total") == outages + 1
    assert sample("chatline_recognizer_reconnects_total") == reconnects + 2  # retried, slowly, each time


def test_text_messages_and_lost_events_and_redis_errors():
    sent, refused = sample("chatline_text_messages_sent_total"), sample("chatline_text_messages_refused_total",
                                                                        code="21610")
    metrics.text_message_sent()
    metrics.text_message_refused(21610)
    assert sample("chatline_text_messages_sent_total") == sent + 1
    assert sample("chatline_text_messages_refused_total", code="21610") == refused + 1
    lost = sample("chatline_call_events_lost_total", to="history")
    metrics.call_events_lost(3, "history")
    assert sample("chatline_call_events_lost_total", to="history") == lost + 3
    errors = sample("chatline_redis_errors_total", where="webhook")
    metrics.redis_error("webhook")
    assert sample("chatline_redis_errors_total", where="webhook") == errors + 1


@pytest.fixture
def gunicorn_conf(monkeypatch):
    monkeypatch.delenv(metrics.MULTIPROC_DIR, raising=False)
    module = importlib.reload(importlib.import_module("gateway.gunicorn_conf"))
    yield module
    module.on_exit(None)


def test_the_master_makes_a_metrics_dir_when_none_is_set_and_removes_it_at_exit(gunicorn_conf):
    gunicorn_conf.on_starting(None)
    path = os.environ[metrics.MULTIPROC_DIR]
    assert os.path.isdir(path) and os.listdir(path) == []
    gunicorn_conf.on_exit(None)
    assert not os.path.exists(path)


def test_the_master_empties_a_metrics_dir_it_is_given(gunicorn_conf, monkeypatch, tmp_path):
    (tmp_path / "counter_123.db").write_bytes(b"old run")
    (tmp_path / "notes.txt").write_text("not ours")
    monkeypatch.setenv(metrics.MULTIPROC_DIR, str(tmp_path))
    gunicorn_conf.on_starting(None)
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]
    gunicorn_conf.on_exit(None)
    assert tmp_path.exists()  # not ours to remove


def test_loading_the_gunicorn_config_does_not_import_prometheus_client():
    """The master must not import it: workers forked from it would keep its single-process mode."""
    import subprocess
    import sys

    code = "import sys, gateway.gunicorn_conf; print('prometheus_client' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
