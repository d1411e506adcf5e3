"""Deepgram's live streaming API (`/v1/listen`) as a Dialect: mu-law at 8 kHz as Twilio sends it, a phone model.

A final transcript is the `is_final` pieces of an utterance once one says `speech_final` (Deepgram's endpointing),
or once an `UtteranceEnd` follows them; `SpeechStarted` (vad_events) is the earliest cue for barge-in.
"""
from __future__ import annotations

import json
import logging
from typing import Sequence
from urllib.parse import urlencode

from . import Transcript
from .dialect import NORMAL_CLOSE, Finalized
from .websocket_stream import WebSocketRecognizer

log = logging.getLogger(__name__)

DEFAULT_URL = "wss://api.deepgram.com/v1/listen"
DEFAULT_MODEL = "nova-2-phonecall"  # Deepgram's model for phone-call audio
ENDPOINTING_MS = 300  # silence that ends an utterance (speech_final)
UTTERANCE_END_MS = 1000  # the word gap after which UtteranceEnd closes an utterance endpointing missed (noise)
MAX_HINTS = 100


def listen_query(model: str, language: str, hints: Sequence[str]) -> list[tuple[str, str]]:
    """The stream's settings as query parameters; hints go as `keyterm` to Nova-3 models, else as `keywords`."""
    query = [("model", model), ("encoding", "mulaw"), ("sample_rate", "8000"), ("channels", "1"),
             ("language", language), ("interim_results", "true"), ("endpointing", str(ENDPOINTING_MS)),
             ("utterance_end_ms", str(UTTERANCE_END_MS)), ("vad_events", "true")]
    hint_key = "keyterm" if model.startswith("nova-3") else "keywords"
    query += [(hint_key, hint) for hint in hints[:MAX_HINTS] if hint.strip()]
    return query


class DeepgramDialect:
    """Deepgram's messages for one call; keeps the `is_final` pieces of the utterance under way."""

    name = "Deepgram"
    keepalive = json.dumps({"type": "KeepAlive"})
    close_message = json.dumps({"type": "CloseStream"})

    def __init__(self, api_key: str, url: str = DEFAULT_URL, model: str = DEFAULT_MODEL):
        self._api_key, self._url, self.model = api_key, url, model
        self._pieces: list[str] = []
        self._confidence = 1.0
        self._last_end = 0.0

    def url(self, language: str, hints: Sequence[str]) -> str:
        return f"{self._url}?{urlencode(listen_query(self.model, language, hints))}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self._api_key}"}

    def hints_message(self, hints: Sequence[str]) -> None:
        return None  # /v1/listen takes its settings only when a stream opens

    def handle(self, message: dict) -> list:
        kind = message.get("type")
        if kind == "Results":
            return self._results(message)
        if kind == "SpeechStarted":
            return [Transcript("", 0.0, is_final=False, speech_started=True)]
        if kind == "UtteranceEnd":
            return self._utterance_end(float(message.get("last_word_end") or self._last_end))
        if kind not in ("Metadata",):
            log.debug("Deepgram message %r ignored", kind)
        return []

    def _results(self, message: dict) -> list:
        alternatives = (message.get("channel") or {}).get("alternatives") or [{}]
        best = alternatives[0]
        text = (best.get("transcript") or "").strip()
        end = float(message.get("start") or 0.0) + float(message.get("duration") or 0.0)
        if not message.get("is_final"):
            heard = " ".join(self._pieces + [text]).strip()
            return [Transcript(heard, float(best.get("confidence") or 0.0), is_final=False)] if text else []
        events: list = [Finalized(end)]
        if text:
            self._pieces.append(text)
            self._confidence = min(self._confidence, float(best.get("confidence") or 0.0))
            self._last_end = end
        if message.get("speech_final"):
            events += self._utterance_end(end)
        return events

    def _utterance_end(self, end: float) -> list:
        if not self._pieces:
            return []
        final = Transcript(" ".join(self._pieces), self._confidence, is_final=True, end_seconds=end)
        self._pieces, self._confidence = [], 1.0
        return [final]

    def stream_ended(self) -> list[Transcript]:
        """Pieces already final when a stream ends are the utterance so far: heard now (their audio is not re-sent)."""
        return self._utterance_end(self._last_end)

    def refusal(self, exc: Exception) -> str | None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        if status in (401, 403):
            return f"HTTP {status} ({_error_text(response)}): check DEEPGRAM_API_KEY"
        if status == 400:
            return f"HTTP 400 ({_error_text(response)}): check DEEPGRAM_MODEL ({self.model}) and LANGUAGE"
        return None

    def expected_close(self, code: int | None) -> bool:
        return code == NORMAL_CLOSE


def _error_text(response) -> str:
    """Deepgram's reason for refusing a handshake, from its JSON body (err_msg) or its dg-error header."""
    try:
        return str(json.loads(response.body or b"{}").get("err_msg") or "")[:200] or "no reason given"
    except ValueError:
        return (response.headers.get("dg-error") or "no reason given")[:200]


def deepgram_recognizer(config, hints: Sequence[str] = ()) -> WebSocketRecognizer:
    """The recognizer for STT_PROVIDER=deepgram."""
    dialect = DeepgramDialect(config.deepgram_api_key, config.deepgram_url, config.deepgram_model)
    return WebSocketRecognizer(dialect, language=config.language, hints=hints,
                               outage_seconds=config.speech_outage_seconds)
