"""The Media Stream websocket: Twilio's messages to the call's conversation, a batch per read (the reader's)."""
from __future__ import annotations

import logging
import time

from flask import Blueprint, abort, current_app, request

from .. import metrics
from ..chatbots.reply import Reply
from ..dialogue.answers import call_config, gather_document
from ..dialogue.conversation import Conversation
from ..dialogue.relay_pushes import stream_gone, stream_started
from ..ops.limits import MessageRate, streams_full, switch_to_gather
from ..twilio.media_stream import Media, ProtocolError, StreamStart, StreamStop, parse_message
from ..recognizers import make_recognizer
from .signed import public_base, public_request_url, signature_is_valid, stream_token_is_valid
from ..twilio.timeline import AudioTimeline
from ..twilio.socket_reader import SILENCE_SECONDS, Ended
from ..twilio.websocket import TOO_BIG, ConnectionClosed, HandshakeError, WebSocket

log = logging.getLogger(__name__)

bp = Blueprint("stream", __name__)

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
        services.updater.update(start.call_sid, gather_document(services, start.call_sid, base_url,
                                                                Reply(config.apology)))
        return None
    services.live.add(conversation)
    services.store.stream_started(start.call_sid, services.me, base_url)
    services.deadlines.watch(start.call_sid, state.started_at)  # the call's clock, in the process holding its stream
    if services.store.get(start.call_sid).ended:  # /status came while the recognizer started: it released nothing
        services.live.release(start.call_sid, conversation)
        log.warning("stream %s for call %s refused: the call ended while its stream started", start.stream_sid,
                    start.call_sid)
        return None
    stream_started(services, start.call_sid, state)  # a chatbot with a connection per call opens it where the stream is
    log.info("stream %s started for call %s", start.stream_sid, start.call_sid)
    return conversation


def _seconds_until(value: str | None) -> float:
    """Seconds from now to a stream parameter's epoch time (our own, from /voice's TwiML); odd values count as none."""
    try:
        seconds = float(value or 0) - time.time()
    except ValueError:
        return 0.0
    return min(seconds, 600.0) if seconds > 0 else 0.0  # also rules out nan


@bp.route("/stream", websocket=True)
def media_stream():
    """Accept the websocket and serve it on this request's own thread until the stream ends."""
    config = current_app.extensions["chatline"].config
    try:
        ws = WebSocket(request.environ, max_message_bytes=config.max_frame_bytes * 4 // 3 + 16 * 1024)
    except HandshakeError as exc:
        log.warning("refused Media Stream handshake: %s", exc)
        abort(400)
    metrics.stream_opened()
    try:
        _serve(ws)
    finally:
        metrics.stream_closed()
        ws.close()
    return ws.response()


def _serve(ws: WebSocket) -> None:
    """Read Twilio's messages until the stream ends: up to its start here, then on the process's stream reader."""
    services = current_app.extensions["chatline"]
    stream = _StreamState(services, public_base(request))
    ended = Ended.DONE
    try:
        ended = _until_started(ws, stream)
        if ended is None:
            ended = services.streams.read(ws, stream)
        if ended is Ended.CLOSED:
            log.warning("Media Stream for call %s closed %s", stream.call_sid, "after a message over "
                        f"{ws.max_message_bytes} bytes" if ws.close_code == TOO_BIG else "without a stop message")
        elif ended is Ended.SILENT:
            log.warning("no Media Stream message for %d s; closing the stream", SILENCE_SECONDS)
        elif stream.conversation is not None and stream.conversation.closed:
            log.info("stream for call %s closed: the call is no longer heard here", stream.call_sid)
        if stream.flooded and stream.conversation is not None:  # the call goes on: Twilio listens instead
            switch_to_gather(services, stream.call_sid, stream.base_url, services.config.apology, stream.conversation)
    finally:
        if stream.conversation is not None:
            services.live.release(stream.call_sid, stream.conversation)
            # A connection that failed is not the call ending: its next keep-alive starts a new stream.
            broken = ended is Ended.SILENT or ended is Ended.CLOSED and ws.close_code != TOO_BIG
            services.store.stream_gone(stream.call_sid, services.me, broken)
            stream_gone(services, stream.call_sid)


def _until_started(ws: WebSocket, stream: _StreamState) -> Ended | None:
    """Read on this thread until the start message opened the call's conversation (None), or the stream ended: opening
    it reaches the call's state, the recognizer and perhaps Twilio's REST API, which must not hold up the reader."""
    while stream.conversation is None:
        try:
            messages = ws.receive(timeout=SILENCE_SECONDS)
        except ConnectionClosed:
            return Ended.CLOSED
        if messages is None:
            return Ended.SILENT
        if not stream.take(messages):
            return Ended.DONE
    return None


class _StreamState:
    """One Media Stream's messages, a read's batch at a time: the call's conversation once it starts. After the start
    its batches are taken on the process's stream reader, so nothing here may block (see _serve)."""

    def __init__(self, services, base_url: str):
        self.services, self.base_url = services, base_url
        self.conversation: Conversation | None = None
        self.timeline = AudioTimeline()
        self.rate = MessageRate(services.config.max_stream_messages_per_second,
                                tracks=2 if services.config.outbound_track else 1)
        self.errors = self.unstarted = 0
        self.warned_early_media = False
        self.flooded = False  # over the message rate: the stream ends and the call moves to <Gather>
        self.inbound_ms: int | None = None  # the latest inbound frame's time in this read

    @property
    def finished(self) -> bool:
        """The call stopped being heard here (ended, handed on, switched to <Gather>): stop reading its stream."""
        return self.conversation is not None and self.conversation.closed

    @property
    def call_sid(self) -> str:
        return self.conversation.call_sid if self.conversation is not None else "unknown"

    def take(self, messages: list) -> bool:
        """Handle one read's messages and feed their audio; False once the stream is over for us."""
        audio: list[bytes] = []
        outbound: list[tuple[bytes, int | None]] = []  # what the caller heard in this read: never recognized
        try:
            taken, flood = self.rate.admit_many(len(messages))  # over the rate: the read's last ones are dropped
            for raw in messages[:taken]:
                if not self._message(raw, audio, outbound):
                    return False
            self.flooded = flood
            return not flood
        finally:
            if self.conversation is not None:
                if outbound:
                    self.conversation.listener.outbound_frames(outbound)
                heard = b"".join(audio)
                if heard:
                    self.conversation.feed(heard)
                self.conversation.listener.inbound(self.inbound_ms, heard)
                self.conversation.tick()

    def _message(self, raw, audio: list[bytes], outbound: list[tuple[bytes, int | None]]) -> bool:
        """One message: the caller's audio into `audio`, an outbound frame (payload, time) into `outbound`; False
        when the stream should close."""
        self.unstarted = self.unstarted + 1 if self.conversation is None else 0
        if self.unstarted > MAX_MESSAGES_BEFORE_START:
            log.warning("no start message in the first %d on a Media Stream; closing it", MAX_MESSAGES_BEFORE_START)
            return False
        try:
            event = parse_message(raw, self.services.config.max_frame_bytes)
        except ProtocolError as exc:
            self.errors += 1
            if self.errors <= MAX_LOGGED_PROTOCOL_ERRORS:
                log.warning("ignored a bad Media Stream message (%d so far): %s", self.errors, exc)
            return True
        if isinstance(event, Media):
            if self.conversation is not None and event.track == "outbound":
                outbound.append((event.payload, event.timestamp_ms))
            elif self.conversation is not None:
                audio.append(self.timeline.place(event.payload, event.timestamp_ms))
                self.inbound_ms = event.timestamp_ms
            elif not self.warned_early_media:
                self.warned_early_media = True
                log.warning("media before the stream's start message; ignored until it starts")
        elif isinstance(event, StreamStart):
            if self.conversation is not None:
                log.warning("duplicate start on stream for call %s ignored", self.call_sid)
                return True
            self.conversation = _open_conversation(event, self.base_url)
            if self.conversation is None:
                return False
            self.rate.name = f"call {self.call_sid}"
        elif isinstance(event, StreamStop):
            log.info("stream stopped for call %s", self.call_sid)
            if self.conversation is not None:  # we never <Stop> a stream: Twilio stops it when the call ends
                self.services.store.end(self.call_sid)
                self.services.events.call_ended(self.call_sid)
            return False
        return True
