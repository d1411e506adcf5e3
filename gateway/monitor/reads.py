"""What the monitor shows: this process's live view merged with the history, the history failing softly."""
from __future__ import annotations

import logging
import time

from sqlalchemy.exc import SQLAlchemyError

from .history import HistoryStore
from .live import LiveView
from .outcome import summary

log = logging.getLogger(__name__)

LIVE_WINDOW_SECONDS = 6 * 3600.0  # a call in the history with no end older than this is not shown as live
HOUR = 3600.0


class CallReads:
    """Reads for the page, the API and the event stream; a database that fails leaves what this process knows."""

    def __init__(self, view: LiveView, store: HistoryStore | None):
        self.view, self.store = view, store
        self.database_ok = True

    def _history(self, read, default):
        if self.store is None:
            return default
        try:
            found = read(self.store)
        except SQLAlchemyError as exc:
            if self.database_ok:
                log.error("monitor: cannot read the call history (%s); showing what this process knows",
                          type(exc).__name__)
            self.database_ok = False
            return default
        self.database_ok = True
        return found

    def calls(self, search: str = "", limit: int = 50) -> list[dict]:
        """Live calls first (newest first), then recent ones; each once."""
        live = {c["call_sid"]: c for c in self.view.live() if _matches(c, search)}
        since = time.time() - LIVE_WINDOW_SECONDS
        for row in self._history(lambda s: s.recent(limit, search, live_since=since), []):
            if row["call_sid"] not in live and self.view.call(row["call_sid"])[0] is None:
                live[row["call_sid"]] = summary(row)  # live on a process whose events we have not heard
        recent = {c["call_sid"]: c for c in self.view.recent(limit, search)}
        for row in self._history(lambda s: s.recent(limit, search), []):
            if row.get("ended_at") is not None:
                live.pop(row["call_sid"], None)  # its end was heard by a process whose events we do not get
                recent.setdefault(row["call_sid"], summary(row))
        ordered = sorted(recent.values(), key=lambda c: -(c["started_at"] or 0))[:limit]
        return sorted(live.values(), key=lambda c: -(c["started_at"] or 0)) + ordered

    def call(self, call_sid: str) -> dict | None:
        """A call's summary with its events so far, or None when nobody knows it."""
        known, events = self.view.call(call_sid)
        row, stored = self._history(lambda s: s.call(call_sid), (None, []))
        if known is None and row is None:
            return None
        merged = {e["id"]: e for e in stored}
        merged.update({e["id"]: e for e in events})
        ordered = sorted(merged.values(), key=lambda e: (e["at"], e["id"]))
        if known is None or (row is not None and row.get("ended_at") is not None and known["ended_at"] is None):
            known = summary({**row, "turns": sum(1 for e in ordered if e["type"] == "caller")})
        return {**known, "events": ordered}

    def latencies(self, now: float | None = None) -> list[tuple[float, float]]:
        """(at, ms) of every answered turn in the last hour, from the history and this process."""
        since = (now or time.time()) - HOUR
        found = dict(self._history(lambda s: s.latencies(since), []))
        found.update(self.view.latencies(since))
        return sorted(found.items())


def _matches(call: dict, search: str) -> bool:
    return not search or any(search in (call.get(key) or "") for key in ("call_sid", "caller", "called"))
