"""Every Prometheus metric of the gateway, with one small function per thing counted, so a call site is one line.

Under gunicorn the workers share their figures through files in PROMETHEUS_MULTIPROC_DIR (gateway/gunicorn_conf.py
sets it in the master): prometheus-client picks its multiprocess mode when it is first imported, so it is imported
here only when a metric is first used, in the worker, never while the master loads the app's package. This module
imports nothing else from the gateway, so every layer may call it, as every layer reads gateway/config.py.
"""
from __future__ import annotations

import os
import threading

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# Turn and chatbot latencies: a turn past 2 s is a caller waiting in silence, so the buckets are fine below that.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


class _Metrics:
    """The metric objects, made once per process on first use."""

    def __init__(self):
        from prometheus_client import Counter, Gauge, Histogram

        live = {"multiprocess_mode": "livesum"}  # a process that dies holds nothing any more
        self.live_calls = Gauge("chatline_live_calls", "Calls this process is hearing now (their conversations)",
                                **live)
        self.live_streams = Gauge("chatline_live_streams", "Media Stream websockets open in this process", **live)
        self.turn_seconds = Histogram("chatline_turn_seconds", "A turn: from the caller's words to the call hearing "
                                      "the answer", buckets=LATENCY_BUCKETS)
        self.chatbot_seconds = Histogram("chatline_chatbot_seconds", "How long the chatbot took to answer a turn",
                                         buckets=LATENCY_BUCKETS)
        self.chatbot_errors = Counter("chatline_chatbot_errors", "Turns the chatbot failed (the caller heard the "
                                      "apology)")
        self.recognizer_reconnects = Counter("chatline_recognizer_reconnects", "Recognizer streams that failed and "
                                             "were opened again")
        self.recognizer_outages = Counter("chatline_recognizer_outages", "Times a call's recognition went down "
                                          "(SPEECH_OUTAGE_SECONDS of failures, or a refused stream)")
        self.barge_ins = Counter("chatline_barge_ins", "Prompts stopped because the caller spoke over them")
        self.reprompts = Counter("chatline_reprompts", "Reprompts said to a silent caller")
        self.texts_sent = Counter("chatline_text_messages_sent", "Text messages sent to callers")
        self.texts_refused = Counter("chatline_text_messages_refused", "Text messages Twilio refused, by error code",
                                     ["code"])
        self.events_lost = Counter("chatline_call_events_lost", "Call events that did not reach the history or the "
                                   "other processes' watchers", ["to"])
        self.redis_errors = Counter("chatline_redis_errors", "Redis errors, by where they were met", ["where"])


_metrics: _Metrics | None = None
_lock = threading.Lock()


def _m() -> _Metrics:
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = _Metrics()
    return _metrics


def live_calls(count: int) -> None:
    """This process now hears `count` calls."""
    _m().live_calls.set(count)


def stream_opened() -> None:
    """A Media Stream websocket was accepted."""
    _m().live_streams.inc()


def stream_closed() -> None:
    """A Media Stream websocket is over."""
    _m().live_streams.dec()


def turn_answered(seconds: float) -> None:
    """A turn's answer reached the call `seconds` after the caller's words."""
    _m().turn_seconds.observe(seconds)


def chatbot_answered(seconds: float, failed: bool = False) -> None:
    """The chatbot answered a turn (or failed to: the apology) in `seconds`."""
    _m().chatbot_seconds.observe(seconds)
    if failed:
        _m().chatbot_errors.inc()


def recognizer_reconnect() -> None:
    """A recognizer's stream failed; another is opened."""
    _m().recognizer_reconnects.inc()


def recognizer_outage() -> None:
    """A call's recognition is reported down."""
    _m().recognizer_outages.inc()


def barge_in() -> None:
    """The caller spoke over a prompt and it was stopped."""
    _m().barge_ins.inc()


def reprompt() -> None:
    """A silent caller was asked again."""
    _m().reprompts.inc()


def text_message_sent() -> None:
    """A text message went to the caller (contract section 8)."""
    _m().texts_sent.inc()


def text_message_refused(code: str | int | None) -> None:
    """Twilio refused a text message with error `code` (21211, 21610, ...; None when it gave none)."""
    _m().texts_refused.labels(code=str(code or "unknown")).inc()


def call_events_lost(count: int, to: str) -> None:
    """`count` call events did not reach `to`: "history" (the database) or "watchers" (other processes)."""
    _m().events_lost.labels(to=to).inc(count)


def redis_error(where: str) -> None:
    """A Redis error met at `where` (webhook, stream-recovery, signals, monitor)."""
    _m().redis_errors.labels(where=where).inc()


def exposition() -> tuple[bytes, str]:
    """The whole service's metrics in Prometheus's text format, and its content type: every worker's figures under
    gunicorn (multiprocess mode), else this process's."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client import multiprocess

    _m()  # a scrape before any call still lists every metric
    if os.environ.get(MULTIPROC_DIR):
        registry = CollectorRegistry()  # a fresh one per scrape, as the library asks: it reads the files anew
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
