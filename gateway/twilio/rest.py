"""The Twilio REST seam: updating a live call with new TwiML through the twilio SDK."""
from __future__ import annotations

import enum
import logging
import time

from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

log = logging.getLogger(__name__)

CALL_GONE_CODES = frozenset({21220, 20404})  # "call is not in-progress" and "not found": the caller hung up
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# The SDK logs every request's headers at INFO (ten lines per call update); the gateway logs each turn itself.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


class UpdateResult(enum.Enum):
    """How an update went: delivered, the call had already ended, or it could not be delivered."""

    SENT = "sent"
    CALL_ENDED = "call-ended"
    FAILED = "failed"


class CallUpdater:
    """Sends TwiML to live calls with `calls(sid).update(twiml=...)`, retrying briefly on 429 / 5xx."""

    def __init__(self, account_sid: str, auth_token: str, api_url: str = "https://api.twilio.com",
                 timeout: float = 10.0, retries: int = 2, backoff: float = 0.25, pool_size: int = 32):
        http_client = TwilioHttpClient(pool_connections=True, timeout=timeout)
        # One kept-alive connection per concurrent turn (requests keeps only 10: busy moments reconnected).
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
        http_client.session.mount("http://", adapter)
        http_client.session.mount("https://", adapter)
        self.client = Client(account_sid, auth_token, http_client=http_client)
        self.client.api.base_url = api_url  # TWILIO_API_URL: the real API, or a local stand-in
        self.retries = retries
        self.backoff = backoff

    def update(self, call_sid: str, twiml: str) -> UpdateResult:
        """Replace what the call is doing with `twiml`; never raises."""
        for attempt in range(self.retries + 1):
            try:
                self.client.calls(call_sid).update(twiml=twiml)
                return UpdateResult.SENT
            except TwilioRestException as exc:
                if exc.code in CALL_GONE_CODES:
                    log.info("call %s has already ended (Twilio %s); update dropped", call_sid, exc.code)
                    return UpdateResult.CALL_ENDED
                if exc.status not in RETRYABLE_STATUSES or attempt == self.retries:
                    log.error("update of call %s failed: HTTP %s, Twilio code %s: %s",
                              call_sid, exc.status, exc.code, exc.msg)
                    return UpdateResult.FAILED
                log.warning("update of call %s got HTTP %s; retrying", call_sid, exc.status)
            except Exception as exc:  # network errors from requests, bad responses: the boundary
                if attempt == self.retries:
                    log.error("update of call %s failed: %s: %s", call_sid, exc.__class__.__name__, exc)
                    return UpdateResult.FAILED
                log.warning("update of call %s raised %s; retrying", call_sid, exc.__class__.__name__)
            time.sleep(self.backoff * (2 ** attempt))
        return UpdateResult.FAILED

    def start_stream(self, call_sid: str, url: str, parameters: dict[str, str],
                     track: str = "inbound_track") -> UpdateResult:
        """Start a one-way Media Stream on the live call (the Streams subresource): what the caller hears goes on
        uncut, unlike an update's new TwiML. Never raises."""
        numbered = {}
        for n, (name, value) in enumerate(parameters.items(), start=1):
            numbered[f"parameter{n}_name"], numbered[f"parameter{n}_value"] = name, value
        try:
            self.client.calls(call_sid).streams.create(url=url, track=track, **numbered)
            return UpdateResult.SENT
        except TwilioRestException as exc:
            if exc.code in CALL_GONE_CODES:
                return UpdateResult.CALL_ENDED
            log.error("new stream for call %s failed: HTTP %s, Twilio code %s: %s", call_sid, exc.status, exc.code,
                      exc.msg)
        except Exception as exc:  # network errors from requests, bad responses: the boundary
            log.error("new stream for call %s failed: %s: %s", call_sid, exc.__class__.__name__, exc)
        return UpdateResult.FAILED
