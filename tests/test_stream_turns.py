"""A stream's turn-taking tied to the call's state, in process: the outbound track's measured end reaches the store
(which every process reads), a slow voice keeps its prompt open, and no outbound audio leaves the estimate."""
from __future__ import annotations

import logging
from concurrent.futures import Executor, Future, ThreadPoolExecutor

from gateway import create_app
from gateway.calls.live_calls import LiveCalls
from gateway.calls.store import InMemoryCallStore
from gateway.config import Config
from gateway.dialogue.stream_turns import StreamTurns
from gateway.services import Services
from standins.outbound_audio import SILENCE, speech_like

BASE = {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "token", "STT_PROVIDER": "sphinx",
        "VALIDATE_SIGNATURES": "false", "PUBLIC_URL": "https://gw.example"}
PROMPT = "You can say hello, good, bad, book a table, or goodbye."


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Inline(Executor):
    """Runs the stream's store work as it is handed off, so each step's effect on the store can be checked at once."""

    def submit(self, fn, /, *args, **kwargs):
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _services(clock, **settings):
    config = Config.from_env({**BASE, **settings})
    store = InMemoryCallStore(clock=clock)
    return Services(config=config, store=store, chatbot=None, updater=None, executor=ThreadPoolExecutor(1),
                    live=LiveCalls(), heard=Inline())


def _frames(audio: bytes):
    return [audio[i:i + 160] for i in range(0, len(audio), 160)]


def _play(turns, clock, audio: bytes, start_ms: int) -> int:
    """Feed `audio` as outbound frames (and the inbound clock) in real time; the next frame's time."""
    at = start_ms
    for frame in _frames(audio):
        turns.outbound_frames([(frame, at)])
        turns.inbound(at)
        at += 20
        clock.now += 0.02
        if at % 100 == 0:
            turns.tick()
    return at


def test_a_prompt_faster_than_the_estimate_ends_in_the_store_when_its_audio_ends():
    clock = Clock()
    services = _services(clock)
    services.store.open("CA1")
    services.store.said("CA1", len(PROMPT) / 13, True, PROMPT)  # the estimate: 4.2 s
    turns = StreamTurns(services, "CA1", "en-US")
    voice_ends = _play(turns, clock, speech_like(PROMPT, len(PROMPT) / 33), 0)  # a 33 characters a second voice
    _play(turns, clock, SILENCE * 50, voice_ends)  # a second of silence: the meter ends the prompt
    state = services.store.get("CA1")
    spoke_until = 1000.0 + voice_ends / 1000
    assert abs(state.prompt_until - spoke_until) < 0.1  # the measured end, not 1000 + 4.2
    assert services.store.barge_in("CA1") is None  # speech now is an answer, not a barge-in
    assert turns.turns.heard() == PROMPT


def test_a_voice_slower_than_the_estimate_keeps_its_prompt_open_until_it_ends():
    clock = Clock()
    services = _services(clock)
    services.store.open("CA1")
    services.store.said("CA1", 1.0, True, PROMPT)  # an estimate far too short
    turns = StreamTurns(services, "CA1", "en-US")
    at = _play(turns, clock, speech_like(PROMPT, 3.0), 0)
    assert services.store.get("CA1").prompt_until > clock.now  # still being said: still open to barge-in
    _play(turns, clock, SILENCE * 50, at)
    assert abs(services.store.get("CA1").prompt_until - (1000.0 + at / 1000)) < 0.1


def test_a_measured_end_never_reopens_a_prompt_a_barge_in_stopped():
    clock = Clock()
    services = _services(clock)
    services.store.open("CA1")
    state = services.store.said("CA1", 5.0, True, PROMPT)
    turns = StreamTurns(services, "CA1", "en-US")
    at = _play(turns, clock, speech_like(PROMPT, 1.0), 0)
    services.store.prompt_stopped("CA1", state.prompt)
    _play(turns, clock, SILENCE * 50, at)
    assert services.store.get("CA1").prompt_until == 0.0


def test_without_outbound_audio_the_estimate_stands_and_is_said_once(caplog):
    clock = Clock()
    services = _services(clock)
    services.store.open("CA1")
    services.store.said("CA1", 4.0, True, PROMPT)
    turns = StreamTurns(services, "CA1", "en-US")
    with caplog.at_level(logging.INFO):
        for at in range(0, 8000, 100):
            turns.inbound(at)
            turns.tick()
    assert services.store.get("CA1").prompt_until == 1004.0
    assert caplog.text.count("no outbound audio on its stream") == 1
    assert turns.interrupts("book a table please")  # any words barge in, as the estimate says


def test_backchannels_and_echo_over_a_measured_prompt_do_not_interrupt_it_but_speech_does():
    clock = Clock()
    services = _services(clock)
    services.store.open("CA1")
    services.store.said("CA1", 5.0, True, PROMPT)
    turns = StreamTurns(services, "CA1", "en-US")
    _play(turns, clock, speech_like(PROMPT, 1.5), 0)
    turns.speech_started()
    assert not turns.interrupts("mm-hmm") and turns.classify("mm-hmm", final=True) == "backchannel"
    turns.dropped()
    turns.speech_started()
    assert not turns.interrupts("you can say hello good")  # the prompt's own words, as a speakerphone leaks them
    turns.dropped()
    turns.speech_started()
    assert not turns.interrupts("hello")  # a prompt word: the echo's first word, or an option; its final decides
    assert turns.interrupts("hello", final=True)
    turns.dropped()
    turns.speech_started()
    assert turns.interrupts("what time")


def test_both_tracks_are_asked_for_by_default_and_not_with_outbound_track_off():
    for settings, track in (({}, "both_tracks"), ({"OUTBOUND_TRACK": "false"}, "inbound_track")):
        app = create_app(Config.from_env({**BASE, **settings}), start_background=False)
        answer = app.test_client().post("/voice", data={"CallSid": "CA1", "From": "+15551230001"}).get_data(True)
        assert f'<Start><Stream track="{track}" url="wss://gw.example/stream">' in answer
        state = app.extensions["chatline"].store.get("CA1")
        assert state.prompt_text.startswith("Hello!")  # the greeting's words, for its echo and the history cut
