"""POST /continue: Twilio has said an answer's first sentence; the rest, written meanwhile, is this webhook's TwiML."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request

from ..chatbots.reply import Reply
from ..dialogue.answers import call_config, listening_reply, stream_reply
from ..dialogue.turn import said
from .signed import public_base, twilio_signed
from ..twilio.security import webhook_call_sid

log = logging.getLogger(__name__)

bp = Blueprint("rest_of_answer", __name__)

REST_MARGIN_SECONDS = 1.0  # past CHATBOT_TIMEOUT the turn has given up writing: the rest (or its apology) is set


@bp.post("/continue")
@twilio_signed
def rest_of_answer():
    """Say the rest of the answer (waiting while the model still writes it) and act on it; or just listen on."""
    services = current_app.extensions["chatline"]
    base = public_base(request)
    call_sid = webhook_call_sid(request)
    continuation = services.continuations.take(call_sid, request.args.get("answer", "")) if call_sid else None
    rest = continuation.wait(services.config.chatbot_timeout + REST_MARGIN_SECONDS) if continuation else None
    if rest is None:
        log.warning("call %s: the rest of the answer is not here (another process, or it never came); the call "
                    "listens on", call_sid or "unknown")
        config = call_config(services.config, services.store.get(call_sid) if call_sid else None)
        return Response(stream_reply(config, Reply(""), base), mimetype="text/xml")
    said(services, call_sid, rest)  # the stream's process (this one or another) follows its hints and action
    return Response(listening_reply(services, call_sid, rest, base), mimetype="text/xml")
