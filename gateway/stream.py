"""The Media Stream websocket: a thin loop from Twilio's messages to the call's conversation."""
from __future__ import annotations

import logging
import time

from flask import Blueprint, abort, current_app, request

from . import twiml
from .conversation import Conversation
from .media_stream import Media, ProtocolError, StreamStart, StreamStop, parse_message
from .recognizers import make_recognizer
from .security import public_base, public_request_url, signature_is_valid, stream_token_is_valid
from .timeline import AudioTimeline
from .websocket import ConnectionClosed, HandshakeError, WebSocket

log = logging.getLogger(__name__)

bp = Blueprint("stream", __name__)

RECEIVE_TIMEOUT_SECONDS = 60  # Twilio sends a frame every 20 ms; a minute of nothing means the peer is gone
# The socket is read every 100 ms, five 20 ms frames at a time: one wake-up per batch instead of one per frame.
# The recognizer sends audio to Google in 100 ms batches anyway, so this adds no delay to recognition.
READ_INTERVAL_SECONDS = 0.1
MAX_LOGGED_PROTOCOL_ERRORS = 5  # per stream, so a misbehaving peer cannot flood the log


@bp.before_request
def check_handshake():
    """Refuse the websocket handshake unless it is signed for the exact wss:// URL."""
    if not signature_is_valid(request, websocket=True):
        log.warning("refused Media Stream handshake: missing or invalid X-Twilio-Signature (checked against %s)",
                    public_request_url(request, websocket=True))
        abort(403)


def _open_conversation(start: StreamStart, base_url: str) -> Conversation | None:
    """Create the conversation for a started stream, or None if the call is not ours or has ended."""
    services = current_app.extensions["chatline"]
    if not stream_token_is_valid(start.call_sid, start.custom_parameters.get("token")):
        log.warning("stream %s for call %s refused: missing or wrong stream token", start.stream_sid, start.call_sid)
        return None
    state = services.store.get(start.call_sid)
    if state is None or state.ended:
        log.warning("stream %s for %s call %s refused", start.stream_sid,
                    "an unknown" if state is None else "an ended", start.call_sid)
        return None
    try:
        recognizer = make_recognizer(services.config, state.hints or services.config.hints)
        conversation = Conversation(start.call_sid, state.caller, services, recognizer, base_url)
        conversation.start()
    except Exception:  # no recognizer (bad credentials, model missing): let Twilio listen instead of going deaf
        log.exception("cannot start speech recognition for call %s; switching the call to <Gather>", start.call_sid)
        config = services.config
        services.updater.update(start.call_sid, twiml.gather(
            config.apology, base_url + "/gather", state.hints or config.hints, **config.gather_options()))
        return None
    services.live.add(conversation)
    log.info("stream %s started for call %s", start.stream_sid, start.call_sid)
    return conversation


@bp.route("/stream", websocket=True)
def media_stream():
    """Accept the websocket and serve it on this request's thread until the stream ends."""
    try:
        ws = WebSocket(request.environ)
    except HandshakeError as exc:
        log.warning("refused Media Stream handshake: %s", exc)
        abort(400)
    try:
        _serve(ws)
    except ConnectionClosed:
        log.info("Media Stream connection closed by the peer")
    finally:
        ws.close()
    return ws.response()


def _serve(ws: WebSocket) -> None:
    """Read Twilio's messages until the stream stops; feed the audio to the recognizer, one batch per read."""
    services = current_app.extensions["chatline"]
    base_url = public_base(request)
    conversation: Conversation | None = None
    timeline = AudioTimeline()
    errors = 0
    warned_early_media = False
    try:
        while True:
            messages = ws.receive(timeout=RECEIVE_TIMEOUT_SECONDS)
            if messages is None:
                log.warning("no Media Stream message for %d s; closing the stream", RECEIVE_TIMEOUT_SECONDS)
                break
            audio: list[bytes] = []
            stopped = False
            for raw in messages:
                try:
                    event = parse_message(raw, services.config.max_frame_bytes)
                except ProtocolError as exc:
                    errors += 1
                    if errors <= MAX_LOGGED_PROTOCOL_ERRORS:
                        log.warning("ignored a bad Media Stream message (%d so far): %s", errors, exc)
                    continue
                if isinstance(event, Media):
                    if conversation is not None:
                        audio.append(timeline.place(event.payload, event.timestamp_ms))
                    elif not warned_early_media:
                        warned_early_media = True
                        log.warning("media before the stream's start message; ignored until it starts")
                elif isinstance(event, StreamStart):
                    if conversation is not None:
                        log.warning("duplicate start on stream for call %s ignored", conversation.call_sid)
                        continue
                    conversation = _open_conversation(event, base_url)
                    if conversation is None:
                        return
                elif isinstance(event, StreamStop):
                    stopped = True
                    break
            if audio:
                conversation.feed(b"".join(audio))
            if stopped:
                log.info("stream stopped for call %s", conversation.call_sid if conversation else "unknown")
                if conversation is not None:  # we never <Stop> a stream: Twilio stops it when the call ends
                    services.store.end(conversation.call_sid)
                return
            time.sleep(READ_INTERVAL_SECONDS)
    finally:
        if conversation is not None:
            services.live.release(conversation.call_sid, conversation)
