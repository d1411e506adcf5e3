"""How the Twilio stand-in reaches the app: signed webhooks, and an ngrok-like tunnel from public to local URLs."""
from __future__ import annotations

import ipaddress
import itertools
import logging
import secrets
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = 15.0  # seconds; Twilio's own default before it gives up on a webhook (error 11205)
WEBHOOK_USER_AGENT = "TwilioProxy/1.1"
STREAM_USER_AGENT = "Twilio.TmeWs/1.0"
TWILIO_EGRESS_IP = "54.172.60.1"  # an address from Twilio's published range, for X-Forwarded-For

_WS_TO_HTTP = {"ws": "http", "wss": "https"}
_HTTP_TO_WS = {"http": "ws", "https": "wss"}


def new_sid(prefix: str) -> str:
    """Return a Twilio-shaped SID: two-letter prefix plus 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


@dataclass(frozen=True)
class Route:
    """Where a public URL is really connected to, and the proxy headers the tunnel adds on the way."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)


class Tunnel:
    """Maps public base URLs to local ones, like ngrok: `https://x.test/a` is served by `http://127.0.0.1:8000/a`.

    `mapping` is kept by reference and read on every request, so entries may be added while calls run.
    Keys and targets are http(s) base URLs; websocket URLs (wss/ws) on the same host follow the same rule.
    A list of targets is served round-robin, each request and each websocket to the next, as Heroku's router
    spreads them over a public URL's processes.
    """

    def __init__(self, mapping: dict[str, str | list[str]] | None = None) -> None:
        self.mapping = mapping if mapping is not None else {}
        self._turns = itertools.count()

    def _rules(self) -> list[tuple]:
        rules = []
        for public, targets in list(self.mapping.items()):
            local = targets if isinstance(targets, str) else targets[next(self._turns) % len(targets)]
            p, t = urlsplit(public.rstrip("/")), urlsplit(local.rstrip("/"))
            if p.scheme not in _HTTP_TO_WS or t.scheme not in _HTTP_TO_WS:
                raise ValueError(f"tunnel entries must be http(s) base URLs: {public!r} -> {local!r}")
            rules.append((p, t))
        # Longest public prefix first, so "https://x.test/api" wins over "https://x.test".
        return sorted(rules, key=lambda rule: len(rule[0].path), reverse=True)

    def route(self, public_url: str) -> Route:
        """Return the local URL and tunnel headers for `public_url` (unchanged when nothing maps it)."""
        u = urlsplit(public_url)
        websocket = u.scheme in _WS_TO_HTTP
        as_http = _WS_TO_HTTP.get(u.scheme, u.scheme)
        for p, t in self._rules():
            under = u.path == p.path or u.path.startswith(p.path + "/") or not p.path
            if as_http == p.scheme and u.netloc.lower() == p.netloc.lower() and under:
                scheme = _HTTP_TO_WS[t.scheme] if websocket else t.scheme
                local = urlunsplit((scheme, t.netloc, t.path + u.path[len(p.path):], u.query, ""))
                headers = {
                    "X-Forwarded-Proto": p.scheme,
                    "X-Forwarded-Host": p.netloc,
                    "X-Forwarded-For": TWILIO_EGRESS_IP,
                }
                return Route(local, headers)
        return Route(public_url)


@dataclass(frozen=True)
class WebhookResult:
    """What the app answered to one webhook; `status` is None when it could not be reached at all."""

    url: str
    status: int | None
    body: bytes = b""  # raw, so the XML parser (not an HTTP charset guess) decides the encoding
    content_type: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebhookClient:
    """Sends Twilio-signed webhooks: the signature is always over the public URL, the request goes via the tunnel."""

    def __init__(self, auth_token: str, tunnel: Tunnel, timeout: float = WEBHOOK_TIMEOUT) -> None:
        self._validator = RequestValidator(auth_token)
        self.tunnel = tunnel
        self.timeout = timeout

    def sign(self, url: str, params: dict[str, str] | None = None) -> str:
        """Return the X-Twilio-Signature for `url` and form `params` (empty for GET and websockets)."""
        return self._validator.compute_signature(url, params or {})

    def request(self, url: str, params: dict[str, str], method: str = "POST") -> WebhookResult:
        """Send one webhook the way Twilio does (POST form, or GET with the params in the query string)."""
        method = "GET" if (method or "POST").upper() == "GET" else "POST"
        if method == "GET":
            # Twilio signs a GET over the full URL including the params it appended; the form part is empty.
            separator = "&" if urlsplit(url).query else "?"
            url = url + separator + urlencode(params) if params else url
            signature, data = self.sign(url), None
        else:
            signature, data = self.sign(url, params), params
        route = self.tunnel.route(url)
        headers = {
            "X-Twilio-Signature": signature,
            "User-Agent": WEBHOOK_USER_AGENT,
            "Accept": "*/*",
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            **route.headers,
        }
        try:
            with requests.Session() as session:
                # A developer's HTTP(S)_PROXY must not swallow requests meant for the local app.
                session.trust_env = not _is_loopback(route.url)
                response = session.request(method, route.url, data=data, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            log.warning("twilio stand-in: webhook %s %s (via %s) failed: %s", method, url, route.url, exc)
            return WebhookResult(url, None, error=str(exc))
        return WebhookResult(url, response.status_code, response.content, response.headers.get("Content-Type", ""))
