"""The call webhooks Twilio posts to: a call comes in, keep listening, and the call's status."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, render_template, request

from . import gather, twiml
from .calls import ENDED_STATUSES
from .chatbot import Reply
from .security import public_base, stream_token, twilio_signed, websocket_url

log = logging.getLogger(__name__)

bp = Blueprint("voice", __name__)


def _twiml_response(document: str) -> Response:
    """Wrap a TwiML document in the response Twilio expects."""
    return Response(document, mimetype="text/xml")


def _services():
    """The app's long-lived collaborators."""
    return current_app.extensions["chatline"]


@bp.post("/voice")
@twilio_signed
def incoming_call():
    """A call comes in: start the Media Stream, greet the caller, keep the call open."""
    services = _services()
    config = services.config
    call_sid = request.form.get("CallSid", "")
    if not call_sid:
        log.warning("/voice without a CallSid; answering with a polite goodbye")
        return _twiml_response(twiml.say_and_hang_up(config.apology, language=config.language, voice=config.voice))
    caller = request.form.get("From", "")
    services.store.open(call_sid, caller=caller, called=request.form.get("To", ""))
    if config.stt_provider == "twilio":
        log.info("call %s from %s: answering in Gather mode", call_sid, caller or "unknown")
        return _twiml_response(gather.first_prompt(call_sid))
    base = public_base(request)
    log.info("call %s from %s: answering with a %s stream", call_sid, caller or "unknown", config.stt_provider)
    document = twiml.incoming_call(
        stream_url=websocket_url(base + "/stream"), listen_url=base + "/listen", greeting=config.greeting,
        parameters={"callSid": call_sid, "caller": caller, "token": stream_token(call_sid)}, language=config.language, voice=config.voice,
        pause_seconds=config.listen_pause_seconds)
    return _twiml_response(document)


@bp.post("/listen")
@twilio_signed
def keep_listening():
    """The keep-alive loop: pause, then come back here, while the stream hears the caller."""
    config = _services().config
    return _twiml_response(twiml.listen(public_base(request) + "/listen", pause_seconds=config.listen_pause_seconds))


@bp.post("/transfer")
@twilio_signed
def transfer_outcome():
    """After a transfer's <Dial>: end the call if it was answered, else bring the caller back to the bot."""
    services = _services()
    config = services.config
    call_sid = request.form.get("CallSid", "")
    status = request.form.get("DialCallStatus", "")
    base = public_base(request)
    if status in ("completed", "answered"):
        log.info("call %s: transfer answered and finished; hanging up", call_sid)
        return _twiml_response(twiml.say_and_hang_up("", language=config.language))
    log.info("call %s: transfer ended with %s; back to the bot", call_sid, status or "no status")
    state = services.store.get(call_sid)
    hints = (state.hints if state else ()) or config.hints
    if config.stt_provider == "twilio":
        return _twiml_response(twiml.gather(config.transfer_failed_message, base + "/gather", hints,
                                            **config.gather_options()))
    return _twiml_response(twiml.reply(Reply(config.transfer_failed_message), base + "/listen", language=config.language,
                                       voice=config.voice, pause_seconds=config.listen_pause_seconds))


@bp.post("/status")
@twilio_signed
def call_status():
    """The call-status callback: when a call ends, release everything held for it."""
    services = _services()
    call_sid = request.form.get("CallSid", "")
    status = request.form.get("CallStatus", "")
    if call_sid and status in ENDED_STATUSES:
        services.store.end(call_sid)
        services.live.release(call_sid)
        log.info("call %s ended (%s); released", call_sid, status)
    return Response(status=204)


@bp.get("/")
def index():
    """A small page for the operator: is it up, and which URLs go into the Twilio console."""
    services = _services()
    base = public_base(request)
    return render_template("index.html", base=base, provider=services.config.stt_provider,
                           reason=services.config.stt_provider_reason, live_calls=len(services.live))
