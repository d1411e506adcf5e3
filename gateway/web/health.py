"""The platform's and the operator's views of a process: /healthz (alive), /readyz (can take calls), /metrics."""
from __future__ import annotations

import logging
import threading

from flask import Blueprint, Response, abort, current_app, jsonify, request

from .. import metrics
from ..monitor.auth import authorized, challenge

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)
CHECK_TIMEOUT_SECONDS = 1.0  # a router polls often: an unreachable Redis must answer "not ready" soon, not hang


@bp.route("/healthz")
def healthz():
    """Alive: this process answers requests (no auth, no signature: the platform's liveness check)."""
    return jsonify(status="ok")


@bp.route("/readyz")
def readyz():
    """Ready for new calls: not draining, Redis and the history database reachable where configured; else 503 with
    the reasons, so a router stops sending calls here."""
    services = current_app.extensions["chatline"]
    problems = []
    if services.drain.draining:
        problems.append("draining: this process is shutting down and hands its calls on")
    if services.config.redis_url:
        problems += _check("Redis", lambda: _redis_client(services.config.redis_url).ping())
    if services.events.store is not None:
        problems += _check("history database", services.events.store.ping)
    if problems:
        return jsonify(ready=False, reason="; ".join(problems)), 503
    return jsonify(ready=True)


def _check(name: str, probe) -> list[str]:
    """Run `probe`; an error is a reason not to be ready (its detail goes to the log, not to the unauthenticated
    answer, which says only the kind of error)."""
    try:
        probe()
        return []
    except Exception as exc:  # the probe's boundary: whatever fails, the answer is a clear 503
        log.warning("readyz: %s unreachable (%s: %s)", name, exc.__class__.__name__, str(exc).splitlines()[0][:200])
        return [f"{name} unreachable ({exc.__class__.__name__})"]


_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


def _redis_client(url: str):
    """A Redis client of the readiness check's own, with short timeouts and no retries, unlike the call state's
    (which retries through a restart): the check must say at once that Redis is gone."""
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            from chatline_common.redis_client import redis_client

            client = _clients[url] = redis_client(url, socket_timeout=CHECK_TIMEOUT_SECONDS,
                                                   connect_timeout=CHECK_TIMEOUT_SECONDS, retries=0)
        return client


@bp.route("/metrics")
def prometheus_metrics():
    """The whole service's figures (every worker's) for Prometheus, behind the monitor's password; 404 without one."""
    password = current_app.extensions["chatline"].config.monitor_password
    if not password:
        abort(404)
    if not authorized(request, password):
        return challenge()
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})
