"""AssemblyAI's v3 streaming API (Universal-Streaming) as a Dialect: `pcm_mulaw` at 8 kHz as Twilio sends it.

A final transcript is a `Turn` with `end_of_turn` (with format_turns, the formatted one that follows); a partial
Turn or `SpeechStarted` is the cue for barge-in. New hints go on the open stream as `UpdateConfiguration`.
"""
from __future__ import annotations

import json
import logging
from typing import Sequence
from urllib.parse import urlencode

from . import Transcript
from .dialect import NORMAL_CLOSE, Finalized
from .pacing import AudioLimits
from .websocket_stream import WebSocketRecognizer

log = logging.getLogger(__name__)

DEFAULT_URL = "wss://streaming.assemblyai.com/v3/ws"
SESSION_EXPIRED = 3008  # the session reached AssemblyAI's maximum duration: a new one carries on
REFUSED_CODES = {1008: "ASSEMBLYAI_API_KEY", 4001: "ASSEMBLYAI_API_KEY", 4002: "the AssemblyAI account's balance",
                 3006: "LANGUAGE and the stream settings"}
MAX_HINTS = 100
# 50-1000 ms of audio per message, never faster than real time (close 3007 either way).
LIMITS = AudioLimits(min_message_ms=50, max_message_ms=1000, realtime=True)
# A stream re-sent more than this after a reconnect would lag the caller by as much for the rest of the session
# (it may not catch up faster than real time): older unfinalized audio is silence or noise, or lost.
MAX_RESEND_SECONDS = 5.0


def streaming_query(language: str, hints: Sequence[str]) -> dict[str, str]:
    """The session's settings as query parameters; hints as `keyterms_prompt`, a JSON list as the API takes it."""
    english = language.lower().startswith("en")
    query = {"sample_rate": "8000", "encoding": "pcm_mulaw", "format_turns": "true",
             "speech_model": "universal-streaming-english" if english else "universal-streaming-multilingual"}
    terms = [h for h in hints[:MAX_HINTS] if h.strip()]
    if terms:
        query["keyterms_prompt"] = json.dumps(terms)
    return query


class AssemblyAIDialect:
    """AssemblyAI's messages for one call."""

    name = "AssemblyAI"
    keepalive = json.dumps({"type": "KeepAlive"})
    close_message = json.dumps({"type": "Terminate"})
    limits = LIMITS

    def __init__(self, api_key: str, url: str = DEFAULT_URL, format_turns: bool = True,
                 inactivity_timeout: int | None = None):
        self._api_key, self._url, self._format_turns = api_key, url, format_turns
        self._inactivity_timeout = inactivity_timeout  # unset: AssemblyAI keeps a quiet session open

    def url(self, language: str, hints: Sequence[str]) -> str:
        query = streaming_query(language, hints)
        if not self._format_turns:
            query["format_turns"] = "false"
        if self._inactivity_timeout:
            query["inactivity_timeout"] = str(self._inactivity_timeout)
        return f"{self._url}?{urlencode(query)}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": self._api_key}

    def hints_message(self, hints: Sequence[str]) -> str:
        return json.dumps({"type": "UpdateConfiguration", "keyterms_prompt": [h for h in hints[:MAX_HINTS] if h.strip()]})

    def handle(self, message: dict) -> list:
        kind = message.get("type")
        if kind == "Turn":
            return self._turn(message)
        if kind == "SpeechStarted":
            return [Transcript("", 0.0, is_final=False, speech_started=True)]
        if kind == "Error":
            log.warning("AssemblyAI error %s: %s", message.get("error_code"), str(message.get("error"))[:200])
        elif kind not in ("Begin", "Termination", "Warning"):
            log.debug("AssemblyAI message %r ignored", kind)
        return []

    def _turn(self, message: dict) -> list:
        words = [w for w in message.get("words") or () if isinstance(w, dict)]
        text = (message.get("transcript") or "").strip()
        if not message.get("end_of_turn"):
            heard = " ".join(str(w.get("text", "")) for w in words).strip() or text
            return [Transcript(heard, 0.0, is_final=False)] if heard else []
        if self._format_turns and not message.get("turn_is_formatted"):
            return []  # the formatted transcript of this turn follows
        end = max((float(w.get("end") or 0) for w in words), default=0.0) / 1000.0
        confidence = min((float(w.get("confidence") or 0.0) for w in words), default=1.0)
        events: list = [Finalized(end)] if end else []
        if text:
            events.append(Transcript(text, confidence, is_final=True, end_seconds=end or None))
        return events

    def stream_ended(self) -> list[Transcript]:
        return []  # a turn is final only at its end: a half-heard one is re-sent to the next stream

    def refusal(self, exc: Exception) -> str | None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return f"HTTP {status}: check ASSEMBLYAI_API_KEY"
        close = getattr(exc, "rcvd", None)
        if close is not None and close.code in REFUSED_CODES:
            return f"close {close.code} ({close.reason[:200] or 'no reason given'}): check {REFUSED_CODES[close.code]}"
        return None

    def expected_close(self, code: int | None) -> bool:
        return code in (NORMAL_CLOSE, SESSION_EXPIRED)


def assemblyai_recognizer(config, hints: Sequence[str] = ()) -> WebSocketRecognizer:
    """The recognizer for STT_PROVIDER=assemblyai."""
    dialect = AssemblyAIDialect(config.assemblyai_api_key, config.assemblyai_url)
    return WebSocketRecognizer(dialect, language=config.language, hints=hints,
                               max_resend_seconds=MAX_RESEND_SECONDS, outage_seconds=config.speech_outage_seconds)
