"""How call events reach every process's watchers: straight into this process, or through Redis pub/sub."""
from __future__ import annotations

import json
import logging
import queue
import threading
import time

import redis

from .. import metrics
from .live import LiveView

log = logging.getLogger(__name__)

CHANNEL = "chatline:monitor:events"
SEND_QUEUE = 10_000
RETRY_SECONDS = 1.0
LOG_EVERY_SECONDS = 30.0


class LocalBus:
    """One process: an event is delivered where it happened."""

    def __init__(self, view: LiveView):
        self.view = view

    def send(self, event: dict) -> None:
        self.view.add(event)


class RedisBus:
    """Many processes: events go out on one Redis channel and every process's view hears all of them.

    Sending runs on its own thread so a slow or absent Redis never holds a turn; while Redis is unreachable, events
    are still delivered to this process's own watchers (and to the history), and one line says so.
    """

    def __init__(self, url: str, view: LiveView):
        self.view = view
        self.url = url
        self.lost = 0
        self._client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3, health_check_interval=30)
        self._outbox: queue.Queue = queue.Queue(SEND_QUEUE)
        self._logged_at = 0.0
        self._started = False
        self._lock = threading.Lock()

    def _start(self) -> None:
        """The sender and the listener threads, in the process that uses them (gunicorn forks before)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._send_loop, name="monitor-redis-send", daemon=True).start()
        threading.Thread(target=self._listen_loop, name="monitor-redis-listen", daemon=True).start()

    def send(self, event: dict) -> None:
        self._start()
        try:
            self._outbox.put_nowait(event)
        except queue.Full:
            self.lost += 1
            metrics.call_events_lost(1, "watchers")
            self.view.add(event)

    def listen(self) -> None:
        """Start hearing other processes' events now (the page needs them before any call of ours)."""
        self._start()

    def _send_loop(self) -> None:
        while True:
            event = self._outbox.get()
            try:
                self._client.publish(CHANNEL, json.dumps(event))
            except redis.RedisError as exc:
                self.lost += 1
                metrics.redis_error("monitor")
                metrics.call_events_lost(1, "watchers")
                self.view.add(event)  # our own watchers still see it
                self._complain(f"cannot publish call events to Redis ({type(exc).__name__}: {exc}); other "
                               "processes' watchers miss them")

    def _listen_loop(self) -> None:
        while True:
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                while True:
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._deliver(message["data"])
            except redis.RedisError as exc:
                metrics.redis_error("monitor")
                self._complain(f"lost the Redis call-event channel ({type(exc).__name__}: {exc}); reconnecting")
                time.sleep(RETRY_SECONDS)

    def _deliver(self, data: bytes) -> None:
        try:
            event = json.loads(data)
            if not isinstance(event, dict) or not {"id", "call_sid", "type", "at"} <= event.keys():
                raise ValueError("not a call event")
        except ValueError as exc:
            self._complain(f"ignored a malformed message on {CHANNEL}: {exc}")
            return
        self.view.add(event)

    def _complain(self, line: str) -> None:
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_SECONDS:
            self._logged_at = now
            log.warning("monitor: %s", line)
