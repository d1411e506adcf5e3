"""What this process has heard of calls lately (its own and, through Redis, every other process's), and the watchers."""
from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict

from .outcome import follow, summary

WATCHER_QUEUE = 1000  # events a slow watcher may fall behind by before it is cut off (its page reconnects)


class Watcher:
    """One watcher of one call: its events arrive on a queue; `lagged` once it fell too far behind."""

    def __init__(self, call_sid: str):
        self.call_sid = call_sid
        self.events: queue.Queue = queue.Queue(WATCHER_QUEUE)
        self.lagged = False

    def offer(self, event: dict) -> None:
        """Hand the watcher an event without ever blocking the publisher."""
        try:
            self.events.put_nowait(event)
        except queue.Full:
            self.lagged = True

    def next(self, timeout: float) -> dict | None:
        """The next event, or None after `timeout` seconds of nothing."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None


class LiveView:
    """Calls by CallSid with their events, in memory: live ones, and the last `keep_ended` that ended."""

    def __init__(self, keep_ended: int = 200, forget_open_after: float = 6 * 3600.0, words: bool = True):
        self._calls: OrderedDict[str, dict] = OrderedDict()  # call_sid -> {"record", "events", "ids"}
        self._watchers: dict[str, list[Watcher]] = {}
        self._lock = threading.Lock()
        self.keep_ended = keep_ended
        self.forget_open_after = forget_open_after  # a call whose end never reached us is not live forever
        self.words = words  # False: words are shown while the call is live, dropped from memory at its end

    def add(self, event: dict) -> bool:
        """Take an event (any thread); a repeat of one already seen is ignored. True when it was new."""
        sid = event["call_sid"]
        with self._lock:
            call = self._calls.get(sid)
            if call is None:
                call = self._calls[sid] = {"record": {"call_sid": sid, "started_at": event["at"]}, "events": [],
                                           "ids": set()}
            if event["id"] in call["ids"]:
                return False
            call["ids"].add(event["id"])
            if event["type"] != "start":
                call["events"].append(event)
            follow(call["record"], event)
            if event["type"] == "end":
                if not self.words:
                    call["events"] = [{k: v for k, v in e.items() if k != "text" or e["type"] not in ("caller", "bot")}
                                      for e in call["events"]]
                self._calls.move_to_end(sid)
                self._forget_old()
            watchers = list(self._watchers.get(sid, ()))
        for watcher in watchers:
            watcher.offer(event)
        return True

    def _forget_old(self) -> None:
        """Keep only the newest `keep_ended` ended calls, and no call older than `forget_open_after` (under the lock)."""
        ended = [sid for sid, call in self._calls.items() if call["record"].get("ended_at") is not None]
        for sid in ended[:max(0, len(ended) - self.keep_ended)]:
            del self._calls[sid]
        cutoff = time.time() - self.forget_open_after
        for sid in [sid for sid, call in self._calls.items() if call["record"]["started_at"] < cutoff]:
            del self._calls[sid]

    def live(self) -> list[dict]:
        """Summaries of the calls not ended, newest first."""
        with self._lock:
            records = [dict(c["record"]) for c in self._calls.values() if c["record"].get("ended_at") is None]
        return sorted((summary(r) for r in records), key=lambda s: -s["started_at"])

    def recent(self, limit: int = 50, search: str = "") -> list[dict]:
        """Summaries of ended calls newest first, matching `search` in a number or the CallSid."""
        with self._lock:
            records = [dict(c["record"]) for c in self._calls.values() if c["record"].get("ended_at") is not None]
        found = [summary(r) for r in records if not search or any(
            search in (r.get(key) or "") for key in ("call_sid", "caller", "called"))]
        return sorted(found, key=lambda s: -s["started_at"])[:limit]

    def call(self, call_sid: str) -> tuple[dict | None, list[dict]]:
        """A call's summary (None if unknown here) and its events so far."""
        with self._lock:
            call = self._calls.get(call_sid)
            if call is None:
                return None, []
            return summary(dict(call["record"])), list(call["events"])

    def latencies(self, since: float) -> list[tuple[float, float]]:
        """(at, total ms) of the answered turns this process knows of since `since`."""
        with self._lock:
            found = [(e["at"], e["chatbot_ms"] + e.get("gateway_ms", 0.0)) for c in self._calls.values()
                     for e in c["events"] if e["type"] == "bot" and e["at"] >= since and e.get("chatbot_ms") is not None]
        return sorted(found)

    def watch(self, call_sid: str) -> Watcher:
        """Start receiving a call's new events (before reading its past ones, so nothing falls in between)."""
        watcher = Watcher(call_sid)
        with self._lock:
            self._watchers.setdefault(call_sid, []).append(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        """Stop a watcher (idempotent)."""
        with self._lock:
            watchers = self._watchers.get(watcher.call_sid, [])
            if watcher in watchers:
                watchers.remove(watcher)
            if not watchers:
                self._watchers.pop(watcher.call_sid, None)

    def watching(self) -> int:
        """How many watchers are connected to this process."""
        with self._lock:
            return sum(len(w) for w in self._watchers.values())
