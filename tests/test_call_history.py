"""The call history on real databases: SQLite files and a PostgreSQL server started here; idempotent, prunable, and a
database that goes away costs history, never a caller."""
from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import func, select

from gateway.chatbots.reply import Reply
from gateway.monitor.events import CallEvents
from gateway.monitor.history import HistoryStore, calls, database_url, events
from gateway.monitor.outcome import summary
from gateway.monitor.writer import HistoryWriter
from tests.real_servers import postgres_server


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """The same tests against a SQLite file and a real PostgreSQL (a fresh schema each time)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/history.db"
    server = request.getfixturevalue("postgres")
    store = HistoryStore(server.url)
    from gateway.monitor.history import metadata

    metadata.drop_all(store.engine)
    store.engine.dispose()
    return server.url


def writer_events(url: str, words: bool = True) -> tuple[CallEvents, HistoryWriter]:
    store = HistoryStore(url, words=words)
    writer = HistoryWriter(store).start()
    return CallEvents(writer=writer, store=store, mode="full" if words else "metadata"), writer


def a_call(events: CallEvents, sid: str = "CA0001") -> None:
    """A short call as the gateway publishes it: greeting, a turn, a failed turn, keys, a goodbye and the end."""
    events.call_started(sid, "+15551230001", "+15557654321", "google", "stream")
    events.bot_said(sid, Reply("Hello! How can I help?"))
    events.caller_said(sid, "book a table for four")
    events.bot_said(sid, Reply("For what time?"), chatbot_ms=120.0, total_ms=151.5)
    events.caller_said(sid, "eight")
    events.bot_said(sid, Reply("Sorry, I'm having trouble."), chatbot_ms=3000.0, total_ms=3004.0, error="answered HTTP 500")
    events.caller_said(sid, "42", "dtmf")
    events.action(sid, "barge-in")
    events.bot_said(sid, Reply("Booked. Goodbye!", action_type="hangup"), chatbot_ms=80.0, total_ms=95.0)
    events.call_ended(sid, "completed")


def test_heroku_postgres_urls_go_through_psycopg():
    assert database_url("postgres://u:p@host:5432/db") == "postgresql+psycopg://u:p@host:5432/db"
    assert database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("sqlite:///calls.db") == "sqlite:///calls.db"


def test_a_call_is_one_record_with_every_turn(db_url):
    published, writer = writer_events(db_url)
    a_call(published)
    assert writer.flush(10) and writer.lost == 0
    row, stored = HistoryStore(db_url).call("CA0001")
    assert (row["caller"], row["called"], row["recognizer"], row["mode"]) == ("+15551230001", "+15557654321", "google",
                                                                              "stream")
    assert summary(row)["status"] == "bot-hangup" and row["ended_at"] >= row["started_at"] > time.time() - 60
    assert [(e["type"], e.get("text"), e.get("action")) for e in stored] == [
        ("bot", "Hello! How can I help?", None), ("caller", "book a table for four", None),
        ("bot", "For what time?", None), ("caller", "eight", None), ("bot", "Sorry, I'm having trouble.", None),
        ("caller", "42", None), ("action", None, "barge-in"), ("bot", "Booked. Goodbye!", None),
        ("action", None, "hangup"), ("end", None, None)]
    turn = stored[2]
    assert (turn["chatbot_ms"], turn["gateway_ms"]) == (120.0, 31.5)
    assert stored[4]["error"] == "answered HTTP 500" and stored[5]["input"] == "dtmf"
    listed = HistoryStore(db_url).recent()
    assert [(c["call_sid"], c["turns"]) for c in listed] == [("CA0001", 3)]


def test_events_written_twice_or_by_two_processes_make_one_record(db_url):
    first, first_writer = writer_events(db_url)
    second, second_writer = writer_events(db_url)
    captured: list[dict] = []
    first.writer.add = lambda event, add=first_writer.add: (captured.append(event), add(event))[1]
    first.call_started("CA0002", "+15551230002", "+15557654321", "google", "stream")
    first.caller_said("CA0002", "hello")
    first.bot_said("CA0002", Reply("Hi!"), chatbot_ms=10.0, total_ms=12.0)
    second.caller_said("CA0002", "goodbye")  # the call moved to another process
    second.bot_said("CA0002", Reply("Bye", action_type="hangup"), chatbot_ms=10.0, total_ms=12.0)
    second.call_ended("CA0002", "completed")
    first.call_ended("CA0002", "completed")  # the stream's stop, heard by the first process: the same end
    assert first_writer.flush(10) and second_writer.flush(10)
    for event in captured:  # a batch retried after a timeout that had in fact committed
        second_writer.add(event)
    assert second_writer.flush(10)
    store = HistoryStore(db_url)
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(calls)).scalar() == 1
        kinds = [r.type for r in connection.execute(select(events.c.type).order_by(events.c.at))]
    assert sorted(kinds) == sorted(["caller", "bot", "caller", "bot", "action", "end"])
    row, _ = store.call("CA0002")
    assert row["caller"] == "+15551230002" and summary(row)["status"] == "bot-hangup"


def test_metadata_keeps_no_words(db_url):
    published, writer = writer_events(db_url, words=False)
    a_call(published, "CA0003")
    assert writer.flush(10)
    row, stored = HistoryStore(db_url).call("CA0003")
    assert row["caller"] == "+15551230001" and summary(row)["status"] == "bot-hangup"
    assert [e["type"] for e in stored if "text" in e] == []
    assert [e.get("chatbot_ms") for e in stored if e["type"] == "bot"] == [None, 120.0, 3000.0, 80.0]


@pytest.mark.parametrize("ending, outcome", [
    (lambda ev, sid: ev.call_ended(sid, "completed"), "caller-hangup"),
    (lambda ev, sid: (ev.action(sid, "transfer", target="+15550001111"), ev.action(sid, "transferred"),
                      ev.call_ended(sid)), "transferred"),
    (lambda ev, sid: (ev.action(sid, "transfer", target="+15550001111"), ev.action(sid, "transfer-failed"),
                      ev.call_ended(sid)), "caller-hangup"),
    (lambda ev, sid: (ev.action(sid, "no-input", text="Goodbye"), ev.call_ended(sid)), "no-input"),
    (lambda ev, sid: (ev.action(sid, "call-limit"), ev.call_ended(sid)), "call-limit"),
    (lambda ev, sid: (ev.bot_said(sid, Reply("Sorry"), 1.0, 2.0, error="HTTP 500"), ev.call_ended(sid)), "error"),
    (lambda ev, sid: ev.call_ended(sid, "failed"), "error"),
])
def test_how_a_call_ended(tmp_path, ending, outcome):
    url = f"sqlite:///{tmp_path}/history.db"
    published, writer = writer_events(url)
    published.call_started("CA0004", "+15551230004", "+1555", "sphinx", "stream")
    published.caller_said("CA0004", "hi")
    ending(published, "CA0004")
    assert writer.flush(10)
    row, _ = HistoryStore(url).call("CA0004")
    assert summary(row)["status"] == outcome and row["ended_at"] is not None


def test_old_calls_are_pruned(db_url):
    store = HistoryStore(db_url)
    store.create_schema()
    now = time.time()
    for sid, age_days in (("CAold", 31), ("CAnew", 29)):
        at = now - age_days * 86400
        store.write([{"id": f"{sid}-s", "call_sid": sid, "type": "start", "at": at, "caller": "+1"},
                     {"id": f"{sid}-c", "call_sid": sid, "type": "caller", "at": at, "text": "hello"}])
    assert store.prune(30, now) == 1
    assert [c["call_sid"] for c in store.recent()] == ["CAnew"]
    assert store.call("CAold") == (None, [])


def test_a_database_that_goes_away_costs_history_only(postgres, caplog):
    store = HistoryStore(postgres.url)
    published, writer = writer_events(postgres.url)
    published.call_started("CA0005", "+15551230005", "+1555", "google", "stream")
    assert writer.flush(10) and writer.lost == 0
    postgres.stop()
    try:
        with caplog.at_level(logging.ERROR, logger="gateway.monitor.writer"):
            for n in range(50):
                published.caller_said("CA0005", f"turn {n}")  # returns at once: the call is not held
            assert writer.flush(30)
        assert writer.lost == 50 and not writer.healthy
        assert any("database unavailable" in r.getMessage() and "calls go on" in r.getMessage()
                   for r in caplog.records), caplog.text
        assert any("50 events not stored" in r.getMessage() or "events not stored" in r.getMessage()
                   for r in caplog.records)
    finally:
        postgres.start()
    published.caller_said("CA0005", "back again")
    assert writer.flush(30) and writer.healthy
    _, stored = store.call("CA0005")
    assert [e["text"] for e in stored] == ["back again"]


def test_events_heard_out_of_order_still_tell_how_the_call_ended():
    from gateway.monitor.live import LiveView

    # Through Redis, the end (from /status on one process) may arrive before the goodbye's hangup (from another).
    view, t = LiveView(), time.time()
    start = {"id": "a", "call_sid": "CA9", "type": "start", "at": t, "caller": "+1555"}
    goodbye = {"id": "b", "call_sid": "CA9", "type": "bot", "at": t + 1, "text": "Bye", "chatbot_ms": 5.0}
    hangup = {"id": "c", "call_sid": "CA9", "type": "action", "at": t + 1.001, "action": "hangup"}
    end = {"id": "CA9:end", "call_sid": "CA9", "type": "end", "at": t + 2, "status": "completed"}
    for event in (start, end, hangup, goodbye, end, {**hangup, "at": t + 3, "id": "late"}):
        view.add(event)
    call, seen = view.call("CA9")
    assert call["status"] == "bot-hangup" and call["ended_at"] == t + 2
    assert [e["id"] for e in seen] == ["CA9:end", "c", "b", "late"]  # the page sorts; the view keeps each once


def test_history_settings_are_checked_at_start_up():
    from gateway.config import Config, ConfigError

    base = {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t"}
    config = Config.from_env(base)
    assert (config.call_history, config.call_history_days, config.monitor_password) == ("full", 30, None)
    assert config.database_url == "sqlite:///chatline-history.db"
    config = Config.from_env({**base, "CALL_HISTORY": "Metadata", "CALL_HISTORY_DAYS": "0", "MONITOR_PASSWORD": "pw",
                              "DATABASE_URL": "postgres://u:secret@db/x"})
    assert (config.call_history, config.call_history_days, config.monitor_password) == ("metadata", 0, "pw")
    assert "secret" not in repr(config) and "pw" not in repr(config)
    with pytest.raises(ConfigError) as error:
        Config.from_env({**base, "CALL_HISTORY": "everything", "CALL_HISTORY_DAYS": "-1"})
    assert "CALL_HISTORY must be one of full, metadata, off" in str(error.value)
    assert "CALL_HISTORY_DAYS must be a whole number" in str(error.value)


def test_metadata_words_are_shown_live_then_forgotten():
    from gateway.monitor.live import LiveView

    view, t = LiveView(words=False), time.time()
    view.add({"id": "1", "call_sid": "CA8", "type": "caller", "at": t, "text": "my card number"})
    assert view.call("CA8")[1][0]["text"] == "my card number"  # the live page shows it
    view.add({"id": "CA8:end", "call_sid": "CA8", "type": "end", "at": t + 1})
    assert [e.get("text") for e in view.call("CA8")[1]] == [None, None]


def test_an_older_history_is_migrated_at_start_up_keeping_its_calls(db_url):
    from sqlalchemy import text

    store = HistoryStore(db_url)
    with store.engine.begin() as connection:  # the tables as a first version had them: fewer columns
        connection.execute(text("CREATE TABLE chatline_calls (call_sid VARCHAR(64) PRIMARY KEY, caller VARCHAR(64), "
                                "called VARCHAR(64), started_at FLOAT NOT NULL, ended_at FLOAT)"))
        connection.execute(text("INSERT INTO chatline_calls (call_sid, caller, started_at, ended_at) "
                                "VALUES ('CAolder', '+15551230007', :at, :at + 60)"), {"at": time.time() - 3600})
    published, writer = writer_events(db_url)  # start-up: the writer creates and migrates the schema
    published.call_started("CAnewer", "+15551230008", "+1555", "google", "stream")
    published.call_ended("CAnewer", "completed")
    assert writer.flush(10) and writer.lost == 0
    older, _ = store.call("CAolder")
    assert older["caller"] == "+15551230007" and summary(older)["status"] == "caller-hangup"
    assert summary(store.call("CAnewer")[0])["status"] == "caller-hangup"


def test_a_call_moved_to_another_process_keeps_when_it_started(tmp_path):
    url = f"sqlite:///{tmp_path}/history.db"
    first, first_writer = writer_events(url)
    second, second_writer = writer_events(url)
    first.call_started("CA0006", "+15551230006", "+1555", "google", "stream")
    assert first_writer.flush(10)
    began = HistoryStore(url).call("CA0006")[0]["started_at"]
    second.caller_said("CA0006", "hello")  # the next process hears the caller first...
    second.call_started("CA0006", "+15551230006", "+1555", "google", "stream", started_at=began)  # ...then /resume
    assert second_writer.flush(10)
    row, _ = HistoryStore(url).call("CA0006")
    assert row["started_at"] == began and row["caller"] == "+15551230006"
