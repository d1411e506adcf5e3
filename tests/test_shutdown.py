"""Graceful shutdown end to end: SIGTERM to a gateway with a live call; the call moves to the next gateway process."""
from __future__ import annotations

import os
import signal
import time

import pytest

from tests.conftest import PUBLIC_URL
from tests.test_phone_dialogue import GREETING, place, updates, wait_until

ONE_MOMENT = "One moment, please."
BOOKED = ["Hi, how are you?", "For how many people?", "Your table for four is booked.", "Goodbye! Thanks for calling."]


def preboot(start_gateway, twilio):
    """Two gateways on one PUBLIC_URL, as during a Heroku restart with preboot; calls reach the first for now."""
    # NO_INPUT_SECONDS=0: the scripts' silences leave room for the handoff, and no reprompt should mix into them.
    first, second = start_gateway(NO_INPUT_SECONDS="0"), start_gateway(NO_INPUT_SECONDS="0")
    twilio.tunnel[PUBLIC_URL] = first.url
    return first, second


def stop(process, twilio, successor) -> float:
    """SIGTERM the gunicorn master (the Procfile execs it: its pid is the process's); the router now sends
    everything to `successor`. Returns when it was sent."""
    os.kill(process.process.pid, signal.SIGTERM)
    twilio.tunnel[PUBLIC_URL] = successor.url
    return time.monotonic()


def test_sigterm_mid_turn_finishes_the_turn_and_the_dialogue_goes_on_in_the_next_process(twilio, chatbot,
                                                                                            start_gateway):
    first, second = preboot(start_gateway, twilio)
    chatbot.delay = 2.0  # the caller's first turn is in flight when the process is told to stop
    call = place(twilio, ["hello", "book_table", "for_four_people", "goodbye"])
    assert wait_until(lambda: chatbot.requests, timeout=30), call.transcript()
    chatbot.delay = 0
    sent_at = stop(first, twilio, second)

    assert call.wait_ended(timeout=60), call.transcript()
    # The turn in flight was answered, the caller was told politely, and the dialogue went on where it was.
    assert call.said() == [GREETING, ONE_MOMENT] + BOOKED, call.transcript()
    assert [m.replace(" ", "") for m in chatbot.messages()] == [
        "hello", "bookatable", "forfourpeople", "goodbye"]
    assert {r["session_id"] for r in chatbot.requests} == {call.sid}
    # The first process sent the handoff, then exited by itself well within its graceful timeout.
    handoff = updates(twilio, call)[0]
    assert f"<Say language=\"en-US\">{ONE_MOMENT}</Say><Redirect method=\"POST\">{PUBLIC_URL}/resume?state=" in handoff
    assert "Hi, how are you?" not in handoff  # the answer is said by the next process, once it hears the caller
    assert first.process.wait(timeout=20) == 0 and time.monotonic() - sent_at < 15
    # The second process started its own stream and heard the rest; the first closed its stream.
    events = [(kind, detail) for _, kind, detail in call.events]
    assert [d for k, d in events if k == "redirect"][0].startswith(f"{PUBLIC_URL}/resume?state="), events
    assert [k for k, _ in events].count("stream-start") == 2 and ("stream-closed", "closed by the app") in events
    assert "handing 1 live calls on" in first.logs() and "goes with the call to the next process" in first.logs()
    assert "resumed here with a google stream" in second.logs()
    for process in (first, second):
        assert "Traceback" not in process.logs() and "Hi, how are you?" not in process.logs()


def test_sigterm_on_a_quiet_call_lets_the_answer_finish_then_moves_the_call(twilio, chatbot, start_gateway):
    first, second = preboot(start_gateway, twilio)
    call = place(twilio, ["hello", ("silence", 12), "book_table", "for_four_people", "goodbye"])
    assert call.wait_for_say("Hi, how are you?", timeout=30), call.transcript()
    stop(first, twilio, second)

    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, "Hi, how are you?", ONE_MOMENT] + BOOKED[1:], call.transcript()
    assert "say-interrupted" not in [kind for _, kind, _ in call.events], call.transcript()  # the answer was not cut short
    assert [m.replace(" ", "") for m in chatbot.messages()] == [
        "hello", "bookatable", "forfourpeople", "goodbye"]
    assert first.process.wait(timeout=20) == 0
    assert "handed on to the next process (sent)" in first.logs()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_just_after_a_call_ends_keeps_its_end_in_the_history(twilio, chatbot, start_gateway, tmp_path,
                                                                     stop_signal):
    """A deploy restarts the process (SIGTERM; SIGINT: Ctrl-C, gunicorn's quick stop) 40 ms after a call's /status,
    while the database is busy for a moment: the history still shows how the call ended."""
    import sqlite3
    import threading

    import requests

    from tests.test_monitor import AUTH, PASSWORD

    first = start_gateway(MONITOR_PASSWORD=PASSWORD, NO_INPUT_SECONDS="0")
    call = place(twilio, ["hello", "goodbye"])
    assert call.wait_for_say("Hi, how are you?", timeout=30), call.transcript()
    # Another writer (a migration, the operator's clean-up) holds the database for about a second and a half from the
    # goodbye on: the call's last events wait in the writer, well within its 3 s database timeout.
    busy = sqlite3.connect(tmp_path / "history.db", timeout=10, check_same_thread=False)
    assert call.wait_for_say("Goodbye! Thanks for calling.", timeout=30), call.transcript()
    busy.execute("BEGIN IMMEDIATE")
    assert call.wait_ended(timeout=60), call.transcript()  # /status answered
    release = threading.Timer(1.2, busy.rollback)
    release.start()
    time.sleep(0.04)
    os.kill(first.process.pid, stop_signal)
    assert first.process.wait(timeout=20) == 0
    release.join()
    busy.close()

    after_restart = start_gateway(MONITOR_PASSWORD=PASSWORD)  # the same DATABASE_URL
    record = requests.get(f"{after_restart.url}/monitor/api/calls/{call.sid}", auth=AUTH, timeout=10).json()
    assert record["ended_at"] is not None and record["status"] == "bot-hangup", record
    assert [e["type"] for e in record["events"]][-3:] == ["bot", "action", "end"], record["events"]
    assert "every call event reached the history" in first.logs()


def test_a_database_down_at_shutdown_costs_the_last_events_counted_never_a_hang(twilio, chatbot, start_gateway):
    from tests.real_servers import postgres_server
    from tests.test_monitor import PASSWORD

    with postgres_server() as postgres:
        gateway = start_gateway(MONITOR_PASSWORD=PASSWORD, DATABASE_URL=postgres.url, NO_INPUT_SECONDS="0")
        call = place(twilio, ["hello", ("silence", 3), "goodbye"])
        assert call.wait_for_say("Hi, how are you?", timeout=30), call.transcript()
        postgres.stop()
        assert call.wait_ended(timeout=60), call.transcript()
        sent_at = stop(gateway, twilio, gateway)
        assert gateway.process.wait(timeout=20) == 0 and time.monotonic() - sent_at < 12
    logs = gateway.logs()
    assert "events not stored" in logs and "Traceback" not in logs, logs


def test_words_waiting_for_the_rest_of_their_sentence_at_sigterm_are_answered_not_lost(twilio, chatbot,
                                                                                         start_gateway):
    from tests.test_turn_taking_calls import _scripted

    # The caller stops mid-sentence ("... a table for") and the process is told to stop while the words wait for
    # the rest (TURN_MAX_WAIT_SECONDS is long here): they are answered before the call moves on, not lost with it.
    with _scripted("i would like to book a table for", "for four people", "goodbye") as speech:
        settings = dict(NO_INPUT_SECONDS="0", SPEECH_EMULATOR_HOST=speech.address, TURN_MAX_WAIT_SECONDS="30")
        first, second = start_gateway(**settings), start_gateway(**settings)
        twilio.tunnel[PUBLIC_URL] = first.url
        call = place(twilio, ["book_table", ("silence", 10), "for_four_people", "goodbye"])
        assert wait_until(lambda: "wait for the rest of the caller's sentence" in first.logs(), timeout=30), \
            call.transcript()
        assert chatbot.requests == []  # waiting, not answered
        stop(first, twilio, second)
        assert call.wait_ended(timeout=60), call.transcript()
    assert [m.replace(" ", "") for m in chatbot.messages()] == [
        "iwouldliketobookatablefor", "forfourpeople", "goodbye"], call.transcript()
    assert call.said() == [GREETING, ONE_MOMENT] + BOOKED[1:], call.transcript()
    assert "that waited for more before the call moves on" in first.logs()
    assert first.process.wait(timeout=20) == 0
