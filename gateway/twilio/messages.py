"""Text messages to the caller (contract section 8): an answer's links in one SMS through the twilio SDK's
`messages.create`, sent off the turn's thread so a Messages API that is down or slow costs only the message."""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Callable, Sequence

from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from .. import metrics
from ..phone import phrases

log = logging.getLogger(__name__)

# Twilio's answers for a message that can never go to this caller: retrying would only be refused again.
# 21211 invalid To, 21602 no Body, 21606 From cannot send SMS there, 21610 the caller opted out (STOP), 21614 not a
# mobile number (a landline).
REFUSED_CODES = frozenset({21211, 21602, 21606, 21610, 21614})
MAX_BODY_CHARS = 1600  # Twilio's limit for one message's Body

OnResult = Callable[[str, bool, str], None]  # (call_sid, sent, detail): for the monitor's action and the caller
Claim = Callable[[str, int], bool]  # (call_sid, most) → may one more message go (CallStore.claim_text_message)


def message_body(links: Sequence[str], language: str) -> str:
    """One message for an answer: a line of context, then each link on its own line, within Twilio's length."""
    lines = [phrases.pick(phrases.SMS_CONTEXT, language)]
    for link in links:
        if sum(len(line) + 1 for line in lines) + len(link) > MAX_BODY_CHARS:
            break
        lines.append(link)
    return "\n".join(lines)


class MessageSender:
    """Sends an answer's links to the caller, at most `max_per_call` messages a call, each once and off the turn."""

    def __init__(self, account_sid: str, auth_token: str, api_url: str = "https://api.twilio.com", *,
                 enabled: bool = True, max_per_call: int = 3, timeout: float = 5.0, on_result: OnResult | None = None,
                 executor: Executor | None = None, claim: Claim | None = None):
        http_client = TwilioHttpClient(pool_connections=True, timeout=timeout)
        self.client = Client(account_sid, auth_token, http_client=http_client)
        self.client.api.base_url = api_url  # TWILIO_API_URL: the real API, or a local stand-in
        self.enabled, self.max_per_call = enabled, max_per_call
        self.on_result = on_result
        self._executor = executor or ThreadPoolExecutor(max_workers=4, thread_name_prefix="sms")
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}  # call → messages offered so far (without `claim`: in this process)
        self._claim = claim  # the call store's count, shared by every process
        self._refused: set[str] = set()  # calls whose number refused a message: the next links are not tried

    def offer(self, call_sid: str, to: str, from_: str, links: Sequence[str], language: str = "en-US") -> bool:
        """Queue one message with `links` for the caller `to`, from the number they called; True when it was queued
        (the caller may hear it was sent), False when it will not be (off, over the cap, or refused before)."""
        if not links or not self.enabled:
            return False
        if not to or not from_:
            log.info("call %s: no caller or called number, the links are not sent", call_sid)
            return False
        with self._lock:
            if call_sid in self._refused:
                return False
            allowed = self._counts.get(call_sid, 0) < self.max_per_call if self._claim is None else None
            if allowed:
                self._counts[call_sid] = self._counts.get(call_sid, 0) + 1
        if allowed is None:
            try:
                allowed = self._claim(call_sid, self.max_per_call)
            except Exception as exc:  # the call store (Redis) is unreachable: the links are left out, the turn goes on
                log.warning("call %s: cannot count text messages (%s), links left out", call_sid,
                            exc.__class__.__name__)
                return False
        if not allowed:
            log.info("call %s: SMS_MAX_PER_CALL (%d) reached, links left out", call_sid, self.max_per_call)
            return False
        body = message_body(links, language)
        try:
            self._executor.submit(self._send, call_sid, to, from_, body)
        except RuntimeError:  # the executor is shut down: the process is stopping
            return False
        return True

    def _send(self, call_sid: str, to: str, from_: str, body: str) -> None:
        """One POST to the Messages resource; never raises, never retries, tells `on_result` how it went."""
        try:
            message = self.client.messages.create(to=to, from_=from_, body=body)
            sent, detail = True, f"text message {message.sid} sent"
            metrics.text_message_sent()
        except TwilioRestException as exc:
            if exc.code in REFUSED_CODES:
                with self._lock:
                    self._refused.add(call_sid)
            log.warning("call %s: text message refused: HTTP %s, Twilio code %s: %s", call_sid, exc.status, exc.code,
                        exc.msg)
            sent, detail = False, f"text message refused (Twilio {exc.code})"
            metrics.text_message_refused(exc.code)
        except Exception as exc:  # network errors and timeouts from requests: the boundary
            log.warning("call %s: text message not sent: %s: %s", call_sid, exc.__class__.__name__, exc)
            sent, detail = False, f"text message not sent ({exc.__class__.__name__})"
            metrics.text_message_refused(None)
        if self.on_result is not None:
            try:
                self.on_result(call_sid, sent, detail)
            except Exception:  # the callback is the caller's code: its fault must not kill the sender's thread
                log.exception("call %s: the text message's result could not be reported", call_sid)

    def refused(self, call_sid: str) -> bool:
        """Whether this call's number refused a message (the links of the next answers are not tried)."""
        with self._lock:
            return call_sid in self._refused

    def forget(self, call_sid: str) -> None:
        """The call ended: drop its count."""
        with self._lock:
            self._counts.pop(call_sid, None)
            self._refused.discard(call_sid)

    def close(self) -> None:
        """Let queued messages go, then stop the sender's threads."""
        self._executor.shutdown(wait=True)
