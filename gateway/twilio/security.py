"""Public URLs as Twilio sees them, and X-Twilio-Signature checks on webhooks and the stream handshake: given the
request and the settings they need as arguments (the web layer passes them in, see gateway/web/signed.py)."""
from __future__ import annotations

import hashlib
import hmac
import logging

from flask import Request
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)


def public_base(req: Request, public_url: str = "") -> str:
    """The gateway's base URL as Twilio sees it: PUBLIC_URL, else derived from the (proxy-fixed) request."""
    return (public_url or req.host_url).rstrip("/")


def websocket_url(http_url: str) -> str:
    """Turn an http(s) URL into the ws(s) URL of the same place."""
    if http_url.startswith("https://"):
        return "wss://" + http_url[len("https://"):]
    if http_url.startswith("http://"):
        return "ws://" + http_url[len("http://"):]
    return http_url


def public_request_url(req: Request, public_url: str = "", websocket: bool = False) -> str:
    """The exact URL Twilio requested (and signed): public base + path + query string."""
    url = public_base(req, public_url) + req.path
    query = req.query_string.decode("latin-1")
    if query:
        url += "?" + query
    return websocket_url(url) if websocket else url


def signature_is_valid(req: Request, auth_token: str, public_url: str = "", websocket: bool = False) -> bool:
    """Check X-Twilio-Signature against the public URL and the form parameters (none for the handshake)."""
    signature = req.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    params = {} if websocket else req.form
    return RequestValidator(auth_token).validate(public_request_url(req, public_url, websocket), params, signature)


def webhook_call_sid(req: Request) -> str:
    """The CallSid a webhook names, or "" (logged once: Twilio always sends one, so the request is odd)."""
    call_sid = req.form.get("CallSid", "")
    if not call_sid.strip():
        log.warning("%s %s without a CallSid; answered without touching any call", req.method, req.path)
        return ""
    return call_sid


def stream_token(auth_token: str, call_sid: str) -> str:
    """A per-call token for the stream's <Parameter>: only TwiML we issued for this call can open its stream."""
    return hmac.new(auth_token.encode(), b"stream:" + call_sid.encode(), hashlib.sha256).hexdigest()[:32]


def stream_target(base_url: str, call_sid: str, caller: str, auth_token: str,
                  **parameters: str) -> tuple[str, dict[str, str]]:
    """The <Stream> a call's TwiML starts: our wss:// URL, and the <Parameter>s its `start` message brings back (the
    call, the caller, the call's stream token, and any `parameters`)."""
    return websocket_url(base_url + "/stream"), {"callSid": call_sid, "caller": caller,
                                                 "token": stream_token(auth_token, call_sid), **parameters}


def stream_token_is_valid(auth_token: str, call_sid: str, token: str | None) -> bool:
    """Check a stream's token against the one its call's TwiML carried (anything but a non-empty string is not one;
    compared as bytes, since compare_digest refuses strings with non-ASCII characters)."""
    if not isinstance(token, str) or not token:
        return False
    return hmac.compare_digest(stream_token(auth_token, call_sid).encode(), token.encode("utf-8", "replace"))
