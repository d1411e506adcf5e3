"""Twilio's Media Streams client: a one-way <Start><Stream> websocket carrying the caller's audio as Twilio's JSON."""
from __future__ import annotations

import base64
import json
import logging
import select
import threading
import time
from typing import Callable

import websocket
from websocket import ABNF, WebSocketBadStatusException, WebSocketException

from standins.outbound_audio import SILENCE, OutboundTrack
from standins.twilio_caller import Line
from standins.twilio_webhooks import STREAM_USER_AGENT, WebhookClient, new_sid

log = logging.getLogger(__name__)

FRAME_SECONDS = 0.02  # one media message carries 20 ms of 8 kHz mu-law
HANDSHAKE_TIMEOUT = 10.0
SEND_TIMEOUT = 5.0  # a server that stops reading for this long is treated as gone
MEDIA_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}


def tracks_of(track: str) -> tuple[str, ...]:
    """The tracks a <Stream track=...> carries (Twilio's default: the caller's audio)."""
    return {"outbound_track": ("outbound",), "both_tracks": ("inbound", "outbound")}.get(track, ("inbound",))


class MediaStream:
    """One <Start><Stream>: handshake, `connected`, `start`, a `media` frame every 20 ms (scaled by speed), `stop`."""

    def __init__(self, *, url: str, name: str | None, parameters: dict[str, str], call_sid: str, account_sid: str,
                 webhooks: WebhookClient, line: Line, speed: float, record: Callable[[str, object], None],
                 on_started: Callable[[MediaStream], None], track: str = "inbound_track",
                 outbound: OutboundTrack | None = None) -> None:
        self.url = url  # the public wss:// URL exactly as written in the TwiML (what the signature covers)
        self.name = name
        self.parameters = dict(parameters)
        self.stream_sid = new_sid("MZ")
        self.call_sid, self.account_sid = call_sid, account_sid
        self.frames_sent = 0  # 20 ms ticks: one inbound frame each (and one outbound frame with both_tracks)
        self.outbound_frames_sent = 0
        # The TwiML's track: the caller's audio, what the caller hears (the outbound track), or both.
        self.tracks = tracks_of(track)
        self._outbound = outbound
        self.received: list[object] = []  # whatever the app sent back (a one-way stream expects nothing)
        self.refused: object = None  # handshake status (or error text) when the app refused the stream
        self._webhooks, self._line, self._speed = webhooks, line, speed
        self._record, self._on_started = record, on_started
        self._stop = threading.Event()
        self._dropped = threading.Event()  # the connection breaks: no `stop`, no close frame
        self._seq = 0
        self._media_back = False
        self._thread = threading.Thread(target=self._run, name=f"twilio-standin-stream-{self.stream_sid[:8]}",
                                        daemon=True)

    def start(self) -> None:
        """Connect in the background; Twilio goes on with the next verb without waiting for the handshake."""
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Send `stop`, close the websocket, and wait (bounded) for that to happen."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def drop(self, timeout: float = 3.0) -> None:
        """Break the connection as a network failure would: no `stop` message, no websocket close."""
        self._dropped.set()
        self.stop(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def _run(self) -> None:
        try:
            ws = self._connect()
            if ws is None:
                return
            feed = self._line.subscribe()
            try:
                self._stream(ws, feed)
            finally:
                self._line.unsubscribe(feed)
                try:
                    ws.shutdown() if self._dropped.is_set() else ws.close(timeout=1)
                except (OSError, WebSocketException) as exc:
                    log.debug("twilio stand-in: closing stream %s: %s", self.stream_sid, exc)
        except Exception as exc:  # the boundary of the stream thread: report, never kill the process
            log.exception("twilio stand-in: media stream %s failed", self.url)
            self._record("error", f"media stream {self.url} failed: {exc!r}")

    def _connect(self) -> websocket.WebSocket | None:
        route = self._webhooks.tunnel.route(self.url)
        headers = {"X-Twilio-Signature": self._webhooks.sign(self.url, {}), "User-Agent": STREAM_USER_AGENT,
                   **route.headers}
        try:
            ws = websocket.create_connection(route.url, header=headers, timeout=HANDSHAKE_TIMEOUT,
                                             suppress_origin=True)
        except WebSocketBadStatusException as exc:
            self.refused = exc.status_code
        except (OSError, WebSocketException) as exc:
            self.refused = f"{type(exc).__name__}: {exc}"
        else:
            ws.settimeout(SEND_TIMEOUT)
            return ws
        # Twilio logs error 31920 (handshake error) and the call carries on without the stream.
        log.warning("twilio stand-in: stream %s (via %s) refused: %s", self.url, route.url, self.refused)
        self._record("stream-refused", self.refused)
        return None

    def _send(self, ws: websocket.WebSocket, message: dict) -> None:
        ws.send(json.dumps(message, separators=(",", ":")))

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    def _stream(self, ws: websocket.WebSocket, feed) -> None:
        try:
            self._send(ws, {"event": "connected", "protocol": "Call", "version": "1.0.0"})
            self._send(ws, {
                "event": "start", "sequenceNumber": self._next_seq(), "streamSid": self.stream_sid,
                "start": {"accountSid": self.account_sid, "streamSid": self.stream_sid, "callSid": self.call_sid,
                          "tracks": list(self.tracks), "customParameters": self.parameters,
                          "mediaFormat": MEDIA_FORMAT},
            })
            self._record("stream-start", self.url)
            self._on_started(self)
            # Frame n is due at t0 + n * interval on the monotonic clock, so a late wake-up is caught up
            # on the next frames instead of accumulating into drift.
            interval = FRAME_SECONDS / self._speed
            t0 = time.monotonic()
            while not self._stop.wait(max(0.0, t0 + self.frames_sent * interval - time.monotonic())):
                hears = self._outbound is not None and ("outbound" in self.tracks or self._outbound.leak > 0)
                heard = self._outbound.frame_now() if hears else SILENCE
                inbound = feed.take()
                if self._outbound is not None:  # a speakerphone's microphone picks up what the caller hears
                    inbound = self._outbound.leak_into(inbound, heard)
                if "inbound" in self.tracks:
                    self._send_media(ws, "inbound", inbound)
                if "outbound" in self.tracks:
                    self._send_media(ws, "outbound", heard)
                    self.outbound_frames_sent += 1
                self.frames_sent += 1
                if not self._drain(ws):
                    return
            if self._dropped.is_set():
                self._record("stream-dropped", self.url)
                return
            self._send(ws, {"event": "stop", "sequenceNumber": self._next_seq(), "streamSid": self.stream_sid,
                            "stop": {"accountSid": self.account_sid, "callSid": self.call_sid}})
            self._record("stream-stop", self.url)
        except (OSError, WebSocketException) as exc:
            log.warning("twilio stand-in: stream %s lost: %s", self.url, exc)
            self._record("stream-closed", f"{type(exc).__name__}: {exc}")

    def _send_media(self, ws: websocket.WebSocket, track: str, audio: bytes) -> None:
        """One media message as Twilio writes it; both tracks share the stream's clock (chunk and timestamp)."""
        self._send(ws, {
            "event": "media", "sequenceNumber": self._next_seq(), "streamSid": self.stream_sid,
            "media": {"track": track, "chunk": str(self.frames_sent + 1), "timestamp": str(self.frames_sent * 20),
                      "payload": base64.b64encode(audio).decode("ascii")},
        })

    def _drain(self, ws: websocket.WebSocket) -> bool:
        """Read (and ignore) whatever the app sent without blocking; False once it has closed the socket."""
        while ws.sock is not None and select.select([ws.sock], [], [], 0)[0]:
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == ABNF.OPCODE_CLOSE:
                self._record("stream-closed", "closed by the app")
                return False
            if opcode != ABNF.OPCODE_TEXT:
                continue
            try:
                message = json.loads(data.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                message = data.decode("utf-8", "replace")
            self.received.append(message)
            if isinstance(message, dict) and message.get("event") == "media" and not self._media_back:
                # <Start><Stream> is one-way: Twilio drops audio sent back. Worth flagging once per stream.
                self._media_back = True
                self._record("stream-media-back", self.url)
        return ws.sock is not None
