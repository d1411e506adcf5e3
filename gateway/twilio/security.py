"""Public URLs as Twilio sees them, and X-Twilio-Signature checks on webhooks and the stream handshake."""
from __future__ import annotations

import functools
import hashlib
import hmac
import logging

from flask import Request, abort, current_app, request
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)


def public_base(req: Request) -> str:
    """The gateway's base URL as Twilio sees it: PUBLIC_URL, else derived from the (proxy-fixed) request."""
    configured = current_app.extensions["chatline"].config.public_url
    return (configured or req.host_url).rstrip("/")


def websocket_url(http_url: str) -> str:
    """Turn an http(s) URL into the ws(s) URL of the same place."""
    if http_url.startswith("https://"):
        return "wss://" + http_url[len("https://"):]
    if http_url.startswith("http://"):
        return "ws://" + http_url[len("http://"):]
    return http_url


def public_request_url(req: Request, websocket: bool = False) -> str:
    """The exact URL Twilio requested (and signed): public base + path + query string."""
    url = public_base(req) + req.path
    query = req.query_string.decode("latin-1")
    if query:
        url += "?" + query
    return websocket_url(url) if websocket else url


def signature_is_valid(req: Request, websocket: bool = False) -> bool:
    """Check X-Twilio-Signature against the public URL and the form parameters (none for the handshake)."""
    services = current_app.extensions["chatline"]
    if not services.config.validate_signatures:
        return True
    signature = req.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    params = {} if websocket else req.form
    return RequestValidator(services.config.twilio_auth_token).validate(
        public_request_url(req, websocket), params, signature)


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


def webhook_call_sid(req: Request) -> str:
    """The CallSid a webhook names, or "" (logged once: Twilio always sends one, so the request is odd)."""
    call_sid = req.form.get("CallSid", "")
    if not call_sid.strip():
        log.warning("%s %s without a CallSid; answered without touching any call", req.method, req.path)
        return ""
    return call_sid


def stream_token(call_sid: str) -> str:
    """A per-call token for the stream's <Parameter>: only TwiML we issued for this call can open its stream."""
    key = current_app.extensions["chatline"].config.twilio_auth_token.encode()
    return hmac.new(key, b"stream:" + call_sid.encode(), hashlib.sha256).hexdigest()[:32]


def stream_target(base_url: str, call_sid: str, caller: str, **parameters: str) -> tuple[str, dict[str, str]]:
    """The <Stream> a call's TwiML starts: our wss:// URL, and the <Parameter>s its `start` message brings back (the
    call, the caller, the call's stream token, and any `parameters`)."""
    return websocket_url(base_url + "/stream"), {"callSid": call_sid, "caller": caller, "token": stream_token(call_sid),
                                                 **parameters}


def stream_token_is_valid(call_sid: str, token: str | None) -> bool:
    """Check a stream's token (always true when signature checks are off for local experiments)."""
    if not current_app.extensions["chatline"].config.validate_signatures:
        return True
    return bool(token) and hmac.compare_digest(stream_token(call_sid), token)
