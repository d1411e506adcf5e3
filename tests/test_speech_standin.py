"""The Speech-to-Text v1 stand-in, driven by the real google-cloud-speech client over real gRPC."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import speech
from google.cloud.speech_v1.services.speech.client import SpeechClient as GapicSpeechClient
from google.cloud.speech_v1.services.speech.transports import SpeechGrpcTransport

from gateway.audio import silence
from standins.speech import SpeechStandIn

ROOT = Path(__file__).resolve().parent.parent
AUDIO = ROOT / "chatline" / "audio"
Encoding = speech.RecognitionConfig.AudioEncoding
Event = speech.StreamingRecognizeResponse.SpeechEventType
CLASSIC_HINTS = ["hello", "goodbye", "i would like to book a table"]


def recording(name: str) -> bytes:
    return (AUDIO / f"{name}.ulaw").read_bytes()


def call_audio(*names: str, gap_ms: int = 800) -> bytes:
    return silence(300) + b"".join(recording(n) + silence(gap_ms) for n in names)


def end_of(*names: str, gap_ms: int = 800) -> float:
    """Where the last of these recordings ends in `call_audio(*names)`, in seconds."""
    return 0.3 + sum(len(recording(n)) / 8000 for n in names) + gap_ms / 1000 * (len(names) - 1)


def config(phrases=(), *, encoding=Encoding.MULAW, rate=8000, language="en-US", **streaming):
    streaming.setdefault("interim_results", True)
    return speech.StreamingRecognitionConfig(config=speech.RecognitionConfig(
        encoding=encoding, sample_rate_hertz=rate, language_code=language, model="phone_call", use_enhanced=True,
        speech_contexts=[speech.SpeechContext(phrases=list(phrases))] if phrases else []), **streaming)


def chunks(audio: bytes, size: int = 160):
    """Audio requests as fast as the client takes them: the stand-in works on audio time."""
    for i in range(0, len(audio), size):
        yield speech.StreamingRecognizeRequest(audio_content=audio[i:i + size])


@pytest.fixture
def standin():
    with SpeechStandIn(idle_timeout=0.5) as server:
        yield server


@pytest.fixture
def client(standin):
    channel = grpc.insecure_channel(standin.address)
    yield speech.SpeechClient(transport=SpeechGrpcTransport(channel=channel))
    channel.close()


def finals(responses) -> list[tuple[str, float]]:
    return [(r.alternatives[0].transcript, r.result_end_time.total_seconds())
            for response in responses for r in response.results if r.is_final]


def transcribe(client, audio: bytes, phrases=(), **streaming) -> list[str]:
    """The final transcripts of one stream of `audio`."""
    return [text for text, _ in finals(client.streaming_recognize(config=config(phrases, **streaming),
                                                                 requests=chunks(audio)))]


def test_phrase_hints_transcribe_two_utterances_at_their_audio_positions(client, standin):
    phrases = ["hello", "i would like to book a table", "goodbye"]
    audio = call_audio("hello", "book_a_table")
    responses = list(client.streaming_recognize(config=config(phrases), requests=chunks(audio)))
    got = finals(responses)
    assert [text for text, _ in got] == ["hello", "i would like to book a table"]
    assert got[0][1] == pytest.approx(end_of("hello"), abs=0.3)
    assert got[1][1] == pytest.approx(end_of("hello", "book_a_table"), abs=0.3)
    interims = [r for response in responses for r in response.results if not r.is_final]
    assert interims and all(0 < r.stability < 1 for r in interims)
    assert all(r.alternatives[0].confidence > 0.5 for response in responses for r in response.results if r.is_final)
    (record,) = standin.streams
    assert (record.encoding, record.sample_rate_hertz, record.language_code) == ("MULAW", 8000, "en-US")
    assert record.model == "phone_call" and record.use_enhanced and record.interim_results
    assert record.phrases == tuple(phrases)
    assert set(record.chunk_sizes[:-1]) == {160} and record.audio_seconds == len(audio) / 8000
    assert [f.text for f in record.finals] == ["hello", "i would like to book a table"]
    assert (record.ended, record.code) == ("half-close", "OK")


def test_chunks_of_any_size_give_the_same_finals(client, standin):
    audio = call_audio("hello", "goodbye")
    pieces = (audio[:1], audio[1:5001], audio[5001:])
    requests = [speech.StreamingRecognizeRequest(audio_content=piece) for piece in pieces]
    got = finals(client.streaming_recognize(config=config(["hello", "goodbye"]), requests=iter(requests)))
    assert [text for text, _ in got] == ["hello", "goodbye"]
    assert standin.streams[0].chunk_sizes == [1, 5000, len(audio) - 5001]


def test_without_hints_the_full_language_model_transcribes(client):
    assert transcribe(client, call_audio("how_are_you")) == ["how are you"]


def test_speech_outside_the_hints_is_still_transcribed_like_google(client):
    assert transcribe(client, call_audio("how_are_you"), ["good", "bad"]) == ["how are you"]


def test_injected_fault_aborts_mid_utterance_and_loses_it(client, standin):
    standin.end_streams_after(2.0)  # "i would like to book a table" runs from 1.6 s to 3.4 s
    seen = []
    with pytest.raises(exceptions.ServiceUnavailable):
        for response in client.streaming_recognize(config=config(["hello", "i would like to book a table"]),
                                                   requests=chunks(call_audio("hello", "book_a_table"))):
            seen.append(response)
    assert [text for text, _ in finals(seen)] == ["hello"]
    record = standin.streams[0]
    assert (record.ended, record.code, record.audio_seconds) == ("aborted", "UNAVAILABLE", 2.0)
    assert [f.text for f in record.finals] == ["hello"]
    # Only the next stream was affected: a retry recognizes the lost utterance.
    booking = ["i would like to book a table"]
    assert transcribe(client, call_audio("book_a_table"), booking) == booking


def test_injected_fault_with_another_code_for_several_streams(client, standin):
    standin.end_streams_after(0.5, code=grpc.StatusCode.ABORTED, times=2)
    for _ in range(2):
        with pytest.raises(exceptions.Aborted):
            list(client.streaming_recognize(config=config(), requests=chunks(call_audio("hello"))))
    assert [(r.code, r.audio_seconds) for r in standin.streams] == [("ABORTED", 0.5)] * 2


def test_unavailable_fails_new_streams_at_once(client, standin):
    standin.unavailable(True)
    with pytest.raises(exceptions.ServiceUnavailable):
        # Without retry=None the real client would retry UNAVAILABLE-before-any-response for up to 5000 s.
        list(client.streaming_recognize(config=config(), requests=chunks(call_audio("hello")), retry=None))
    standin.unavailable(False)
    assert transcribe(client, call_audio("hello"), ["hello"]) == ["hello"]


def test_stream_ends_out_of_range_after_max_audio_seconds():
    audio = call_audio("hello", "book_a_table", "goodbye")  # 5.8 s; Google allows 305, this stand-in 4
    seen = []
    with SpeechStandIn(max_audio_seconds=4) as standin, grpc.insecure_channel(standin.address) as channel:
        client = speech.SpeechClient(transport=SpeechGrpcTransport(channel=channel))
        with pytest.raises(exceptions.OutOfRange, match="Exceeded maximum allowed stream duration of 4 seconds"):
            for response in client.streaming_recognize(config=config(CLASSIC_HINTS), requests=chunks(audio)):
                seen.append(response)
        assert [text for text, _ in finals(seen)] == ["hello", "i would like to book a table"]
        assert standin.streams[0].audio_seconds == 4.0


def test_idle_stream_times_out_on_wall_clock(client, standin):
    release = threading.Event()

    def stalled():
        yield from chunks(silence(500))
        release.wait(5)  # the gateway stopped sending audio

    started = time.monotonic()
    with pytest.raises(exceptions.OutOfRange, match="Audio Timeout Error"):
        list(client.streaming_recognize(config=config(), requests=stalled()))
    release.set()
    assert 0.4 < time.monotonic() - started < 3
    assert standin.streams[0].code == "OUT_OF_RANGE"


def test_audio_before_config_is_rejected_like_google(client, standin):
    raw = GapicSpeechClient.streaming_recognize  # the generated method sends exactly the requests given
    with pytest.raises(exceptions.InvalidArgument, match="Malordered Data Received"):
        list(raw(client, requests=chunks(call_audio("hello"))))
    with pytest.raises(exceptions.InvalidArgument, match="Malordered Data Received"):
        list(raw(client, requests=iter([speech.StreamingRecognizeRequest(streaming_config=config()),
                                        speech.StreamingRecognizeRequest(streaming_config=config())])))
    assert [r.code for r in standin.streams] == ["INVALID_ARGUMENT"] * 2


@pytest.mark.parametrize("bad, message", [
    (dict(encoding=Encoding.LINEAR16), "MULAW"), (dict(rate=16000), "8000"), (dict(language=""), "language_code"),
    (dict(language="fr-FR"), "English only"),
])
def test_configs_the_gateway_must_not_send_are_rejected(client, bad, message):
    with pytest.raises(exceptions.InvalidArgument, match=message):
        list(client.streaming_recognize(config=config(**bad), requests=chunks(call_audio("hello"))))


def test_single_utterance_ends_after_the_first_final(client, standin):
    responses = list(client.streaming_recognize(config=config(CLASSIC_HINTS, single_utterance=True),
                                                requests=chunks(call_audio("hello", "goodbye"))))
    assert [text for text, _ in finals(responses)] == ["hello"]
    assert Event.END_OF_SINGLE_UTTERANCE in [r.speech_event_type for r in responses]
    assert standin.streams[0].ended == "single-utterance"


def test_voice_activity_events_bracket_each_utterance(client):
    responses = list(client.streaming_recognize(config=config(["hello"], enable_voice_activity_events=True),
                                                requests=chunks(call_audio("hello"))))
    events = [(r.speech_event_type, r.speech_event_time.total_seconds()) for r in responses if r.speech_event_type]
    assert [e for e, _ in events] == [Event.SPEECH_ACTIVITY_BEGIN, Event.SPEECH_ACTIVITY_END]
    assert events[0][1] < 0.3 < end_of("hello") < events[1][1]


def test_client_cancel_is_recorded(client, standin):
    release = threading.Event()

    def open_ended():
        yield from chunks(call_audio("hello"))
        release.wait(30)  # held open until the test is done: only the cancel may end it

    responses = client.streaming_recognize(config=config(["hello"]), requests=open_ended())
    for response in responses:
        if any(r.is_final for r in response.results):
            responses.cancel()
            break
    (record,) = standin.wait_for_streams(1, ended=True)
    release.set()
    assert (record.ended, record.code, [f.text for f in record.finals]) == ("cancelled", "CANCELLED", ["hello"])


def test_unary_recognize(client):
    response = client.recognize(
        config=speech.RecognitionConfig(encoding=Encoding.MULAW, sample_rate_hertz=8000, language_code="en-US",
                                        speech_contexts=[speech.SpeechContext(phrases=CLASSIC_HINTS)]),
        audio=speech.RecognitionAudio(content=call_audio("hello", "goodbye")))
    assert [r.alternatives[0].transcript for r in response.results] == ["hello", "goodbye"]


def test_runs_as_a_module():
    process = subprocess.Popen([sys.executable, "-m", "standins.speech", "--port", "0"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("SPEECH_EMULATOR_HOST=127.0.0.1:")
        channel = grpc.insecure_channel(line.split("=", 1)[1])
        client = speech.SpeechClient(transport=SpeechGrpcTransport(channel=channel))
        assert transcribe(client, call_audio("hello"), ["hello"]) == ["hello"]
        channel.close()
    finally:
        process.terminate()
        assert process.wait(10) == 0


def test_scripted_mode_endpoints_by_energy_and_answers_the_script_in_order():
    audio = silence(300) + recording("hello") + silence(1000) + recording("book_a_table") + silence(1000)
    with SpeechStandIn(scripted=["hi there", "a table please"]) as server:
        channel = grpc.insecure_channel(server.address)
        try:
            client = speech.SpeechClient(transport=SpeechGrpcTransport(channel=channel))
            before = time.time()
            responses = list(client.streaming_recognize(config=config(), requests=chunks(audio, 800)))
        finally:
            channel.close()
        record = server.streams[0]
    heard = finals(responses)
    assert [text for text, _ in heard] == ["hi there", "a table please"]
    hello_end = 0.3 + len(recording("hello")) / 8000
    table_end = hello_end + 1.0 + len(recording("book_a_table")) / 8000
    assert abs(heard[0][1] - hello_end) < 0.1 and abs(heard[1][1] - table_end) < 0.1  # end of speech, not of silence
    interims = [r.alternatives[0].transcript for response in responses for r in response.results if not r.is_final]
    assert interims == ["hi", "a"]  # an interim before each final
    assert [f.text for f in record.finals] == ["hi there", "a table please"]
    assert all(before <= f.sent_at <= time.time() for f in record.finals)


def test_scripted_mode_tags_finals_uniquely_and_hears_nothing_in_silence():
    with SpeechStandIn(scripted=["hello"], tag_finals=True) as server:
        channel = grpc.insecure_channel(server.address)
        try:
            client = speech.SpeechClient(transport=SpeechGrpcTransport(channel=channel))
            quiet = list(client.streaming_recognize(config=config(), requests=chunks(silence(3000))))
            two = finals(client.streaming_recognize(config=config(), requests=chunks(
                recording("good") + silence(700) + recording("bad") + silence(700))))
        finally:
            channel.close()
    assert finals(quiet) == []
    texts = [text for text, _ in two]
    assert len(texts) == 2 and texts[0].startswith("hello #") and texts[0].endswith(".1") and texts[1].endswith(".2")
