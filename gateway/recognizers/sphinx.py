"""Offline speech recognition with pocketsphinx: the gateway's Recognizer over the streaming SphinxEngine."""
from __future__ import annotations

import logging
import queue
import threading
from typing import Sequence

from gateway.recognizers import ResultCallback, Transcript
from gateway.recognizers.sphinx_engine import SphinxEngine, Utterance

log = logging.getLogger(__name__)


class SphinxRecognizer:
    """The embedded offline recognizer: pocketsphinx on one worker thread per call, finals only.

    A thread rather than decoding inside `feed`: with the full LM a 20 ms frame can cost up to ~150 ms at an
    utterance end (bench/bench_sphinx.py), which would stall the websocket thread.
    """

    def __init__(self, language: str = "en-US", hints: Sequence[str] = (), min_confidence: float = 0.2) -> None:
        if language.replace("_", "-").lower() != "en-us":
            raise ValueError(f"sphinx recognizer: no bundled model for language {language!r} (only en-US)")
        self.min_confidence = min_confidence
        self._engine = SphinxEngine(hints, on_final=self._deliver, on_speech=self._speech)
        self._queue: queue.SimpleQueue[bytes | threading.Event | None] = queue.SimpleQueue()
        self._lock = threading.RLock()  # held while delivering, so nothing is delivered once close() returns
        self._on_result: ResultCallback | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self, on_result: ResultCallback, on_health=None) -> None:  # embedded: it never goes down
        with self._lock:
            if self._closed or self._thread is not None:
                return
            self._on_result = on_result
            self._thread = threading.Thread(target=self._run, name="sphinx-recognizer", daemon=True)
            self._thread.start()

    def feed(self, mulaw: bytes) -> None:
        if not self._closed:
            self._queue.put(bytes(mulaw))

    def set_hints(self, hints: Sequence[str]) -> None:
        self._engine.set_hints(hints)

    def set_language(self, language: str) -> None:
        """Only the bundled en-US model exists: another language is logged and recognition goes on in English."""
        if language.replace("_", "-").lower() != "en-us":
            log.warning("sphinx: cannot switch to language %r (only en-US is bundled); still recognizing en-US", language)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until all audio fed so far is recognized (tests, benchmarks); False on timeout or if closed."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout) and not self._closed

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
            thread = self._thread
        if thread is None:
            self._engine.close()
        elif thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while not self._closed:
                chunk = self._queue.get()
                if isinstance(chunk, threading.Event):
                    chunk.set()
                elif chunk is not None:
                    self._engine.feed(chunk)
        except Exception:  # the call goes on without speech input rather than taking the gateway down
            log.exception("sphinx: recognition failed; no more results for this call")
            self._closed = True
        finally:
            self._engine.close()

    def _speech(self, started: bool, at: float) -> None:
        """The endpointer heard speech begin: tell the conversation at once (barge-in), before any words."""
        if started:
            with self._lock:
                if not self._closed and self._on_result is not None:
                    self._on_result(Transcript("", 0.0, is_final=False, speech_started=True))

    def _deliver(self, utt: Utterance) -> None:
        if not utt.accepted:
            log.info("sphinx: out-of-grammar utterance ignored (closest: %d characters)", len(utt.text))
        elif utt.confidence < self.min_confidence:
            log.info("sphinx: dropped %d characters, confidence %.2f < %.2f", len(utt.text), utt.confidence,
                     self.min_confidence)
        else:
            with self._lock:
                if not self._closed and self._on_result is not None:
                    self._on_result(Transcript(utt.text, utt.confidence, is_final=True))
