"""The server side of a websocket (RFC 6455), read by the request's own thread, many messages per read.

Why not simple-websocket: it starts a reader thread per connection and hands every 20 ms frame across threads
(two wake-ups per frame). A Media Stream only ever needs "give me the messages that have arrived", so one thread
reads the socket now and then and takes the whole batch. The handshake stays here because it is gunicorn's and
werkzeug's raw socket that is upgraded, after Flask routed and checked the request.

The framing is wsproto's, with one shortcut: wsproto parses a frame in about three times the CPU of a direct read
(bench/bench_websocket.py), a third of a call's whole cost. So a frame that is certainly valid and whole (a final,
masked, unextended text or binary frame, its length minimally encoded, its text UTF-8, no fragmented message under
way) is read here directly; at the first frame that is anything else, the connection is wsproto's for good, from
that frame on. Every control frame, fragment and malformed frame is therefore checked by wsproto alone.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import socket

from flask import Response
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import CloseConnection, Message, Ping
from wsproto.frame_protocol import CloseReason

log = logging.getLogger(__name__)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
NORMAL, PROTOCOL_ERROR, INVALID_DATA, TOO_BIG = (CloseReason.NORMAL_CLOSURE, CloseReason.PROTOCOL_ERROR,
                                                 CloseReason.INVALID_FRAME_PAYLOAD_DATA, CloseReason.MESSAGE_TOO_BIG)
MAX_MESSAGE_BYTES = 1 << 20  # default cap; a Media Stream message is a few hundred bytes
READ_BYTES = 1 << 18


class HandshakeError(Exception):
    """The request is not a websocket upgrade we can accept."""


class ConnectionClosed(Exception):
    """The peer closed the websocket (or the connection broke)."""


class WebSocket:
    """One accepted websocket on the WSGI server's raw socket (gunicorn or werkzeug)."""

    def __init__(self, environ: dict, max_message_bytes: int = MAX_MESSAGE_BYTES):
        self.mode = "gunicorn" if "gunicorn.socket" in environ else "werkzeug"
        self.sock: socket.socket | None = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
        key = environ.get("HTTP_SEC_WEBSOCKET_KEY", "")
        if self.sock is None:
            raise HandshakeError("no raw socket in the WSGI environment")
        if "websocket" not in environ.get("HTTP_UPGRADE", "").lower() or not key:
            raise HandshakeError("not a websocket upgrade")
        if environ.get("HTTP_SEC_WEBSOCKET_VERSION") != "13":
            raise HandshakeError("unsupported websocket version")
        accept = base64.b64encode(hashlib.sha1(key.encode("latin-1") + GUID).digest()).decode()
        self.sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        self.connected = True
        self.max_message_bytes = max_message_bytes
        self.close_code: int | None = None  # the code this side closed with, if it did
        self._buffer = bytearray()  # what arrived and the shortcut has not taken yet
        self._protocol: Connection | None = None  # wsproto, once a frame was not the shortcut's
        self._pieces: list[str | bytes] = []  # the message arriving in parts (frames, or a frame over reads)
        self._pieces_size = 0

    def receive(self, timeout: float | None) -> list[str | bytes] | None:
        """Every whole message that has arrived, waiting up to `timeout` for one read; None if nothing came.

        Raises ConnectionClosed once the peer has closed (after the messages that came before its close).
        """
        if not self.connected:
            raise ConnectionClosed()
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(READ_BYTES)
        except (socket.timeout, TimeoutError, BlockingIOError):  # BlockingIOError: timeout 0 and nothing there
            return None
        except OSError as exc:
            self.connected = False
            raise ConnectionClosed() from exc
        if not data:
            self.connected = False
            raise ConnectionClosed()
        if self._protocol is not None:
            self._protocol.receive_data(data)
            return self._wsproto_messages([])
        self._buffer += data
        messages = self._plain_messages()
        if self._protocol is None or not self.connected:
            return messages
        return self._wsproto_messages(messages)

    def _plain_messages(self) -> list[str | bytes]:
        """The shortcut: take whole plain data frames off the buffer; at any other frame, hand the rest to wsproto."""
        messages: list[str | bytes] = []
        buf, pos, size = self._buffer, 0, len(self._buffer)
        while size - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            length, head = second & 0x7F, pos + 2
            if length == 126:
                if size - head < 2:
                    break
                length, head = int.from_bytes(buf[head:head + 2], "big"), head + 2
                plain = length > 125
            elif length == 127:
                if size - head < 8:
                    break
                length, head = int.from_bytes(buf[head:head + 8], "big"), head + 8
                plain = length > 0xFFFF
            else:
                plain = True
            # FIN set, no RSV bits, text or binary; masked (clients must mask, RFC 6455 5.1); the length minimal.
            if not (plain and first in (0x81, 0x82) and second & 0x80):
                pos = self._hand_over(pos)
                break
            if length > self.max_message_bytes:  # our limit, not the protocol's: checked before it all arrives
                self.close(TOO_BIG)
                break
            if size - head < 4 + length:
                break  # not all here yet
            mask, payload = bytes(buf[head:head + 4]), bytes(buf[head + 4:head + 4 + length])
            if length:  # unmask in one big-integer XOR: C speed, no per-byte loop
                key = int.from_bytes((mask * (length // 4 + 1))[:length], "big")
                payload = (int.from_bytes(payload, "big") ^ key).to_bytes(length, "big")
            if first == 0x81:
                try:
                    payload = payload.decode("utf-8")
                except UnicodeDecodeError:  # wsproto closes with the right code (1007)
                    pos = self._hand_over(pos)
                    break
            messages.append(payload)
            pos = head + 4 + length
        del buf[:pos]
        return messages

    def _hand_over(self, pos: int) -> int:
        """From the frame at `pos` on, the connection is wsproto's; returns where the shortcut's buffer now ends."""
        self._protocol = Connection(ConnectionType.SERVER, trailing_data=bytes(self._buffer[pos:]))
        return len(self._buffer)

    def _wsproto_messages(self, messages: list[str | bytes]) -> list[str | bytes]:
        """The whole messages wsproto parsed, after `messages`; pings answered, a close or a violation acted on."""
        for event in self._protocol.events():
            if isinstance(event, Message):
                if event.message_finished and not self._pieces:  # the usual case: a message in one frame, one read
                    messages.append(event.data)
                    continue
                self._pieces.append(event.data)
                self._pieces_size += len(event.data)
                if self._pieces_size > self.max_message_bytes:
                    self.close(TOO_BIG)
                    break
                if event.message_finished:
                    messages.append(self._pieces[0][:0].join(self._pieces))
                    self._pieces, self._pieces_size = [], 0
            elif isinstance(event, Ping):
                self._send(self._protocol.send(event.response()))
            elif isinstance(event, CloseConnection):
                if self._protocol.state is ConnectionState.REMOTE_CLOSING:  # the peer's close: echo its code
                    self._send(self._protocol.send(event.response()))
                    self.connected = False
                else:  # wsproto found a violation (it names the code): close with it
                    log.warning("websocket: the peer broke RFC 6455 (%s); closing with %d", event.reason, event.code)
                    self.close(event.code)
                break
        return messages

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            self.connected = False

    def close(self, code: int = NORMAL) -> None:
        """Send a close frame (once); the server closes the TCP connection when the request ends."""
        if self.connected:
            self.close_code = code
            self.connected = False
            if self._protocol is None:  # nothing was wsproto's yet: it starts here, for the close alone
                self._protocol = Connection(ConnectionType.SERVER)
            self._send(self._protocol.send(CloseConnection(code)))

    def response(self) -> Response:
        """What the view returns once the websocket is done: nothing more may be written to the socket."""
        mode = self.mode

        class Done(Response):
            def __call__(self, *args, **kwargs):
                if mode == "gunicorn":
                    raise StopIteration()  # gunicorn's signal to drop the connection without writing a response
                return super().__call__(*args, **kwargs)

        return Done()
