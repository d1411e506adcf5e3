"""An AssemblyAI v3 streaming (`/v3/ws`) stand-in speaking its real protocol, recognizing for real.

The handshake is accepted, then a wrong `Authorization` key closes the session with 1008; bad settings send an
`Error` and close with 3006. Session: `Begin`, then binary audio of 50-1000 ms per message (else 3007);
audio no faster than real time (`speed` times it, for tests that play calls faster; else 3007 "Audio
Transmission Rate Exceeded", as AssemblyAI documents it, with a tolerance of one largest message since it documents
none); `SpeechStarted`, partial `Turn`s, and a `Turn` with `end_of_turn` (with format_turns=true, a formatted one after it);
`UpdateConfiguration` (keyterms_prompt), `ForceEndpoint`, `KeepAlive`, and `Terminate`, answered with `Termination`
and a 1000 close. With `inactivity_timeout`, a session that long without audio or KeepAlive ends the same way.
"""
from __future__ import annotations

import json
import logging
import time
import uuid

from websockets.exceptions import ConnectionClosed

from gateway.recognizers.sphinx_engine import Utterance
from standins.ws_speech import BYTES_PER_SECOND, Session, WebSocketSpeechStandIn, run_standin

log = logging.getLogger(__name__)

MODELS = ("universal-streaming-english", "universal-streaming-multilingual", "u3-rt-pro")
POLL_SECONDS = 0.25  # how often an open session looks up from its socket (faults, inactivity)
RATE_TOLERANCE_SECONDS = 1.0  # audio a session may hold ahead of real time: one message of the largest size


class AssemblyAISession(Session):
    """One `/v3/ws` session."""

    def run(self) -> None:
        record = self.record
        if record.authorization != self.standin.api_key:
            return self.close("refused", 1008, "Unauthorized connection: Invalid API key")
        problem, terms = self._settings()
        if problem:
            self._error(3006, f"Input validation error: {problem}")
            return self.close("error", 3006, "Input validation error")
        self.format_turns = record.param("format_turns") == "true"
        self.turn_order, self.began, self.audio_bytes = 0, time.monotonic(), 0
        self.inactivity = float(record.param("inactivity_timeout") or 0)
        self.conn.send(json.dumps({"type": "Begin", "id": str(uuid.uuid4()), "expires_at": int(time.time()) + 10800}))
        engine = self.engine(terms, self._final, self._speech, self._partial)
        try:
            self._loop(engine)
        finally:
            engine.close()

    def _settings(self) -> tuple[str | None, tuple[str, ...]]:
        record = self.record
        try:
            terms = json.loads(record.param("keyterms_prompt", "[]"))
        except ValueError:
            terms = None
        if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
            return "keyterms_prompt must be a JSON list of strings", ()
        if not record.param("sample_rate").isdigit():
            return "sample_rate must be a positive integer", ()
        if record.param("encoding", "pcm_s16le") != "pcm_mulaw" or record.param("sample_rate") != "8000":
            return "the stand-in hears pcm_mulaw at 8000 Hz only", ()
        if record.param("speech_model", MODELS[0]) not in MODELS:
            return f"unknown speech_model {record.param('speech_model')!r}", ()
        return None, tuple(terms)

    def _loop(self, engine) -> None:
        quiet_since = time.monotonic()
        while True:
            try:
                message = self.conn.recv(timeout=POLL_SECONDS)
            except TimeoutError:
                message = None
            except ConnectionClosed:
                return self.update(lambda r: r.ended or setattr(r, "ended", "client-closed"))
            if self.failed:
                self._error(3005, "Server error")
                return self.close("fault", 3005, "Server error")
            if message is None:
                if self.inactivity and time.monotonic() - quiet_since >= self.inactivity:
                    self._terminate(engine, "idle")
                    return
                continue
            quiet_since = time.monotonic()
            if isinstance(message, bytes):
                milliseconds = len(message) * 1000 / BYTES_PER_SECOND
                if not 50 <= milliseconds <= 1000:
                    self._error(3007, f"Input Duration Violation: {milliseconds:.2f} ms. Expected between 50 and "
                                      "1000 ms")
                    return self.close("error", 3007, "Input duration violation")
                self.audio_bytes += len(message)
                refusal = self._audio_refusal(milliseconds)
                if refusal:
                    self._error(3007, refusal)
                    return self.close("error", 3007, refusal.split(":")[0])
                heard_all = self.feed(engine, message)
                self.flush_out()
                if not heard_all:
                    self._error(3005, "Server error")
                    return self.close("fault", 3005, "Server error")
                continue
            self.update(lambda r: r.text_messages.append(message))
            if not self._control(engine, message):
                return

    def _audio_refusal(self, milliseconds: float) -> str | None:
        """Why AssemblyAI would refuse this much audio now: sent faster than real time, or a refusal injected."""
        if self.standin.take_audio_refusal(self.record.id):
            return f"Input duration violation: {milliseconds:.0f} ms. Expected between 50 and 1000 ms"
        received = self.audio_bytes / BYTES_PER_SECOND
        elapsed = (time.monotonic() - self.began) * self.standin.speed
        if received > elapsed + RATE_TOLERANCE_SECONDS:
            return f"Audio Transmission Rate Exceeded: Received {received:.1f} sec. audio in {elapsed:.1f} sec"
        return None

    def _control(self, engine, message: str) -> bool:
        """A text message; False once the session is over."""
        try:
            parsed = json.loads(message)
        except ValueError:
            parsed = None
        kind = parsed.get("type") if isinstance(parsed, dict) else None
        if kind == "Terminate":
            self._terminate(engine, "goodbye")
            return False
        if kind == "ForceEndpoint":
            engine.flush()
            self.flush_out()
        elif kind == "UpdateConfiguration":
            terms = parsed.get("keyterms_prompt")
            if isinstance(terms, list):
                engine.set_hints(tuple(str(t) for t in terms))
                self.update(lambda r: setattr(r, "phrases", tuple(str(t) for t in terms)))
        elif kind != "KeepAlive":
            self._error(3006, "Input validation error: unknown message")
            self.close("error", 3006, "Input validation error")
            return False
        return True

    def _terminate(self, engine, how: str) -> None:
        engine.flush()
        self.flush_out()
        self.conn.send(json.dumps({"type": "Termination",
                                   "audio_duration_seconds": round(self.audio_bytes / BYTES_PER_SECOND),
                                   "session_duration_seconds": round(time.monotonic() - self.began)}))
        self.close(how, 1000, "")

    def _error(self, code: int, text: str) -> None:
        self.conn.send(json.dumps({"type": "Error", "error_code": code, "error": text}))

    def _turn(self, text: str, start: float, end: float, confidence: float, end_of_turn: bool,
              formatted: bool) -> str:
        words = text.split()
        step = (end - start) / max(1, len(words))
        return json.dumps({
            "type": "Turn", "turn_order": self.turn_order, "turn_is_formatted": formatted, "end_of_turn": end_of_turn,
            "transcript": text if end_of_turn else "", "end_of_turn_confidence": 0.9 if end_of_turn else 0.01,
            "words": [{"start": round((start + i * step) * 1000), "end": round((start + (i + 1) * step) * 1000),
                       "text": w, "confidence": confidence, "word_is_final": end_of_turn}
                      for i, w in enumerate(words)],
        })

    def _final(self, utt: Utterance) -> None:
        if not utt.accepted:
            return
        self.out.append(self._turn(utt.text, utt.start, utt.end, utt.confidence, True, False))
        if self.format_turns:
            formatted = utt.text[:1].upper() + utt.text[1:] + "."
            self.out.append(self._turn(formatted, utt.start, utt.end, utt.confidence, True, True))
        self.turn_order += 1
        self.heard(utt.text)

    def _partial(self, text: str) -> None:
        began = getattr(self, "speech_began", 0.0)
        self.out.append(self._turn(text, began, began + 0.4, 0.5, False, False))
        self.update(lambda r: r.interims.append(text))

    def _speech(self, started: bool, at: float) -> None:
        if started:
            self.speech_began = at
            self.out.append(json.dumps({"type": "SpeechStarted", "timestamp": round(at * 1000)}))


class AssemblyAIStandIn(WebSocketSpeechStandIn):
    """AssemblyAI's `/v3/ws` on a local port."""

    name = "assemblyai"
    session = AssemblyAISession

    def __init__(self, *args, speed: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.speed = speed  # how much faster than real time calls are played (the rate rule scales with it)
        self._refusals, self._refuse_after = 0, 0
        self._refusing: set[int] = set()

    def refuse_audio(self, times: int = 1) -> None:
        """The next `times` streams opened from now on refuse their first audio message (close 3007), as AssemblyAI
        refuses audio it will not take."""
        with self._lock:
            self._refusals, self._refuse_after = times, len(self._records)

    def take_audio_refusal(self, stream_id: int) -> bool:
        """Whether this stream's audio is refused now (once per stream, for the streams refuse_audio picked)."""
        with self._lock:
            if stream_id in self._refusing or stream_id <= self._refuse_after:
                return False
            if self._refusals > 0:
                self._refusals -= 1
                self._refusing.add(stream_id)
                return True
            return False

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/v3/ws"

    def refuse(self, request, record):
        if record.path != "/v3/ws":
            return 404, json.dumps({"error": f"Not found: {record.path}"})
        return None


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in until interrupted: `python -m standins.assemblyai --port N [--scripted hello,goodbye]`."""
    run_standin(AssemblyAIStandIn, "ASSEMBLYAI_URL", __doc__, argv)


if __name__ == "__main__":
    main()
