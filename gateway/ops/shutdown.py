"""The last steps of a stopping process: what it published reaches the history and Redis, its listeners stop."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ..services import Services

log = logging.getLogger(__name__)

FLUSH_SECONDS = 6.0  # well inside gunicorn's graceful timeout (the Procfile's 25 s), after the calls were handed on


def close_services(services: Services, timeout: float = FLUSH_SECONDS) -> None:
    """Let queued text messages go, flush the call events (history writer, monitor bus), close the chatbot's
    connections and stop the Redis signals listener; never hangs. The messages first: their results are events too."""
    if services.messages is not None:  # messages already queued still go (each within its timeout)
        _step("closing the text message sender", services.messages.close)
    if _step("flushing call events", lambda: services.events.close(timeout)):
        log.info("shutdown: every call event reached the history and the monitor")
    # A ConversationRelay bot's websockets close with a clean close frame, not a dropped connection.
    _step("closing the chatbot's connections", services.chatbot.close)
    services.signals.close()  # RedisSignals' listener thread stops


def _step(what: str, action: Callable[[], object]) -> object:
    """One step of the shutdown: its result, or None after one log line when it failed (the exit goes on)."""
    try:
        return action()
    except Exception:  # the process's last boundary
        log.exception("shutdown: %s failed", what)
        return None


def close_app(app: Any, timeout: float = FLUSH_SECONDS) -> None:
    """close_services for a gateway app (gunicorn's worker_exit hook hands us the worker's app)."""
    services = getattr(app, "extensions", {}).get("chatline")
    if services is not None:
        close_services(services, timeout)
