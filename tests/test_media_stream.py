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


def _twilio_media(track: str, payload: bytes, chunk: int = 7, timestamp: int = 140, sequence: int = 9) -> str:
    """A media message byte for byte as Twilio writes it (compact JSON, its own key order)."""
    return ('{"event":"media","sequenceNumber":"%d","media":{"track":"%s","chunk":"%d","timestamp":"%d",'
            '"payload":"%s"},"streamSid":"MZ1"}' % (sequence, track, chunk, timestamp,
                                                   base64.b64encode(payload).decode()))


@pytest.mark.parametrize("track", ["inbound", "outbound"])
def test_both_tracks_frames_carry_their_track(track):
    """With both_tracks each frame says whose audio it is: the caller's, or what the caller hears."""
    assert parse_message(_twilio_media(track, b"\x7f" * 160)) == Media(b"\x7f" * 160, 140, 9, track)


def test_track_is_the_same_on_the_general_path():
    """Spacing or key order Twilio might change still gives the frame's track (through json.loads)."""
    message = {"event": "media", "sequenceNumber": "4", "streamSid": "MZ1",
               "media": {"chunk": "2", "timestamp": "20", "track": "outbound", "payload": "/w=="}}
    assert parse_message(json.dumps(message)) == Media(b"\xff", 20, 4, "outbound")


@pytest.mark.parametrize("track", ["", "INBOUND", "outbound_track", None, 5])
def test_odd_or_missing_track_is_the_callers_audio(track):
    """A frame whose track is missing or unknown is treated as the caller's audio, as on a one-way stream."""
    media = {"timestamp": "20", "payload": "/w=="} if track is None else {"track": track, "payload": "/w=="}
    assert parse_message(json.dumps({"event": "media", "media": media})).track == "inbound"
    if isinstance(track, str) and track.isalnum():
        assert parse_message(_twilio_media(track, b"\xff")).track == "inbound"


@pytest.mark.parametrize("tracks, expected", [
    (["inbound", "outbound"], ("inbound", "outbound")), (["outbound"], ("outbound",)), (["inbound"], ("inbound",)),
    (None, ("inbound",)), ("inbound", ("inbound",)), ([], ("inbound",)), (["sideways"], ("inbound",)),
])
def test_start_lists_the_tracks_to_expect(tracks, expected):
    start = {"callSid": "CA1", "streamSid": "MZ1"} | ({} if tracks is None else {"tracks": tracks})
    assert parse_message(json.dumps({"event": "start", "start": start})).tracks == expected


from hypothesis import given, strategies as st  # noqa: E402


@given(track=st.sampled_from(["inbound", "outbound"]) | st.from_regex(r"\w{0,12}", fullmatch=True),
       payload=st.binary(max_size=480), timestamp=st.integers(0, 10**12), sequence=st.integers(0, 10**12))
def test_the_fast_path_and_json_agree_on_every_frame(track, payload, timestamp, sequence):
    """Twilio's compact frame (read without json.loads) means exactly what the same frame re-spaced means."""
    compact = _twilio_media(track, payload, chunk=3, timestamp=timestamp, sequence=sequence)
    assert parse_message(compact) == parse_message(json.dumps(json.loads(compact), indent=1))
    assert parse_message(compact).track == ("outbound" if track == "outbound" else "inbound")
