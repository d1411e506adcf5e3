"""A bot written for Twilio ConversationRelay, on a local websocket: it checks what it receives against Twilio's
documented shapes and answers from a script.

Checked (each breach recorded in `violations`, for tests to assert none): the handshake's X-Twilio-Signature over the
bot's exact URL with no parameters (a bad one is refused with HTTP 403, as bots that validate do), the bearer key
when one is required, `setup` first and once per websocket with Twilio's fields and types, and the shapes of
`prompt`, `dtmf`, `interrupt` and `error`. Scripted: a greeting after `setup`, answers per prompt or key (streamed
token by token, `play`, `sendDigits`, `language`, `end` with handoffData, silence, malformed frames, closing).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from twilio.request_validator import RequestValidator
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response
from websockets.sync.server import ServerConnection, serve

log = logging.getLogger(__name__)

SETUP_FIELDS = {"type": str, "sessionId": str, "callSid": str, "accountSid": str, "from": str, "to": str,
                "direction": str, "customParameters": dict}
SETUP_OPTIONAL = {"forwardedFrom": str, "callerName": str, "callType": str, "callStatus": str,
                  "parentCallSid": str}
SHAPES = {  # every field each message from Twilio has, with its type
    "prompt": {"type": str, "voicePrompt": str, "lang": str, "last": bool},
    "dtmf": {"type": str, "digit": str},
    "interrupt": {"type": str, "utteranceUntilInterrupt": str, "durationUntilInterruptMs": int},
    "error": {"type": str, "description": str},
}


# Script steps: what the bot does, in order.

def tokens(*pieces: str, last: bool = True, gap: float = 0.0, **options: Any) -> list:
    """Stream text token by token (`gap` seconds apart); `last: true` on a closing empty token when asked."""
    steps: list = []
    for piece in pieces:
        steps += [("send", {"type": "text", "token": piece, "last": False, **options})] + (
            [("sleep", gap)] if gap else [])
    if last:
        steps.append(("send", {"type": "text", "token": "", "last": True}))
    return steps


def say(text: str, **options: Any) -> list:
    """One whole text in a single `last: true` token."""
    return [("send", {"type": "text", "token": text, "last": True, **options})]


def play(source: str, loop: int = 1) -> list:
    return [("send", {"type": "play", "source": source, "loop": loop})]


def send_digits(digits: str) -> list:
    return [("send", {"type": "sendDigits", "digits": digits})]


def language(tts: str | None = None, transcription: str | None = None) -> list:
    message = {"type": "language", **({"ttsLanguage": tts} if tts else {}),
               **({"transcriptionLanguage": transcription} if transcription else {})}
    return [("send", message)]


def end(handoff_data: str | None = None) -> list:
    return [("send", {"type": "end", **({"handoffData": handoff_data} if handoff_data is not None else {})})]


def raw(text: str) -> list:
    """A frame sent as is (malformed JSON, unknown types)."""
    return [("raw", text)]


def pause(seconds: float) -> list:
    return [("sleep", seconds)]


def close(code: int = 1011) -> list:
    """Close the websocket (mid-call)."""
    return [("close", code)]


@dataclass
class RelayConnection:
    """One websocket the gateway opened, and everything it sent."""
    id: int
    path: str = ""
    signature: str = ""
    authorization: str = ""
    received: list[dict] = field(default_factory=list)
    setup: dict | None = None
    closed_at: float | None = None
    opened_at: float = field(default_factory=time.monotonic)

    def of_type(self, kind: str) -> list[dict]:
        return [m for m in self.received if m.get("type") == kind]


class ConversationRelayBot:
    """The bot at `url` (ws://127.0.0.1:port/relay). Script it with `greeting(...)` and `on(key, ...)`: a key is a
    prompt's voicePrompt, "dtmf:<digit>", "interrupt" or "*" (any prompt not scripted; the default echoes)."""

    def __init__(self, auth_token: str, *, path: str = "/relay", api_key: str | None = None,
                 refuse: int | None = None):
        self.auth_token, self.path, self.api_key, self.refuse = auth_token, path, api_key, refuse
        self.violations: list[str] = []
        self.connections: list[RelayConnection] = []
        self._greeting: list = []
        self._rules: dict[str, deque] = {}
        self._lock = threading.Lock()
        self._server = serve(self._serve, "127.0.0.1", 0, process_request=self._handshake, compression=None)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="relay-bot", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.path}"

    def __enter__(self) -> "ConversationRelayBot":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()

    def greeting(self, *steps: list) -> None:
        """What the bot says after every `setup`."""
        self._greeting = [s for group in steps for s in group]

    def on(self, key: str, *steps: list) -> None:
        """Add an answer for `key`; several answers for one key are used in turn, the last one from then on."""
        self._rules.setdefault(key, deque()).append([s for group in steps for s in group])

    def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        """Wait until `predicate()` holds (polling); False at the timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate():
                    return True
            time.sleep(0.02)
        return False

    # The server's side.

    def _violation(self, text: str) -> None:
        log.warning("ConversationRelay stand-in: %s", text)
        with self._lock:
            self.violations.append(text)

    def _handshake(self, conn: ServerConnection, request) -> Response | None:
        signature = request.headers.get("X-Twilio-Signature", "")
        url = f"ws://127.0.0.1:{self.port}{request.path}"
        if request.path != self.path:
            self._violation(f"connected to {request.path!r}, not the bot's URL path {self.path!r}")
        if not RequestValidator(self.auth_token).validate(url, {}, signature):
            self._violation(f"handshake without a valid X-Twilio-Signature for {url}")
            return self._refusal(403)
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._refusal(401)
        if self.refuse:
            return self._refusal(self.refuse)
        return None

    @staticmethod
    def _refusal(status: int) -> Response:
        return Response(status, "Refused", Headers([("Content-Length", "0")]), b"")

    def _serve(self, conn: ServerConnection) -> None:
        with self._lock:
            record = RelayConnection(len(self.connections) + 1, conn.request.path,
                                     conn.request.headers.get("X-Twilio-Signature", ""),
                                     conn.request.headers.get("Authorization", ""))
            self.connections.append(record)
        try:
            for frame in conn:
                message = self._check(record, frame)
                if message is not None:
                    self._run(conn, self._steps_for(message))
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                record.closed_at = time.monotonic()

    def _check(self, record: RelayConnection, frame) -> dict | None:
        """Record a frame and check it against Twilio's shapes; the message, or None when unreadable."""
        try:
            message = json.loads(frame)
            assert isinstance(message, dict)
        except (ValueError, AssertionError, TypeError):
            self._violation(f"connection {record.id}: a frame that is not a JSON object: {frame!r:.100}")
            return None
        with self._lock:
            record.received.append(message)
            first = len(record.received) == 1
        kind = message.get("type")
        if kind == "setup":
            if not first:
                self._violation(f"connection {record.id}: a second setup, or setup after other messages")
            self._check_setup(record, message)
            return message
        if first:
            self._violation(f"connection {record.id}: the first message is {kind!r}, not setup")
        if kind in SHAPES:
            self._check_fields(record, message, SHAPES[kind], {})
        else:
            self._violation(f"connection {record.id}: unknown message type {kind!r}")
        return message

    def _check_setup(self, record: RelayConnection, message: dict) -> None:
        self._check_fields(record, message, SETUP_FIELDS, SETUP_OPTIONAL)
        if not message.get("sessionId") or not message.get("callSid"):
            self._violation(f"connection {record.id}: setup with an empty sessionId or callSid")
        with self._lock:
            record.setup = message

    def _check_fields(self, record: RelayConnection, message: dict, required: dict, optional: dict) -> None:
        kind = message.get("type")
        for name, kind_of in required.items():
            value = message.get(name)
            if not isinstance(value, kind_of) or (kind_of is int and isinstance(value, bool)):
                self._violation(f"connection {record.id}: {kind}.{name} is {value!r}, not a {kind_of.__name__}")
        for name in set(message) - set(required):
            if name not in optional or not isinstance(message[name], optional[name]):
                self._violation(f"connection {record.id}: {kind} has an undocumented or mistyped {name!r}")
        if kind == "dtmf" and message.get("digit") not in tuple("0123456789*#"):
            self._violation(f"connection {record.id}: dtmf.digit {message.get('digit')!r} is not one key")
        if kind == "prompt" and message.get("last") is not True:
            self._violation(f"connection {record.id}: a partial prompt (Chatline sends final utterances only)")

    def _steps_for(self, message: dict) -> list:
        kind = message.get("type")
        if kind == "setup":
            return self._greeting
        key = {"prompt": message.get("voicePrompt"), "dtmf": f"dtmf:{message.get('digit')}",
               "interrupt": "interrupt"}.get(kind)
        with self._lock:
            rules = self._rules.get(key) or (self._rules.get("*") if kind == "prompt" else None)
            if rules:
                return rules.popleft() if len(rules) > 1 else rules[0]
        if kind == "prompt":
            return say(f"You said {message.get('voicePrompt')}.")
        return []

    def _run(self, conn: ServerConnection, steps: list) -> None:
        for action, value in steps:
            if action == "send":
                conn.send(json.dumps(value))
            elif action == "raw":
                conn.send(value)
            elif action == "sleep":
                time.sleep(value)
            elif action == "close":
                conn.close(value, "bot closed")
                return
