"""The last steps of a stopping process: what it published reaches the history and Redis, its listeners stop."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..services import Services

log = logging.getLogger(__name__)

FLUSH_SECONDS = 6.0  # well inside gunicorn's graceful timeout (the Procfile's 25 s), after the calls were handed on


def close_services(services: Services, timeout: float = FLUSH_SECONDS) -> None:
    """Let queued text messages go, flush the call events (history writer, monitor bus), close the chatbot's
    connections and stop the Redis signals listener; never hangs. The messages first: their results are events too."""
    # Text messages already queued still go (each within its timeout), then the sender's threads stop.
    if services.messages is not None:
        try:
            services.messages.close()
        except Exception:  # the process's last boundary: log it, the exit goes on
            log.exception("shutdown: closing the text message sender failed")
    try:
        if services.events.close(timeout):
            log.info("shutdown: every call event reached the history and the monitor")
    except Exception:  # the process's last boundary: log it, the exit goes on
        log.exception("shutdown: flushing call events failed")
    try:  # a ConversationRelay bot's websockets close with a clean close frame, not a dropped connection
        services.chatbot.close()
    except Exception:  # the process's last boundary
        log.exception("shutdown: closing the chatbot's connections failed")
    services.signals.close()  # RedisSignals' listener thread stops


def close_app(app: Any, timeout: float = FLUSH_SECONDS) -> None:
    """close_services for a gateway app (gunicorn's worker_exit hook hands us the worker's app)."""
    services = getattr(app, "extensions", {}).get("chatline")
    if services is not None:
        close_services(services, timeout)
