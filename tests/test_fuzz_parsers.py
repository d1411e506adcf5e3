"""Fuzzing the gateway's pure parsers: any input gives a valid event or reply, or the one documented error."""
from __future__ import annotations

import base64
import copy
import json
import xml.etree.ElementTree as ET

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.twilio import twiml
from gateway.chatbots.reply import _DIALABLE, MAX_TEXT_CHARS, ChatbotError, Reply, parse_reply, xml_safe
from gateway.web.gather import _confidence
from gateway.twilio.media_stream import (Connected, Dtmf, Mark, Media, ProtocolError, StreamStart, StreamStop,
                                  parse_message)
from gateway.twilio.timeline import MAX_GAP_MS, AudioTimeline
from tests.figures import count

MANY = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=16)

FRAME = base64.b64encode(b"\xff" * 160).decode()
TWILIO_MESSAGES = [
    {"event": "connected", "protocol": "Call", "version": "1.0.0"},
    {"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
        "accountSid": "AC1", "streamSid": "MZ1", "callSid": "CA1", "tracks": ["inbound"],
        "customParameters": {"callSid": "CA1", "token": "t"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}},
    {"event": "media", "sequenceNumber": "2", "streamSid": "MZ1",
     "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": FRAME}},
    {"event": "stop", "sequenceNumber": "3", "streamSid": "MZ1", "stop": {"accountSid": "AC1", "callSid": "CA1"}},
    {"event": "mark", "streamSid": "MZ1", "mark": {"name": "m"}},
    {"event": "dtmf", "streamSid": "MZ1", "dtmf": {"track": "inbound_track", "digit": "5"}},
]


def _paths(message, prefix=()):
    """Every key path in a nested message, so a mutation can hit any field at any depth."""
    for key, value in message.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from _paths(value, prefix + (key,))


@st.composite
def mutated_twilio_messages(draw):
    """A real Twilio message with a few fields replaced by any JSON value, or removed."""
    message = copy.deepcopy(draw(st.sampled_from(TWILIO_MESSAGES)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(message)) or [("event",)]))
        parent = message
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent.get(key), dict) else {}
        if draw(st.booleans()):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(json_values | st.sampled_from(["", "***", "=", FRAME[:-2], "1e999", "-5"]))
    return json.dumps(message)


def _check_event(event) -> None:
    """What the stream loop relies on for each kind of event."""
    assert event is None or isinstance(event, (Connected, StreamStart, Media, StreamStop, Mark, Dtmf))
    if isinstance(event, Media):
        assert isinstance(event.payload, bytes)
        assert all(n is None or isinstance(n, int) for n in (event.timestamp_ms, event.sequence))
    if isinstance(event, StreamStart):
        assert isinstance(event.call_sid, str) and event.call_sid
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in event.custom_parameters.items())


@MANY
@given(raw=st.text() | st.binary() | json_values.map(json.dumps) | mutated_twilio_messages())
@example(raw='{"event": "media", "sequenceNumber": 1e999, "media": {"payload": ""}}')  # found: OverflowError
@example(raw='{"event": "start", "start": {"callSid": "CA1", "mediaFormat": {"sampleRate": -1e999}}}')
@example(raw="1" * 5000)  # found: int() digit limit raised a bare ValueError
@example(raw="[" * 100_000)
@example(raw=b"\xff\xfe\xfd")
def test_parse_message_gives_an_event_or_a_protocol_error(raw):
    count("Media Stream parser")
    try:
        event = parse_message(raw, max_payload_bytes=1024)
    except ProtocolError:
        return
    _check_event(event)


@MANY
@given(frames=st.lists(st.tuples(st.integers(0, 400), st.none() | st.integers(-10**12, 10**12)), max_size=30))
def test_audio_timeline_never_invents_more_than_the_gap_limit(frames):
    count("audio timeline (out-of-order, repeated, huge timestamps)")
    timeline = AudioTimeline()
    for size, timestamp in frames:
        out = timeline.place(b"\x7f" * size, timestamp)
        assert isinstance(out, bytes) and len(out) <= size + MAX_GAP_MS * 8


def _speaks_or_continues(document: str) -> ET.Element:
    """The TwiML parses and leaves the caller neither in silence nor in a dead end."""
    root = ET.fromstring(document)
    assert root.tag == "Response"
    verbs = {element.tag for element in root.iter()}
    assert verbs & {"Redirect", "Hangup", "Dial"} or (verbs & {"Gather"} and verbs & {"Say"}), document
    return root


@MANY
@given(body=json_values | st.fixed_dictionaries({"text": st.text(max_size=3000)}, optional={
    "action": json_values | st.sampled_from(["hangup", "transfer", {"type": "transfer", "to": "+15550001111"},
                                             {"type": "transfer", "to": "sip:a@b.c"}, {"type": "hangup"}]),
    "hints": json_values | st.lists(st.text(max_size=30), max_size=30),
    "reprompt": json_values}))
@example(body={"text": "\ud800\x00 & <x>", "action": {"type": "transfer", "to": "+1 555\n"}})
@example(body={"text": "x" * 10_000, "hints": ["a" * 200] * 600})
@example(body={"text": " \x00 "})  # found: an empty text kept the caller waiting in silence; now an apology
def test_parse_reply_gives_a_speakable_reply_or_a_chatbot_error(body):
    count("chatbot reply parser")
    try:
        reply = parse_reply(body)
    except ChatbotError:  # the caller hears the apology instead; only for an answer with nothing to say
        text = body.get("text") if isinstance(body, dict) else None
        assert not isinstance(text, str) or not xml_safe(text).strip()
        return
    assert isinstance(reply, Reply) and len(reply.text) <= MAX_TEXT_CHARS and xml_safe(reply.text) == reply.text
    assert reply.action_type in (None, "hangup", "transfer")
    assert (reply.action_type == "transfer") == bool(reply.transfer_to and _DIALABLE.match(reply.transfer_to))
    document = twiml.reply(reply, "https://x.test/listen", dtmf_url="https://x.test/dtmf", transfer_url="https://x.test/t")
    assert len(document) <= twiml.MAX_UPDATE_CHARS  # a call update Twilio accepts
    root = _speaks_or_continues(document)
    said = " ".join("".join(element.text or "" for element in root.iter("Say")).split())
    assert " ".join(reply.text.split()).startswith(said)  # heard as written (XML turns \r into \n), maybe cut short
    _speaks_or_continues(twiml.gather_reply(reply, "https://x.test/gather"))


@MANY
@given(value=st.none() | st.text())
@example(value="nan")
@example(value="-inf")
def test_gather_confidence_is_always_a_number(value):
    count("Gather Confidence field")
    assert isinstance(_confidence(value), float)


rasa_messages = st.lists(st.fixed_dictionaries({}, optional={
    "text": json_values | st.text(max_size=30), "buttons": st.lists(st.fixed_dictionaries(
        {"title": json_values | st.text(max_size=20)}), max_size=3) | json_values,
    "custom": st.fixed_dictionaries({"action": json_values | st.sampled_from(
        ["hangup", {"type": "transfer", "to": "+15550001111"}, {"type": "transfer", "to": "<Dial>"}])}) | json_values,
    "image": json_values, "attachment": json_values}) | json_values, max_size=5)


@MANY
@given(rasa_messages | json_values)
@example([{"buttons": 1}, {"buttons": [{"title": 5}], "text": "Hi."}])
def test_rasa_answers_give_a_speakable_reply_or_a_chatbot_error(answer):
    from gateway.chatbots.rasa import rasa_body

    count("Rasa REST channel answers")
    try:
        reply = parse_reply(rasa_body(answer))
    except ChatbotError:
        return
    assert reply.text.strip() or reply.action_type is not None or reply.options or reply.audio
    assert reply.transfer_to is None or _DIALABLE.match(reply.transfer_to)
    assert all(isinstance(h, str) and h for h in reply.hints)


tool_fragments = st.lists(st.fixed_dictionaries({}, optional={
    "index": st.integers(0, 2) | json_values, "id": json_values, "function": st.fixed_dictionaries({}, optional={
        "name": st.sampled_from(["end_call", "transfer_call", "transfer_", "call"]) | json_values,
        "arguments": st.sampled_from(['{"to": "+155', '50001111"}', "{}", "{"]) | json_values}) | json_values}),
    max_size=3)
chunks = st.fixed_dictionaries({"choices": st.lists(st.fixed_dictionaries({
    "index": st.just(0) | json_values, "delta": st.fixed_dictionaries({}, optional={
        "content": st.text(max_size=30) | json_values, "tool_calls": tool_fragments | json_values}) | json_values}),
    max_size=2) | json_values})
sse_lines = st.text(max_size=60) | (chunks | json_values).map(lambda v: "data: " + json.dumps(v)) | st.just("data: [DONE]")


@MANY
@given(st.lists(sse_lines, max_size=8))
def test_streamed_chunks_give_a_speakable_reply_or_a_chatbot_error(lines):
    from gateway.chatbots.openai import StreamedAnswer

    count("OpenAI streamed chunks")
    answer = StreamedAnswer()
    try:
        for line in lines:
            answer.take(line)
        reply = parse_reply(answer.body())
    except ChatbotError:
        return
    assert len(reply.text) <= MAX_TEXT_CHARS and (reply.text.strip() or reply.action_type is not None)


completions = st.fixed_dictionaries({"choices": st.lists(st.fixed_dictionaries({"message": st.fixed_dictionaries(
    {}, optional={"content": st.text(max_size=30) | json_values, "tool_calls": tool_fragments | json_values})
    | json_values}), max_size=2) | json_values})


@MANY
@given(completions | json_values)
def test_whole_completions_give_a_speakable_reply_or_a_chatbot_error(answer):
    from gateway.chatbots.openai import completion_body

    count("OpenAI chat completions")
    try:
        reply = parse_reply(completion_body(answer))
    except ChatbotError:
        return
    assert reply.text.strip() or reply.action_type is not None or reply.options or reply.audio
    assert reply.transfer_to is None or _DIALABLE.match(reply.transfer_to)
