"""Twilio Media Streams messages parsed into plain events: no I/O, so every odd message is unit-testable."""
from __future__ import annotations

import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Mapping, NamedTuple, Union


class ProtocolError(ValueError):
    """A Media Stream message that cannot be understood; the connection survives it."""


@dataclass(frozen=True)
class Connected:
    """The first message on a stream: protocol and version."""

    protocol: str


@dataclass(frozen=True)
class StreamStart:
    """The stream's metadata: which call, which stream, and the TwiML's <Parameter>s."""

    stream_sid: str
    call_sid: str
    account_sid: str
    custom_parameters: Mapping[str, str] = field(default_factory=dict)
    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    tracks: tuple[str, ...] = ("inbound",)  # ("inbound", "outbound") when the TwiML asked for both_tracks


class Media(NamedTuple):
    """One chunk of audio, mu-law bytes as sent: the caller's ("inbound") or what the caller hears ("outbound").
    A NamedTuple, not a frozen dataclass like the rarer events: 100 of these a second per call, built in half the time."""

    payload: bytes
    timestamp_ms: int | None
    sequence: int | None
    track: str = "inbound"


@dataclass(frozen=True)
class Mark:
    """A mark echoed back by Twilio (unused on one-way streams, accepted for completeness)."""

    name: str


@dataclass(frozen=True)
class StreamStop:
    """The stream has ended: the call hung up or the stream was stopped."""

    call_sid: str | None


@dataclass(frozen=True)
class Dtmf:
    """A keypress (only bidirectional streams carry these; accepted if they come)."""

    digit: str


Event = Union[Connected, StreamStart, Media, Mark, StreamStop, Dtmf]


def _as_int(value) -> int | None:
    """Twilio sends numbers as strings; anything unparsable becomes None rather than an error."""
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: JSON's 1e999 is float infinity
        return None


def _require_dict(message: dict, key: str) -> dict:
    """Return message[key] if it is an object, else raise ProtocolError."""
    value = message.get(key)
    if not isinstance(value, dict):
        raise ProtocolError(f"{message.get('event')!r} message without a {key!r} object")
    return value


# Twilio's media message exactly as it sends it, 50 times a second per call. A message that matches this whole
# pattern is plain JSON whose meaning is known without json.loads; anything else takes the general path.
# With both_tracks the outbound frames take the same path: its `track` group costs nothing more than today's `\w*`.
_MEDIA = re.compile(r'\{"event":"media","sequenceNumber":"(\d{1,18})","media":\{"track":"(\w*)","chunk":"\d{1,18}",'
                    r'"timestamp":"(\d{1,18})","payload":"([A-Za-z0-9+/=]*)"\},"streamSid":"\w*"\}', re.ASCII)
_TRACKS = ("inbound", "outbound")


def parse_message(raw: str | bytes, max_payload_bytes: int = 64 * 1024) -> Event | None:
    """Parse one websocket text message; return None for events we do not need, raise ProtocolError for garbage."""
    fast = _MEDIA.fullmatch(raw) if isinstance(raw, str) else None
    if fast is not None:
        return _media(fast.group(4), int(fast.group(3)), int(fast.group(1)), max_payload_bytes, _track(fast.group(2)))
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # ValueError: bad JSON or UTF-8, and integers over 4300 digits
        raise ProtocolError(f"not JSON: {exc.__class__.__name__}") from exc
    if not isinstance(message, dict):
        raise ProtocolError("message is not a JSON object")
    event = message.get("event")
    if event == "media":
        media = _require_dict(message, "media")
        payload = media.get("payload")
        if not isinstance(payload, str):
            raise ProtocolError("media message without a string payload")
        return _media(payload, _as_int(media.get("timestamp")), _as_int(message.get("sequenceNumber")),
                      max_payload_bytes, _track(media.get("track")))
    if event == "start":
        start = _require_dict(message, "start")
        call_sid = start.get("callSid")
        if not isinstance(call_sid, str) or not call_sid:
            raise ProtocolError("start message without a callSid")
        params = start.get("customParameters", {})
        params = {} if params is None else params
        if not isinstance(params, dict):
            raise ProtocolError("start.customParameters is not an object")
        media_format = start.get("mediaFormat") if isinstance(start.get("mediaFormat"), dict) else {}
        return StreamStart(
            stream_sid=str(start.get("streamSid") or message.get("streamSid") or ""),
            call_sid=call_sid,
            account_sid=str(start.get("accountSid") or ""),
            custom_parameters={str(k): str(v) for k, v in params.items()},
            encoding=str(media_format.get("encoding", "audio/x-mulaw")),
            sample_rate=_as_int(media_format.get("sampleRate")) or 8000,
            tracks=_tracks(start.get("tracks")),
        )
    if event == "connected":
        return Connected(str(message.get("protocol", "")))
    if event == "stop":
        stop = message.get("stop") if isinstance(message.get("stop"), dict) else {}
        return StreamStop(stop.get("callSid"))
    if event == "mark":
        return Mark(str(_require_dict(message, "mark").get("name", "")))
    if event == "dtmf":
        return Dtmf(str(_require_dict(message, "dtmf").get("digit", "")))
    if isinstance(event, str):
        return None  # a newer Twilio event we do not use: ignore, as the protocol intends
    raise ProtocolError("message without an 'event' name")


def _track(value: object) -> str:
    """The frame's track; anything but "outbound" (absent, odd) is the caller's audio, as on a one-way stream."""
    return "outbound" if value == "outbound" else "inbound"


def _tracks(value: object) -> tuple[str, ...]:
    """The start message's `tracks` list, keeping the names we know; the caller's audio when it is absent or odd."""
    names = tuple(name for name in _TRACKS if isinstance(value, list) and name in value)
    return names or ("inbound",)


def _media(payload: str, timestamp: int | None, sequence: int | None, max_payload_bytes: int,
           track: str = "inbound") -> Media:
    """A media event from its base64 payload, within the size limit."""
    if len(payload) > max_payload_bytes * 4 // 3 + 4:
        raise ProtocolError(f"media payload of {len(payload)} characters is over the limit")
    try:  # strict: only the base64 alphabet, padding only at the end (validated in C, not by a regex)
        audio = binascii.a2b_base64(payload, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(f"media payload is not base64: {exc}") from exc
    return Media(audio, timestamp, sequence, track)
