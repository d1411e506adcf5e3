"""A live call's state packed into a /resume URL, for the process it moves to (graceful shutdown)."""
from __future__ import annotations

import base64
import binascii
import json
import zlib
from dataclasses import dataclass, replace

from ..chatbots.reply import Reply

# The URL sits in a call update, which Twilio caps at 4000 characters of TwiML (with the message and the XML around).
MAX_URL_CHARS = 3200


@dataclass(frozen=True)
class Handoff:
    """What the next process needs to carry a call on: what to say first, and the state the dialogue had."""

    say: str = ""
    action: str | None = None
    to: str | None = None
    hints: tuple[str, ...] = ()
    reprompt: str = ""
    started: float | None = None  # wall-clock start of the call, so MAX_CALL_SECONDS survives the move
    language: str = ""  # the language and voice the chatbot switched the call to ("" for the defaults)
    voice: str = ""

    def reply(self) -> Reply:
        """The chatbot reply this handoff carries (possibly empty: just go on listening)."""
        return Reply(self.say, self.action, self.to, self.hints, self.reprompt)


def pack(handoff: Handoff) -> str:
    """The handoff as one compact URL-safe parameter (compressed JSON; the webhook signature covers it)."""
    data = {k: v for k, v in (("s", handoff.say), ("a", handoff.action), ("t", handoff.to), ("h", list(handoff.hints)),
                              ("r", handoff.reprompt), ("b", handoff.started), ("l", handoff.language),
                              ("v", handoff.voice)) if v}
    raw = zlib.compress(json.dumps(data, separators=(",", ":")).encode("utf-8"), 9)
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def unpack(value: str) -> Handoff:
    """Read a packed handoff; ValueError if it is not one."""
    if not value:
        return Handoff()
    try:
        data = json.loads(zlib.decompress(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))))
    except (binascii.Error, zlib.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable call state: {exc.__class__.__name__}") from exc
    if not isinstance(data, dict):
        raise ValueError("call state is not an object")
    text = lambda key: data[key] if isinstance(data.get(key), str) else ""  # noqa: E731
    hints = tuple(h for h in data.get("h", ()) if isinstance(h, str)) if isinstance(data.get("h"), list) else ()
    action = text("a") if text("a") in ("hangup", "transfer") else None
    started = data.get("b") if isinstance(data.get("b"), (int, float)) else None
    return Handoff(text("s"), action, text("t") or None, hints, text("r"), started, text("l"), text("v"))


def resume_url(base_url: str, handoff: Handoff) -> str:
    """The /resume URL carrying `handoff`; hints, then the text, are shortened until it fits in a call update."""
    while True:
        url = f"{base_url}/resume?state={pack(handoff)}"
        if len(url) <= MAX_URL_CHARS:
            return url
        if handoff.hints:
            handoff = replace(handoff, hints=handoff.hints[: len(handoff.hints) // 2])
        elif handoff.reprompt:
            handoff = replace(handoff, reprompt="")
        else:
            handoff = replace(handoff, say=handoff.say[: len(handoff.say) * 4 // 5].rstrip())
