"""A live call moved between gateway processes: its state packed into a /resume URL, and /resume picking it up."""
from __future__ import annotations

import base64
import binascii
import json
import logging
import zlib
from dataclasses import dataclass, replace

from flask import Blueprint, Response, current_app, request

from ..twilio import twiml
from ..chatbots.reply import Reply
from ..dialogue.answers import call_config, gather_document, stream_reply
from ..ops.limits import streams_full
from ..ops.redact import mask_number
from .signed import public_base, stream_target, twilio_signed
from ..twilio.security import webhook_call_sid

log = logging.getLogger(__name__)

bp = Blueprint("resume", __name__)

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


@bp.post("/resume")
@twilio_signed
def resume_call():
    """A call moved here from a process that shut down: start a stream here, say what was due, keep listening."""
    services = current_app.extensions["chatline"]
    config = services.config
    base = public_base(request)
    call_sid = webhook_call_sid(request)
    try:
        handoff = unpack(request.args.get("state", ""))
    except ValueError as exc:
        log.warning("call %s: /resume with %s; carrying on without it", call_sid or "unknown", exc)
        handoff = Handoff()
    if not call_sid:
        log.warning("/resume without a CallSid; answering with a polite goodbye")
        return Response(twiml.say_and_hang_up(config.apology, language=config.language, voice=config.voice),
                        mimetype="text/xml")
    if services.drain is not None and services.drain.draining:  # this process is going too: pass it on again
        return Response(twiml.handoff(resume_url(base, handoff), pause_seconds=1), mimetype="text/xml")
    caller = request.form.get("From", "")
    services.store.open(call_sid, caller=caller, called=request.form.get("To", ""))
    hints = handoff.hints or config.hints
    services.store.record_turn(call_sid, hints, handoff.reprompt)
    if handoff.language or handoff.voice:
        config = call_config(config, services.store.speak_as(call_sid, handoff.language, handoff.voice))
    services.deadlines.watch(call_sid, handoff.started)
    answer = replace(handoff.reply(), hints=hints)
    gather_mode = config.stt_provider == "twilio" or streams_full(services)
    services.events.call_started(call_sid, caller, request.form.get("To", ""), config.stt_provider,
                                 "gather" if gather_mode else "stream", started_at=handoff.started)
    if gather_mode:
        log.info("call %s from %s: resumed here in Gather mode", call_sid, mask_number(caller))
        return Response(gather_document(services, call_sid, base, answer), mimetype="text/xml")
    log.info("call %s from %s: resumed here with a %s stream", call_sid, mask_number(caller), config.stt_provider)
    return Response(stream_reply(config, answer, base, stream=stream_target(base, call_sid, caller)),
                    mimetype="text/xml")
