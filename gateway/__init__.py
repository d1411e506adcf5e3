"""Chatline gateway: Twilio calls in, speech recognized, the chatbot's answers spoken back."""
from __future__ import annotations

import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .calls.store import CallStore
from .chatbots import Chatbot
from .config import Config
from . import metrics
from .monitor import CallEvents, install as install_monitor
from .ops.limits import stream_capacity
from .ops.redact import redact_secrets
from .twilio.rest import CallUpdater
from .wiring import Wiring, build, start

log = logging.getLogger("gateway")


def _configure_logging(level: str) -> None:
    """Log to stderr in one line per event, under gunicorn and in development alike."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    elif root.level > logging.INFO:
        root.setLevel(logging.INFO)
    # The SDK logs ten lines of headers per call update at INFO; its warnings and errors still show.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


def create_app(config: Config | None = None, *, store: CallStore | None = None, chatbot: Chatbot | None = None,
               updater: CallUpdater | None = None, events: CallEvents | None = None,
               start_background: bool = True) -> Flask:
    """Build the gateway app from `config` (default: the environment and a local .env file). The collaborators are
    built once (wiring.build; a test may hand in its own store, chatbot, updater or monitor events); with
    `start_background` false no thread or signal handler is started (wiring.start)."""
    if config is None:
        config = Config.load()
    _configure_logging(config.log_level)
    redact_secrets([s for s in (config.twilio_auth_token, config.chatbot_api_key, config.deepgram_api_key,
                                config.assemblyai_api_key) if s])
    app = Flask(__name__)  # gateway/templates, packaged with the code
    # Heroku's router (and ngrok) terminate TLS: trust one hop of X-Forwarded-* to see the public URL.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)
    wiring = build(config, store=store, chatbot=chatbot, updater=updater, events=events)
    services = wiring.services
    if wiring.redis is not None:
        import redis

        app.register_error_handler(redis.RedisError, _store_unavailable)
        log.info("call state in Redis (%s): every process serves every call", redact_url(config.redis_url))
    elif config.workers > 1:
        log.warning("GATEWAY_WORKERS is above 1 without REDIS_URL: a webhook or stream that reaches a worker which "
                    "did not answer its call finds no state for it; set REDIS_URL to share call state")
    app.extensions["chatline"] = services
    app.extensions["chatline.wiring"] = wiring
    from .web import gather, health, rest_of_answer, resume, stream, voice

    app.register_blueprint(voice.bp)
    app.register_blueprint(gather.bp)
    app.register_blueprint(resume.bp)
    app.register_blueprint(health.bp)
    install_monitor(app, services.events)
    if config.stt_provider != "twilio":  # Gather mode needs no websocket at all
        app.register_blueprint(stream.bp)
        app.register_blueprint(rest_of_answer.bp)
    available = config.other_recognizers()
    log.info("speech recognition: %s (%s)%s; chatbot protocol: %s", config.stt_provider, config.stt_provider_reason,
             f"; also available: {', '.join(available)}" if available else "", config.chatbot_protocol)
    if start_background:
        start(wiring)
    log.info("limits: %s, %d stream messages/s, calls up to %s; transcripts %s in the logs",
             stream_capacity(config), config.max_stream_messages_per_second,
             f"{config.max_call_seconds} s" if config.max_call_seconds else "any length",
             "written" if config.log_transcripts else "not written")
    if not config.validate_signatures:
        log.warning("VALIDATE_SIGNATURES is off: anyone can post to the webhooks")
    return app


__all__ = ["Wiring", "create_app"]


def _store_unavailable(exc: Exception):
    """A webhook while Redis is unreachable: the caller hears the apology and the call keeps listening."""
    from flask import Response, current_app, request

    from .dialogue.answers import apology_document
    from .web.signed import public_base

    metrics.redis_error("webhook")
    log.error("call state unavailable (%s: %s); %s answered with the apology", exc.__class__.__name__, exc,
              request.path)
    return Response(apology_document(current_app.extensions["chatline"].config, public_base(request)),
                    mimetype="text/xml")


def redact_url(url: str) -> str:
    """REDIS_URL without its password, for the log."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"
