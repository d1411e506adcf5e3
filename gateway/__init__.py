"""Chatline gateway: Twilio calls in, speech recognized, the chatbot's answers spoken back."""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .calls.store import InMemoryCallStore
from .chatbots import make_chatbot
from .config import Config
from .ops.drain import Drain
from .ops.limits import CallDeadlines, stream_capacity
from .calls.live_calls import LiveCalls
from .monitor import build_events, install as install_monitor
from .ops.redact import redact_secrets
from .services import Services
from .twilio.rest import CallUpdater

log = logging.getLogger("gateway")


def _configure_logging() -> None:
    """Log to stderr in one line per event, under gunicorn and in development alike."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    elif root.level > logging.INFO:
        root.setLevel(logging.INFO)
    # The SDK logs ten lines of headers per call update at INFO; its warnings and errors still show.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


def create_app(config: Config | None = None) -> Flask:
    """Build the gateway app from `config` (default: the environment and a local .env file)."""
    _configure_logging()
    if config is None:
        from dotenv import find_dotenv, load_dotenv

        load_dotenv(find_dotenv(usecwd=True))  # the .env of the directory it runs in, installed or in a checkout
        config = Config.from_env()
    redact_secrets([s for s in (config.twilio_auth_token, config.chatbot_api_key, config.deepgram_api_key,
                                config.assemblyai_api_key) if s])
    app = Flask(__name__)  # gateway/templates, packaged with the code
    # Heroku's router (and ngrok) terminate TLS: trust one hop of X-Forwarded-* to see the public URL.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)
    client = _redis_client(config)  # REDIS_URL: the call state (and an OpenAI chatbot's history) in Redis
    store = InMemoryCallStore() if client is None else _redis_store(client)
    services = Services(
        config=config,
        store=store,
        chatbot=make_chatbot(config, store),
        updater=CallUpdater(config.twilio_account_sid, config.twilio_auth_token, config.twilio_api_url),
        executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="turn"),
        live=LiveCalls(),
        events=build_events(config),
    )
    if client is not None:
        _share_through_redis(app, services, client)
    elif (os.environ.get("GATEWAY_WORKERS") or "1").strip() not in ("", "1"):
        log.warning("GATEWAY_WORKERS is above 1 without REDIS_URL: a webhook or stream that reaches a worker which "
                    "did not answer its call finds no state for it; set REDIS_URL to share call state")
    services.signals.subscribe(services.heard_signal)
    services.deadlines = CallDeadlines(services)
    services.drain = Drain(services)
    app.extensions["chatline"] = services
    from .web import gather, rest_of_answer, resume, stream, voice

    app.register_blueprint(voice.bp)
    app.register_blueprint(gather.bp)
    app.register_blueprint(resume.bp)
    install_monitor(app, services.events)
    if config.stt_provider != "twilio":  # Gather mode needs no websocket at all
        app.register_blueprint(stream.bp)
        app.register_blueprint(rest_of_answer.bp)
    available = config.other_recognizers()
    log.info("speech recognition: %s (%s)%s; chatbot protocol: %s", config.stt_provider, config.stt_provider_reason,
             f"; also available: {', '.join(available)}" if available else "", config.chatbot_protocol)
    if services.drain.install():
        log.info("graceful shutdown: on SIGTERM live calls finish their turn and move to the next process")
    log.info("limits: %s, %d stream messages/s, calls up to %s; transcripts %s in the logs",
             stream_capacity(config), config.max_stream_messages_per_second,
             f"{config.max_call_seconds} s" if config.max_call_seconds else "any length",
             "written" if config.log_transcripts else "not written")
    if not config.validate_signatures:
        log.warning("VALIDATE_SIGNATURES is off: anyone can post to the webhooks")
    return app


def _redis_client(config: Config):
    """A Redis client for REDIS_URL, or None without it (redis-py is imported only then)."""
    if not config.redis_url:
        return None
    from .calls.redis_store import connect

    return connect(config.redis_url)


def _redis_store(client):
    from .calls.redis_store import RedisCallStore

    return RedisCallStore(client)


def _share_through_redis(app: Flask, services: Services, client) -> None:
    """REDIS_URL: call state, turns and signals in Redis, so any process serves any webhook or stream of any call,
    and a call whose stream's process dies gets a new stream from another."""
    import redis

    from .calls.redis_store import RedisSignals, RedisTurnLocks
    from .ops.stream_recovery import StreamRecovery

    config = services.config
    # A turn holds its lock through the chatbot's answer and the wait for a prompt that may not be cut; a holder that
    # dies frees it at this expiry, and the fencing check drops a late answer of one that only stalled.
    services.turns = RedisTurnLocks(client, expiry_seconds=config.chatbot_timeout * 2 + 30, owner=services.me)
    services.signals = RedisSignals(client)
    app.register_error_handler(redis.RedisError, _store_unavailable)
    if config.stt_provider != "twilio":
        StreamRecovery(services, services.store, services.turns).start()
    log.info("call state in Redis (%s): every process serves every call", redact_url(config.redis_url))


def _store_unavailable(exc: Exception):
    """A webhook while Redis is unreachable: the caller hears the apology and the call keeps listening."""
    from flask import Response, current_app, request

    from .dialogue.answers import apology_document
    from .web.signed import public_base

    log.error("call state unavailable (%s: %s); %s answered with the apology", exc.__class__.__name__, exc,
              request.path)
    return Response(apology_document(current_app.extensions["chatline"].config, public_base(request)),
                    mimetype="text/xml")


def redact_url(url: str) -> str:
    """REDIS_URL without its password, for the log."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"
