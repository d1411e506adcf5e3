"""Deepgram and AssemblyAI: the whole dialogue through gunicorn and each provider's stand-in, a wrong key, idle gaps."""
from __future__ import annotations

import json
import threading
import time

import pytest

from gateway.audio import silence
from gateway.recognizers.assemblyai import AssemblyAIDialect
from gateway.recognizers.deepgram import DeepgramDialect
from gateway.recognizers.speech_loop import THREAD_NAME
from gateway.recognizers.websocket_stream import WebSocketRecognizer
from tests.conftest import SPEED, ears
from tests.test_google_recognizer import HINTS, Heard, feed, speech_of
from tests.test_phone_dialogue import GREETING, normalized, place, updates

PROVIDERS = ["deepgram", "assemblyai"]
OTHER_KEY = {"deepgram": "ASSEMBLYAI_API_KEY", "assemblyai": "DEEPGRAM_API_KEY"}
PACE = 0.02 / SPEED  # a Twilio frame's 20 ms, at the speed the stand-ins take as real time (AssemblyAI's rate rule)


def dialect(provider: str, standin, key: str | None = None, **options):
    """The gateway's dialect for this provider, pointed at its stand-in."""
    make = DeepgramDialect if provider == "deepgram" else AssemblyAIDialect
    return make(key or standin.api_key, standin.url, **options)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_whole_dialogue_through_the_providers_protocol(provider, twilio, chatbot, start_gateway, request):
    standin = ears(request, provider)
    gateway = start_gateway(STT_PROVIDER=provider, **{OTHER_KEY[provider]: "another-providers-key-1234"})
    call = place(twilio, ["hello", "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, "Hi, how are you?", "Goodbye! Thanks for calling."], call.transcript()
    assert [normalized(m).replace(" ", "") for m in chatbot.messages()] == ["hello", "goodbye"]
    assert updates(twilio, call)[-1].endswith("<Hangup /></Response>")
    streams = standin.wait_for_streams(1, ended=True)
    first = streams[0]
    if provider == "deepgram":
        assert first.authorization == f"Token {standin.api_key}" and first.path == "/v1/listen"
        assert {k: first.param(k) for k in ("encoding", "sample_rate", "channels", "model", "language",
                                            "interim_results", "vad_events")} == {
            "encoding": "mulaw", "sample_rate": "8000", "channels": "1", "model": "nova-2-phonecall",
            "language": "en-US", "interim_results": "true", "vad_events": "true"}
        assert first.param("endpointing") and first.param("utterance_end_ms")
        assert "book a table" in first.query["keywords"]
        # The chatbot's hints after its first answer: a new stream carries them (Deepgram takes them at connect).
        assert any("good" in s.query.get("keywords", []) for s in streams[1:])
        goodbye = '{"type": "CloseStream"}'
    else:
        assert first.authorization == standin.api_key and first.path == "/v3/ws"
        assert {k: first.param(k) for k in ("encoding", "sample_rate", "format_turns")} == {
            "encoding": "pcm_mulaw", "sample_rate": "8000", "format_turns": "true"}
        assert "book a table" in json.loads(first.param("keyterms_prompt"))
        # AssemblyAI takes new hints on the open stream.
        updated = [json.loads(m) for m in first.text_messages if "UpdateConfiguration" in m]
        assert updated and "good" in updated[0]["keyterms_prompt"] and len(streams) == 1
        goodbye = '{"type": "Terminate"}'
    assert 800 in first.chunk_sizes and max(first.chunk_sizes) <= 8000  # 100 ms batches: within AssemblyAI's range
    last = streams[-1]
    assert last.ended == "goodbye" and last.text_messages[-1] == goodbye  # the session closed the provider's way
    logs = gateway.logs()
    assert f"speech recognition: {provider} (STT_PROVIDER is set)" in logs
    assert f"also available: {'assemblyai' if provider == 'deepgram' else 'deepgram'}" in logs
    assert standin.api_key not in logs and "Traceback" not in logs


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_wrong_key_is_said_clearly_and_the_call_is_heard_through_gather(provider, twilio, chatbot, start_gateway,
                                                                          request):
    standin = ears(request, provider)
    gateway = start_gateway(STT_PROVIDER=provider, **{f"{provider.upper()}_API_KEY": "not-the-right-key-000"})
    call = place(twilio, [("silence", 4), "hello", "goodbye"])
    assert call.wait_ended(timeout=60), (call.transcript(), gateway.logs())
    assert call.said()[-2:] == ["Hi, how are you?", "Goodbye! Thanks for calling."], call.transcript()
    first_update = updates(twilio, call)[0]
    assert '<Gather action="https://chatline.test/gather"' in first_update  # not a deaf call: Twilio listened
    refused = standin.streams[0]
    assert refused.ended == "refused" and refused.close_code == (401 if provider == "deepgram" else 1008)
    logs = gateway.logs()
    variable = f"{provider.upper()}_API_KEY"
    error = [line for line in logs.splitlines() if "ERROR" in line and "refused the stream" in line]
    assert len(error) == 1 and variable in error[0], logs  # one clear line per call, naming what to fix
    assert "not-the-right-key-000" not in logs and "Traceback" not in logs


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_quiet_stream_is_kept_open_past_the_idle_limit(provider, deepgram, assemblyai):
    standin = deepgram if provider == "deepgram" else assemblyai
    # Deepgram closes a stream after this long without audio or a KeepAlive; AssemblyAI after inactivity_timeout.
    standin.idle_timeout = 1.5
    options = {"inactivity_timeout": 5} if provider == "assemblyai" else {}
    quiet = 6.0 if provider == "assemblyai" else 2.5
    rec = WebSocketRecognizer(dialect(provider, standin, **options), hints=HINTS, keepalive_seconds=0.5)
    heard = Heard()
    rec.start(heard)
    try:
        feed(rec, speech_of("hello") + silence(1000), pace=PACE)
        assert [normalized(t) for t in heard.wait(1)] == ["hello"]
        time.sleep(quiet)  # the caller's audio stops (no frames at all) for longer than the provider's limit
        feed(rec, speech_of("goodbye") + silence(1000), pace=PACE)
        assert [normalized(t) for t in heard.wait(2)] == ["hello", "goodbye"]
        streams = standin.streams
        assert len(streams) == 1 and not streams[0].ended, streams  # the same stream throughout
        assert '{"type": "KeepAlive"}' in streams[0].text_messages
    finally:
        rec.close()


def test_deepgram_utterance_end_closes_an_utterance_without_speech_final(deepgram):
    deepgram.speech_final = False  # endpointing missed the end (noise): UtteranceEnd follows the is_final pieces
    rec = WebSocketRecognizer(DeepgramDialect(deepgram.api_key, deepgram.url), hints=HINTS)
    heard = Heard()
    rec.start(heard)
    try:
        feed(rec, speech_of("book_a_table") + silence(1500), pace=PACE)
        assert heard.wait(1) == ["i would like to book a table"]
    finally:
        rec.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_calls_stream_shares_the_speech_loop(provider, deepgram, assemblyai):
    standin = deepgram if provider == "deepgram" else assemblyai
    before = {t.ident for t in threading.enumerate()}
    recognizers = [WebSocketRecognizer(dialect(provider, standin), hints=HINTS) for _ in range(5)]
    heard = [Heard() for _ in recognizers]
    for rec, h in zip(recognizers, heard):
        rec.start(h)
    try:
        for rec in recognizers:
            feed(rec, speech_of("hello") + silence(800), pace=PACE)
        assert all([normalized(t) for t in h.wait(1)] == ["hello"] for h in heard)
        ours = [t for t in threading.enumerate() if t.ident not in before and t.name != THREAD_NAME
                and not _standins(t)]
        assert ours == [], ours
        assert any(t.name == THREAD_NAME for t in threading.enumerate())
    finally:
        for rec in recognizers:
            rec.close()


def _standins(thread: threading.Thread) -> bool:
    """The stand-in's threads (its sync websockets server's), which are not the gateway's."""
    target = getattr(thread, "_target", None)
    return thread.name.endswith("-standin-stream") or getattr(target, "__module__", "").startswith("websockets.sync")


def test_bad_settings_are_refused_at_once_and_said_clearly(deepgram, caplog):
    reports = []
    rec = WebSocketRecognizer(DeepgramDialect(deepgram.api_key, deepgram.url, model="nova-9-nonexistent"),
                              hints=HINTS, outage_seconds=5.0)
    rec.start(Heard(), on_health=reports.append)
    try:
        deadline = time.monotonic() + 5
        while not reports and time.monotonic() < deadline:
            time.sleep(0.02)
        assert reports == [False]  # at once, not after SPEECH_OUTAGE_SECONDS: retrying cannot fix a setting
        assert deepgram.streams[0].ended == "refused" and deepgram.streams[0].close_code == 400
        refused = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(refused) == 1 and "No such model" in refused[0] and "DEEPGRAM_MODEL" in refused[0], refused
    finally:
        rec.close()


def test_the_chosen_provider_needs_its_key_and_the_others_are_named_when_found():
    from gateway.config import Config, ConfigError

    account = {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t"}
    with pytest.raises(ConfigError, match="DEEPGRAM_API_KEY is required with STT_PROVIDER=deepgram"):
        Config.from_env({**account, "STT_PROVIDER": "deepgram"})
    with pytest.raises(ConfigError, match="ASSEMBLYAI_URL must start with wss://"):
        Config.from_env({**account, "STT_PROVIDER": "assemblyai", "ASSEMBLYAI_API_KEY": "k" * 12,
                         "ASSEMBLYAI_URL": "https://streaming.assemblyai.com/v3/ws"})
    found = Config.from_env({**account, "DEEPGRAM_API_KEY": "d" * 12, "ASSEMBLYAI_API_KEY": "a" * 12})
    assert found.stt_provider == "sphinx"  # unset STT_PROVIDER keeps today's default: a key alone changes nothing
    assert found.other_recognizers() == ["deepgram (DEEPGRAM_API_KEY found)", "assemblyai (ASSEMBLYAI_API_KEY found)"]
    assert "d" * 12 not in repr(found) and "a" * 12 not in repr(found)
    chosen = Config.from_env({**account, "STT_PROVIDER": "deepgram", "DEEPGRAM_API_KEY": "d" * 12})
    assert (chosen.deepgram_url, chosen.deepgram_model) == ("wss://api.deepgram.com/v1/listen", "nova-2-phonecall")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_new_hints_mid_utterance_lose_nothing(provider, deepgram, assemblyai):
    standin = deepgram if provider == "deepgram" else assemblyai
    rec = WebSocketRecognizer(dialect(provider, standin), hints=HINTS)
    heard = Heard()
    rec.start(heard)
    try:
        audio = speech_of("book_a_table")
        feed(rec, audio[:len(audio) // 2], pace=PACE)
        standin.wait_for_streams(1)
        time.sleep(0.3)
        rec.set_hints(HINTS + ("a table for two",))  # Deepgram: a new stream; AssemblyAI: UpdateConfiguration
        feed(rec, audio[len(audio) // 2:] + silence(1000), pace=PACE)
        assert [normalized(t) for t in heard.wait(1)] == ["i would like to book a table"]
        time.sleep(0.3)
        streams = standin.streams
        # The utterance was heard once, by the stream that has the new hints (Deepgram's re-sent its first half).
        assert "a table for two" in streams[-1].phrases and len(streams) == (2 if provider == "deepgram" else 1)
        assert [normalized(t) for s in streams for t in s.finals] == ["i would like to book a table"]
    finally:
        rec.close()


def _results(text: str, start: float, duration: float, is_final: bool, speech_final: bool = False) -> dict:
    return {"type": "Results", "channel_index": [0, 1], "start": start, "duration": duration, "is_final": is_final,
            "speech_final": speech_final, "channel": {"alternatives": [{"transcript": text, "confidence": 0.9}]}}


def test_deepgram_pieces_of_an_utterance_are_one_final():
    from gateway.recognizers.dialect import Finalized
    from gateway.recognizers import Transcript

    d = DeepgramDialect("key")
    assert d.handle({"type": "SpeechStarted", "channel": [0], "timestamp": 0.4}) == [
        Transcript("", 0.0, is_final=False, speech_started=True)]
    assert d.handle(_results("i would", 0.0, 1.0, False)) == [Transcript("i would", 0.9, is_final=False)]
    assert d.handle(_results("i would like", 0.0, 1.2, True)) == [Finalized(1.2)]  # final piece, utterance goes on
    assert d.handle(_results("to book", 1.2, 0.5, False)) == [Transcript("i would like to book", 0.9, is_final=False)]
    assert d.handle(_results("to book a table", 1.2, 1.0, True, speech_final=True)) == [
        Finalized(2.2), Transcript("i would like to book a table", 0.9, is_final=True, end_seconds=2.2)]
    assert d.handle(_results("", 2.2, 1.0, True, speech_final=True)) == [Finalized(3.2)]  # silence: nothing said
    d.handle(_results("goodbye", 3.2, 0.6, True))
    assert d.handle({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 3.7}) == [
        Transcript("goodbye", 0.9, is_final=True, end_seconds=3.7)]
    assert d.handle({"type": "Metadata", "request_id": "x"}) == [] and d.stream_ended() == []
    assert "keywords=book+a+table" in d.url("en-US", ["book a table"])
    assert "keyterm=book+a+table" in DeepgramDialect("key", model="nova-3").url("en-US", ["book a table"])


def test_assemblyai_answers_the_formatted_end_of_turn():
    from gateway.recognizers.dialect import Finalized
    from gateway.recognizers import Transcript

    d = AssemblyAIDialect("key")
    words = [{"start": 1920, "end": 2000, "text": "hi", "confidence": 0.87, "word_is_final": True}]
    partial = {"type": "Turn", "turn_order": 0, "turn_is_formatted": False, "end_of_turn": False, "transcript": "",
               "end_of_turn_confidence": 0.01, "words": [dict(words[0], word_is_final=False)]}
    assert d.handle(partial) == [Transcript("hi", 0.0, is_final=False)]
    unformatted = dict(partial, end_of_turn=True, transcript="hi", words=words)
    assert d.handle(unformatted) == []  # the formatted one follows
    assert d.handle(dict(unformatted, turn_is_formatted=True, transcript="Hi.")) == [
        Finalized(2.0), Transcript("Hi.", 0.87, is_final=True, end_seconds=2.0)]
    assert d.handle({"type": "Begin", "id": "x", "expires_at": 1}) == []
    query = d.url("en-US", ["book a table"])
    assert "encoding=pcm_mulaw" in query and "keyterms_prompt=%5B%22book+a+table%22%5D" in query
    assert json.loads(d.hints_message(["good", "bad"])) == {"type": "UpdateConfiguration",
                                                            "keyterms_prompt": ["good", "bad"]}


def _kept_to_assemblyais_rules(streams) -> None:
    """Every audio message of 50-1000 ms (400-8000 bytes of 8 kHz mu-law), and no stream closed for its audio."""
    sizes = [size for stream in streams for size in stream.chunk_sizes]
    assert sizes and all(400 <= size <= 8000 for size in sizes), sizes
    assert [s.close_reason for s in streams if s.close_code == 3007] == [], streams


def test_assemblyai_hears_an_utterance_whose_stream_broke_midway_within_its_audio_rules(assemblyai):
    audio = silence(400) + speech_of("book_a_table") + silence(1500)
    assemblyai.end_streams_after(1.5)  # the first stream breaks in the middle of the utterance
    rec = WebSocketRecognizer(dialect("assemblyai", assemblyai), hints=HINTS)
    heard = Heard()
    rec.start(heard)
    try:
        feed(rec, audio, pace=PACE)
        assert [normalized(t) for t in heard.wait(1, timeout=10)] == ["i would like to book a table"]
        streams = assemblyai.streams
        assert len(streams) == 2 and streams[0].ended == "fault", streams  # one reconnect, no storm of them
        _kept_to_assemblyais_rules(streams)
        # The second stream took the re-sent audio, then the live audio, never ahead of real time (the stand-in
        # closes a stream with 3007 for that).
        assert streams[1].audio_seconds > len(audio) / 8000 - 1.5
    finally:
        rec.close()


def test_assemblyai_refusing_the_resent_audio_costs_it_once_not_a_storm_of_reconnects(assemblyai, caplog):
    assemblyai.end_streams_after(1.5)
    rec = WebSocketRecognizer(dialect("assemblyai", assemblyai), hints=HINTS)
    heard = Heard()
    rec.start(heard)
    try:
        assemblyai.wait_for_streams(1)
        assemblyai.refuse_audio(1)  # the stream after the break refuses the audio re-sent to it
        feed(rec, silence(400) + speech_of("book_a_table")[:10400], pace=PACE)
        feed(rec, silence(1500), pace=PACE)
        time.sleep(1.0)
        feed(rec, speech_of("hello") + silence(1000), pace=PACE)
        assert [normalized(t) for t in heard.wait(1, timeout=10)] == ["hello"]
        streams = assemblyai.streams
        assert len(streams) == 3, streams  # the break, the refusal, and one that works
        assert streams[1].close_code == 3007 and not streams[2].ended
        # The refused audio was not sent again: the third stream heard only what the caller said after it.
        assert streams[2].audio_seconds < 1.5 + 1.0 + 0.5 + 1.0, streams[2]
        assert "re-sent after a reconnect was not heard" in caplog.text
    finally:
        rec.close()


def test_a_call_whose_assemblyai_stream_breaks_mid_utterance_is_answered_with_one_reconnect(twilio, chatbot,
                                                                                           start_gateway, assemblyai):
    from standins.twilio import Caller

    gateway = start_gateway(STT_PROVIDER="assemblyai", NO_INPUT_SECONDS="0")
    assemblyai.end_streams_after(4.8)  # call seconds: in the middle of "i would like to book a table"
    call = place(twilio, Caller.at_times([(4.0, "book_a_table"), (11.0, "for_four_people"), (16.0, "goodbye")]))
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, "For how many people?", "Your table for four is booked.",
                           "Goodbye! Thanks for calling."], call.transcript()
    assert [normalized(m).replace(" ", "") for m in chatbot.messages()] == ["iwouldliketobookatable",
                                                                           "forfourpeople", "goodbye"]
    streams = assemblyai.wait_for_streams(2, ended=True)
    assert len(streams) == 2 and streams[0].ended == "fault", streams  # one reconnect, not a storm of them
    _kept_to_assemblyais_rules(streams)
    assert "Traceback" not in gateway.logs()


def test_assemblyai_closing_every_stream_before_any_result_is_an_outage_with_backoff(assemblyai):
    reports: list[bool] = []
    rec = WebSocketRecognizer(dialect("assemblyai", assemblyai), hints=HINTS, outage_seconds=1.5)
    assemblyai.refuse_audio(1000)  # every stream's handshake and Begin go well; its first audio is refused
    rec.start(Heard(), reports.append)
    try:
        feed(rec, silence(16000), pace=PACE)  # the caller goes on: 16 s of call, 4 s of wall time
        assert reports == [False], reports  # the call is told: it listens through <Gather> meanwhile
        streams = assemblyai.streams
        assert all(s.close_code == 3007 for s in streams if s.ended)
        assert 3 <= len(streams) <= 8, len(streams)  # retried with backoff (0.25 s doubling), not in a tight loop
    finally:
        rec.close()
