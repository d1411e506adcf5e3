"""`chatline calls` over a real history database, and `chatline demo --keep-monitor` leaving the page up."""
from __future__ import annotations

import csv
import io
import json
import re
import signal
import subprocess
import time

import requests

from gateway.chatbots.reply import Reply
from gateway.monitor.events import CallEvents
from gateway.monitor.history import HistoryStore
from gateway.monitor.writer import HistoryWriter
from tests.test_cli import CHATLINE, chatline, clean_env, demo_ports, no_gunicorns_left


def write_history(url: str, words: bool = True) -> None:
    """Two calls as the gateway records them."""
    writer = HistoryWriter(HistoryStore(url, words=words)).start()
    events = CallEvents(writer=writer)
    events.call_started("CAfirst", "+15551230001", "+15557654321", "google", "stream")
    events.bot_said("CAfirst", Reply("Hello!"))
    events.caller_said("CAfirst", "book a table, for 4")
    events.bot_said("CAfirst", Reply("For what time?"), chatbot_ms=120.0, total_ms=150.0)
    events.caller_said("CAfirst", "9", "dtmf")
    events.bot_said("CAfirst", Reply("Transferring", action_type="transfer", transfer_to="+15550001111"), 10.0, 20.0)
    events.action("CAfirst", "transferred")
    events.call_ended("CAfirst")
    time.sleep(0.01)
    events.call_started("CAsecond", "+15559990002", "+15557654321", "twilio", "gather")
    events.caller_said("CAsecond", "hello")
    assert writer.flush(10) and writer.lost == 0


def test_calls_lists_and_shows_the_history(tmp_path):
    url = f"sqlite:///{tmp_path}/calls.db"
    write_history(url)
    env = clean_env(DATABASE_URL=url)
    listed = chatline("calls", env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["started", "caller", "outcome", "turns", "call"]
    assert re.search(r"\+15559990002\s+live\s+1\s+CAsecond$", lines[1]), listed.stdout
    assert re.search(r"\+15551230001\s+transferred → \+15550001111\s+2\s+CAfirst$", lines[2]), listed.stdout
    found = json.loads(chatline("calls", "--json", "--search", "0001", env=env).stdout)["calls"]
    assert [(c["call_sid"], c["status"], c["turns"], c["transferred_to"]) for c in found] == [
        ("CAfirst", "transferred", 2, "+15550001111")]
    rows = list(csv.DictReader(io.StringIO(chatline("calls", "--csv", env=env).stdout)))
    assert [(r["call_sid"], r["caller"], r["status"]) for r in rows] == [("CAsecond", "+15559990002", "live"),
                                                                        ("CAfirst", "+15551230001", "transferred")]
    shown = chatline("calls", "show", "CAfirst", env=env)
    assert shown.returncode == 0, shown.stderr
    body = [line.strip()[10:] for line in shown.stdout.splitlines()[1:]]
    assert body == ["bot:    Hello!", "caller: book a table, for 4",
                    "bot:    For what time?  [chatbot 120 ms + gateway 30 ms]", "caller: keys 9",
                    "bot:    Transferring  [chatbot 10 ms + gateway 10 ms]", "[transfer +15550001111]",
                    "[transferred]", "[call ended: completed]"], shown.stdout
    assert shown.stdout.startswith("call CAfirst from +15551230001 to +15557654321") and "transferred" in shown.stdout
    events = list(csv.DictReader(io.StringIO(chatline("calls", "show", "CAfirst", "--csv", env=env).stdout)))
    assert [(e["type"], e["text"]) for e in events][:2] == [("bot", "Hello!"), ("caller", "book a table, for 4")]
    one = json.loads(chatline("calls", "show", "CAfirst", "--json", "--database", url, env=clean_env()).stdout)
    assert one["status"] == "transferred" and [e["type"] for e in one["events"]][-1] == "end"


def test_calls_errors_are_one_line(tmp_path):
    missing = chatline("calls", "--database", f"sqlite:///{tmp_path}/none.db")
    assert missing.returncode == 1 and missing.stderr.startswith("chatline: error: no call history at ")
    assert not (tmp_path / "none.db").exists()
    url = f"sqlite:///{tmp_path}/calls.db"
    write_history(url, words=False)
    unknown = chatline("calls", "show", "CAnope", "--database", url)
    assert unknown.returncode == 1 and unknown.stderr == "chatline: error: no call CAnope in the history\n"
    shown = chatline("calls", "show", "CAfirst", "--database", url).stdout
    assert "caller: (not stored)" in shown and "book a table" not in shown
    down = chatline("calls", "--database", "postgres://nobody:hidden-pw@127.0.0.1:1/none")
    assert down.returncode == 1 and "cannot read the call history at postgresql+psycopg://nobody:***@" in down.stderr
    assert "hidden-pw" not in down.stderr and "Traceback" not in down.stderr


def test_demo_keep_monitor_leaves_the_page_up_until_ctrl_c():
    process = subprocess.Popen([CHATLINE, "demo", "--speed", "3", "--keep-monitor"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=clean_env())
    seen = []
    try:
        for line in process.stdout:
            seen.append(line)
            if "Press Ctrl-C to stop" in line:
                break
        output = "".join(seen)
        match = re.search(r"monitor:  (http://127\.0\.0\.1:\d+/monitor)  \(user operator, password (\S+)\)", output)
        assert match, output
        url, password = match.groups()
        calls = requests.get(url + "/api/calls", auth=("operator", password), timeout=5).json()["calls"]
        assert [(c["status"], c["turns"]) for c in calls] == [("bot-hangup", 3)]
        assert requests.get(url, auth=("operator", "guess"), timeout=5).status_code == 401
        page = requests.get(url + "?call=" + calls[0]["call_sid"], auth=("operator", password), timeout=5)
        assert page.status_code == 200 and "Glad to hear it!" in page.text
        time.sleep(1.0)
        assert process.poll() is None  # still up
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, out + err
    assert no_gunicorns_left(*demo_ports(output))
