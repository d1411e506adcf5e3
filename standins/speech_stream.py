"""One StreamingRecognize call of the Speech-to-Text stand-in: validation, Google's limits, recognition, records."""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Iterator

import grpc
from google.cloud.speech_v1 import types

from gateway.recognizers.sphinx_engine import SphinxEngine, Utterance
from standins.speech_scripted import ScriptedEngine

log = logging.getLogger(__name__)

BYTES_PER_SECOND = 8000  # MULAW at 8 kHz, the only audio the stand-in (and the gateway contract) accepts
MALORDERED = "Malordered Data Received. Send exactly one config, followed by audio data."
AUDIO_TIMEOUT = "Audio Timeout Error: Long duration elapsed without audio. Audio should be sent close to real time."
Event = types.StreamingRecognizeResponse.SpeechEventType


@dataclass
class Final:
    """A final result as sent to the client."""

    text: str
    confidence: float
    result_end_time: float  # seconds of this stream's audio
    sent_at: float = 0.0  # wall-clock time.time() when the result was handed to gRPC


@dataclass
class StreamRecord:
    """What one stream received and sent, for tests to inspect."""

    id: int
    encoding: str = ""
    sample_rate_hertz: int = 0
    language_code: str = ""
    model: str = ""
    use_enhanced: bool = False
    interim_results: bool = False
    single_utterance: bool = False
    phrases: tuple[str, ...] = ()
    chunk_sizes: list[int] = field(default_factory=list)
    audio_seconds: float = 0.0
    interims: list[str] = field(default_factory=list)
    finals: list[Final] = field(default_factory=list)
    ended: str = ""  # "" while open, then "half-close", "cancelled", "single-utterance" or "aborted"
    code: str = ""  # the gRPC status code name the stream ended with ("OK" unless aborted)
    details: str = ""


@dataclass
class Fault:
    """An injected failure: abort the stream with `code` once it has received `seconds` of audio."""

    seconds: float
    code: grpc.StatusCode


def config_error(config: types.RecognitionConfig) -> str | None:
    """Why Google (as the gateway contract narrows it) would refuse this recognition config, or None."""
    if config.encoding != types.RecognitionConfig.AudioEncoding.MULAW:
        return f"Invalid recognition 'config': encoding must be MULAW (Twilio audio), got {config.encoding.name}."
    if config.sample_rate_hertz != 8000:
        return f"Invalid recognition 'config': sample_rate_hertz must be 8000, got {config.sample_rate_hertz}."
    if not config.language_code:
        return "Invalid recognition 'config': language_code is required."
    if not config.language_code.replace("_", "-").lower().startswith("en-"):  # one English model for every en-*
        return f"Invalid recognition 'config': the stand-in recognizes English only, got {config.language_code!r}."
    return None


def phrases_of(config: types.RecognitionConfig) -> tuple[str, ...]:
    """All phrase hints of the config's speech contexts."""
    return tuple(p for context in config.speech_contexts for p in context.phrases)


def final_result(utt: Utterance, language: str) -> types.StreamingRecognitionResult:
    """A Google-shaped final result for one utterance."""
    return types.StreamingRecognitionResult(
        alternatives=[types.SpeechRecognitionAlternative(transcript=utt.text, confidence=utt.confidence)],
        is_final=True, result_end_time=timedelta(seconds=utt.end), language_code=language.lower())


class _Requests:
    """Reads the client's requests on a daemon thread so the handler can time out waiting for them."""

    END, CANCELLED = object(), object()

    def __init__(self, iterator: Iterator) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._read, args=(iterator,), name="speech-standin-reader", daemon=True).start()

    def _read(self, iterator: Iterator) -> None:
        try:
            for request in iterator:
                self._queue.put(request)
            self._queue.put(self.END)
        except Exception as exc:  # the client cancelled or the server is stopping: the stream is over
            log.debug("speech stand-in: request stream broke: %r", exc)
            self._queue.put(self.CANCELLED)

    def get(self, timeout: float):
        """The next request, END, CANCELLED, or None after `timeout` seconds without one."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None


class StreamingCall:
    """Runs one StreamingRecognize RPC; yields responses as the audio is recognized."""

    def __init__(self, record: StreamRecord, update, fault: Fault | None, max_audio_seconds: float,
                 idle_timeout: float, script: tuple[str, ...] | None = None, tag: bool = False) -> None:
        self.record, self._update, self._fault = record, update, fault
        self._script, self._tag = script, tag
        self._max_audio, self._idle = max_audio_seconds, idle_timeout
        self._out: list[types.StreamingRecognizeResponse] = []
        self._events = self._single = False
        self._language = "en-US"
        self._engine: SphinxEngine | ScriptedEngine | None = None
        self.failure: tuple[grpc.StatusCode, str] | None = None  # set from outside: abort at the next request

    def run(self, requests: Iterator, context: grpc.ServicerContext) -> Iterator[types.StreamingRecognizeResponse]:
        reader = _Requests(requests)
        first = self._next(reader, context)
        if first is None:
            return
        if first is _Requests.END or "streaming_config" not in first:
            self.abort(context, grpc.StatusCode.INVALID_ARGUMENT, MALORDERED)
        self._configure(first.streaming_config, context)
        partial = self._partial if self.record.interim_results else None
        if self._script is not None:  # load tests: energy endpointing and scripted words, no real recognition
            engine = self._engine = ScriptedEngine(self._script, on_final=self._final, on_speech=self._speech,
                                                   on_partial=partial, tag=self._tag)
        else:
            engine = self._engine = SphinxEngine(self.record.phrases, on_final=self._final, on_speech=self._speech,
                                                 on_partial=partial, fallback_to_lm=True)
        try:
            yield from self._stream(reader, engine, context)
        finally:
            engine.close()

    def _stream(self, reader: _Requests, engine: SphinxEngine | ScriptedEngine, context) -> Iterator:
        while True:
            request = self._next(reader, context)
            if request is None:
                return
            if self.failure is not None:
                self.abort(context, *self.failure)
            if request is _Requests.END:
                engine.flush()
                yield from self._drain()
                return self.end("half-close")
            if "streaming_config" in request:
                self.abort(context, grpc.StatusCode.INVALID_ARGUMENT, MALORDERED)
            audio = request.audio_content
            self._update(lambda r: r.chunk_sizes.append(len(audio)))
            limit, code, details = self._limit()
            room = max(0, round(limit * BYTES_PER_SECOND) - round(engine.position * BYTES_PER_SECOND))
            engine.feed(audio[:room])  # audio past the limit is never recognized: it is lost with the stream
            self._update(lambda r: setattr(r, "audio_seconds", engine.position))
            yield from self._drain()
            if self._single and self.record.finals:
                return self.end("single-utterance")
            if len(audio) >= room:
                self.abort(context, code, details)

    def _limit(self) -> tuple[float, grpc.StatusCode, str]:
        """The audio position at which this stream must fail: an injected fault or Google's duration cap."""
        limits = [(self._max_audio, grpc.StatusCode.OUT_OF_RANGE,
                   f"Exceeded maximum allowed stream duration of {self._max_audio:g} seconds.")]
        if self._fault is not None:
            limits.append((self._fault.seconds, self._fault.code, "Injected fault: stream ended by the stand-in."))
        return min(limits, key=lambda item: item[0])

    def _next(self, reader: _Requests, context):
        request = reader.get(self._idle)
        if request is None:
            self.abort(context, grpc.StatusCode.OUT_OF_RANGE, AUDIO_TIMEOUT)
        if request is _Requests.CANCELLED:
            self.end("cancelled", "CANCELLED")
            return None
        return request

    def _configure(self, streaming: types.StreamingRecognitionConfig, context) -> None:
        config = streaming.config
        error = config_error(config) if "config" in streaming else "Invalid 'streaming_config': 'config' is required."
        encoding = config.encoding.name
        phrases = phrases_of(config)

        def store(r: StreamRecord) -> None:
            r.encoding, r.sample_rate_hertz, r.language_code = encoding, config.sample_rate_hertz, config.language_code
            r.model, r.use_enhanced, r.phrases = config.model, config.use_enhanced, phrases
            r.interim_results, r.single_utterance = streaming.interim_results, streaming.single_utterance

        self._update(store)
        if error:
            self.abort(context, grpc.StatusCode.INVALID_ARGUMENT, error)
        self._events, self._single = streaming.enable_voice_activity_events, streaming.single_utterance
        self._language = config.language_code

    def _final(self, utt: Utterance) -> None:
        if not utt.accepted:
            return
        if self._single and self.record.finals:
            return  # single_utterance: one final per stream
        self._out.append(types.StreamingRecognizeResponse(results=[final_result(utt, self._language)]))
        sent_at = time.time()  # the response is yielded to gRPC right after this callback returns
        self._update(lambda r: r.finals.append(Final(utt.text, utt.confidence, utt.end, sent_at)))

    def _partial(self, text: str) -> None:
        stable = bool(self.record.interims) and text.startswith(self.record.interims[-1])
        self._out.append(types.StreamingRecognizeResponse(results=[types.StreamingRecognitionResult(
            alternatives=[types.SpeechRecognitionAlternative(transcript=text)], is_final=False,
            stability=0.9 if stable else 0.1, result_end_time=timedelta(seconds=self._engine.position))]))
        self._update(lambda r: r.interims.append(text))

    def _speech(self, started: bool, at: float) -> None:
        if self._single and not started:
            self._out.append(types.StreamingRecognizeResponse(speech_event_type=Event.END_OF_SINGLE_UTTERANCE))
        if self._events:
            self._out.append(types.StreamingRecognizeResponse(
                speech_event_type=Event.SPEECH_ACTIVITY_BEGIN if started else Event.SPEECH_ACTIVITY_END,
                speech_event_time=timedelta(seconds=at)))

    def _drain(self) -> Iterator[types.StreamingRecognizeResponse]:
        out, self._out = self._out, []
        yield from out

    def end(self, how: str, code: str = "OK", details: str = "") -> None:
        def store(r: StreamRecord) -> None:
            if not r.ended:
                r.ended, r.code, r.details = how, code, details
        self._update(store)

    def abort(self, context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> None:
        log.info("speech stand-in: stream %d ends with %s: %s", self.record.id, code.name, details)
        self.end("aborted", code.name, details)
        context.abort(code, details)


def recognize(request: types.RecognizeRequest, context: grpc.ServicerContext) -> types.RecognizeResponse:
    """The unary Recognize call: the whole audio at once, one result per utterance."""
    error = config_error(request.config)
    if error:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, error)
    results: list[types.SpeechRecognitionResult] = []

    def final(utt: Utterance) -> None:
        if utt.accepted:
            results.append(types.SpeechRecognitionResult(
                alternatives=[types.SpeechRecognitionAlternative(transcript=utt.text, confidence=utt.confidence)],
                result_end_time=timedelta(seconds=utt.end), language_code=request.config.language_code.lower()))

    engine = SphinxEngine(phrases_of(request.config), on_final=final, fallback_to_lm=True)
    started = time.monotonic()
    try:
        engine.feed(request.audio.content)
        engine.flush()
    finally:
        engine.close()
    log.debug("speech stand-in: Recognize of %.1f s took %.2f s", engine.position, time.monotonic() - started)
    return types.RecognizeResponse(results=results, total_billed_time=timedelta(seconds=round(engine.position)))
