"""Configuration of the sample chatbot, read from the environment at app creation time."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

DEFAULT_SCRIPT = Path(__file__).with_name("default_script.yaml")


class ConfigError(ValueError):
    """A configuration value that cannot be used."""


class Config:
    """Defaults for every setting; `from_env` overlays the environment.

    CHATBOT_SCRIPT       path of the owner's dialogue script (default: the bundled demo)
    SESSION_TTL_SECONDS  forget a call's dialogue state after this much inactivity
    MAX_MESSAGE_CHARS    longest `message` accepted; longer ones get 400
    MAX_SESSIONS         most dialogues remembered at once; the least recently active is dropped first
    REDIS_URL            keep the dialogues in this Redis instead, so several workers (or dynos) share them
    """

    CHATBOT_SCRIPT = str(DEFAULT_SCRIPT)
    SESSION_TTL_SECONDS = 1800
    MAX_MESSAGE_CHARS = 2000
    MAX_SESSIONS = 10_000
    # Bodies above this get 413 before any JSON parsing; generous next to MAX_MESSAGE_CHARS (even all \uXXXX escapes).
    MAX_CONTENT_LENGTH = 64 * 1024

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The settings as a dict, environment values replacing the defaults (empty means unset)."""
        environ = os.environ if environ is None else environ
        settings: dict[str, Any] = {
            "CHATBOT_SCRIPT": environ.get("CHATBOT_SCRIPT") or cls.CHATBOT_SCRIPT,
            "SESSION_TTL_SECONDS": cls.SESSION_TTL_SECONDS,
            "MAX_MESSAGE_CHARS": cls.MAX_MESSAGE_CHARS,
            "MAX_SESSIONS": cls.MAX_SESSIONS,
            "MAX_CONTENT_LENGTH": cls.MAX_CONTENT_LENGTH,
            "REDIS_URL": (environ.get("REDIS_URL") or "").strip() or None,
        }
        for key in ("SESSION_TTL_SECONDS", "MAX_MESSAGE_CHARS", "MAX_SESSIONS"):
            if environ.get(key):
                settings[key] = environ[key]
        return settings


def positive_number(settings: Mapping[str, Any], key: str) -> float:
    """settings[key] as a positive number, accepting strings from the environment."""
    value = settings[key]
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{key} must be a number, got {value!r}") from error
    if not number > 0:  # also rejects NaN
        raise ConfigError(f"{key} must be positive, got {value!r}")
    return number
