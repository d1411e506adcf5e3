"""A Google Speech-to-Text v1 stand-in over real gRPC, recognizing audio for real with pocketsphinx."""
from __future__ import annotations

import argparse
import copy
import logging
import signal
import threading
import time
from concurrent import futures
from typing import Callable

import grpc
from google.cloud.speech_v1 import types

from standins.speech_scripted import SharedScript
from standins.speech_stream import Fault, StreamingCall, StreamRecord, recognize

log = logging.getLogger(__name__)

SERVICE = "google.cloud.speech.v1.Speech"


class SpeechStandIn:
    """Serves `google.cloud.speech.v1.Speech` StreamingRecognize and Recognize on `address`, in plaintext.

    Works on audio time (seconds of audio received), not wall time, except for the idle timeout, so tests may
    send audio faster than real time. Faults can be injected and every stream is recorded in `streams`.
    With `scripted` phrases it does not recognize: utterances are found by energy and answered with the script's
    phrases in turn (cheap enough for load tests); `tag_finals` makes every final unique (`#<stream>.<n>`).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, max_audio_seconds: float = 305.0,
                 idle_timeout: float = 10.0, max_workers: int = 32, scripted: list[str] | None = None,
                 tag_finals: bool = False, script_per_call: bool = False) -> None:
        self.host, self.max_audio_seconds, self.idle_timeout = host, max_audio_seconds, idle_timeout
        self.scripted, self.tag_finals = (tuple(scripted) if scripted is not None else None), tag_finals
        if scripted is not None and script_per_call:  # one call's streams take the phrases in turn (one-call tests)
            self.scripted = SharedScript(scripted)
        self._lock = threading.Lock()
        self._records: list[StreamRecord] = []
        self._faults: list[Fault] = []
        self._unavailable = False
        self._open: set[StreamingCall] = set()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="speech"))
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
            "StreamingRecognize": grpc.stream_stream_rpc_method_handler(
                self._streaming_recognize, request_deserializer=types.StreamingRecognizeRequest.deserialize,
                response_serializer=types.StreamingRecognizeResponse.serialize),
            "Recognize": grpc.unary_unary_rpc_method_handler(
                self._recognize, request_deserializer=types.RecognizeRequest.deserialize,
                response_serializer=types.RecognizeResponse.serialize),
        }),))
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        if not self.port:
            raise OSError(f"speech stand-in: cannot listen on {host}:{port}")
        self._started = False

    @property
    def address(self) -> str:
        """`host:port`, what the gateway gets as SPEECH_EMULATOR_HOST."""
        return f"{self.host}:{self.port}"

    def start(self) -> "SpeechStandIn":
        if not self._started:
            self._server.start()
            self._started = True
            log.info("speech stand-in listening on %s", self.address)
        return self

    def stop(self, grace: float = 0.5) -> None:
        """Stop serving; open streams are cancelled."""
        if self._started:
            self._started = False
            self._server.stop(grace).wait()

    def __enter__(self) -> "SpeechStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- fault injection -------------------------------------------------------------------------------------

    def end_streams_after(self, seconds_of_audio: float, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
                          times: int = 1) -> None:
        """Abort the next `times` streams with `code` once each has received that much audio.

        The limit may fall mid-utterance: nothing is finalized for that utterance, its audio is simply lost.
        """
        with self._lock:
            self._faults.extend(Fault(seconds_of_audio, code) for _ in range(times))

    def unavailable(self, flag: bool = True, end_open_streams: bool = False) -> None:
        """While set, new streams fail at once with UNAVAILABLE; with `end_open_streams`, so do the open ones at their
        next request (the service went away mid-call), before recognizing it."""
        with self._lock:
            self._unavailable = flag
            if flag and end_open_streams:
                for call in self._open:
                    call.failure = (grpc.StatusCode.UNAVAILABLE, "The service is currently unavailable.")

    # --- inspection ------------------------------------------------------------------------------------------

    @property
    def streams(self) -> list[StreamRecord]:
        """Copies of the records of every stream so far, oldest first."""
        with self._lock:
            return copy.deepcopy(self._records)

    def wait_for_streams(self, count: int, timeout: float = 10.0, ended: bool = False) -> list[StreamRecord]:
        """Wait until at least `count` streams exist (and, if `ended`, have all ended); returns the records."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            records = self.streams
            if len(records) >= count and (not ended or all(r.ended for r in records)):
                return records
            time.sleep(0.02)
        raise TimeoutError(f"speech stand-in: {count} stream(s) not seen within {timeout} s: {self.streams}")

    # --- handlers --------------------------------------------------------------------------------------------

    def _update(self, record: StreamRecord) -> Callable[[Callable[[StreamRecord], None]], None]:
        def update(change: Callable[[StreamRecord], None]) -> None:
            with self._lock:
                change(record)
        return update

    def _streaming_recognize(self, requests, context: grpc.ServicerContext):
        with self._lock:
            record = StreamRecord(id=len(self._records) + 1)
            self._records.append(record)
            unavailable, fault = self._unavailable, (self._faults.pop(0) if self._faults else None)
        call = StreamingCall(record, self._update(record), None if unavailable else fault,
                             self.max_audio_seconds, self.idle_timeout, self.scripted, self.tag_finals)
        if unavailable:
            call.abort(context, grpc.StatusCode.UNAVAILABLE, "The service is currently unavailable.")
        context.add_callback(lambda: call.end("cancelled", "CANCELLED"))  # no-op if it already ended
        with self._lock:
            self._open.add(call)
        try:
            yield from call.run(requests, context)
        finally:
            with self._lock:
                self._open.discard(call)

    def _recognize(self, request: types.RecognizeRequest, context: grpc.ServicerContext) -> types.RecognizeResponse:
        if self._unavailable:
            context.abort(grpc.StatusCode.UNAVAILABLE, "The service is currently unavailable.")
        return recognize(request, context)


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in until interrupted: `python -m standins.speech --port N`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-audio-seconds", type=float, default=305.0)
    parser.add_argument("--idle-timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with SpeechStandIn(args.host, args.port, max_audio_seconds=args.max_audio_seconds,
                       idle_timeout=args.idle_timeout) as standin:
        print(f"SPEECH_EMULATOR_HOST={standin.address}", flush=True)
        try:
            stopped.wait()
        except KeyboardInterrupt:
            pass  # Ctrl-C is the normal way to stop it


if __name__ == "__main__":
    main()
