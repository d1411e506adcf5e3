"""What a chatbot answers, parsed and validated with no I/O (contract section 1); every protocol ends here."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 2000  # longer replies are cut: Twilio rejects TwiML over 4000 characters in a call update
MAX_HINTS = 500
MAX_OPTIONS = 30  # a menu past nine is said in part and chosen by voice; more than this is a broken chatbot
MAX_TITLE_CHARS = 100
MAX_PAYLOAD_CHARS = 1000
MAX_ANSWER_BYTES = 256 * 1024  # a reply's JSON is a few hundred bytes; more is a broken chatbot, not a longer answer


# Characters XML 1.0 cannot carry: a chatbot sending them must not make the TwiML unreadable to Twilio.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")  # a BCP-47 tag such as en-US, es-ES, cmn-Hans-CN
_VOICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")  # Twilio voice names: man, Polly.Joanna, Google.en-US-Neural2-F
_DIALABLE = re.compile(r"^(\+?[0-9*#]{2,20}|sips?:[^\s<>\"]{3,200})$")  # E.164-ish numbers or SIP addresses


def xml_safe(text: str) -> str:
    """Drop the characters XML cannot hold (control characters, lone surrogates)."""
    return _NOT_XML.sub("", text)


class ChatbotError(Exception):
    """The chatbot could not give a usable answer (down, slow, 5xx, or garbage)."""


@dataclass(frozen=True)
class Reply:
    """A chatbot answer, validated: what to say, what to do, and what the caller may say next."""

    text: str
    action_type: str | None = None  # None, "hangup" or "transfer"
    transfer_to: str | None = None
    hints: tuple[str, ...] = ()
    reprompt: str = ""  # optional extension: what a silent caller hears instead of NO_INPUT_PROMPT
    language: str | None = None  # optional extension: speak and recognize this language from now on
    voice: str | None = None  # optional extension: the <Say> voice from now on (goes with `language`)
    barge_in: bool = True  # optional extension: false keeps the caller from interrupting this text
    options: tuple[tuple[str, str], ...] = ()  # (title, payload), in order: keys 1 to 9 choose the first nine
    audio: str | None = None  # an https:// recording played with <Play> before the text
    # Set by the gateway's turn path, never by a chatbot: whether this answer's links went by text message, and a
    # sentence the caller is owed before it (an earlier text message that could not be sent).
    links_sent: bool = False
    preface: str = ""

    @property
    def listen_language(self) -> str | None:
        """The language the caller is heard in from now on (None: unchanged)."""
        return self.language

    @property
    def holds_call(self) -> bool:
        """Whether the call is being handed on or hung up with this reply (an update after it would cut that)."""
        return self.action_type is not None


def _parse_action(action: Any) -> tuple[str | None, str | None]:
    """Turn the contract's `action` into (type, transfer number); unknown actions are logged and ignored."""
    if action is None:
        return None, None
    if isinstance(action, str):
        action = {"type": action}
    if isinstance(action, dict):
        kind = action.get("type")
        if kind == "hangup":
            return "hangup", None
        if kind == "transfer" and isinstance(action.get("to"), str) and _DIALABLE.match(action["to"].strip()):
            return "transfer", action["to"].strip()
    log.warning("chatbot sent an unknown or malformed action, ignoring it: %.200r", action)
    return None, None


def parse_reply(body: Any) -> Reply:
    """Validate a decoded JSON answer; raise ChatbotError when it cannot be spoken."""
    if not isinstance(body, dict):
        raise ChatbotError(f"answer is not a JSON object: {str(body)[:100]!r}")
    text = body.get("text")
    if not isinstance(text, str):
        raise ChatbotError(f"answer has no string 'text' (got {type(text).__name__})")
    text = xml_safe(text)
    if len(text) > MAX_TEXT_CHARS:
        log.warning("chatbot text of %d characters cut to %d", len(text), MAX_TEXT_CHARS)
        text = text[:MAX_TEXT_CHARS]
    action_type, transfer_to = _parse_action(body.get("action"))
    raw_hints = body.get("hints") or []
    if not isinstance(raw_hints, list):
        log.warning("chatbot 'hints' is not a list, ignoring it: %.100r", raw_hints)
        raw_hints = []
    hints = tuple(xml_safe(h).strip() for h in raw_hints[:MAX_HINTS] if isinstance(h, str) and xml_safe(h).strip())
    reprompt = body.get("reprompt") or ""
    if not isinstance(reprompt, str):
        log.warning("chatbot 'reprompt' is not a string, ignoring it: %.100r", reprompt)
        reprompt = ""
    reprompt = xml_safe(reprompt).strip()[:MAX_TEXT_CHARS]
    options = _options(body.get("options"))
    audio = _audio(body.get("audio"))
    hints += tuple(title for title, _ in options if title not in hints)  # a title is what the caller may say next
    if not text.strip() and action_type is None and not options and audio is None:
        raise ChatbotError("answer has an empty 'text' and no action")  # the caller would hear silence
    barge_in = body.get("barge_in", True)
    if not isinstance(barge_in, bool):
        log.warning("chatbot 'barge_in' is not true or false, ignoring it: %.100r", barge_in)
        barge_in = True
    return Reply(text=text.strip(), action_type=action_type, transfer_to=transfer_to, hints=hints, reprompt=reprompt,
                 language=_tag(body, "language", _LANGUAGE), voice=_tag(body, "voice", _VOICE), barge_in=barge_in,
                 options=options, audio=audio)


def _options(raw: Any) -> tuple[tuple[str, str], ...]:
    """The contract's `options` as (title, payload) pairs; a malformed one is logged and left out (a payload-less
    option chooses by its title, as a chat button without a payload sends its title)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        log.warning("chatbot 'options' is not a list, ignoring it: %.100r", raw)
        return ()
    options: list[tuple[str, str]] = []
    for option in raw[:MAX_OPTIONS]:
        title = xml_safe(option.get("title") or "").strip()[:MAX_TITLE_CHARS] \
            if isinstance(option, dict) and isinstance(option.get("title"), str) else ""
        payload = option.get("payload", title) if isinstance(option, dict) else None
        if not title or not isinstance(payload, str) or not payload.strip():
            log.warning("chatbot option without a title or a string payload, leaving it out: %.100r", option)
            continue
        options.append((title, xml_safe(payload).strip()[:MAX_PAYLOAD_CHARS]))
    return tuple(options)


def _audio(raw: Any) -> str | None:
    """The contract's `audio`: an https:// URL, or None; anything else is refused with one log line (the text is
    still said): Twilio fetches <Play> URLs itself, and plain http would let anyone on the path swap the recording."""
    if raw is None or raw == "":
        return None
    parts = urlsplit(raw.strip()) if isinstance(raw, str) else None
    if parts is None or parts.scheme != "https" or not parts.netloc or any(c.isspace() for c in raw.strip()):
        log.warning("chatbot 'audio' is not an https:// URL, not playing it: %.100r", raw)
        return None
    return xml_safe(raw.strip())


def _tag(body: dict, key: str, pattern: re.Pattern) -> str | None:
    """An optional name-like field (`language`, `voice`); a malformed one is logged and ignored."""
    value = body.get(key)
    if value is None or (isinstance(value, str) and pattern.match(value.strip())):
        return value.strip() if value else None
    log.warning("chatbot %r is not a valid name, ignoring it: %.100r", key, value)
    return None
