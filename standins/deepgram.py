"""A Deepgram live streaming (`/v1/listen`) stand-in speaking its real protocol, recognizing for real.

Handshake: `Authorization: Token <key>` or HTTP 401; the audio settings the gateway contract fixes (mulaw, 8000 Hz,
one channel), a known model and `keyterm` only with Nova-3, or HTTP 400 with Deepgram's JSON error body. Stream:
binary audio; `KeepAlive`, `Finalize` and `CloseStream` text messages; `Results` (interim, then `is_final` with
`speech_final`), `SpeechStarted` (vad_events), `UtteranceEnd` (utterance_end_ms) and, on CloseStream, `Metadata`.
Nothing received for `idle_timeout` seconds (10 at Deepgram) closes the stream with 1011 and NET-0001.
"""
from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone

from websockets.exceptions import ConnectionClosed

from gateway.recognizers.sphinx_engine import Utterance
from standins.ws_speech import BYTES_PER_SECOND, Session, WebSocketSpeechStandIn, run_standin

log = logging.getLogger(__name__)

MODELS = ("nova-2-phonecall", "nova-2", "nova-3", "nova-3-general", "nova-2-general", "enhanced-phonecall",
          "base-phonecall")
IDLE = "Deepgram did not receive audio data or a text message within the timeout window. See https://dpgr.am/net0001"


def _error(message: str) -> str:
    return json.dumps({"err_code": "Bad Request", "err_msg": message, "request_id": str(uuid.uuid4())})


class DeepgramSession(Session):
    """One `/v1/listen` stream."""

    def run(self) -> None:
        record = self.record
        self.request_id = str(uuid.uuid4())
        self.events = record.param("vad_events") == "true"
        self.interims = record.param("interim_results") == "true"
        self.utterance_end = bool(record.param("utterance_end_ms"))
        phrases = tuple(record.query.get("keyterm", []) + [k.split(":")[0] for k in record.query.get("keywords", [])])
        engine = self.engine(phrases, self._final, self._speech, self._partial if self.interims else None)
        try:
            self._loop(engine)
        finally:
            engine.close()

    def _loop(self, engine) -> None:
        while True:
            try:
                message = self.conn.recv(timeout=self.standin.idle_timeout)
            except TimeoutError:
                return self.close("idle", 1011, "NET-0001")
            except ConnectionClosed:
                return self.update(lambda r: r.ended or setattr(r, "ended", "client-closed"))
            if self.failed:
                return self.close("fault", 1011, "NET-0000: the service is unavailable")
            if isinstance(message, bytes):
                heard_all = self.feed(engine, message)
                self.flush_out()
                if not heard_all:
                    return self.close("fault", 1011, "NET-0000: injected fault")
                continue
            self.update(lambda r: r.text_messages.append(message))
            kind = _kind(message)
            if kind in ("CloseStream", "Finalize"):
                engine.flush()
                self.flush_out()
                if kind == "CloseStream":
                    self.conn.send(self._metadata(engine.position))
                    return self.close("goodbye", 1000, "")
            elif kind != "KeepAlive":
                return self.close("error", 1008, f"DATA-0000: unknown message {message[:40]!r}")

    def _results(self, text: str, start: float, end: float, confidence: float, final: bool) -> str:
        words = text.split()
        step = (end - start) / max(1, len(words))
        return json.dumps({
            "type": "Results", "channel_index": [0, 1], "duration": round(end - start, 3), "start": round(start, 3),
            "is_final": final, "speech_final": final and self.standin.speech_final, "from_finalize": False,
            "channel": {"alternatives": [{"transcript": text, "confidence": confidence, "words": [
                {"word": w, "start": round(start + i * step, 3), "end": round(start + (i + 1) * step, 3),
                 "confidence": confidence, "punctuated_word": w} for i, w in enumerate(words)]}]},
            "metadata": {"request_id": self.request_id, "model_info": {"name": self.record.param("model"),
                                                                     "version": "stand-in", "arch": "stand-in"},
                         "model_uuid": "00000000-0000-0000-0000-000000000000"},
        })

    def _final(self, utt: Utterance) -> None:
        if not utt.accepted:
            return
        self.out.append(self._results(utt.text, utt.start, utt.end, utt.confidence, True))
        if self.utterance_end and not self.standin.speech_final:
            self.out.append(json.dumps({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": utt.end}))
        self.heard(utt.text)

    def _partial(self, text: str) -> None:
        self.speech_began = getattr(self, "speech_began", 0.0)
        self.out.append(self._results(text, self.speech_began, self.speech_began + 0.5, 0.5, False))
        self.update(lambda r: r.interims.append(text))

    def _speech(self, started: bool, at: float) -> None:
        if started:
            self.speech_began = at
            if self.events:
                self.out.append(json.dumps({"type": "SpeechStarted", "channel": [0], "timestamp": round(at, 3)}))

    def _metadata(self, seconds: float) -> str:
        return json.dumps({"type": "Metadata", "transaction_key": "deprecated", "request_id": self.request_id,
                           "sha256": "0" * 64, "created": datetime.now(timezone.utc).isoformat(),
                           "duration": round(seconds, 3), "channels": 1})


def _kind(message: str) -> str:
    try:
        parsed = json.loads(message)
    except ValueError:
        return ""
    return parsed.get("type", "") if isinstance(parsed, dict) else ""


class DeepgramStandIn(WebSocketSpeechStandIn):
    """Deepgram's `/v1/listen` on a local port; `speech_final=False` ends utterances with UtteranceEnd instead."""

    name = "deepgram"
    session = DeepgramSession
    speech_final = True

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/v1/listen"

    def refuse(self, request, record):
        if record.path != "/v1/listen":
            return 404, _error(f"Not found: {record.path}")
        if record.authorization != f"Token {self.api_key}":
            return 401, json.dumps({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials.",
                                    "request_id": str(uuid.uuid4())})
        checks = [
            (record.param("encoding") == "mulaw", "encoding must be mulaw (Twilio's audio)"),
            (record.param("sample_rate") == str(BYTES_PER_SECOND), "sample_rate must be 8000 with encoding=mulaw"),
            (record.param("channels", "1") == "1", "channels must be 1"),
            (record.param("model") in MODELS, f"No such model: {record.param('model')!r}"),
            (record.param("language", "en").lower().startswith("en"), "the stand-in recognizes English only"),
            (not record.query.get("keyterm") or record.param("model").startswith("nova-3"),
             "Keyterm Prompting is only available with Nova-3 models"),
            (not record.param("utterance_end_ms") or record.param("interim_results") == "true",
             "utterance_end_ms requires interim_results=true"),
        ]
        problem = next((why for ok, why in checks if not ok), None)
        return (400, _error(problem)) if problem else None


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in until interrupted: `python -m standins.deepgram --port N [--scripted hello,goodbye]`."""
    run_standin(DeepgramStandIn, "DEEPGRAM_URL", __doc__, argv)


if __name__ == "__main__":
    main()
