"""Google Cloud Speech-to-Text v1 streaming recognition, with streams the gateway bounds and restarts itself.

Every call's stream is a task on one shared asyncio loop thread (google_loop): no threads per call."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Sequence

import grpc
from google.cloud import speech_v1 as speech

from . import HealthCallback, ResultCallback, Transcript, google_loop
from .health import StreamHealth

log = logging.getLogger(__name__)

BYTES_PER_SECOND = 8000  # 8 kHz mu-law, one byte a sample
EXPECTED_END_CODES = {grpc.StatusCode.CANCELLED, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.DEADLINE_EXCEEDED}
MAX_PHRASES, MAX_PHRASE_CHARS = 5000, 100  # Google's limits on speech context phrases


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


class GoogleRecognizer(google_loop.LoopRecognizer):
    """One call's recognition: audio batched to ~100 ms, streams restarted before Google's limits, nothing lost.

    The public methods may be called from any thread; they only hand work to the shared loop. Everything else (the
    stream, its audio bookkeeping, results) lives on the loop thread; only the inbox is shared.
    """

    def __init__(self, language: str = "en-US", hints: Sequence[str] = (), emulator_host: str | None = None,
                 model: str = "phone_call", batch_ms: int = 100, max_stream_seconds: float = 290.0,
                 soft_stream_seconds: float = 240.0, max_resend_seconds: float = 30.0, outage_seconds: float = 5.0,
                 working_after_seconds: float = 2.0):
        self.language, self.model = language, model
        self._hints = tuple(hints)
        self._emulator_host = emulator_host
        self._loop = google_loop.event_loop()
        self._batch_bytes = BYTES_PER_SECOND * batch_ms // 1000
        self._max_stream_seconds = max_stream_seconds
        self._max_stream_bytes = int(BYTES_PER_SECOND * max_stream_seconds)
        self._soft_stream_bytes = int(BYTES_PER_SECOND * soft_stream_seconds)
        # What a restart re-sends must leave the new stream room to hear new audio, or restarts would chain.
        self._max_resend_bytes = int(BYTES_PER_SECOND * min(max_resend_seconds, max_stream_seconds / 2))
        self._inbox = google_loop.AudioInbox(self._drain)  # audio fed from the websocket thread
        self._shut = False               # the loop's own copy of closed, set in turn with what was asked before
        # The rest is the loop thread's alone.
        self._pending = bytearray()      # audio not yet a full batch
        self._unfinalized = bytearray()  # audio sent since the last final result: re-sent after a restart
        self._finalized_at = 0           # call-timeline byte offset where _unfinalized begins
        self._stream_start = 0           # call-timeline byte offset where the current stream's audio begins
        self._stream_bytes = 0           # audio handed to the current stream
        self._outbox: asyncio.Queue | None = None
        self._call = None
        self._sent: asyncio.Event | None = None  # set once the current stream's config is written
        self._task: asyncio.Task | None = None
        self._on_result: ResultCallback | None = None
        self.streams_started = 0
        # Health: down after `outage_seconds` of failing streams; up once a stream answers or stays open this long.
        self._health = StreamHealth(outage_seconds)
        self._working_after = working_after_seconds
        self._on_health: HealthCallback | None = None

    # Everything below runs on the loop thread.

    def _begin(self) -> None:
        """Open the first stream now (close() cannot overtake it) and start the task that keeps one open."""
        if self._shut or self._task is not None:  # not _closed: a start() before close() still opens its stream
            return
        try:
            first = self._open_stream()
        except Exception:  # e.g. no credentials: the task tries again, counting failures and backing off
            log.exception("opening the first speech stream failed")
            first = None
        self._task = self._loop.create_task(self._run(first), name="google-stt")

    def _shutdown(self) -> None:
        """End the stream and the task that would open the next one."""
        self._shut = True
        if self._outbox is not None:
            self._outbox.put_nowait(None)
        if self._call is not None:
            self._loop.create_task(self._cancel_when_sent(self._call, self._sent, self._task))
        elif self._task is not None:
            self._task.cancel()

    async def _cancel_when_sent(self, call, sent: asyncio.Event, task: asyncio.Task | None) -> None:
        """Cancel a stream once its config has gone out (briefly awaited): a call hung up at once still opened and
        ended its stream at Google, rather than one that vanished unseen; the task's boundary."""
        try:
            await asyncio.wait_for(sent.wait(), 1.0)
        except (asyncio.TimeoutError, asyncio.CancelledError):  # the config never went out: cancel it all the same
            log.debug("speech stream cancelled before its config was sent")
        finally:
            call.cancel()
            if task is not None:
                task.cancel()

    def _drain(self, audio: bytes) -> None:
        """Take the fed audio: full batches go to the current stream, several ~100 ms requests from a bulk feed."""
        try:
            self._pending += audio
            whole = len(self._pending) - len(self._pending) % self._batch_bytes
            if not whole:
                return
            for i in range(0, whole, self._batch_bytes):
                batch = bytes(self._pending[i:i + self._batch_bytes])
                self._unfinalized += batch
                if self._outbox is not None:
                    self._outbox.put_nowait(batch)
                    self._stream_bytes += len(batch)
            del self._pending[:whole]
            self._trim_unfinalized()
            if self._stream_bytes >= self._max_stream_bytes:
                log.info("stream reached %d s of audio; restarting it before Google's limit",
                         self._max_stream_bytes // BYTES_PER_SECOND)
                self._restart()
        except Exception:  # a callback's boundary: log it; the call's next audio comes through as usual
            log.exception("passing caller audio to the speech stream failed")

    def _trim_unfinalized(self) -> None:
        """Bound what a restart re-sends: long stretches with no final result are silence or noise."""
        excess = len(self._unfinalized) - self._max_resend_bytes
        if excess > 0:
            del self._unfinalized[:excess]
            self._finalized_at += excess

    def _hints_changed(self) -> None:
        """Google takes phrase hints only when a stream opens: restart it, re-sending the audio not yet finalized."""
        self._restart()

    def _restart(self) -> None:
        """End the current stream now (cancel, so Google finalizes nothing half-heard); `_run` opens the next."""
        if self._outbox is not None:
            self._outbox.put_nowait(None)
        if self._call is not None:
            self._call.cancel()

    async def _requests(self, outbox: asyncio.Queue, config: speech.StreamingRecognitionConfig, opened: float,
                        sent: asyncio.Event):
        """The request stream: config, then audio batches until the stream is ended (None)."""
        yield speech.StreamingRecognizeRequest(streaming_config=config)
        sent.set()  # gRPC asks for more once the config is written
        while True:
            chunk = await outbox.get()
            if chunk is None:
                return
            if time.monotonic() - opened >= self._working_after:
                # Google says nothing while the caller is quiet: a stream still taking audio after a while works.
                self._health.working()
            yield speech.StreamingRecognizeRequest(audio_content=chunk)

    def _open_stream(self):
        """Start a stream whose first audio is everything not yet finalized (None once closed)."""
        if self._shut:  # close() may land between two streams: open nothing it could not cancel
            return None
        outbox: asyncio.Queue = asyncio.Queue()
        for i in range(0, len(self._unfinalized), self._batch_bytes):
            outbox.put_nowait(bytes(self._unfinalized[i:i + self._batch_bytes]))
        self._stream_start = self._finalized_at
        self._stream_bytes = len(self._unfinalized)
        config = streaming_config(self.language, self._hints, self.model)
        # The raw gRPC call (no api_core retry wrapper): the gateway bounds and restarts streams itself.
        stub = google_loop.transport(self._emulator_host).streaming_recognize
        self._sent = asyncio.Event()
        call = stub(self._requests(outbox, config, time.monotonic(), self._sent), timeout=self._max_stream_seconds + 30)
        self._outbox, self._call = outbox, call
        self.streams_started += 1
        return call

    async def _run(self, first) -> None:
        """Keep one stream open for as long as the call lasts, restarting it whenever it ends (the task's boundary)."""
        failures = 0
        try:
            while not self._shut:
                opened = time.monotonic()
                failures = await self._one_stream(failures, first)
                first = None
                if failures and time.monotonic() - opened < 1.0:
                    await asyncio.sleep(self._health.retry_delay(failures))  # Google down: don't spin
        except asyncio.CancelledError:
            pass  # close()
        except Exception:  # never expected: say so, rather than leave the call deaf without a trace
            log.exception("speech stream task stopped unexpectedly; the call hears nothing more")

    async def _one_stream(self, failures: int, call=None) -> int:
        """Run one stream (`call`, or a new one) until it ends; returns the count of failures in a row so far."""
        try:
            if call is None:
                call = self._open_stream()
            if call is None:
                return 0
            async for response in call:
                self._handle(response)
            return 0
        except asyncio.CancelledError:
            if self._inbox.closed:
                raise
            log.info("speech stream ended (CANCELLED); restarting")  # our own restart cancelled it
            return 0
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            if code in EXPECTED_END_CODES or self._inbox.closed:
                log.info("speech stream ended (%s); restarting", code.name if code else "?")
                return 0
            log.warning("speech stream failed: %s %s; restarting (failure %d)",
                        code.name if code else "?", exc.details() if hasattr(exc, "details") else "", failures + 1)
            self._health.failed()
            return failures + 1
        except Exception:  # the stream's boundary: a bug here must not leave the call deaf without a trace
            log.exception("speech stream broke unexpectedly; restarting (failure %d)", failures + 1)
            self._health.failed()
            return failures + 1
        finally:
            if self._outbox is not None:
                self._outbox.put_nowait(None)  # end the request generator if gRPC still waits on it
            self._outbox, self._call = None, None

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
            done = self._stream_start + end - self._finalized_at
            if done > 0:
                del self._unfinalized[:done]
                self._finalized_at += done
            soft_limit = self._stream_bytes >= self._soft_stream_bytes
            end_seconds = (self._stream_start + end) / BYTES_PER_SECOND
            self._emit(Transcript(best.transcript.strip(), best.confidence, is_final=True, end_seconds=end_seconds))
            if soft_limit:
                self._restart()  # a quiet moment right after a final: the cheapest time to roll over

