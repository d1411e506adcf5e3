"""The operator's pages: /monitor, its JSON API and each call's Server-Sent Events (contract section 7)."""
from __future__ import annotations

import json
import logging
import os
import threading
import time

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request

from .auth import authorized, challenge
from .reads import CallReads

log = logging.getLogger(__name__)

HERE = os.path.dirname(os.path.abspath(__file__))
bp = Blueprint("monitor", __name__, url_prefix="/monitor", static_folder=os.path.join(HERE, "static"),
               template_folder=os.path.join(HERE, "templates"))

# Each event stream holds one of gunicorn's threads, which calls need too: a few watchers per process, and the page
# falls back to polling the JSON API when refused.
MAX_WATCHERS = 4
KEEPALIVE_SECONDS = 15.0  # a comment line now and then keeps proxies (Heroku's router: 55 s) from closing the stream
STREAM_SECONDS = 600.0  # then the browser reconnects, resuming after the last event it got (Last-Event-ID)


def _services():
    return current_app.extensions["chatline"]


def _reads() -> CallReads:
    return current_app.extensions["chatline.monitor"]


@bp.before_request
def require_operator():
    """No password configured: nothing here exists. Otherwise: the operator's credentials, or a 401."""
    password = _services().config.monitor_password
    if not password:
        abort(404)
    if not authorized(request, password):
        return challenge()
    return None


@bp.after_request
def private(response: Response) -> Response:
    """What the operator sees is not for any cache on the way."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("")
def page():
    """The page: live and recent calls, a search, the latency chart, and one call's conversation when chosen."""
    search = request.args.get("q", "").strip()[:80]
    call_sid = request.args.get("call", "").strip()[:64]
    reads = _reads()
    calls = reads.calls(search)
    chosen = reads.call(call_sid) if call_sid else None
    services = _services()
    return render_template("monitor.html", calls=calls, search=search, call=chosen, call_sid=call_sid,
                           history=services.config.call_history, lost=services.events.lost(),
                           database_ok=reads.database_ok)


@bp.get("/api/calls")
def api_calls():
    """Live calls first, then recent ones."""
    return jsonify({"calls": _reads().calls(request.args.get("q", "").strip()[:80])})


@bp.get("/api/calls/<call_sid>")
def api_call(call_sid: str):
    """One call's conversation so far."""
    found = _reads().call(call_sid)
    if found is None:
        return jsonify({"error": "no such call"}), 404
    return jsonify(found)


@bp.get("/api/latency")
def api_latency():
    """Every answered turn of the last hour: when, and how long the caller waited for the answer (ms)."""
    return jsonify({"turns": [{"at": at, "ms": ms} for at, ms in _reads().latencies()]})


@bp.get("/api/calls/<call_sid>/events")
def api_events(call_sid: str):
    """The call's events as Server-Sent Events: the past ones, then live ones until the call ends."""
    view = _services().events.view
    reads = _reads()
    if not _watchers.acquire(blocking=False):
        return Response("Too many watchers on this process; poll /monitor/api/calls/<CallSid> instead.\n",
                        status=503, mimetype="text/plain", headers={"Retry-After": "10"})
    try:
        watcher = view.watch(call_sid)  # before reading the past: an event in between arrives on the queue
        past = reads.call(call_sid)
    except Exception:
        _watchers.release()
        raise
    if past is None:
        view.unwatch(watcher)
        _watchers.release()
        return jsonify({"error": "no such call"}), 404
    resume_after = request.headers.get("Last-Event-ID", "")
    return Response(_stream(view, watcher, past, resume_after), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


_watchers = threading.BoundedSemaphore(MAX_WATCHERS)


def _stream(view, watcher, past: dict, resume_after: str):
    """Yield the SSE lines; the watcher and its slot are given back however the stream ends."""
    try:
        sent: set[str] = set()
        events = past["events"]
        ids = [e["id"] for e in events]
        start = ids.index(resume_after) + 1 if resume_after in ids else 0
        sent.update(ids[:start])
        yield "retry: 2000\n\n"
        for event in events[start:]:
            sent.add(event["id"])
            yield _sse(event)
        if past.get("ended_at") is not None or any(e["type"] == "end" for e in events):
            return
        closes_at = time.monotonic() + STREAM_SECONDS
        while time.monotonic() < closes_at and not watcher.lagged:
            event = watcher.next(KEEPALIVE_SECONDS)
            if event is None:
                yield ": still here\n\n"
                continue
            if event["id"] in sent or event["type"] == "start":
                continue
            sent.add(event["id"])
            yield _sse(event)
            if event["type"] == "end":
                return
    finally:
        view.unwatch(watcher)
        _watchers.release()


def _sse(event: dict) -> str:
    """One event as SSE: its id (for a reconnect to resume from) and the JSON on one data line."""
    return f"id: {event['id']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"
