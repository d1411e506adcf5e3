"""HTTP endpoints of the sample chatbot: `POST /message` (contract section 1) and health checks."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from .dialogue import Dialogue
from .message_request import BadMessageRequest, parse_message_request

EXTENSION_KEY = "chatbot_api"
_LOGGED_MESSAGE_CHARS = 200

bp = Blueprint("chatbot", __name__)


def _dialogue() -> Dialogue:
    return current_app.extensions[EXTENSION_KEY]


@bp.get("/")
@bp.get("/health")
def health():
    """Liveness check for load balancers and the gateway's start-up probe."""
    return jsonify(status="ok")


@bp.post("/message")
def message():
    """Answer one caller turn: {message, session_id, ...} -> {text, action, hints}."""
    try:
        turn = parse_message_request(request.get_data(cache=False), current_app.config["MAX_MESSAGE_CHARS"])
    except BadMessageRequest as error:
        current_app.logger.warning("400 POST /message from %s: %s", request.remote_addr, error)
        return jsonify(error=str(error)), 400
    if turn.input == "start":  # the gateway's optional first request of a call (CHATBOT_GREETING)
        reply = _dialogue().greet(turn.session_id)
    else:
        reply = _dialogue().respond(turn.session_id, turn.message)
    # %r keeps a caller's words on one log line whatever they contain.
    current_app.logger.info(
        "session=%s input=%s message=%r intent=%s action=%s state=%s",
        turn.session_id,
        turn.input or "-",
        turn.message[:_LOGGED_MESSAGE_CHARS],
        reply.intent or "(fallback)",
        reply.action.type if reply.action else "-",
        reply.state,
    )
    return jsonify(reply.to_json())


def json_http_error(error: HTTPException):
    """Every HTTP error (404, 405, 413, 500) as {"error": ...} so clients always get JSON."""
    return jsonify(error=f"{error.code} {error.name}: {error.description}"), error.code
