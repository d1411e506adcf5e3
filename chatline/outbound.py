"""`chatline call`: an outbound call through Twilio's REST API that runs the gateway's usual dialogue."""
from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from chatline.console import ChatlineError, say

_NUMBER = re.compile(r"^\+[1-9]\d{6,14}$")  # E.164


def _is_local(url: str) -> bool:
    """Tell whether a URL points at this machine."""
    return (urlsplit(url).hostname or "") in ("localhost", "127.0.0.1", "::1", "0.0.0.0")


def place_call(to: str, from_: str | None, public_url: str | None) -> str:
    """Create the call with Url=<public>/voice and StatusCallback=<public>/status; returns its SID."""
    environ = os.environ
    from_ = from_ or environ.get("TWILIO_FROM_NUMBER")
    public_url = (public_url or environ.get("PUBLIC_URL") or "").rstrip("/")
    missing = [name for name, value in (("TWILIO_ACCOUNT_SID", environ.get("TWILIO_ACCOUNT_SID")),
                                        ("TWILIO_AUTH_TOKEN", environ.get("TWILIO_AUTH_TOKEN")),
                                        ("a from number (--from or TWILIO_FROM_NUMBER)", from_),
                                        ("PUBLIC_URL (or --url)", public_url)) if not value]
    if missing:
        raise ChatlineError("chatline call needs " + ", ".join(missing), 2)
    for label, number in (("number to call", to), ("from number", from_)):
        if not _NUMBER.match(number) and not number.startswith(("sip:", "client:")):
            raise ChatlineError(f"the {label} {number!r} is not in E.164 form, like +15551234567", 2)
    if not public_url.startswith(("https://", "http://")):
        raise ChatlineError(f"the public URL must start with https:// (got {public_url!r})", 2)
    api_url = environ.get("TWILIO_API_URL", "")
    if _is_local(public_url) and not _is_local(api_url):
        # Real Twilio cannot fetch a URL on this machine: the call would ring, then fail with an application error.
        say(f"chatline: warning: Twilio cannot reach {public_url}; expose the gateway with `ngrok http <port>` "
            "and pass its https:// URL", err=True)

    from twilio.base.exceptions import TwilioException, TwilioRestException
    from twilio.rest import Client

    client = Client(environ["TWILIO_ACCOUNT_SID"], environ["TWILIO_AUTH_TOKEN"])
    if environ.get("TWILIO_API_URL"):
        client.api.base_url = environ["TWILIO_API_URL"].rstrip("/")  # a local stand-in instead of api.twilio.com
    try:
        call = client.calls.create(to=to, from_=from_, url=f"{public_url}/voice",
                                   status_callback=f"{public_url}/status")
    except TwilioRestException as exc:
        raise ChatlineError(f"Twilio refused the call: HTTP {exc.status}, error {exc.code}: "
                            f"{' '.join(str(exc.msg).split())}") from exc
    except (TwilioException, OSError) as exc:  # requests' connection errors are OSErrors
        # requests nests the cause deep in its message; "[Errno 111] Connection refused" is the useful part.
        cause = re.search(r"\[Errno -?\d+\] [^'\")]+", str(exc))
        raise ChatlineError(f"could not reach the Twilio API at {client.api.base_url}: "
                            f"{cause.group(0) if cause else exc}") from exc
    return call.sid
