"""The Media Stream websocket: a thin loop from Twilio's messages to the call's conversation."""
from __future__ import annotations

import logging
import time

from flask import Blueprint, abort, current_app, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed

from . import twiml
from .conversation import Conversation, call_config
from .limits import MessageRate, Verdict, streams_full, switch_to_gather
from .media_stream import Media, ProtocolError, StreamStart, StreamStop, parse_message
from .recognizers import make_recognizer
from .security import public_base, public_request_url, signature_is_valid, stream_token_is_valid
from .timeline import AudioTimeline

log = logging.getLogger(__name__)

bp = Blueprint("stream", __name__)
sock = Sock()

RECEIVE_TIMEOUT_SECONDS = 60  # Twilio sends a frame every 20 ms; a minute of nothing means the peer is gone
MAX_LOGGED_PROTOCOL_ERRORS = 5  # per stream, so a misbehaving peer cannot flood the log
MAX_MESSAGES_BEFORE_START = 50  # Twilio sends `start` second, right after `connected`; 50 in, this is no call's stream


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
    if services.drain is not None and services.drain.draining:
        log.info("stream %s for call %s started while shutting down; handing the call on", start.stream_sid,
                 start.call_sid)
        services.updater.update(start.call_sid, services.drain.handoff_twiml(start.call_sid, base_url))
        return None
    if streams_full(services):  # /voice saw room, but other calls' streams got here first
        log.warning("stream %s for call %s refused: %d streams live (MAX_CONCURRENT_STREAMS); switching the call to "
                    "<Gather>", start.stream_sid, start.call_sid, len(services.live))
        switch_to_gather(services, start.call_sid, base_url, services.config.greeting)
        return None
    config = call_config(services.config, state)
    try:
        recognizer = make_recognizer(config, state.hints or config.hints)
        conversation = Conversation(start.call_sid, state.caller, services, recognizer, base_url)
        conversation.start(_seconds_until(start.custom_parameters.get("bargeInUntil")))
    except Exception:  # no recognizer (bad credentials, model missing): let Twilio listen instead of going deaf
        log.exception("cannot start speech recognition for call %s; switching the call to <Gather>", start.call_sid)
        services.updater.update(start.call_sid, twiml.gather(
            config.apology, base_url + "/gather", state.hints or config.hints, **config.gather_options()))
        return None
    services.live.add(conversation)
    if services.store.get(start.call_sid).ended:  # /status came while the recognizer started: it released nothing
        services.live.release(start.call_sid, conversation)
        log.warning("stream %s for call %s refused: the call ended while its stream started", start.stream_sid,
                    start.call_sid)
        return None
    log.info("stream %s started for call %s", start.stream_sid, start.call_sid)
    return conversation


def _seconds_until(value: str | None) -> float:
    """Seconds from now to a stream parameter's epoch time (our own, from /voice's TwiML); odd values count as none."""
    try:
        seconds = float(value or 0) - time.time()
    except ValueError:
        return 0.0
    return min(seconds, 600.0) if seconds > 0 else 0.0  # also rules out nan


@sock.route("/stream", bp=bp)
def media_stream(ws):
    """Read Twilio's messages until the stream stops; feed the audio to the recognizer."""
    services = current_app.extensions["chatline"]
    base_url = public_base(request)
    conversation: Conversation | None = None
    timeline = AudioTimeline()
    errors = unstarted = 0
    warned_early_media = False
    rate = MessageRate(services.config.max_stream_messages_per_second)
    try:
        while True:
            try:
                raw = ws.receive(timeout=RECEIVE_TIMEOUT_SECONDS)
            except ConnectionClosed:
                too_big = ws.max_message_size and ws.incoming_message_len > ws.max_message_size
                log.warning("Media Stream for call %s closed %s", conversation.call_sid if conversation else "unknown",
                            f"after a message over {ws.max_message_size} bytes" if too_big else "without a stop message")
                break
            if raw is None:
                log.warning("no Media Stream message for %d s; closing the stream", RECEIVE_TIMEOUT_SECONDS)
                break
            verdict = rate.admit()
            if verdict is Verdict.FLOOD:
                if conversation is not None:  # the call goes on: Twilio listens instead of this stream
                    switch_to_gather(services, conversation.call_sid, base_url, services.config.apology, conversation)
                break
            if verdict is Verdict.DROP:
                continue
            if conversation is not None and conversation.closed:
                log.info("stream for call %s closed: the call is no longer heard here", conversation.call_sid)
                break
            unstarted = unstarted + 1 if conversation is None else 0
            if unstarted > MAX_MESSAGES_BEFORE_START:
                log.warning("no start message in the first %d on a Media Stream; closing it", MAX_MESSAGES_BEFORE_START)
                break
            try:
                event = parse_message(raw, services.config.max_frame_bytes)
            except ProtocolError as exc:
                errors += 1
                if errors <= MAX_LOGGED_PROTOCOL_ERRORS:
                    log.warning("ignored a bad Media Stream message (%d so far): %s", errors, exc)
                continue
            if isinstance(event, Media):
                if conversation is not None:
                    conversation.feed(timeline.place(event.payload, event.timestamp_ms))
                elif not warned_early_media:
                    warned_early_media = True
                    log.warning("media before the stream's start message; ignored until it starts")
            elif isinstance(event, StreamStart):
                if conversation is not None:
                    log.warning("duplicate start on stream for call %s ignored", conversation.call_sid)
                    continue
                conversation = _open_conversation(event, base_url)
                if conversation is None:
                    break
                rate.name = f"call {conversation.call_sid}"
            elif isinstance(event, StreamStop):
                log.info("stream stopped for call %s", conversation.call_sid if conversation else "unknown")
                if conversation is not None:  # we never <Stop> a stream: Twilio stops it when the call ends
                    services.store.end(conversation.call_sid)
                break
    finally:
        if conversation is not None:
            services.live.release(conversation.call_sid, conversation)
