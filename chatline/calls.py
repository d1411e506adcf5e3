"""`chatline calls`: the call history from the database at DATABASE_URL, as a table, JSON or CSV."""
from __future__ import annotations

import csv
import io
import json
import os
from datetime import datetime
from pathlib import Path

from chatline.console import ChatlineError, say

DEFAULT_DATABASE_URL = "sqlite:///chatline-history.db"  # the gateway's default: a file in the working directory
CALL_COLUMNS = ("call_sid", "caller", "called", "started_at", "ended_at", "status", "turns", "transferred_to",
                "recognizer", "mode")
EVENT_COLUMNS = ("at", "type", "text", "input", "action", "target", "chatbot_ms", "gateway_ms", "error", "status")


def _store(url: str | None):
    """The history at `url` (default DATABASE_URL, else the gateway's default file); a missing SQLite file is an
    error here, not a new empty database."""
    from sqlalchemy.engine import make_url

    from gateway.monitor.history import HistoryStore, database_url

    url = url or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    parsed = make_url(database_url(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).exists():
        raise ChatlineError(f"no call history at {parsed.database} yet: the gateway writes it as calls come in "
                            "(DATABASE_URL says where)")
    return HistoryStore(url), parsed.render_as_string(hide_password=True)


def _read(url: str | None, read):
    from sqlalchemy.exc import SQLAlchemyError

    store, shown = _store(url)
    try:
        return read(store)
    except SQLAlchemyError as exc:
        raise ChatlineError(f"cannot read the call history at {shown}: {str(exc).splitlines()[0]}") from None
    finally:
        store.engine.dispose()


def _when(at: float | None, with_date: bool = True) -> str:
    if at is None:
        return ""
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def _csv(rows: list[dict], columns: tuple[str, ...]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: (_when(row.get(key)) if key in ("started_at", "ended_at", "at") else row.get(key))
                         for key in columns})
    return out.getvalue().rstrip("\n")


def list_calls(url: str | None, limit: int, search: str, form: str) -> None:
    """Print the most recent calls, newest first."""
    from gateway.monitor.outcome import summary

    found = [summary(row) for row in _read(url, lambda store: store.recent(limit, search))]
    if form == "json":
        say(json.dumps({"calls": found}, indent=2))
    elif form == "csv":
        say(_csv(found, CALL_COLUMNS))
    elif not found:
        say("no calls" + (f" matching {search!r}" if search else "") + " in the history")
    else:
        say(f"{'started':<19}  {'caller':<16}  {'outcome':<13}  {'turns':>5}  call")
        for c in found:
            status = c["status"] + (f" → {c['transferred_to']}" if c["status"] == "transferred" else "")
            say(f"{_when(c['started_at']):<19}  {c['caller'] or '?':<16}  {status:<13}  {c['turns']:>5}  {c['call_sid']}")


def show_call(url: str | None, call_sid: str, form: str) -> None:
    """Print one call's conversation."""
    from gateway.monitor.outcome import summary

    row, events = _read(url, lambda store: store.call(call_sid))
    if row is None:
        raise ChatlineError(f"no call {call_sid} in the history")
    call = {**summary({**row, "turns": sum(1 for e in events if e["type"] == "caller")}), "events": events}
    if form == "json":
        say(json.dumps(call, indent=2))
        return
    if form == "csv":
        say(_csv(events, EVENT_COLUMNS))
        return
    length = f" ({call['ended_at'] - call['started_at']:.0f} s)" if call["ended_at"] else ""
    say(f"call {call_sid} from {call['caller'] or '?'} to {call['called'] or '?'}, {_when(call['started_at'])} to "
        f"{_when(call['ended_at'], False) or 'now'}{length}: {call['status']}; {call['recognizer'] or '?'}, "
        f"{call['mode'] or '?'} mode")
    for event in events:
        say(f"  {_when(event['at'], False)}  {_describe(event)}")


def _describe(event: dict) -> str:
    kind, text = event["type"], event.get("text")
    if kind == "caller":
        return f"caller: {'keys ' if event.get('input') == 'dtmf' else ''}{text if text is not None else '(not stored)'}"
    if kind == "bot":
        timing = (f"  [chatbot {event['chatbot_ms']:.0f} ms + gateway {event.get('gateway_ms', 0):.0f} ms]"
                  if event.get("chatbot_ms") is not None else "")
        failed = f"  [chatbot failed: {event['error']}]" if event.get("error") else ""
        return f"bot:    {text if text is not None else '(not stored)'}{timing}{failed}"
    if kind == "action":
        target = f" {event['target']}" if event.get("target") else ""
        return f"[{event.get('action')}{target}]" + (f" {text}" if text else "")
    return f"[call ended: {event.get('status') or 'completed'}]"
