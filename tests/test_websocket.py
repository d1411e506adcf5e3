"""gateway/twilio/websocket.py on a real socket pair: RFC 6455's edge cases, and messages split over reads any way."""
from __future__ import annotations

import base64
import os
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Pong

from gateway.twilio.websocket import ConnectionClosed, HandshakeError, WebSocket

FIN, TEXT, BINARY, CONTINUATION, CLOSE, PING = 0x80, 0x1, 0x2, 0x0, 0x8, 0x9


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bytes | None = b"\x12\x34\x56\x78",
          rsv: int = 0, length_bytes: int | None = None) -> bytes:
    """A client frame as the peer writes it: masked unless `mask` is None, the length as short as possible unless
    `length_bytes` (2 or 8) says otherwise."""
    first = (FIN if fin else 0) | rsv | opcode
    size = len(payload)
    if length_bytes is None:
        length_bytes = 0 if size < 126 else 2 if size < 65536 else 8
    marker = 0x80 if mask is not None else 0
    if length_bytes == 0:
        header = bytes([first, marker | size])
    elif length_bytes == 2:
        header = bytes([first, marker | 126]) + struct.pack("!H", size)
    else:
        header = bytes([first, marker | 127]) + struct.pack("!Q", size)
    if mask is None:
        return header + payload
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close_frame(code: int | None, reason: bytes = b"") -> bytes:
    return frame(CLOSE, (struct.pack("!H", code) if code is not None else b"") + reason)


class Peer:
    """The client end of a socket pair whose server end is an accepted gateway WebSocket."""

    def __init__(self, max_message_bytes: int = 1 << 20):
        self.sock, theirs = socket.socketpair()
        environ = {"gunicorn.socket": theirs, "HTTP_UPGRADE": "websocket", "HTTP_SEC_WEBSOCKET_VERSION": "13",
                   "HTTP_SEC_WEBSOCKET_KEY": base64.b64encode(os.urandom(16)).decode()}
        self.ws = WebSocket(environ, max_message_bytes=max_message_bytes)
        self.handshake = self.sock.recv(4096)
        self.client = Connection(ConnectionType.CLIENT)  # reads what the gateway sends back

    def send(self, *chunks: bytes) -> list:
        """Write each chunk and let the gateway read it; every message it returned, in order."""
        messages = []
        for chunk in chunks:
            self.sock.sendall(chunk)
            messages += self.ws.receive(timeout=2.0) or []
        return messages

    def replies(self) -> list:
        """The frames the gateway sent back (pongs, its close), as wsproto's client events."""
        self.sock.settimeout(0.5)
        data = b""
        try:
            while chunk := self.sock.recv(4096):
                data += chunk
        except (TimeoutError, socket.timeout):
            pass
        self.client.receive_data(data)
        return list(self.client.events())


@pytest.fixture
def peer():
    peer = Peer()
    yield peer
    peer.sock.close()


def closed_with(peer: Peer, code: int) -> None:
    """The gateway closed with `code`, said so on the wire, and reads nothing more."""
    assert peer.ws.close_code == code and not peer.ws.connected
    assert [e.code for e in peer.replies() if isinstance(e, CloseConnection)] == [code]
    with pytest.raises(ConnectionClosed):
        peer.ws.receive(timeout=0.1)


def test_the_handshake_accepts_with_rfc_6455s_key_and_refuses_what_is_not_an_upgrade(peer):
    assert peer.handshake.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    ours, _ = socket.socketpair()
    with pytest.raises(HandshakeError):
        WebSocket({"gunicorn.socket": ours, "HTTP_UPGRADE": "websocket", "HTTP_SEC_WEBSOCKET_KEY": "x",
                   "HTTP_SEC_WEBSOCKET_VERSION": "8"})
    with pytest.raises(HandshakeError):
        WebSocket({"gunicorn.socket": ours, "HTTP_SEC_WEBSOCKET_KEY": "x", "HTTP_SEC_WEBSOCKET_VERSION": "13"})


def test_plain_frames_come_out_as_messages_in_order_text_as_str_binary_as_bytes(peer):
    long_text = "é" * 40_000  # 80,000 bytes: the 8-byte length
    assert peer.send(frame(TEXT, b"one") + frame(BINARY, b"\x00\xff") + frame(TEXT, b"x" * 300)
                     + frame(TEXT, long_text.encode()) + frame(TEXT, b"")) == ["one", b"\x00\xff", "x" * 300, long_text, ""]


def test_a_frame_split_over_reads_is_a_message_once_whole(peer):
    data = frame(TEXT, b'{"event": "media"}')
    assert peer.send(data[:1], data[1:5], data[5:-1]) == []
    assert peer.send(data[-1:]) == ['{"event": "media"}']


def test_a_fragmented_text_message_is_joined_even_with_a_character_split_between_fragments(peer):
    text = "caf\u00e9 ok".encode()  # é is two bytes: the first fragment ends inside it
    assert peer.send(frame(TEXT, text[:4], fin=False), frame(CONTINUATION, text[4:5], fin=False),
                     frame(PING, b"are you there"), frame(CONTINUATION, text[5:])) == ["café ok"]
    assert [e.payload for e in peer.replies() if isinstance(e, Pong)] == [b"are you there"]
    assert peer.send(frame(TEXT, b"after")) == ["after"]  # wsproto reads on, plain frames too


def test_a_ping_is_answered_with_its_payload_and_the_stream_goes_on(peer):
    assert peer.send(frame(TEXT, b"a") + frame(PING, b"x" * 125) + frame(TEXT, b"b")) == ["a", "b"]
    assert [e.payload for e in peer.replies() if isinstance(e, Pong)] == [b"x" * 125]


def test_the_peers_close_is_echoed_after_the_messages_before_it(peer):
    assert peer.send(frame(TEXT, b"last words") + close_frame(1000, b"bye")) == ["last words"]
    assert peer.ws.close_code is None and not peer.ws.connected  # the peer closed, not us
    assert [(e.code, e.reason) for e in peer.replies() if isinstance(e, CloseConnection)] == [(1000, "bye")]
    with pytest.raises(ConnectionClosed):
        peer.ws.receive(timeout=0.1)


def test_an_empty_close_is_answered_with_an_empty_close(peer):
    assert peer.send(close_frame(None)) == []
    assert [e.code for e in peer.replies() if isinstance(e, CloseConnection)] == [1005]  # "no status" on the wire


@pytest.mark.parametrize("data, code", [
    (frame(TEXT, b"unmasked", mask=None), 1002),  # clients must mask (RFC 6455 5.1)
    (frame(PING, b"x" * 126, length_bytes=2), 1002),  # control frames carry at most 125 bytes (5.5)
    (frame(PING, b"half", fin=False), 1002),  # control frames are never fragmented (5.5)
    (frame(CLOSE, b"\x03"), 1002),  # a close payload of one byte (5.5.1)
    (close_frame(999), 1002), (close_frame(1005), 1002), (close_frame(1006), 1002), (close_frame(1015), 1002),
    (close_frame(2999), 1002), (close_frame(5000), 1002),  # codes no peer may send (7.4)
    (close_frame(1000, b"\xff\xfe"), 1007),  # a close reason that is not UTF-8
    (frame(CONTINUATION, b"nothing to continue"), 1002),
    (frame(TEXT, b"first", fin=False) + frame(TEXT, b"second"), 1002),  # a new message inside a fragmented one
    (frame(TEXT, b"rsv", rsv=0x40), 1002),  # no extension was agreed
    (frame(0x3, b"reserved opcode"), 1002),
    (frame(TEXT, b"short", length_bytes=2), 1002),  # lengths must be minimally encoded (5.2)
    (frame(TEXT, b"\xc3\x28 not utf-8"), 1007),
    (frame(TEXT, b"\xc3", fin=False) + frame(CONTINUATION, b"\x28"), 1007),
], ids=["unmasked", "ping-over-125", "fragmented-ping", "close-1-byte", "close-999", "close-1005", "close-1006",
        "close-1015", "close-2999", "close-5000", "close-reason-not-utf8", "lone-continuation",
        "text-inside-fragments", "rsv-bit", "reserved-opcode", "long-length-for-short", "text-not-utf8",
        "fragments-not-utf8"])
def test_a_protocol_violation_closes_with_its_code(peer, data, code, caplog):
    assert peer.send(frame(TEXT, b"before") + data) == ["before"]
    closed_with(peer, code)
    assert [r.getMessage() for r in caplog.records if "broke RFC 6455" in r.getMessage()] == [
        next(r.getMessage() for r in caplog.records if f"closing with {code}" in r.getMessage())]  # one line


def test_a_message_over_the_limit_closes_with_1009_whole_or_in_fragments():
    for data in (frame(TEXT, b"x" * 101), frame(TEXT, b"x" * 60, fin=False) + frame(CONTINUATION, b"x" * 60)):
        peer = Peer(max_message_bytes=100)
        assert peer.send(frame(TEXT, b"x" * 100) + data) == ["x" * 100]
        closed_with(peer, 1009)
        peer.sock.close()


def test_closing_sends_the_code_once_and_a_broken_connection_is_closed(peer):
    peer.ws.close(1001)
    peer.ws.close(1000)
    closed_with(peer, 1001)
    other = Peer()
    other.sock.close()  # the network dropped it
    with pytest.raises(ConnectionClosed):
        other.ws.receive(timeout=1.0)


_frames = st.lists(st.one_of(
    st.binary(max_size=300).map(lambda b: [("bytes", b)]),
    st.text(max_size=200).map(lambda t: [("text", t)]),
    st.tuples(st.text(min_size=1, max_size=50), st.integers(1, 40)).map(lambda tn: [("fragments", tn)]),
    st.binary(max_size=125).map(lambda b: [("ping", b)]),
), max_size=12)


@settings(max_examples=150, deadline=None)
@given(_frames, st.lists(st.integers(1, 400), max_size=30))
def test_any_mix_of_frames_split_at_any_points_reads_as_the_messages_sent(script, cuts):
    """Plain frames, fragmented messages and pings, cut into reads anywhere: the same messages, in order."""
    data, expected = b"", []
    for [(kind, value)] in script:
        if kind == "bytes":
            data, expected = data + frame(BINARY, value), expected + [value]
        elif kind == "text":
            data, expected = data + frame(TEXT, value.encode()), expected + [value]
        elif kind == "ping":
            data += frame(PING, value)
        else:
            text, at = value
            raw = text.encode()
            at = min(at, len(raw))
            data += frame(TEXT, raw[:at], fin=False) + frame(CONTINUATION, raw[at:])
            expected.append(text)
    chunks, start = [], 0
    for cut in cuts:
        if start < len(data):
            chunks.append(data[start:start + cut])
            start += cut
    chunks.append(data[start:] + frame(TEXT, b"end"))
    peer = Peer()
    try:
        assert peer.send(*[chunk for chunk in chunks if chunk]) == expected + ["end"]
        assert peer.ws.connected
    finally:
        peer.sock.close()
