"""The server side of a websocket (RFC 6455), read by the request's own thread, many messages per read.

Why not simple-websocket: it starts a reader thread per connection and hands every 20 ms frame across threads
(two wake-ups per frame), and parses frames with wsproto in pure Python. A Media Stream only ever needs "give me
the messages that have arrived", so one thread reads the socket now and then and parses whole batches.
"""
from __future__ import annotations

import base64
import hashlib
import socket
import struct

from flask import Response

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
NORMAL, PROTOCOL_ERROR, INVALID_DATA, TOO_BIG = 1000, 1002, 1007, 1009
MAX_MESSAGE_BYTES = 1 << 20  # default cap; a Media Stream message is a few hundred bytes
READ_BYTES = 1 << 18


class HandshakeError(Exception):
    """The request is not a websocket upgrade we can accept."""


class ConnectionClosed(Exception):
    """The peer closed the websocket (or the connection broke)."""


def frame(opcode: int, payload: bytes = b"") -> bytes:
    """An unmasked server frame (control frames and closes only: the gateway sends nothing else)."""
    return struct.pack("!BB", 0x80 | opcode, len(payload)) + payload


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
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0

    def receive(self, timeout: float | None) -> list[str | bytes] | None:
        """Every whole message that has arrived, waiting up to `timeout` for one read; None if nothing came.

        Raises ConnectionClosed once the peer has closed (after the messages that came before its close).
        """
        if not self.connected:
            raise ConnectionClosed()
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(READ_BYTES)
        except (socket.timeout, TimeoutError):
            return None
        except OSError as exc:
            self.connected = False
            raise ConnectionClosed() from exc
        if not data:
            self.connected = False
            raise ConnectionClosed()
        self._buffer += data
        return self._parse()

    def _parse(self) -> list[str | bytes]:
        """Take every complete frame off the buffer; whole messages out, control frames answered."""
        messages: list[str | bytes] = []
        buf, pos, size = self._buffer, 0, len(self._buffer)
        while self.connected and size - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            length, head = second & 0x7F, pos + 2
            if length == 126:
                if size - head < 2:
                    break
                length, head = int.from_bytes(buf[head:head + 2], "big"), head + 2
            elif length == 127:
                if size - head < 8:
                    break
                length, head = int.from_bytes(buf[head:head + 8], "big"), head + 8
            if first & 0x70 or not second & 0x80:  # no extensions were agreed; clients must mask (RFC 6455 5.1)
                self._fail(PROTOCOL_ERROR)
                break
            if length > self.max_message_bytes:
                self._fail(TOO_BIG)
                break
            if size - head < 4 + length:
                break
            mask, payload = bytes(buf[head:head + 4]), bytes(buf[head + 4:head + 4 + length])
            pos = head + 4 + length
            if mask != b"\0\0\0\0" and length:  # unmask in one big-integer XOR: C speed, no per-byte loop
                key = int.from_bytes((mask * (length // 4 + 1))[:length], "big")
                payload = (int.from_bytes(payload, "big") ^ key).to_bytes(length, "big")
            message = self._frame(first & 0x80, first & 0x0F, payload)
            if message is not None:
                messages.append(message)
        del buf[:pos]
        return messages

    def _frame(self, fin: int, opcode: int, payload: bytes) -> str | bytes | None:
        """Handle one frame; a finished data message is returned."""
        if opcode in (TEXT, BINARY):
            if self._fragments:
                return self._fail(PROTOCOL_ERROR)
            if fin:
                return self._message(opcode, payload)
            self._fragments, self._fragment_opcode = [payload], opcode
        elif opcode == CONTINUATION:
            if not self._fragments:
                return self._fail(PROTOCOL_ERROR)
            self._fragments.append(payload)
            if sum(map(len, self._fragments)) > self.max_message_bytes:
                return self._fail(TOO_BIG)
            if fin:
                whole, self._fragments = b"".join(self._fragments), []
                return self._message(self._fragment_opcode, whole)
        elif opcode == PING:
            self._send(frame(PONG, payload[:125]))
        elif opcode == CLOSE:
            self._send(frame(CLOSE, payload[:2]))  # echo the status code, as RFC 6455 5.5.1 asks
            self.connected = False
        elif opcode != PONG:
            return self._fail(PROTOCOL_ERROR)
        return None

    def _message(self, opcode: int, payload: bytes) -> str | bytes | None:
        if opcode == BINARY:
            return payload
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            return self._fail(INVALID_DATA)

    def _fail(self, code: int) -> None:
        """Close with `code` after a protocol violation; later reads raise ConnectionClosed."""
        self.close(code)
        return None

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            self.connected = False

    def close(self, code: int = NORMAL) -> None:
        """Send a close frame (once); the server closes the TCP connection when the request ends."""
        if self.connected:
            self.close_code = code
            self._send(frame(CLOSE, struct.pack("!H", code)))
            self.connected = False

    def response(self) -> Response:
        """What the view returns once the websocket is done: nothing more may be written to the socket."""
        mode = self.mode

        class Done(Response):
            def __call__(self, *args, **kwargs):
                if mode == "gunicorn":
                    raise StopIteration()  # gunicorn's signal to drop the connection without writing a response
                return super().__call__(*args, **kwargs)

        return Done()
