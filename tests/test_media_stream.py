"""The Media Streams protocol parser: Twilio's real messages, and the odd ones."""
import base64
import json

import pytest

from gateway.twilio.media_stream import Connected, Dtmf, Media, ProtocolError, StreamStart, StreamStop, parse_message


def test_connected():
    assert parse_message('{"event": "connected", "protocol": "Call", "version": "1.0.0"}') == Connected("Call")


def test_start_with_custom_parameters():
    message = {"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
        "accountSid": "AC1", "streamSid": "MZ1", "callSid": "CA1", "tracks": ["inbound"],
        "customParameters": {"callSid": "CA1", "caller": "+1555"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}
    assert parse_message(json.dumps(message)) == StreamStart("MZ1", "CA1", "AC1", {"callSid": "CA1", "caller": "+1555"})


def test_media_decodes_payload_and_numbers():
    payload = base64.b64encode(b"\xff" * 160).decode()
    message = {"event": "media", "sequenceNumber": "3", "streamSid": "MZ1",
               "media": {"track": "inbound", "chunk": "1", "timestamp": "40", "payload": payload}}
    assert parse_message(json.dumps(message)) == Media(b"\xff" * 160, 40, 3)


def test_stop_and_dtmf_and_unknown_events():
    assert parse_message('{"event": "stop", "stop": {"callSid": "CA1"}}') == StreamStop("CA1")
    assert parse_message('{"event": "dtmf", "dtmf": {"digit": "5"}}') == Dtmf("5")
    assert parse_message('{"event": "something-new"}') is None


@pytest.mark.parametrize("raw", [
    "not json", b"\xff\xfe", "[1, 2]", '"text"', '{"no": "event"}', '{"event": 5}',
    '{"event": "media"}', '{"event": "media", "media": {"payload": 12}}',
    '{"event": "media", "media": {"payload": "***not base64***"}}',
    '{"event": "start", "start": {}}', '{"event": "start", "start": {"callSid": "CA1", "customParameters": []}}',
])
def test_garbage_raises_protocol_error(raw):
    with pytest.raises(ProtocolError):
        parse_message(raw)


def test_oversized_payload_is_refused():
    payload = base64.b64encode(b"\xff" * 2000).decode()
    with pytest.raises(ProtocolError, match="over the limit"):
        parse_message(json.dumps({"event": "media", "media": {"payload": payload}}), max_payload_bytes=1000)


def test_odd_numbers_become_none():
    message = {"event": "media", "sequenceNumber": "x", "media": {"timestamp": None, "payload": ""}}
    assert parse_message(json.dumps(message)) == Media(b"", None, None)


def test_deeply_nested_json_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        parse_message("[" * 100_000 + "]" * 100_000)
