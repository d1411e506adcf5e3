"""What may reach the logs: caller numbers masked, no secrets ever, and the caller's words only when asked for."""
from __future__ import annotations

import logging
from typing import Iterable

REDACTED = "[redacted]"


def mask_number(number: str | None) -> str:
    """A caller's number as logs show it: only the last four characters, enough to tell calls apart."""
    number = (number or "").strip()
    if not number:
        return "unknown"
    return "***" + number[-4:] if len(number) > 6 else "***"


class RedactingFormatter(logging.Formatter):
    """Formats like its base, then blanks every secret, tracebacks included (a URL or repr may carry one). A message
    that would span lines (a caller-supplied field with a newline) stays on one: nobody can forge a log line."""

    def __init__(self, base: logging.Formatter | None, secrets: Iterable[str]):
        super().__init__()
        self.base = base or logging.Formatter()
        self.secrets = tuple(s for s in secrets if s and len(s) >= 6)  # a tiny "secret" would blank ordinary words

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if "\n" in message or "\r" in message:
            record = logging.makeLogRecord({**record.__dict__, "args": None,
                                            "msg": message.replace("\r", "\\r").replace("\n", "\\n")})
        text = self.base.format(record)
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


def redact_secrets(secrets: Iterable[str]) -> None:
    """Put a RedactingFormatter on every root handler (once), so no logger can print the auth token."""
    secrets = tuple(secrets)
    for handler in logging.getLogger().handlers:
        current = handler.formatter
        if isinstance(current, RedactingFormatter):
            current.secrets = tuple(dict.fromkeys(current.secrets + tuple(s for s in secrets if s and len(s) >= 6)))
        else:
            handler.setFormatter(RedactingFormatter(current, secrets))
