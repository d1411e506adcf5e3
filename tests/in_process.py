"""The gateway in this process: `create_app(Config)` behind Flask's test client, webhooks signed as Twilio signs.

For dialogue logic that needs no real process: what the caller hears in reply to words, keys or silence is the TwiML a
webhook answers, so these tests read it directly instead of running a call through gunicorn and the stand-ins.
"""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

from twilio.request_validator import RequestValidator

from gateway import create_app
from gateway.config import Config
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, FIRST_HINTS, PUBLIC_URL

CALLER, CALLED = "+15551230001", "+15557654321"


class Answer:
    """One TwiML answer, read as Twilio's TwiML runner would."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.root = ET.fromstring(text)

    def said(self) -> list[str]:
        """The <Say> texts, in order: what the caller hears."""
        return [say.text or "" for say in self.root.iter("Say")]

    def verbs(self) -> list[str]:
        """Every verb and noun, in document order (Response itself left out)."""
        return [element.tag for element in self.root.iter()][1:]

    def find(self, tag: str) -> ET.Element | None:
        """The first element of this tag, anywhere in the document."""
        return next(self.root.iter(tag), None)


class Phone:
    """Twilio's side of one call: signed webhooks for one CallSid, against the gateway's test client."""

    def __init__(self, app, call_sid: str) -> None:
        self.app, self.sid = app, call_sid
        self.client = app.test_client()

    def post(self, path: str, signed: bool = True, **fields: str):
        """POST the webhook through the tunnel (X-Forwarded-*) signed for PUBLIC_URL + path, as Twilio does."""
        form = {"CallSid": self.sid, "AccountSid": ACCOUNT_SID, "From": CALLER, "To": CALLED,
                "CallStatus": "in-progress", "Direction": "inbound", **fields}
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": PUBLIC_URL.split("//", 1)[1]}
        if signed:
            headers["X-Twilio-Signature"] = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + path, form)
        return self.client.post(path, data=form, headers=headers)

    def answer(self, path: str, **fields: str) -> Answer:
        """The TwiML a webhook answers (200, text/xml)."""
        response = self.post(path, **fields)
        assert response.status_code == 200 and response.mimetype == "text/xml", (path, response.status_code)
        return Answer(response.get_data(as_text=True))

    def dial(self) -> Answer:
        """The call comes in."""
        return self.answer("/voice", CallStatus="ringing")



def gateway_app(twilio, chatbot, folder, **overrides: str):
    """The gateway app with start_gateway's settings: REST updates to the Twilio stand-in, the history in `folder`."""
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_URL": PUBLIC_URL,
           "CHATBOT_URL": chatbot.url, "TWILIO_API_URL": twilio.api_url, "STT_PROVIDER": "twilio",
           "CHATBOT_TIMEOUT": "3", "HINTS": FIRST_HINTS, "DATABASE_URL": f"sqlite:///{folder}/history.db", **overrides}
    return create_app(Config.from_env(env))


def lines(caplog, logger: str = "gateway") -> str:
    """What the gateway's loggers wrote in this test (not other libraries' lines)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(logger) and r.levelno >= logging.INFO)
