"""The operator monitor: every call's events, live to watchers (in-process or through Redis) and into the history."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .events import CallEvents

if TYPE_CHECKING:
    from flask import Flask

    from ..config import Config

log = logging.getLogger(__name__)

__all__ = ["CallEvents", "build_events", "install"]


def build_events(config: Config) -> CallEvents:
    """The call events this configuration asks for: watchers when MONITOR_PASSWORD is set, history unless
    CALL_HISTORY=off."""
    from .bus import LocalBus, RedisBus
    from .history import HistoryStore
    from .live import LiveView
    from .writer import HistoryWriter

    view = LiveView(words=config.call_history != "metadata")
    bus = None
    if config.monitor_password:
        bus = RedisBus(config.redis_url, view) if config.redis_url else LocalBus(view)
    store = writer = None
    if config.call_history != "off":
        store = HistoryStore(config.database_url, words=config.call_history == "full")
        writer = HistoryWriter(store, config.call_history_days)
    return CallEvents(view, bus, writer, store, config.call_history)


def install(app: Flask, events: CallEvents) -> None:
    """Register /monitor and start the history (schema at start-up) and the Redis listener in this process."""
    from .reads import CallReads
    from .views import bp

    config = app.extensions["chatline"].config
    app.extensions["chatline.monitor"] = CallReads(events.view, events.store)
    app.register_blueprint(bp)
    if events.writer is not None:
        events.writer.start()
    if config.monitor_password and hasattr(events.bus, "listen"):
        events.bus.listen()
    where = "off" if events.store is None else f"{config.call_history}, kept {config.call_history_days or 'all'} days"
    log.info("call history: %s; monitor: %s", where, "at /monitor (user operator)" if config.monitor_password
             else "off (MONITOR_PASSWORD is not set)")
