"""The call history in a SQL database (SQLAlchemy 2): the schema, idempotent batched writes, and the operator's reads."""
from __future__ import annotations

import logging
import time
from typing import Iterable

from sqlalchemy import (DDL, Column, Float, Index, MetaData, String, Table, Text, case, create_engine, delete, event,
                        func, inspect, or_, select, update)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from .outcome import decided

log = logging.getLogger(__name__)

metadata = MetaData()

calls = Table(
    "chatline_calls", metadata,
    Column("call_sid", String(64), primary_key=True),
    Column("caller", String(64)),
    Column("called", String(64)),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("outcome", String(32)),  # what decided how it ends (bot-hangup, transferred...); NULL: the caller's move
    Column("outcome_at", Float),  # the time of the event that decided it: a late-written older event loses
    Column("end_status", String(32)),  # Twilio's final CallStatus
    Column("transferred_to", String(256)),
    Column("recognizer", String(32)),
    Column("mode", String(16)),
    Index("ix_chatline_calls_started_at", "started_at"),
)

events = Table(
    "chatline_call_events", metadata,
    Column("id", String(80), primary_key=True),  # minted once per event: a retried batch writes nothing twice
    Column("call_sid", String(64), nullable=False),
    Column("at", Float, nullable=False),
    Column("type", String(16), nullable=False),
    Column("text", Text),  # NULL for caller and bot events with CALL_HISTORY=metadata
    Column("input", String(16)),
    Column("action", String(32)),
    Column("target", String(256)),
    Column("chatbot_ms", Float),
    Column("gateway_ms", Float),
    Column("error", Text),
    Column("status", String(32)),
    Index("ix_chatline_call_events_call", "call_sid", "at"),
    Index("ix_chatline_call_events_at", "at"),
)

EVENT_FIELDS = ("input", "action", "target", "chatbot_ms", "gateway_ms", "error", "status")
WORDS = ("caller", "bot")  # the event types whose text is the caller's or the bot's words


def database_url(url: str) -> str:
    """A DATABASE_URL as SQLAlchemy takes it: Heroku's postgres:// (and plain postgresql://) go through psycopg 3."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def make_engine(url: str, timeout: float = 3.0) -> Engine:
    """An engine that fails fast: a database that is down or slow must cost seconds of one thread, not a hang."""
    url = database_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": timeout, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _wal(connection, _record):  # readers (the page) and the writer do not block each other
            connection.execute("PRAGMA journal_mode=WAL")
        return engine
    connect_args = {}
    if url.startswith("postgresql"):
        connect_args = {"connect_timeout": max(1, int(timeout)),
                        "options": f"-c statement_timeout={int(timeout * 1000)}"}
    return create_engine(url, connect_args=connect_args, pool_pre_ping=True, pool_size=4, max_overflow=4,
                         pool_timeout=timeout)


def _insert(engine: Engine, table: Table):
    """The dialect's INSERT with ON CONFLICT (SQLite and PostgreSQL both speak it)."""
    return (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(table)


class HistoryStore:
    """Reads and writes the call history; every method may raise SQLAlchemyError (callers decide what it costs)."""

    def __init__(self, url: str, words: bool = True, timeout: float = 3.0):
        self.engine = make_engine(url, timeout)
        self.words = words  # False (CALL_HISTORY=metadata): the caller's and the bot's words are never written

    def create_schema(self) -> None:
        """Create the tables if missing, and add the columns a newer version has (every change so far is additive:
        a nullable column), so an older history keeps its calls; no Alembic needed for that."""
        try:
            self._migrate()
        except SQLAlchemyError:  # another worker did the same at the same moment: the second try sees its work
            time.sleep(0.2)
            self._migrate()

    def _migrate(self) -> None:
        metadata.create_all(self.engine)
        found = inspect(self.engine)
        for table in metadata.sorted_tables:
            have = {column["name"] for column in found.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have:
                    kind = column.type.compile(dialect=self.engine.dialect)
                    with self.engine.begin() as connection:
                        connection.execute(DDL(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
                    log.info("call history: added column %s.%s", table.name, column.name)

    def ping(self) -> None:
        """Reach the database (SELECT 1), raising what stops it: the readiness check."""
        with self.engine.connect() as connection:
            connection.execute(select(1))

    def write(self, batch: Iterable[dict]) -> None:
        """Write a batch of events in one transaction; writing the same events again changes nothing. Rows are
        inserted many at a time, and each call's row is updated once per batch, by its latest deciding event."""
        batch = list(batch)
        first_seen: dict[str, float] = {}
        deciding: dict[str, tuple[dict, str | None]] = {}
        for item in batch:
            sid = item["call_sid"]
            first_seen[sid] = min(item["at"], first_seen.get(sid, item["at"]))
            decides, outcome = decided(item)
            if decides and (sid not in deciding or item["at"] >= deciding[sid][0]["at"]):
                deciding[sid] = (item, outcome)
        stored = [self._event_row(item) for item in batch if item["type"] != "start"]
        with self.engine.begin() as connection:
            connection.execute(_insert(self.engine, calls).on_conflict_do_nothing(index_elements=["call_sid"]),
                               [{"call_sid": sid, "started_at": at} for sid, at in first_seen.items()])
            for item in batch:
                if item["type"] == "start":
                    connection.execute(self._start(item))
            if stored:
                connection.execute(_insert(self.engine, events).on_conflict_do_nothing(index_elements=["id"]), stored)
            for item in batch:
                if item["type"] == "action" and item.get("action") == "transfer" and item.get("target"):
                    connection.execute(update(calls).where(calls.c.call_sid == item["call_sid"])
                                       .values(transferred_to=item["target"]))
            for sid, (item, outcome) in deciding.items():  # the rule of outcome.follow: order of writing is moot
                at = item["at"]
                connection.execute(update(calls).where(
                    calls.c.call_sid == sid, or_(calls.c.ended_at.is_(None), calls.c.ended_at >= at),
                    or_(calls.c.outcome_at.is_(None), calls.c.outcome_at <= at)).values(outcome=outcome, outcome_at=at))
            for item in batch:
                if item["type"] == "end":
                    connection.execute(update(calls).where(calls.c.call_sid == item["call_sid"],
                                                           calls.c.ended_at.is_(None))
                                       .values(ended_at=item["at"], end_status=item.get("status")))

    def _start(self, item: dict):
        """The upsert of a call's start: who called whom, how it is heard, and the earliest start seen."""
        details = {key: item.get(key) for key in ("caller", "called", "recognizer", "mode")}
        insert = _insert(self.engine, calls).values(call_sid=item["call_sid"], started_at=item["at"], **details)
        return insert.on_conflict_do_update(index_elements=["call_sid"], set_={
            # An event of the call may have been written first, or the call moved here from another process.
            "started_at": case((calls.c.started_at < insert.excluded.started_at, calls.c.started_at),
                               else_=insert.excluded.started_at),
            **{key: func.coalesce(insert.excluded[key], calls.c[key]) for key in details}})

    def _event_row(self, item: dict) -> dict:
        """An event as its row; without the words under CALL_HISTORY=metadata."""
        text = item.get("text") if self.words or item["type"] not in WORDS else None
        return {"id": item["id"], "call_sid": item["call_sid"], "at": item["at"], "type": item["type"], "text": text,
                **{key: item.get(key) for key in EVENT_FIELDS}}

    def prune(self, days: int, now: float | None = None) -> int:
        """Delete calls (and their events) that started more than `days` days ago; returns how many calls."""
        cutoff = (now if now is not None else time.time()) - days * 86400
        with self.engine.begin() as connection:
            old = select(calls.c.call_sid).where(calls.c.started_at < cutoff)
            connection.execute(delete(events).where(events.c.call_sid.in_(old)))
            return connection.execute(delete(calls).where(calls.c.started_at < cutoff)).rowcount

    def recent(self, limit: int = 50, search: str = "", live_since: float | None = None) -> list[dict]:
        """Calls newest first (matching `search` in a number or CallSid); with `live_since`, only calls not ended
        that started after it."""
        turns = (select(events.c.call_sid, func.count().label("turns")).where(events.c.type == "caller")
                 .group_by(events.c.call_sid).subquery())
        query = (select(calls, func.coalesce(turns.c.turns, 0).label("turns"))
                 .outerjoin(turns, turns.c.call_sid == calls.c.call_sid)
                 .order_by(calls.c.started_at.desc()).limit(limit))
        if search:
            pattern = f"%{search}%"
            query = query.where(or_(calls.c.call_sid.like(pattern), calls.c.caller.like(pattern),
                                    calls.c.called.like(pattern)))
        if live_since is not None:
            query = query.where(calls.c.ended_at.is_(None), calls.c.started_at >= live_since)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def call(self, call_sid: str) -> tuple[dict | None, list[dict]]:
        """One call's row (None if unknown) and its events in order."""
        with self.engine.connect() as connection:
            row = connection.execute(select(calls).where(calls.c.call_sid == call_sid)).first()
            found = connection.execute(select(events).where(events.c.call_sid == call_sid)
                                       .order_by(events.c.at, events.c.id)).all()
        return (dict(row._mapping) if row else None), [_event(dict(r._mapping)) for r in found]

    def latencies(self, since: float) -> list[tuple[float, float]]:
        """(at, total ms) of every answered turn since `since`, oldest first: the page's latency chart."""
        query = (select(events.c.at, (events.c.chatbot_ms + events.c.gateway_ms).label("ms"))
                 .where(events.c.type == "bot", events.c.at >= since, events.c.chatbot_ms.is_not(None))
                 .order_by(events.c.at))
        with self.engine.connect() as connection:
            return [(row.at, row.ms) for row in connection.execute(query)]


def _event(row: dict) -> dict:
    """A stored event as the API shows it: only the fields it has."""
    return {key: value for key, value in row.items() if value is not None}
