"""No leaks: 200 calls through the real gateway leave no threads, sockets, recognizer streams or memory behind."""
from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from gateway.services import HEARD_THREADS
from tests.figures import report
from tests.test_phone_dialogue import place, wait_until

CALLS, CONCURRENT, WARM_UP = 200, 10, 60
# Python's allocator keeps freed arenas for reuse, so RSS settles a little above where it started. A leak of the
# per-call objects (a recognizer with its audio buffers, a conversation, a socket) grows with every call; 200 calls
# each keeping just 40 KB would be 8 MB, so 4 MB bounds the noise without hiding a per-call leak.
RSS_TOLERANCE_KB = 4096


def children_of(master_pid: int) -> list[int]:
    """The master's child processes, found through /proc (no psutil needed)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # the process went away meanwhile
            if int(stat.rsplit(")", 1)[1].split()[1]) == master_pid:
                children.append(int(entry.name))
    return children


def worker_pid(master_pid: int) -> int:
    """The one gunicorn worker (the master may listen a moment before it has forked it)."""
    children = wait_until(lambda: children_of(master_pid), timeout=20)
    assert len(children) == 1, children
    return children[0]


def figures(pid: int, gateway, speech) -> dict[str, int]:
    """What a leak would grow: the worker's threads, open fds and sockets, RSS; open recognizer streams; live calls."""
    status = Path(f"/proc/{pid}/status").read_text()
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue  # closed while we looked
    page = requests.get(gateway.url + "/", timeout=5).text
    return {
        "threads": int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1)),
        "fds": len(links),
        "sockets": sum(link.startswith("socket:") for link in links),
        "rss_kb": int(re.search(r"^VmRSS:\s+(\d+)", status, re.M).group(1)),
        "open_recognizer_streams": sum(not s.ended for s in speech.streams),
        "live_calls": int(re.search(r"Live calls in this process: (\d+)", page).group(1)),
    }


def short_call(twilio) -> str:
    """One short call: the stream starts, a little audio flows, the caller hangs up; returns how it ended."""
    call = place(twilio, [])
    assert call.wait_for_event("stream-start", timeout=20), call.transcript()
    assert wait_until(lambda: call.media_frames_sent >= 25, timeout=10)  # half a second of call audio
    call.hang_up()
    assert call.wait_ended(timeout=20), call.transcript()
    return "refused" if any(kind == "stream-refused" for _, kind, _ in call.events) else "ok"


def run_calls(twilio, count: int, concurrent: int = CONCURRENT) -> list[str]:
    with ThreadPoolExecutor(concurrent) as pool:
        return list(pool.map(lambda _: short_call(twilio), range(count)))


def settled(pid, gateway, speech, baseline) -> dict[str, int] | None:
    """The figures once everything per-call is gone (None while something is still open)."""
    now = figures(pid, gateway, speech)
    done = now["open_recognizer_streams"] == 0 and now["live_calls"] == 0
    return now if done and all(now[k] <= baseline[k] for k in ("threads", "fds", "sockets")) else None


def test_two_hundred_calls_leave_nothing_behind(twilio, speech, chatbot, start_gateway):
    # gunicorn's thread pool grows on demand up to GATEWAY_THREADS, and lazily built clients, pools and gRPC channels
    # are not leaks: the warm-up runs twice the measured run's calls at once (each holding a stream thread, plus
    # their webhooks), so the pool is at its peak before the baseline and a thread more afterwards is a leak.
    gateway = start_gateway(GATEWAY_THREADS="24", MAX_CONCURRENT_STREAMS="20")
    pid = worker_pid(gateway.process.pid)
    assert run_calls(twilio, WARM_UP, concurrent=2 * CONCURRENT) == ["ok"] * WARM_UP
    assert wait_until(lambda: settled(pid, gateway, speech, {"threads": 10**6, "fds": 10**6, "sockets": 10**6}), 20)
    baseline = figures(pid, gateway, speech)
    streams_before = len(speech.streams)
    outcomes = run_calls(twilio, CALLS)
    assert outcomes == ["ok"] * CALLS
    # The calls really used the recognizer (one hung up before its first stream opened may not: nothing to leak).
    assert len(speech.streams) - streams_before >= CALLS * 0.95
    allowed = {**baseline, "threads": baseline["threads"] + HEARD_THREADS}
    after = wait_until(lambda: settled(pid, gateway, speech, allowed), timeout=20) or figures(pid, gateway, speech)
    report(f"leaks after {CALLS} calls ({CONCURRENT} at a time), gateway worker before -> after: " + ", ".join(
        f"{key} {baseline[key]} -> {after[key]}" for key in baseline))
    # The `heard` pool starts its few threads as they are first needed, however busy the warm-up was: not per call.
    assert after["threads"] <= baseline["threads"] + HEARD_THREADS, (baseline, after)
    for key in ("fds", "sockets", "open_recognizer_streams", "live_calls"):
        assert after[key] <= baseline[key], (key, baseline, after)
    assert after["rss_kb"] - baseline["rss_kb"] <= RSS_TOLERANCE_KB, (baseline, after)
    assert "Traceback" not in gateway.logs()
