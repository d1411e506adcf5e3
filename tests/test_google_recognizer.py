"""The Google recognizer against the Speech-to-Text stand-in over real gRPC: batching, hints, restarts, no loss."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest

from gateway.audio import silence
from gateway.recognizers.google import GoogleRecognizer
from gateway.recognizers.google_loop import THREAD_NAME

AUDIO = Path(__file__).resolve().parent.parent / "chatline" / "audio"
HINTS = ("hello", "goodbye", "i would like to book a table", "for four people", "what can you do")


class Heard:
    """Collects final transcripts as the recognizer reports them."""

    def __init__(self):
        self.finals: list[str] = []
        self.interims: list[str] = []
        self._event = threading.Event()

    def __call__(self, transcript):
        (self.finals if transcript.is_final else self.interims).append(transcript.text)
        if transcript.is_final:
            self._event.set()

    def wait(self, count: int, timeout: float = 15.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.finals) < count and time.monotonic() < deadline:
            self._event.wait(0.05)
            self._event.clear()
        return self.finals


def feed(recognizer, audio: bytes, frame: int = 160, pace: float = 0.0):
    """Feed audio in Twilio-sized frames, optionally paced (seconds per frame)."""
    for i in range(0, len(audio), frame):
        recognizer.feed(audio[i:i + frame])
        if pace:
            time.sleep(pace)


def speech_of(name: str) -> bytes:
    return (AUDIO / f"{name}.ulaw").read_bytes()


@pytest.fixture
def recognizer(speech):
    created = []

    def make(**options):
        rec = GoogleRecognizer(hints=options.pop("hints", HINTS), emulator_host=speech.address, **options)
        created.append(rec)
        return rec

    yield make
    for rec in created:
        rec.close()


def test_hears_utterances_in_order_with_batched_audio(recognizer, speech):
    rec, heard = recognizer(), Heard()
    rec.start(heard)
    feed(rec, silence(300) + speech_of("hello") + silence(800) + speech_of("book_a_table") + silence(800))
    assert heard.wait(2) == ["hello", "i would like to book a table"]
    stream = speech.streams[0]
    assert stream.phrases == HINTS and stream.model == "phone_call"
    assert set(stream.chunk_sizes) == {800}  # 100 ms batches, not 20 ms frames


@pytest.mark.parametrize("code", ["UNAVAILABLE", "DEADLINE_EXCEEDED"])
def test_stream_aborted_mid_utterance_is_resent_on_the_next(code, recognizer, speech):
    speech.end_streams_after(1.0, getattr(grpc.StatusCode, code), times=1)  # book_a_table spans 0.3 s .. 2.1 s
    rec, heard = recognizer(), Heard()
    rec.start(heard)
    feed(rec, silence(300) + speech_of("book_a_table") + silence(1000), pace=0.002)
    assert heard.wait(1) == ["i would like to book a table"]
    assert speech.streams[0].code == code and speech.streams[0].finals == []
    assert rec.streams_started >= 2


def test_new_hints_restart_the_stream_without_repeating_finals(recognizer, speech):
    rec, heard = recognizer(hints=("hello", "goodbye")), Heard()
    rec.start(heard)
    feed(rec, silence(200) + speech_of("hello") + silence(800))
    assert heard.wait(1) == ["hello"]
    rec.set_hints(("for four people", "goodbye"))
    feed(rec, silence(200) + speech_of("for_four_people") + silence(800))
    assert heard.wait(2) == ["hello", "for four people"]
    assert [s.phrases for s in speech.streams][-1] == ("for four people", "goodbye")
    assert all(f.text != "hello" for s in speech.streams[1:] for f in s.finals)  # finalized audio is not re-sent


def test_google_duration_limit_rolls_over_without_loss(recognizer, speech):
    speech.max_audio_seconds = 4.0  # Google's 305 s, shrunk: OUT_OF_RANGE after 4 s of audio on a stream
    rec, heard = recognizer(max_resend_seconds=2.0), Heard()
    rec.start(heard)
    feed(rec, silence(3000) + speech_of("book_a_table") + silence(1000), pace=0.001)  # cut 1 s into the phrase
    assert heard.wait(1) == ["i would like to book a table"]
    assert speech.streams[0].code == "OUT_OF_RANGE" and speech.streams[0].finals == []


def test_gateway_restarts_streams_itself_before_the_limit(recognizer, speech):
    rec, heard = recognizer(max_stream_seconds=4.0, soft_stream_seconds=3.5), Heard()
    rec.start(heard)
    feed(rec, silence(3000) + speech_of("book_a_table") + silence(1000), pace=0.001)  # the limit falls mid-phrase
    assert heard.wait(1) == ["i would like to book a table"]
    assert speech.streams[0].ended == "cancelled" and rec.streams_started >= 2


def test_close_ends_the_stream_and_starts_no_thread_per_call(recognizer, speech):
    def call_threads():  # threads started for this call (the stand-in's "speech…" and the shared loop don't count,
        # nor gRPC's own poller, which gRPC starts once per process whenever its first channel in it needs one)
        return [t for t in threading.enumerate() if t not in before and not t.name.startswith("speech")
                and t.name != THREAD_NAME and "_poll_wrapper" not in t.name]

    before = set(threading.enumerate())
    rec, heard = recognizer(), Heard()
    rec.start(heard)
    feed(rec, silence(500))
    assert speech.wait_for_streams(1)
    assert any(t.name == THREAD_NAME for t in threading.enumerate())  # one loop thread per process hosts every stream
    assert call_threads() == []
    rec.close()
    assert speech.wait_for_streams(1, ended=True)[0].ended in ("cancelled", "half-close")
    assert call_threads() == []


def test_close_is_prompt_idempotent_and_silences_results(recognizer, speech):
    rec, heard = recognizer(), Heard()
    rec.start(heard)
    feed(rec, silence(300) + speech_of("hello"))
    started = time.monotonic()
    rec.close()
    rec.close()
    assert time.monotonic() - started < 0.5
    rec.feed(silence(800))
    time.sleep(0.5)
    assert heard.finals == []
