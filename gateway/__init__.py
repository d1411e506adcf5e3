"""Chatline gateway: Twilio calls in, speech recognized, the chatbot's answers spoken back."""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .calls import InMemoryCallStore
from .chatbots import make_chatbot
from .config import Config
from .conversation import Services
from .live_calls import LiveCalls
from .drain import Drain
from .limits import CallDeadlines, stream_capacity
from .monitor import build_events, install as install_monitor
from .redact import redact_secrets
from .twilio_calls import CallUpdater

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
    store = InMemoryCallStore()
    services = Services(
        config=config,
        store=store,
        chatbot=make_chatbot(config, store),
        updater=CallUpdater(config.twilio_account_sid, config.twilio_auth_token, config.twilio_api_url),
        executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="turn"),
        live=LiveCalls(),
        events=build_events(config),
    )
    services.deadlines = CallDeadlines(services)
    services.drain = Drain(services)
    app.extensions["chatline"] = services
    from . import gather, rest_of_answer, resume, stream, voice

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
