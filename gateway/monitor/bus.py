"""How call events reach every process's watchers: straight into this process, or through Redis pub/sub."""
from __future__ import annotations

import json
import logging
import queue
import threading
import time

import redis

from .. import metrics
from chatline_common.redis_client import redis_client

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
        # Few retries: a turn never waits for this client (its own thread sends), and a dead Redis is told at once.
        self._client = redis_client(url, socket_timeout=3, retries=1)
        self._outbox: queue.Queue = queue.Queue(SEND_QUEUE)
        self._logged_at = 0.0
        self._started = False
        self._lock = threading.Lock()
        self._sent = threading.Condition(self._lock)
        self._unsent = 0  # queued and not yet published or given up
        self._stopped = threading.Event()

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
        with self._lock:
            self._unsent += 1
        try:
            self._outbox.put_nowait(event)
        except queue.Full:
            self._settle()
            self.lost += 1
            metrics.call_events_lost(1, "watchers")
            self.view.add(event)

    def close(self, timeout: float = 3.0) -> bool:
        """At shutdown: publish what is queued (at most `timeout` seconds), then stop listening. True when every
        event went out; the rest is counted lost and logged."""
        with self._sent:
            published = self._sent.wait_for(lambda: self._unsent <= 0, timeout)
            unsent = self._unsent
        self._stopped.set()
        if not published:
            self.lost += unsent
            log.warning("monitor: %d call events not published to Redis at shutdown (still unsent after %g s)",
                        unsent, timeout)
        return published

    def _settle(self) -> None:
        with self._sent:
            self._unsent -= 1
            self._sent.notify_all()

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
            finally:
                self._settle()

    def _listen_loop(self) -> None:
        while not self._stopped.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(CHANNEL)
                while not self._stopped.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._deliver(message["data"])
            except redis.RedisError as exc:
                metrics.redis_error("monitor")
                self._complain(f"lost the Redis call-event channel ({type(exc).__name__}: {exc}); reconnecting")
                self._stopped.wait(RETRY_SECONDS)
            finally:
                pubsub.close()

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
