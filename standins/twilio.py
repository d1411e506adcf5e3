"""The Twilio stand-in: a local fake of Twilio's REST API, voice webhooks and Media Streams, speaking the real protocols.

    with TwilioStandIn(auth_token="secret", tunnel={"https://chatline.test": "http://127.0.0.1:8000"}, speed=5) as tw:
        call = tw.place_call("https://chatline.test/voice", Caller(["hello", "goodbye"]),
                             status_callback="https://chatline.test/status")
        call.wait_ended(30)
        print(call.transcript())
"""
from __future__ import annotations

import logging
import secrets
import threading
from collections import deque

from twilio.rest import Client
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from standins.outbound_audio import DEFAULT_CHARS_PER_SECOND
from standins.twilio_call import SimulatedCall
from standins.twilio_caller import Caller
from standins.twilio_rest import create_rest_app
from standins.twilio_webhooks import WEBHOOK_TIMEOUT, Tunnel, WebhookClient, new_sid

log = logging.getLogger(__name__)

__all__ = ["TwilioStandIn", "SimulatedCall", "Caller"]


class _QuietHandler(WSGIRequestHandler):
    """Request logging goes to our logger at debug level instead of werkzeug's stderr lines."""

    def log(self, type: str, message: str, *args: object) -> None:
        log.debug("twilio stand-in REST: " + message, *args)


class TwilioStandIn:
    """A fake Twilio account: REST API on 127.0.0.1:<free port>, simulated calls that run TwiML against your app."""

    def __init__(self, account_sid: str | None = None, auth_token: str | None = None,
                 tunnel: dict[str, str] | None = None, speed: float = 1.0, host: str = "127.0.0.1", port: int = 0,
                 webhook_timeout: float = WEBHOOK_TIMEOUT, say_chars_per_second: float = DEFAULT_CHARS_PER_SECOND,
                 speakerphone_leak: float = 0.0, outbound_voice: str = "buzz") -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token or secrets.token_hex(16)
        self.speed = speed
        # Every call's voice pace (what its <Say>s take, and its outbound track) and its speakerphone leak.
        self._voice = {"say_chars_per_second": say_chars_per_second, "speakerphone_leak": speakerphone_leak,
                       "outbound_voice": outbound_voice}
        # Public base URL -> local base URL; a live dict; entries may be added after start().
        self.tunnel: dict[str, str] = tunnel if tunnel is not None else {}
        self.webhooks = WebhookClient(self.auth_token, Tunnel(self.tunnel), webhook_timeout)
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._calls: dict[str, SimulatedCall] = {}
        self._rest_requests: list[dict] = []
        self._faults: deque[int] = deque()
        # Text messages (the Messages resource): what was sent, and the numbers that cannot take one.
        self._messages: list[dict] = []
        self.sms_refusals: dict[str, int] = {}  # To number → Twilio code (21614 landline, 21610 opted out, ...)
        self.sms_senders: set[str] | None = None  # From numbers able to send SMS; None: any (else 21606)
        self.messages_delay = 0.0  # seconds each Messages request takes (a slow API)
        self._outbound_callers: deque[Caller] = deque()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> TwilioStandIn:
        if self._server is not None:
            return self
        self._server = make_server(self._host, self._port, create_rest_app(self), threaded=True,
                                   request_handler=_QuietHandler)
        self._server.daemon_threads = True  # request threads must never keep the process alive
        # A short poll interval keeps stop() quick (shutdown waits for the serve loop to notice).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="twilio-standin-rest", daemon=True)
        self._thread.start()
        log.info("twilio stand-in: REST API at %s (account %s)", self.api_url, self.account_sid)
        return self

    def stop(self) -> None:
        """End every live call (streams stopped, status callbacks sent), then stop the REST server."""
        calls = self.calls
        for call in calls:
            call.end("stand-in stopped")
        for call in calls:
            call.shutdown()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(5)
            self._server = self._thread = None

    def __enter__(self) -> TwilioStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        """Base URL of the REST API: the gateway's TWILIO_API_URL, or `client.api.base_url`."""
        if self._server is None:
            raise RuntimeError("the Twilio stand-in is not started")
        return f"http://{self._host}:{self._server.server_port}"

    def client(self) -> Client:
        """A real twilio.rest.Client pointed at this stand-in."""
        client = Client(self.account_sid, self.auth_token)
        client.api.base_url = self.api_url
        return client

    # ---- calls --------------------------------------------------------------------------------------------
    def place_call(self, voice_url: str, caller: Caller | None = None, from_: str = "+15551230001",
                   to: str = "+15557654321", status_callback: str | None = None, method: str = "POST",
                   status_callback_method: str = "POST") -> SimulatedCall:
        """Simulate an incoming call: POST the signed "A call comes in" webhook to `voice_url`, run its TwiML."""
        call = SimulatedCall(account_sid=self.account_sid, from_=from_, to=to, direction="inbound",
                             webhooks=self.webhooks, speed=self.speed, caller=caller, url=voice_url, method=method,
                             status_callback=status_callback, status_callback_method=status_callback_method,
                             **self._voice)
        return self._launch(call)

    def answer_outbound_with(self, caller: Caller) -> None:
        """Queue the Caller who picks up the next call created through the REST API (default: a silent one)."""
        with self._lock:
            self._outbound_callers.append(caller)

    def _create_call(self, *, to: str, from_: str, url: str | None, method: str, twiml: str | None,
                     status_callback: str | None, status_callback_method: str) -> tuple[SimulatedCall, dict]:
        """Create an outbound-api call; returns it and its resource as first created (status "queued")."""
        with self._lock:
            caller = self._outbound_callers.popleft() if self._outbound_callers else None
        call = SimulatedCall(account_sid=self.account_sid, from_=from_, to=to, direction="outbound-api",
                             webhooks=self.webhooks, speed=self.speed, caller=caller, url=url, method=method,
                             twiml=twiml, status_callback=status_callback,
                             status_callback_method=status_callback_method, **self._voice)
        created = call.resource()
        return self._launch(call), created

    def _launch(self, call: SimulatedCall) -> SimulatedCall:
        with self._lock:
            self._calls[call.sid] = call
        call.start()
        return call

    @property
    def calls(self) -> list[SimulatedCall]:
        with self._lock:
            return list(self._calls.values())

    def get_call(self, sid: str) -> SimulatedCall | None:
        with self._lock:
            return self._calls.get(sid)

    # ---- REST bookkeeping ---------------------------------------------------------------------------------
    @property
    def rest_requests(self) -> list[dict]:
        """Every REST request: dicts with method, path, form, time (time.time()) and status (the HTTP answer)."""
        with self._lock:
            return list(self._rest_requests)

    def fail_next_updates(self, status: int = 500, count: int = 1) -> None:
        """Make the next `count` call updates (POST .../Calls/{sid}.json) fail with HTTP `status` (500, 429, 503)."""
        with self._lock:
            self._faults.extend([status] * count)

    def _take_fault(self) -> int | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    @property
    def messages(self) -> list[dict]:
        """Every text message accepted, as Twilio's JSON resource (to, from, body, sid, status ...)."""
        with self._lock:
            return list(self._messages)

    def refuse_sms_to(self, number: str, code: int = 21614) -> None:
        """Make messages to `number` fail as Twilio refuses them: 21614 (not a mobile number), 21610 (opted out)."""
        with self._lock:
            self.sms_refusals[number] = code

    def _take_message(self, message: dict) -> None:
        with self._lock:
            self._messages.append(message)

    def _remember(self, entry: dict) -> None:
        with self._lock:
            self._rest_requests.append(entry)
