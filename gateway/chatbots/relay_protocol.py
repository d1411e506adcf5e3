"""Twilio ConversationRelay's websocket messages, built and read with no I/O (the gateway plays Twilio's part).

Chatline → bot: `setup` (once per websocket, first), `prompt`, `dtmf`, `interrupt`, `error`. Bot → Chatline: `text`
tokens, `play`, `sendDigits`, `language`, `end`. Field names and types follow Twilio's "ConversationRelay WebSocket
messages" page; what a bot sends is read leniently (a bad frame becomes an Invalid event, never an exception).
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, Mapping, Union

from .reply import MAX_TEXT_CHARS, Reply, xml_safe

MAX_FRAME_CHARS = 64 * 1024  # a token or a command is a few hundred bytes; more is a broken bot
_DIGITS = re.compile(r"^[0-9*#wW]{1,64}$")  # what <Play digits> plays: keys, and w for a half-second pause
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")


def new_session_id() -> str:
    """A ConversationRelay session id: VX and 32 hex digits, as Twilio's look."""
    return "VX" + uuid.uuid4().hex


# Chatline → bot. Each returns the frame's JSON text.

def setup_message(session_id: str, call_sid: str, account_sid: str, caller: str, called: str, *,
                  custom_parameters: Mapping[str, Any] | None = None, direction: str = "inbound",
                  forwarded_from: str = "", caller_name: str = "", call_type: str = "PSTN",
                  call_status: str = "IN-PROGRESS", parent_call_sid: str = "") -> str:
    """The `setup` message, every field ConversationRelay sends (strings; "" where the call has none)."""
    return json.dumps({
        "type": "setup", "sessionId": session_id, "callSid": call_sid, "parentCallSid": parent_call_sid,
        "accountSid": account_sid, "from": caller, "to": called, "forwardedFrom": forwarded_from,
        "callerName": caller_name, "direction": direction, "callType": call_type, "callStatus": call_status,
        "customParameters": dict(custom_parameters or {})})


def prompt_message(words: str, lang: str) -> str:
    """One final utterance (Chatline sends no partials, so `last` is always true)."""
    return json.dumps({"type": "prompt", "voicePrompt": words, "lang": lang, "last": True})


def dtmf_message(digit: str) -> str:
    """One key the caller pressed."""
    return json.dumps({"type": "dtmf", "digit": digit})


def interrupt_message(heard: str, duration_ms: int) -> str:
    """A barge-in: the beginning of the bot's text the caller heard, and for how long it played."""
    return json.dumps({"type": "interrupt", "utteranceUntilInterrupt": heard,
                       "durationUntilInterruptMs": max(0, int(duration_ms))})


def error_message(description: str) -> str:
    """What Twilio answers a frame it could not take (the session goes on)."""
    return json.dumps({"type": "error", "description": description})


# Bot → Chatline: the events a frame becomes.

@dataclass(frozen=True)
class Text:
    """A streamed text token; `last` ends the answer. None for the optional fields not sent."""
    token: str
    last: bool = False
    lang: str | None = None
    interruptible: bool | None = None
    preemptible: bool | None = None


@dataclass(frozen=True)
class Play:
    """Play a recording (`<Play loop>`); loop 0 plays it until something else is said."""
    source: str
    loop: int = 1
    interruptible: bool | None = None
    preemptible: bool | None = None


@dataclass(frozen=True)
class SendDigits:
    """Play DTMF tones to the call (`<Play digits>`)."""
    digits: str


@dataclass(frozen=True)
class Language:
    """Speak (`ttsLanguage`) and/or recognize (`transcriptionLanguage`) another language from now on."""
    tts: str | None
    transcription: str | None


@dataclass(frozen=True)
class End:
    """End the session; `handoff_data` goes verbatim to the handoff URL."""
    handoff_data: str | None = None


@dataclass(frozen=True)
class Invalid:
    """A frame that is not one of the above: `reason` for the log and the `error` answer."""
    reason: str


BotEvent = Union[Text, Play, SendDigits, Language, End, Invalid]


def _optional_bool(message: dict, key: str) -> bool | None:
    value = message.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"'{key}' must be true or false")


def _optional_language(message: dict, key: str) -> str | None:
    value = message.get(key)
    if value is None:
        return None
    if isinstance(value, str) and _LANGUAGE.match(value.strip()):
        return value.strip()
    raise ValueError(f"'{key}' must be a language tag such as en-US")


def _text(message: dict) -> Text:
    token = message.get("token")
    if not isinstance(token, str):
        raise ValueError("'token' must be a string")
    return Text(xml_safe(token), _optional_bool(message, "last") or False, _optional_language(message, "lang"),
                _optional_bool(message, "interruptible"), _optional_bool(message, "preemptible"))


def _play(message: dict) -> Play:
    source, loop = message.get("source"), message.get("loop", 1)
    if not isinstance(source, str) or not source.startswith(("https://", "http://")):
        raise ValueError("'source' must be an http(s) URL")
    if isinstance(loop, bool) or not isinstance(loop, int) or not 0 <= loop <= 1000:
        raise ValueError("'loop' must be a whole number from 0 to 1000")
    return Play(xml_safe(source), loop, _optional_bool(message, "interruptible"),
                _optional_bool(message, "preemptible"))


def _send_digits(message: dict) -> SendDigits:
    digits = message.get("digits")
    if not isinstance(digits, str) or not _DIGITS.match(digits):
        raise ValueError("'digits' must be keys 0-9, *, # and w")
    return SendDigits(digits)


def _language(message: dict) -> Language:
    tts, transcription = _optional_language(message, "ttsLanguage"), _optional_language(message,
                                                                                        "transcriptionLanguage")
    if tts is None and transcription is None:
        raise ValueError("needs 'ttsLanguage' or 'transcriptionLanguage'")
    return Language(tts, transcription)


def _end(message: dict) -> End:
    data = message.get("handoffData")
    if data is not None and not isinstance(data, str):
        data = json.dumps(data)  # some bots send an object where Twilio documents a JSON string: keep it usable
    return End(data)


_READERS = {"text": _text, "play": _play, "sendDigits": _send_digits, "language": _language, "end": _end}


def parse_bot_message(raw: str | bytes) -> BotEvent:
    """Read one frame from the bot; anything malformed, oversized or of an unknown type is an Invalid event."""
    if isinstance(raw, bytes):
        return Invalid("binary frame (ConversationRelay frames are JSON text)")
    if len(raw) > MAX_FRAME_CHARS:
        return Invalid(f"frame of {len(raw)} characters is over {MAX_FRAME_CHARS}")
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):
        return Invalid(f"not JSON: {raw[:100]!r}")
    if not isinstance(message, dict):
        return Invalid(f"not a JSON object: {raw[:100]!r}")
    kind = message.get("type")
    reader = _READERS.get(kind) if isinstance(kind, str) else None
    if reader is None:
        return Invalid(f"unknown message type {str(kind)[:40]!r}")
    try:
        return reader(message)
    except ValueError as exc:
        return Invalid(f"{kind}: {exc}")


# Streamed tokens → sentences.

# A sentence ends at ., !, ? or … (closing quotes and brackets allowed) followed by white space.
_SENTENCE_END = re.compile(r"[.!?\u2026\u3002]+[\"'\u201d)\]]*\s+")


class SentenceAssembler:
    """Joins streamed tokens into sentences: each complete one is handed out at once (many bots never send
    `last: true`); `flush` hands out the rest (at `last`, after a quiet time, or before a play or an end)."""

    def __init__(self) -> None:
        self._buffer = ""

    @property
    def pending(self) -> str:
        return self._buffer

    def add(self, token: str) -> list[str]:
        """Add a token (empty ones change nothing); the sentences it completed, in order."""
        if not token:
            return []
        self._buffer += token
        sentences: list[str] = []
        start = 0
        for end in _SENTENCE_END.finditer(self._buffer):
            sentence = self._buffer[start:end.start()] + end.group().rstrip()
            start = end.end()
            if sentence.strip():
                sentences.append(sentence.strip())
        self._buffer = self._buffer[start:]
        if len(self._buffer) > MAX_TEXT_CHARS:  # a bot streaming without punctuation: say it in pieces
            sentences.append(self._buffer.strip())
            self._buffer = ""
        return sentences

    def flush(self) -> str | None:
        """The text not yet handed out, or None when there is none."""
        rest, self._buffer = self._buffer.strip(), ""
        return rest or None

    def clear(self) -> None:
        """Forget the text not yet handed out (the caller interrupted it)."""
        self._buffer = ""


# What the gateway does with the bot's messages: reply parts, in the order the bot sent them.

@dataclass(frozen=True)
class Say:
    """A sentence to say with <Say> (in `language` when its tokens named one); interruptible False protects it."""
    text: str
    language: str | None = None
    interruptible: bool | None = None


Part = Union[Say, Play, SendDigits]


@dataclass(frozen=True)
class RelayReply(Reply):
    """What the bot says at one moment: `parts` in order (sentences, recordings, tones); `text` is its sentences,
    for the monitor and history. A `language` switch and an `end` come with the parts they followed. On `end`,
    `action_type` is "hangup" unless the handoff URL answered TwiML (`handoff_twiml`), which then runs instead."""

    parts: tuple[Part, ...] = ()
    tts_language: str | None = None
    transcription_language: str | None = None
    ended: bool = False
    handoff_twiml: str | None = None

    @property
    def listen_language(self) -> str | None:
        """ConversationRelay switches recognition only with `transcriptionLanguage` (`ttsLanguage` is the voice's)."""
        return self.transcription_language

    @property
    def holds_call(self) -> bool:
        """After `end` the call hangs up or runs the handoff's TwiML: nothing may cut that."""
        return self.ended or self.action_type is not None


def relay_reply(parts: list, *, tts_language: str | None = None, transcription_language: str | None = None,
                ended: bool = False, handoff_twiml: str | None = None) -> RelayReply:
    """Gather parts into one RelayReply; `barge_in` is off when any of them asked not to be interrupted."""
    text = " ".join(p.text for p in parts if isinstance(p, Say))
    barge_in = all(getattr(p, "interruptible", None) is not False for p in parts)
    return RelayReply(text=text, action_type="hangup" if ended and handoff_twiml is None else None,
                      language=tts_language, barge_in=barge_in, parts=tuple(parts),
                      tts_language=tts_language, transcription_language=transcription_language, ended=ended,
                      handoff_twiml=handoff_twiml)


def merged(replies: list[RelayReply]) -> RelayReply:
    """Replies queued while the call was still saying an earlier one, as one (said in order, in one call update):
    their parts in turn, the last language switch of each kind, and the end with its handoff if one ended."""
    parts = [part for reply in replies for part in reply.parts]
    last = next((r for r in reversed(replies) if r.ended), None)
    return relay_reply(parts, tts_language=next((r.tts_language for r in reversed(replies) if r.tts_language), None),
                       transcription_language=next((r.transcription_language for r in reversed(replies)
                                                    if r.transcription_language), None),
                       ended=last is not None, handoff_twiml=last.handoff_twiml if last else None)
