"""What the Deepgram and AssemblyAI stand-ins share: a websocket server, stream records, faults, a recognition engine.

Each provider's protocol (handshake checks, message shapes, idle and error behaviour) is a Session subclass in
standins/deepgram.py and standins/assemblyai.py. Streams are recognized for real with pocketsphinx (the project's
SphinxEngine), or, for load runs, endpointed by energy and answered from a script (ScriptedEngine).
"""
from __future__ import annotations

import argparse
import copy
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from websockets.sync.server import Server, ServerConnection, serve

from gateway.recognizers.sphinx_engine import SphinxEngine, Utterance
from standins.speech_scripted import ScriptedEngine

log = logging.getLogger(__name__)

BYTES_PER_SECOND = 8000


@dataclass
class WsStreamRecord:
    """What one stream received and sent, for tests to inspect."""

    id: int
    path: str = ""
    query: dict[str, list[str]] = field(default_factory=dict)
    authorization: str = ""
    phrases: tuple[str, ...] = ()
    chunk_sizes: list[int] = field(default_factory=list)
    audio_seconds: float = 0.0
    text_messages: list[str] = field(default_factory=list)  # the client's JSON messages, as sent
    interims: list[str] = field(default_factory=list)
    finals: list[str] = field(default_factory=list)
    final_times: list[float] = field(default_factory=list)  # time.time() as each final was handed to the socket
    ended: str = ""  # "" while open, then how: "goodbye", "client-closed", "idle", "fault", "refused", "error"
    close_code: int | None = None
    close_reason: str = ""

    def param(self, name: str, default: str = "") -> str:
        """The first value of a query parameter."""
        return (self.query.get(name) or [default])[0]


class Session:
    """One stream of a stand-in; subclasses speak a provider's protocol in `run`."""

    def __init__(self, standin: "WebSocketSpeechStandIn", conn: ServerConnection, record: WsStreamRecord):
        self.standin, self.conn, self.record = standin, conn, record
        self.fault: float | None = standin.take_fault()
        self.failed = False  # set by the stand-in when the service goes away under open streams
        self.out: list[str] = []  # messages to send after the current feed

    def run(self) -> None:
        raise NotImplementedError

    def engine(self, phrases: tuple[str, ...], on_final: Callable[[Utterance], None],
               on_speech: Callable[[bool, float], None], on_partial: Callable[[str], None] | None):
        """The recognition core: pocketsphinx over the phrases, or the script for load runs."""
        self.update(lambda r: setattr(r, "phrases", phrases))
        if self.standin.scripted is not None:
            return ScriptedEngine(self.standin.scripted, on_final=on_final, on_speech=on_speech, on_partial=on_partial,
                                  tag=self.standin.tag_finals)
        return SphinxEngine(phrases, on_final=on_final, on_speech=on_speech, on_partial=on_partial,
                            fallback_to_lm=True)

    def feed(self, engine, audio: bytes) -> bool:
        """Recognize a chunk; False once an injected fault's audio limit is reached (the rest is never heard)."""
        self.update(lambda r: r.chunk_sizes.append(len(audio)))
        room = len(audio) if self.fault is None else max(0, round((self.fault - engine.position) * BYTES_PER_SECOND))
        engine.feed(audio[:room])
        self.update(lambda r: setattr(r, "audio_seconds", engine.position))
        return room >= len(audio) or self.fault is None

    def flush_out(self) -> None:
        """Send what the engine's callbacks queued."""
        out, self.out = self.out, []
        for message in out:
            self.conn.send(message)

    def heard(self, text: str) -> None:
        """Record a final result, sent with the next flush."""
        sent_at = time.time()
        self.update(lambda r: (r.finals.append(text), r.final_times.append(sent_at)))

    def close(self, how: str, code: int, reason: str) -> None:
        """Close the websocket with this code and reason, recording why."""
        def store(r: WsStreamRecord) -> None:
            if not r.ended:
                r.ended, r.close_code, r.close_reason = how, code, reason
        self.update(store)
        log.info("%s stand-in: stream %d ends (%s %d %s)", self.standin.name, self.record.id, how, code, reason)
        self.conn.close(code, reason)

    def update(self, change: Callable[[WsStreamRecord], None]) -> None:
        self.standin.update(self.record, change)


class WebSocketSpeechStandIn:
    """A provider's streaming websocket on a local port (ws://, no TLS); `session` speaks the provider's protocol."""

    name = "speech"
    session: type[Session] = Session

    def __init__(self, api_key: str = "test-speech-key-0123456789", host: str = "127.0.0.1", port: int = 0, *,
                 scripted: list[str] | None = None, tag_finals: bool = False, idle_timeout: float = 10.0):
        self.api_key, self.host, self.idle_timeout = api_key, host, idle_timeout
        self.scripted, self.tag_finals = (tuple(scripted) if scripted is not None else None), tag_finals
        self._lock = threading.Lock()
        self._records: list[WsStreamRecord] = []
        self._faults: list[float] = []
        self._open: set[Session] = set()
        self.unavailable_now = False
        self._server: Server = serve(self._serve, host, port, process_request=self._process_request,
                                     max_size=2 ** 20, compression=None)
        self.port = self._server.socket.getsockname()[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The ws:// base URL the gateway is given (DEEPGRAM_URL / ASSEMBLYAI_URL)."""
        raise NotImplementedError

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name=f"{self.name}-standin",
                                            daemon=True)
            self._thread.start()
            log.info("%s stand-in listening on %s", self.name, self.url)
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- fault injection -------------------------------------------------------------------------------------

    def end_streams_after(self, seconds_of_audio: float, times: int = 1) -> None:
        """Break the next `times` streams abruptly once each has received that much audio (mid-utterance, say)."""
        with self._lock:
            self._faults.extend([seconds_of_audio] * times)

    def take_fault(self) -> float | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def unavailable(self, flag: bool = True, end_open_streams: bool = False) -> None:
        """While set, handshakes are refused with HTTP 503; with `end_open_streams`, open streams break too."""
        with self._lock:
            self.unavailable_now = flag
            if flag and end_open_streams:
                for session in self._open:
                    session.failed = True

    # --- inspection ------------------------------------------------------------------------------------------

    @property
    def streams(self) -> list[WsStreamRecord]:
        with self._lock:
            return copy.deepcopy(self._records)

    def wait_for_streams(self, count: int, timeout: float = 10.0, ended: bool = False) -> list[WsStreamRecord]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            records = self.streams
            if len(records) >= count and (not ended or all(r.ended for r in records)):
                return records
            time.sleep(0.02)
        raise TimeoutError(f"{self.name} stand-in: {count} stream(s) not seen within {timeout} s: {self.streams}")

    def update(self, record: WsStreamRecord, change: Callable[[WsStreamRecord], None]) -> None:
        with self._lock:
            change(record)

    # --- serving ---------------------------------------------------------------------------------------------

    def refuse(self, request, record: WsStreamRecord):
        """The provider's handshake checks: None to accept, else (HTTP status, body)."""
        return None

    def _process_request(self, conn: ServerConnection, request):
        parts = urlsplit(request.path)
        with self._lock:
            record = WsStreamRecord(id=len(self._records) + 1, path=parts.path, query=parse_qs(parts.query),
                                    authorization=request.headers.get("Authorization", ""))
            self._records.append(record)
            unavailable = self.unavailable_now
        conn.stream_record = record
        refusal = (503, '{"err_msg": "Service unavailable."}') if unavailable else self.refuse(request, record)
        if refusal is None:
            return None
        status, body = refusal
        self.update(record, lambda r: setattr(r, "ended", "refused") or setattr(r, "close_code", status))
        log.info("%s stand-in: handshake refused with HTTP %d: %s", self.name, status, body)
        response = conn.respond(status, body)
        response.headers["Content-Type"] = "application/json"
        return response

    def _serve(self, conn: ServerConnection) -> None:
        threading.current_thread().name = f"{self.name}-standin-stream"  # tests tell the gateway's threads apart
        session = self.session(self, conn, conn.stream_record)
        with self._lock:
            self._open.add(session)
        try:
            session.run()
        except Exception as exc:  # the client went away mid-stream, or a bug: the stream is over either way
            log.debug("%s stand-in: stream %d ended: %r", self.name, session.record.id, exc)
            self.update(session.record, lambda r: r.ended or setattr(r, "ended", "client-closed"))
        finally:
            with self._lock:
                self._open.discard(session)


def run_standin(kind: type[WebSocketSpeechStandIn], variable: str, description: str | None,
                argv: list[str] | None = None) -> None:
    """A stand-in's command line: serve until interrupted, printing the URL the gateway gets as `variable`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="test-speech-key-0123456789")
    parser.add_argument("--scripted", help="comma-separated phrases: energy endpointing, no recognition (load runs)")
    parser.add_argument("--tag-finals", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    scripted = args.scripted.split(",") if args.scripted else None
    with kind(args.api_key, args.host, args.port, scripted=scripted, tag_finals=args.tag_finals) as standin:
        print(f"{variable}={standin.url}", flush=True)
        try:
            stopped.wait()
        except KeyboardInterrupt:
            pass  # Ctrl-C is the normal way to stop it
