"""/metrics, /healthz and /readyz through the real gunicorn with two workers on one Redis, as an operator sees them."""
from __future__ import annotations

import http.client
import json
import os
import signal
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.test_phone_dialogue import place, wait_until

pytestmark = pytest.mark.slow
PASSWORD = "operator-secret"
HI = "Hi, how are you?"


@pytest.fixture
def two_workers(redis_server, start_gateway):
    """The `web:` process with GATEWAY_WORKERS=2 on one REDIS_URL (settings overridable)."""

    def start(**overrides: str):
        return start_gateway(REDIS_URL=redis_server.url, GATEWAY_WORKERS="2", NO_INPUT_SECONDS="0", **overrides)

    return start


def scrape(gateway) -> dict[str, float]:
    """One /metrics answer, as {sample name with its labels: value}."""
    answer = requests.get(gateway.url + "/metrics", auth=("operator", PASSWORD), timeout=5)
    assert answer.status_code == 200, answer.text
    return {name + _labels(labels): value for family in text_string_to_metric_families(answer.text)
            for name, labels, value, *_ in family.samples}


def _labels(labels: dict) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""


def stream_worker(redis_server, call) -> int:
    """The pid of the worker holding the call's stream (the store says which process)."""
    state = json.loads(redis_server.client().get(f"chatline:call:{call.sid}"))
    return int(state["stream_owner"].split(":")[1])


def test_one_scrape_counts_the_calls_and_turns_of_both_workers(twilio, chatbot, two_workers, redis_server):
    gateway = two_workers(MONITOR_PASSWORD=PASSWORD)
    figures = scrape(gateway)
    assert figures["chatline_live_calls"] == 0 and figures["chatline_turn_seconds_count"] == 0
    calls, workers = [], set()
    while len(workers) < 2 and len(calls) < 12:  # until the kernel has given streams to both workers
        batch = [place(twilio, ["hello", ("silence", 60), "goodbye"]) for _ in range(3)]  # at once: spread
        for call in batch:
            assert call.wait_for_say(HI, timeout=30), call.transcript()
            workers.add(stream_worker(redis_server, call))
        calls += batch
    assert len(workers) == 2, f"all {len(calls)} streams went to one worker"
    print(f"\nmetrics: both workers held streams after {len(calls)} calls")
    assert {os.getpgid(pid) for pid in workers} == {gateway.process.pid}  # both are this gunicorn's workers

    # Whichever worker answers the scrape, it counts every worker's calls, streams and turns (a turn is counted
    # once its call update returns, a moment after the caller starts hearing it).
    assert wait_until(lambda: scrape(gateway)["chatline_turn_seconds_count"] == len(calls), timeout=5), scrape(gateway)
    figures = scrape(gateway)
    shown = {name: value for name, value in figures.items() if "bucket" not in name}
    assert figures["chatline_live_calls"] == len(calls), shown
    assert figures["chatline_live_streams"] == len(calls), shown
    assert figures["chatline_turn_seconds_count"] == len(calls), shown
    assert figures["chatline_chatbot_seconds_count"] == len(calls), shown
    assert figures['chatline_turn_seconds_bucket{le="+Inf"}'] == len(calls), shown

    for call in calls:
        call.hang_up()
    assert all(call.wait_ended(timeout=20) for call in calls)
    assert wait_until(lambda: scrape(gateway)["chatline_live_streams"] == 0, timeout=10), scrape(gateway)
    figures = scrape(gateway)
    assert figures["chatline_live_calls"] == 0
    assert figures["chatline_turn_seconds_count"] == len(calls)  # counters outlive the calls
    assert "Traceback" not in gateway.logs()


def test_metrics_needs_the_password_and_healthz_needs_nothing(two_workers):
    gateway = two_workers(MONITOR_PASSWORD=PASSWORD)
    assert requests.get(gateway.url + "/metrics", timeout=5).status_code == 401
    assert requests.get(gateway.url + "/metrics", auth=("operator", "wrong"), timeout=5).status_code == 401
    assert requests.get(gateway.url + "/healthz", timeout=5).status_code == 200
    assert requests.get(gateway.url + "/readyz", timeout=5).json() == {"ready": True}


def test_readyz_is_503_while_redis_is_down_and_metrics_404_without_a_password(two_workers, redis_server):
    gateway = two_workers()
    assert requests.get(gateway.url + "/metrics", timeout=5).status_code == 404
    assert requests.get(gateway.url + "/readyz", timeout=5).status_code == 200
    redis_server.stop()
    answer = requests.get(gateway.url + "/readyz", timeout=5)
    assert answer.status_code == 503 and answer.json()["reason"].startswith("Redis unreachable"), answer.text
    assert requests.get(gateway.url + "/healthz", timeout=5).status_code == 200  # alive: no restart needed
    redis_server.start()
    assert wait_until(lambda: requests.get(gateway.url + "/readyz", timeout=5).status_code == 200, timeout=10)


def test_readyz_is_503_once_the_process_drains(two_workers):
    """A router holding a kept-alive connection asks again after SIGTERM: the draining worker says not ready."""
    gateway = two_workers()
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=5)
    connection.request("GET", "/readyz")
    answer = connection.getresponse()
    assert answer.status == 200 and json.loads(answer.read()) == {"ready": True}
    os.kill(gateway.process.pid, signal.SIGTERM)  # the master passes it to both workers
    time.sleep(0.3)
    connection.request("GET", "/readyz")
    answer = connection.getresponse()
    body = json.loads(answer.read())
    assert answer.status == 503 and body["reason"].startswith("draining"), body
    assert gateway.process.wait(timeout=20) == 0
