"""A live call moved between gateway processes: its state packed into a /resume URL, and /resume picking it up."""
from __future__ import annotations

import logging
from dataclasses import replace

from flask import Blueprint, Response, current_app, request

from ..twilio import twiml
from ..dialogue.answers import call_config, gather_document, stream_reply
from ..ops.limits import streams_full
from ..ops.handoff import MAX_URL_CHARS, Handoff, pack, resume_url, unpack  # noqa: F401 (also the handoff's API)
from ..ops.redact import mask_number
from .signed import public_base, stream_target, twilio_signed
from ..twilio.security import webhook_call_sid

log = logging.getLogger(__name__)

bp = Blueprint("resume", __name__)

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
