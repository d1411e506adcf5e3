"""Google Cloud Speech-to-Text v1 streaming recognition, with streams the gateway bounds and restarts itself."""
from __future__ import annotations

import logging
import threading
import time
from typing import Sequence

import grpc
from google.cloud import speech_v1 as speech
from google.cloud.speech_v1.services.speech.transports import SpeechGrpcTransport

from . import HealthCallback, ResultCallback, Transcript
from .health import StreamHealth

log = logging.getLogger(__name__)

BYTES_PER_SECOND = 8000  # 8 kHz mu-law, one byte a sample
EXPECTED_END_CODES = {grpc.StatusCode.CANCELLED, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.DEADLINE_EXCEEDED}
MAX_PHRASES, MAX_PHRASE_CHARS = 5000, 100  # Google's limits on speech context phrases

_clients: dict[str | None, speech.SpeechClient] = {}
_clients_lock = threading.Lock()


def speech_client(emulator_host: str | None = None) -> speech.SpeechClient:
    """One SpeechClient per process (its gRPC channel multiplexes every call's stream)."""
    with _clients_lock:
        client = _clients.get(emulator_host)
        if client is None:
            if emulator_host:
                # Like the other *_EMULATOR_HOST variables: plaintext, no credentials.
                client = speech.SpeechClient(transport=SpeechGrpcTransport(channel=grpc.insecure_channel(emulator_host)))
            else:
                client = speech.SpeechClient()
            _clients[emulator_host] = client
        return client


def streaming_config(language: str, hints: Sequence[str], model: str = "phone_call") -> speech.StreamingRecognitionConfig:
    """The stream's config: mu-law at 8 kHz as Twilio sends it, the phone model, interim results, phrase hints, and
    voice activity events (the start of speech is the earliest cue for barge-in, before any words are recognized)."""
    phrases = [h[:MAX_PHRASE_CHARS] for h in hints[:MAX_PHRASES]]
    return speech.StreamingRecognitionConfig(
        config=speech.RecognitionConfig(
            encoding=speech.RecognitionConfig.AudioEncoding.MULAW, sample_rate_hertz=8000,
            language_code=language, model=model, use_enhanced=True,
            speech_contexts=[speech.SpeechContext(phrases=phrases)] if phrases else [],
        ),
        interim_results=True,
        enable_voice_activity_events=True,
    )


class GoogleRecognizer:
    """One call's recognition: audio batched to ~100 ms, streams restarted before Google's limits, nothing lost."""

    def __init__(self, language: str = "en-US", hints: Sequence[str] = (), emulator_host: str | None = None,
                 model: str = "phone_call", batch_ms: int = 100, max_stream_seconds: float = 290.0,
                 soft_stream_seconds: float = 240.0, max_resend_seconds: float = 30.0, outage_seconds: float = 5.0,
                 working_after_seconds: float = 2.0):
        self.language, self.model = language, model
        self._hints = tuple(hints)
        self._client = speech_client(emulator_host)
        self._batch_bytes = BYTES_PER_SECOND * batch_ms // 1000
        self._max_stream_bytes = int(BYTES_PER_SECOND * max_stream_seconds)
        self._soft_stream_bytes = int(BYTES_PER_SECOND * soft_stream_seconds)
        # What a restart re-sends must leave the new stream room to hear new audio, or restarts would chain.
        self._max_resend_bytes = int(BYTES_PER_SECOND * min(max_resend_seconds, max_stream_seconds / 2))
        self._lock = threading.Lock()
        self._pending = bytearray()      # audio not yet a full batch
        self._unfinalized = bytearray()  # audio sent since the last final result: re-sent after a restart
        self._finalized_at = 0           # call-timeline byte offset where _unfinalized begins
        self._stream_start = 0           # call-timeline byte offset where the current stream's audio begins
        self._stream_bytes = 0           # audio handed to the current stream
        self._outbox: list[bytes | None] | None = None
        self._wakeup = threading.Condition(self._lock)
        self._call: grpc.Call | None = None
        self._closed = False
        self._on_result: ResultCallback | None = None
        self._thread: threading.Thread | None = None
        self.streams_started = 0
        # Health: down after `outage_seconds` of failing streams; up once a stream answers or stays open this long.
        self._health = StreamHealth(outage_seconds)
        self._working_after = working_after_seconds
        self._on_health: HealthCallback | None = None

    def start(self, on_result: ResultCallback, on_health: HealthCallback | None = None) -> None:
        """Open the first stream in a background thread; `on_health(False)`/`(True)` tell of an outage and its end."""
        self._on_result = on_result
        self._on_health = on_health
        self._health.on_change = self._report_health
        self._thread = threading.Thread(target=self._run, name="google-stt", daemon=True)
        self._thread.start()

    def feed(self, mulaw: bytes) -> None:
        """Queue caller audio; full batches go to the current stream at once."""
        with self._lock:
            if self._closed:
                return
            self._pending += mulaw
            whole = len(self._pending) - len(self._pending) % self._batch_bytes
            if not whole:
                return
            # Several batches at once when the caller's audio is read in bulk: Google still gets ~100 ms requests.
            batches = [bytes(self._pending[i:i + self._batch_bytes]) for i in range(0, whole, self._batch_bytes)]
            del self._pending[:whole]
            for batch in batches:
                self._unfinalized += batch
                self._send_locked(batch)
            self._trim_unfinalized()
            over_limit = self._stream_bytes >= self._max_stream_bytes
        if over_limit:
            log.info("stream reached %d s of audio; restarting it before Google's limit",
                     self._max_stream_bytes // BYTES_PER_SECOND)
            self._restart()

    def set_hints(self, hints: Sequence[str]) -> None:
        """Use new phrase hints: the stream restarts now, re-sending the audio not yet finalized."""
        hints = tuple(hints)
        if hints != self._hints:
            self._hints = hints
            self._restart()

    def set_language(self, language: str) -> None:
        """Recognize another language from now on: the stream restarts, re-sending the audio not yet finalized."""
        if language != self.language:
            self.language = language
            self._restart()

    def close(self) -> None:
        """End the stream and the thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wakeup.notify_all()
        self._restart()

    def _send_locked(self, batch: bytes) -> None:
        """Hand a batch to the current stream's request generator (caller holds the lock)."""
        if self._outbox is not None:
            self._outbox.append(batch)
            self._stream_bytes += len(batch)
            self._wakeup.notify()

    def _trim_unfinalized(self) -> None:
        """Bound what a restart re-sends: long stretches with no final result are silence or noise."""
        excess = len(self._unfinalized) - self._max_resend_bytes
        if excess > 0:
            del self._unfinalized[:excess]
            self._finalized_at += excess

    def _restart(self) -> None:
        """End the current stream now (cancel, so Google finalizes nothing half-heard); `_run` opens the next."""
        with self._lock:
            call, outbox = self._call, self._outbox
            if outbox is not None:
                outbox.append(None)
                self._wakeup.notify_all()
        if call is not None:
            call.cancel()

    def _requests(self, outbox: list[bytes | None], config: speech.StreamingRecognitionConfig, opened: float):
        """The request stream: config, then audio batches until the stream is ended (None)."""
        yield speech.StreamingRecognizeRequest(streaming_config=config)
        while True:
            with self._lock:
                while not outbox:
                    self._wakeup.wait()
                chunk = outbox.pop(0)
            if chunk is None:
                return
            if time.monotonic() - opened >= self._working_after:
                # Google says nothing while the caller is quiet: a stream still taking audio after a while works.
                self._health.working()
            yield speech.StreamingRecognizeRequest(audio_content=chunk)

    def _open_stream(self) -> tuple[grpc.Call, list] | None:
        """Start a stream whose first audio is everything not yet finalized (None once closed)."""
        with self._lock:
            if self._closed:  # close() may land between two streams: open nothing it could not cancel
                return None
            outbox: list[bytes | None] = [bytes(self._unfinalized[i:i + self._batch_bytes])
                                          for i in range(0, len(self._unfinalized), self._batch_bytes)]
            self._outbox = outbox
            self._stream_start = self._finalized_at
            self._stream_bytes = len(self._unfinalized)
            config = streaming_config(self.language, self._hints, self.model)
            # The raw gRPC call (no api_core retry wrapper): the gateway bounds and restarts streams itself.
            call = self._client.transport.streaming_recognize(self._requests(outbox, config, time.monotonic()),
                                                              timeout=self._max_stream_bytes / BYTES_PER_SECOND + 30)
            self._call = call
            self.streams_started += 1
        return call, outbox

    def _run(self) -> None:
        """Keep one stream open for as long as the call lasts, restarting it whenever it ends."""
        failures = 0
        while not self._closed:
            opened_stream = self._open_stream()
            if opened_stream is None:
                return
            call, outbox = opened_stream
            opened = time.monotonic()
            try:
                for response in call:
                    self._handle(response)
                failures = 0
            except grpc.RpcError as exc:
                code = exc.code()
                if code in EXPECTED_END_CODES or self._closed:
                    log.info("speech stream ended (%s); restarting", code.name if code else "?")
                    failures = 0
                else:
                    failures += 1
                    log.warning("speech stream failed: %s %s; restarting (failure %d)",
                                code.name if code else "?", exc.details() if hasattr(exc, "details") else "", failures)
                    self._health.failed()
            except Exception:  # the thread's boundary: a bug here must not leave the call deaf without a trace
                failures += 1
                log.exception("speech stream broke unexpectedly; restarting (failure %d)", failures)
                self._health.failed()
            finally:
                with self._lock:
                    outbox.append(None)  # release the request generator if gRPC is still waiting on it
                    self._wakeup.notify_all()
                    self._call = None
            if failures and time.monotonic() - opened < 1.0:
                backoff = min(0.25 * 2 ** (failures - 1), 5.0)
                until_outage = self._health.seconds_until_outage()
                if until_outage is not None:  # try again right at the threshold, so an outage is reported on time
                    backoff = min(backoff, until_outage + 0.01)
                deadline = time.monotonic() + backoff
                with self._lock:  # Google down: don't spin; close() wakes this at once
                    # A loop: every audio batch notifies the condition too, and must not cut the backoff short.
                    while not self._closed and (remaining := deadline - time.monotonic()) > 0:
                        self._wakeup.wait(remaining)

    def _handle(self, response: speech.StreamingRecognizeResponse) -> None:
        """Pass results on; a final result also marks its audio as done, so restarts don't repeat it."""
        if response.speech_event_type == speech.StreamingRecognizeResponse.SpeechEventType.SPEECH_ACTIVITY_BEGIN:
            self._emit(Transcript("", 0.0, is_final=False, speech_started=True))
        self._health.working()
        for result in response.results:
            if not result.alternatives:
                continue
            best = result.alternatives[0]
            if not result.is_final:
                self._emit(Transcript(best.transcript, result.stability, is_final=False))
                continue
            end = int(result.result_end_time.total_seconds() * BYTES_PER_SECOND)
            with self._lock:
                done = self._stream_start + end - self._finalized_at
                if done > 0:
                    del self._unfinalized[:done]
                    self._finalized_at += done
                soft_limit = self._stream_bytes >= self._soft_stream_bytes
                end_seconds = (self._stream_start + end) / BYTES_PER_SECOND
            self._emit(Transcript(best.transcript.strip(), best.confidence, is_final=True, end_seconds=end_seconds))
            if soft_limit:
                self._restart()  # a quiet moment right after a final: the cheapest time to roll over

    def _report_health(self, ok: bool) -> None:
        """Pass a health change on unless the recognizer was closed meanwhile."""
        if not self._closed and self._on_health is not None:
            self._on_health(ok)

    def _emit(self, transcript: Transcript) -> None:
        """Deliver a result unless the recognizer was closed meanwhile."""
        if not self._closed and self._on_result is not None:
            self._on_result(transcript)
