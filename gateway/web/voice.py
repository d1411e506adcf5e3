"""The call webhooks Twilio posts to: a call comes in, keep listening, and the call's status."""
from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, current_app, render_template, request

from ..twilio import twiml
from ..calls.store import ENDED_STATUSES
from ..chatbots import CallSessions
from ..chatbots.reply import Reply
from ..dialogue.answers import call_config, gather_document, listening, listening_reply, stream_reply
from ..dialogue.phone_answer import speech
from ..dialogue.turn import Heard, answer_in_webhook, greeting, heard_text, no_input, phone_fit, record, said
from ..ops.limits import streams_full
from ..dialogue.prompt import say_seconds
from ..ops.redact import mask_number
from .signed import public_base, stream_target, twilio_signed
from ..twilio.security import webhook_call_sid

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
    call_sid = webhook_call_sid(request)
    if not call_sid:  # no call to hold a dialogue in: a polite goodbye rather than silence
        return _twiml_response(twiml.say_and_hang_up(config.apology, language=config.language, voice=config.voice))
    caller = request.form.get("From", "")
    base = public_base(request)
    if config.stt_provider != "twilio" and services.drain is not None and services.drain.draining:
        return _twiml_response(services.drain.pass_on_new_call(call_sid, base))
    state = services.store.open(call_sid, caller=caller, called=request.form.get("To", ""))
    services.deadlines.watch(call_sid, state.started_at)
    hello = greeting(services, call_sid, caller)
    recorded = record(services, call_sid, hello)
    hello = phone_fit(services, hello, recorded) if config.chatbot_greeting else hello
    config = call_config(config, recorded)
    gather_mode = config.stt_provider == "twilio" or (hello.action_type is None and streams_full(services))
    services.events.call_started(call_sid, caller, request.form.get("To", ""), config.stt_provider,
                                 "gather" if gather_mode else "stream")
    services.events.bot_said(call_sid, hello)
    if config.stt_provider == "twilio":  # the greeting inside the first <Gather> (or said before a hangup/transfer)
        log.info("call %s from %s: answering in Gather mode", call_sid, mask_number(caller))
        return _twiml_response(gather_document(services, call_sid, base, hello))
    if hello.action_type is not None:  # a chatbot may answer a call only to say it is closed, or to transfer it
        log.info("call %s from %s: the greeting %ss the call", call_sid, mask_number(caller), hello.action_type)
        return _twiml_response(stream_reply(config, hello, base))
    if streams_full(services):  # Twilio recognizes instead: the caller gets the whole dialogue, not a busy signal
        log.warning("call %s from %s: %d streams live (MAX_CONCURRENT_STREAMS); answering in Gather mode", call_sid,
                    mask_number(caller), len(services.live))
        return _twiml_response(gather_document(services, call_sid, base, hello))
    log.info("call %s from %s: answering with a %s stream", call_sid, mask_number(caller), config.stt_provider)
    # The stream's handler learns until when (epoch seconds) the caller may barge in on the greeting: the stream
    # starts as the <Say> does, but its handshake reaches us a moment later.
    seconds = say_seconds(heard_text(hello, config), config.say_chars_per_second)
    barge_in = time.time() + seconds if hello.barge_in else 0
    stream_url, parameters = stream_target(base, call_sid, caller, bargeInUntil=f"{barge_in:.2f}")
    said(services, call_sid, hello)  # the greeting's words, for the stream to tell its echo and what was heard
    document = twiml.incoming_call(
        stream_url=stream_url, listen_url=base + "/listen", greeting=hello.text, parameters=parameters,
        language=config.language, voice=config.voice, speech=speech(hello, config), audio=hello.audio,
        num_digits=twiml.one_key(hello.options), stream_track=config.stream_track, **listening(config, base))
    return _twiml_response(document)


@bp.post("/listen")
@twilio_signed
def keep_listening():
    """The keep-alive loop: pause, then come back here, while the stream hears the caller.

    With NO_INPUT_SECONDS each hit ends one silent stretch: unless the caller was heard meanwhile, reprompt
    (NO_INPUT_MAX_REPROMPTS times in a row), then say goodbye and hang up.
    """
    services = _services()
    base = public_base(request)
    call_sid = webhook_call_sid(request)
    state = services.store.get(call_sid)
    if state is not None:  # the call's clock in this process too: it fires once per call, from whichever is alive
        services.deadlines.watch(call_sid, state.started_at)
    config = call_config(services.config, state)
    silence = no_input(services, call_sid, config.no_input_seconds) if config.no_input_seconds else None
    text, hang_up = silence or ("", False)
    if hang_up:
        return _twiml_response(twiml.say_and_hang_up(text, language=config.language, voice=config.voice))
    if state is not None:
        said(services, call_sid, Reply(text))
    return _twiml_response(stream_reply(config, Reply(text), base, stream=_restream(services, call_sid, base)))


def _restream(services, call_sid: str, base: str) -> tuple[str, dict] | None:
    """A call whose Media Stream broke here without a `stop` (network, peer): the <Stream> to start again in the
    keep-alive's TwiML, so the call does not go on deaf. None when no stream broke, or the call is not one to stream
    now (on <Gather> while Google is down, over the stream limit, ending, or this process shutting down)."""
    state = services.store.get(call_sid)
    if (state is None or state.ended or state.speech_fallback or streams_full(services)
            or (services.drain is not None and services.drain.draining) or not services.store.take_broken(call_sid)):
        return None
    log.warning("call %s: its Media Stream is gone but the call is not; starting a new one", call_sid)
    return stream_target(base, call_sid, state.caller)


@bp.post("/dtmf")
@twilio_signed
def keys_pressed():
    """Keys pressed in the keep-alive <Gather> (one-way Media Streams carry no DTMF) → the chatbot → its answer,
    as this webhook's own TwiML (no call update): the reply and keep listening, or hang up / transfer."""
    services = _services()
    config = services.config
    base = public_base(request)
    call_sid = webhook_call_sid(request)
    digits = request.form.get("Digits", "").strip()
    if not call_sid or not digits:  # only "#" pressed: the caller is there, but there is nothing to send
        if call_sid:
            services.store.heard(call_sid)
        return _twiml_response(twiml.listen(base + "/listen", **listening(config, base)))
    state = services.store.get(call_sid) or services.store.open(call_sid, caller=request.form.get("From", ""))
    services.store.heard(call_sid)
    if _keys_to_the_stream(services, state, digits):
        return _twiml_response(twiml.listen(base + "/listen", **listening(config, base)))
    answer = answer_in_webhook(services, Heard(call_sid, digits, "dtmf", state.caller))
    return _twiml_response(listening_reply(services, call_sid, answer.reply, base))


def _keys_to_the_stream(services, state, digits: str) -> bool:
    """A chatbot with a connection per call (ConversationRelay) holds it in the process holding the call's stream:
    keys pressed on another process's webhook are its turn (answered by a call update). True when sent there."""
    if not isinstance(services.chatbot, CallSessions) or state.stream_owner in ("", services.me):
        return False
    services.events.caller_said(state.call_sid, digits, "dtmf")
    services.tell_stream(state.call_sid, {"type": "keys", "digits": digits})
    log.info("call %s: keys sent to the process holding the call's stream and its chatbot connection", state.call_sid)
    return True


@bp.post("/transfer")
@twilio_signed
def transfer_outcome():
    """After a transfer's <Dial>: end the call if it was answered, else bring the caller back to the bot."""
    services = _services()
    call_sid = webhook_call_sid(request)
    config = call_config(services.config, services.store.get(call_sid))
    status = request.form.get("DialCallStatus", "")
    base = public_base(request)
    if status in ("completed", "answered"):
        log.info("call %s: transfer answered and finished; hanging up", call_sid)
        services.events.action(call_sid, "transferred")
        return _twiml_response(twiml.say_and_hang_up("", language=config.language))
    log.info("call %s: transfer ended with %s; back to the bot", call_sid, status or "no status")
    services.events.action(call_sid, "transfer-failed", text=status or None)
    services.store.hold(call_sid, False)  # the caller is back with the bot
    if config.stt_provider != "twilio":
        said(services, call_sid, Reply(config.transfer_failed_message))
    if config.stt_provider == "twilio":
        return _twiml_response(gather_document(services, call_sid, base, Reply(config.transfer_failed_message)))
    return _twiml_response(listening_reply(services, call_sid, Reply(config.transfer_failed_message), base))


@bp.post("/status")
@twilio_signed
def call_status():
    """The call-status callback: when a call ends, release everything held for it."""
    services = _services()
    call_sid = webhook_call_sid(request)
    status = request.form.get("CallStatus", "")
    if call_sid and status in ENDED_STATUSES:
        services.store.end(call_sid)
        services.live.release(call_sid)
        if services.messages is not None:
            services.messages.forget(call_sid)
        log.info("call %s ended (%s); released", call_sid, status)
        services.events.call_ended(call_sid, status)
    return Response(status=204)


@bp.get("/")
def index():
    """A small page for the operator: is it up, and which URLs go into the Twilio console."""
    services = _services()
    base = public_base(request)
    return render_template("index.html", base=base, provider=services.config.stt_provider,
                           reason=services.config.stt_provider_reason, live_calls=len(services.live))
