"""The end of a ConversationRelay session: POST the `<Connect action>` callback Twilio would, and take its TwiML."""
from __future__ import annotations

import logging
from xml.etree import ElementTree

import requests
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)

MAX_TWIML_BYTES = 64 * 1024


def handoff_form(*, account_sid: str, call_sid: str, caller: str, called: str, session_id: str,
                 handoff_data: str | None, duration_seconds: float, direction: str = "inbound") -> dict[str, str]:
    """The form Twilio posts to `<Connect action>` when a bot ends its ConversationRelay session; HandoffData is
    the bot's `handoffData` verbatim."""
    form = {"AccountSid": account_sid, "CallSid": call_sid, "From": caller, "To": called,
            "CallStatus": "in-progress", "Direction": direction, "ApiVersion": "2010-04-01",
            "SessionId": session_id, "SessionStatus": "ended", "SessionDuration": str(int(duration_seconds))}
    if handoff_data is not None:
        form["HandoffData"] = handoff_data
    return form


def twilio_signature(auth_token: str, url: str, form: dict[str, str] | None = None) -> str:
    """X-Twilio-Signature as Twilio computes it: over the exact URL and (for a POST) its form fields."""
    return RequestValidator(auth_token).compute_signature(url, form or {})


def post_handoff(url: str, auth_token: str, form: dict[str, str], timeout: float) -> str | None:
    """POST the callback, signed; the TwiML document it answers, or None (logged) when there is none usable."""
    headers = {"X-Twilio-Signature": twilio_signature(auth_token, url, form), "User-Agent": "TwilioProxy/1.1"}
    try:
        response = requests.post(url, data=form, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        log.error("call %s: the ConversationRelay handoff URL %s could not be reached (%s); hanging up",
                  form.get("CallSid"), url, exc.__class__.__name__)
        return None
    body = response.content[:MAX_TWIML_BYTES + 1]
    if response.status_code != 200 or len(body) > MAX_TWIML_BYTES:
        log.error("call %s: the ConversationRelay handoff URL %s answered HTTP %s (%d bytes); hanging up",
                  form.get("CallSid"), url, response.status_code, len(body))
        return None
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        root = None
    if root is None or root.tag != "Response":
        log.error("call %s: the ConversationRelay handoff URL %s answered something that is not TwiML: %.100r; "
                  "hanging up", form.get("CallSid"), url, body)
        return None
    return body.decode("utf-8")
