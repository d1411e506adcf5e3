"""The webhooks' side of Twilio's signatures: twilio/security.py's checks, given this app's settings."""
from __future__ import annotations

import functools
import logging

from flask import Request, abort, current_app, request

from ..twilio import security

log = logging.getLogger(__name__)


def _config():
    return current_app.extensions["chatline"].config


def public_base(req: Request) -> str:
    """The gateway's base URL as Twilio sees it (PUBLIC_URL, else the request's)."""
    return security.public_base(req, _config().public_url)


def public_request_url(req: Request, websocket: bool = False) -> str:
    """The exact URL Twilio requested (and signed)."""
    return security.public_request_url(req, _config().public_url, websocket)


def signature_is_valid(req: Request, websocket: bool = False) -> bool:
    """Whether the request carries a valid X-Twilio-Signature (always, with VALIDATE_SIGNATURES off)."""
    config = _config()
    if not config.validate_signatures:
        return True
    return security.signature_is_valid(req, config.twilio_auth_token, config.public_url, websocket)


def twilio_signed(view):
    """Refuse (403) any webhook that does not carry a valid Twilio signature."""
    @functools.wraps(view)
    def checked(*args, **kwargs):
        if not signature_is_valid(request):
            log.warning("refused %s %s: missing or invalid X-Twilio-Signature (checked against %s%s)",  # no query:
                        request.method, request.path, public_base(request), request.path)  # it may carry call state
            abort(403)
        return view(*args, **kwargs)
    return checked


def stream_target(base_url: str, call_sid: str, caller: str, **parameters: str) -> tuple[str, dict[str, str]]:
    """The <Stream> a call's TwiML starts, its token signed with this app's auth token."""
    return security.stream_target(base_url, call_sid, caller, _config().twilio_auth_token, **parameters)


def stream_token_is_valid(call_sid: str, token: str | None) -> bool:
    """Check a stream's token (always true when signature checks are off for local experiments)."""
    config = _config()
    return not config.validate_signatures or security.stream_token_is_valid(config.twilio_auth_token, call_sid, token)
