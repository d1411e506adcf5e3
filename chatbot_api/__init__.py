"""Chatline's sample chatbot: a scripted dialogue served as the chatbot API (contract section 1).

Serve it with::

    gunicorn --worker-class gthread --threads 4 'chatbot_api:create_app()'

and point it at an owner's script with CHATBOT_SCRIPT=/path/to/script.yaml (format: `script.py`).
"""
from __future__ import annotations

import logging
import os
from typing import Any, Mapping

from flask import Flask
from werkzeug.exceptions import HTTPException

from .config import Config, ConfigError, positive_number
from .dialogue import Dialogue, Reply
from .routes import EXTENSION_KEY, bp, json_http_error
from .script import Script, ScriptError
from .script_loader import load_script, parse_script
from .sessions import RedisSessionStore, SessionStore

__all__ = [
    "Config",
    "ConfigError",
    "Dialogue",
    "Reply",
    "Script",
    "ScriptError",
    "SessionStore",
    "create_app",
    "load_script",
    "parse_script",
]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; `config` overrides the environment. Raises ScriptError for a broken script.

    Keys: CHATBOT_SCRIPT, REDIS_URL (sessions in Redis), SESSION_TTL_SECONDS, MAX_MESSAGE_CHARS, MAX_SESSIONS, MAX_CONTENT_LENGTH, and
    SESSION_STORE (a ready SessionStore-like object, e.g. one with a test clock or in Redis).
    """
    app = Flask(__name__)
    app.config.update(Config.from_env({**_dotenv_values(), **os.environ}))
    app.config.update(config or {})
    app.config["SESSION_TTL_SECONDS"] = positive_number(app.config, "SESSION_TTL_SECONDS")
    app.config["MAX_MESSAGE_CHARS"] = int(positive_number(app.config, "MAX_MESSAGE_CHARS"))
    app.config["MAX_SESSIONS"] = int(positive_number(app.config, "MAX_SESSIONS"))
    _configure_logging(app)

    # Loading the script here means a broken script stops gunicorn at boot, not mid-call.
    script = load_script(app.config["CHATBOT_SCRIPT"])
    sessions = app.config.get("SESSION_STORE")
    if sessions is None and app.config.get("REDIS_URL"):  # shared by every worker, as the gateway's call state
        sessions = RedisSessionStore(app.config["REDIS_URL"], app.config["SESSION_TTL_SECONDS"])
    if sessions is None:
        sessions = SessionStore(app.config["SESSION_TTL_SECONDS"], max_sessions=app.config["MAX_SESSIONS"])
    app.extensions[EXTENSION_KEY] = Dialogue(script, sessions)

    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, json_http_error)
    app.logger.info(
        "chatbot script %s loaded: %d states, starting in %r", script.source, len(script.states), script.start
    )
    return app


def _dotenv_values() -> dict[str, str]:
    """Settings from a local .env (development only); the real environment still wins.

    Read into our own settings rather than os.environ so that creating an app (in tests, say)
    never changes the environment of everything else in the process. python-dotenv is optional.
    """
    try:
        from dotenv import dotenv_values, find_dotenv
    except ImportError:
        return {}
    path = find_dotenv(usecwd=True)
    return {key: value for key, value in dotenv_values(path).items() if value is not None} if path else {}


def _configure_logging(app: Flask) -> None:
    # Flask's logger inherits WARNING from the root logger, which would hide the per-message
    # INFO lines; an explicit level set by the operator's logging config is left alone.
    if app.logger.level == logging.NOTSET:
        app.logger.setLevel(logging.INFO)
