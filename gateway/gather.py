"""Gather mode (STT_PROVIDER=twilio): Twilio recognizes the caller; each <Gather> result comes back here."""
from __future__ import annotations

import logging
import time
from dataclasses import replace

from flask import Blueprint, Response, current_app, request

from . import twiml
from .conversation import ask, log_turn, no_input
from .security import public_base, twilio_signed, webhook_call_sid

log = logging.getLogger(__name__)

bp = Blueprint("gather", __name__)

NOT_SURE_PROMPT = "Sorry, I didn't quite catch that. Could you say it again?"


def _confidence(value: str | None) -> float:
    """Twilio's Confidence (0..1) as a number; a missing or odd one counts as sure, so it never blocks a caller."""
    try:
        return float(value) if value else 1.0
    except ValueError:
        return 1.0


def first_prompt(call_sid: str) -> str:
    """The TwiML a call starts with in Gather mode: the greeting, said inside the first <Gather>."""
    services = current_app.extensions["chatline"]
    state = services.store.get(call_sid)
    hints = (state.hints if state else ()) or services.config.hints
    return twiml.gather(services.config.greeting, public_base(request) + "/gather", hints,
                        **services.config.gather_options())


@bp.post("/gather")
@twilio_signed
def gather_result():
    """What Twilio heard (speech or keys, or nothing) → the chatbot → the next prompt."""
    services = current_app.extensions["chatline"]
    options = services.config.gather_options()
    action_url = public_base(request) + "/gather"
    call_sid = webhook_call_sid(request)
    if not call_sid:  # no session to send the chatbot: ask again rather than leave the caller in silence
        return Response(twiml.gather(NOT_SURE_PROMPT, action_url, services.config.hints, **options), mimetype="text/xml")
    speech = request.form.get("SpeechResult", "").strip()
    digits = request.form.get("Digits", "").strip()
    state = services.store.get(call_sid) or services.store.open(call_sid, caller=request.form.get("From", ""))
    hints = state.hints or services.config.hints
    if not speech and not digits:  # the <Gather timeout> was the silence clock (NO_INPUT_SECONDS when set)
        prompt, hang_up = no_input(services, call_sid) or (services.config.no_input_prompt, False)
        if hang_up:
            config = services.config
            return Response(twiml.say_and_hang_up(prompt, language=config.language, voice=config.voice),
                            mimetype="text/xml")
        log.info("call %s: no input; prompting again", call_sid)
        return Response(twiml.gather(prompt, action_url, hints, **options), mimetype="text/xml")
    services.store.heard(call_sid)
    confidence = _confidence(request.form.get("Confidence"))
    if speech and confidence < services.config.gather_min_confidence:
        log.info("call %s: heard %r with confidence %.2f, below %.2f; asking again", call_sid, speech, confidence,
                 services.config.gather_min_confidence)
        return Response(twiml.gather(NOT_SURE_PROMPT, action_url, hints, **options), mimetype="text/xml")
    heard_at = time.monotonic()
    message, input_type = (speech, "speech") if speech else (digits, "dtmf")
    reply, error = ask(services, call_sid, message, input_type, state.caller)
    services.store.record_turn(call_sid, reply.hints or hints, reply.reprompt)
    if not reply.hints:  # an apology (or a bot without hints) keeps guiding the recognizer as before
        reply = replace(reply, hints=hints)
    log_turn(call_sid, message, reply, (time.monotonic() - heard_at) * 1000, "answered", error)
    transfer = services.config.transfer_options(public_base(request) + "/transfer")
    return Response(twiml.gather_reply(reply, action_url, transfer, **options), mimetype="text/xml")
