"""Gather mode (STT_PROVIDER=twilio): Twilio recognizes the caller; each <Gather> result comes back here."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request

from ..dialogue import answers
from ..twilio import twiml
from ..dialogue.answers import call_config
from ..chatbots.reply import Reply
from ..dialogue.turn import Heard, answer_in_webhook, no_input
from .signed import public_base, twilio_signed
from ..twilio.security import webhook_call_sid

log = logging.getLogger(__name__)

bp = Blueprint("gather", __name__)

NOT_SURE_PROMPT = "Sorry, I didn't quite catch that. Could you say it again?"


def _confidence(value: str | None) -> float:
    """Twilio's Confidence (0..1) as a number; a missing or odd one counts as sure, so it never blocks a caller."""
    try:
        return float(value) if value else 1.0
    except ValueError:
        return 1.0


@bp.post("/gather")
@twilio_signed
def gather_result():
    """What Twilio heard (speech or keys, or nothing) → the chatbot → the next prompt."""
    services = current_app.extensions["chatline"]
    base = public_base(request)
    call_sid = webhook_call_sid(request)
    if not call_sid:  # no session to send the chatbot: ask again rather than leave the caller in silence
        return Response(twiml.gather(NOT_SURE_PROMPT, base + "/gather", services.config.hints,
                                     **services.config.gather_options()), mimetype="text/xml")
    speech = request.form.get("SpeechResult", "").strip()
    digits = request.form.get("Digits", "").strip()
    state = services.store.get(call_sid) or services.store.open(call_sid, caller=request.form.get("From", ""))
    config = call_config(services.config, state)
    services.deadlines.watch(call_sid, state.started_at)  # every process serving the call counts from its start
    if not speech and not digits:  # the <Gather timeout> was the silence clock (NO_INPUT_SECONDS when set)
        outage_answer = answers.gather_silence(services, call_sid, base)
        if outage_answer is not None:  # a stream-mode call on <Gather> while recognition is (or was) down
            return Response(outage_answer, mimetype="text/xml")
        prompt, hang_up = no_input(services, call_sid) or (services.config.no_input_prompt, False)
        if hang_up:
            return Response(twiml.say_and_hang_up(prompt, language=config.language, voice=config.voice),
                            mimetype="text/xml")
        log.info("call %s: no input; prompting again", call_sid)
        return Response(answers.gather_document(services, call_sid, base, Reply(prompt)), mimetype="text/xml")
    services.store.heard(call_sid)
    confidence = _confidence(request.form.get("Confidence"))
    if speech and confidence < config.gather_min_confidence:
        log.info("call %s: heard %d characters with confidence %.2f, below %.2f; asking again", call_sid, len(speech),
                 confidence, config.gather_min_confidence)
        return Response(answers.gather_document(services, call_sid, base, Reply(NOT_SURE_PROMPT)),
                        mimetype="text/xml")
    message, input_type = (speech, "speech") if speech else (digits, "dtmf")
    answer = answer_in_webhook(services, Heard(call_sid, message, input_type, state.caller))
    if answer.state is not None and answer.state.speech_fallback:  # a stream-mode call: back on the stream once
        return Response(answers.listening_reply(services, call_sid, answer.reply, base), mimetype="text/xml")
    return Response(answers.gather_document(services, call_sid, base, answer.reply), mimetype="text/xml")
