"""Limits end to end: a flooding stream, more streams than allowed, and a call that runs too long; never a deaf call."""
from __future__ import annotations

import pytest

from tests.test_phone_dialogue import APOLOGY, GREETING, place, updates, wait_until

TIME_UP = "We have reached the time limit for this call. Thank you for calling, goodbye!"


def test_flooding_stream_is_closed_and_the_call_goes_on_in_gather(twilio, chatbot, start_gateway):
    # The stand-in streams at four times real time (200 messages a second) against a limit of 50 a second.
    gateway = start_gateway(MAX_STREAM_MESSAGES_PER_SECOND="50")
    call = place(twilio, [("silence", 16), "hello", "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    said = call.said()
    assert said[0] == GREETING and APOLOGY in said and said[-2:] == ["Hi, how are you?", "Goodbye! Thanks for calling."]
    assert said.index(APOLOGY) < said.index("Hi, how are you?"), call.transcript()
    # After the flood the caller was heard by Twilio's <Gather>, not the stream.
    assert [(r["input"], r["message"]) for r in chatbot.requests] == [("speech", "hello"), ("speech", "goodbye")]
    assert all(d["action"].endswith("/gather") and "speech" in d["input"]
               for _, kind, d in call.events if kind == "gather" and d["action"].endswith("/gather"))
    assert ("stream-closed", "closed by the app") in [(kind, d) for _, kind, d in call.events]
    logs = gateway.logs()
    assert logs.count("Media Stream over MAX_STREAM_MESSAGES_PER_SECOND=50") == 1, logs  # not one line per message
    assert "Media Stream flood" in logs and "Traceback" not in logs


def test_streams_over_the_limit_get_gather_mode_instead(twilio, chatbot, start_gateway):
    gateway = start_gateway(GATEWAY_THREADS="4", MAX_CONCURRENT_STREAMS="1")
    first = place(twilio, ["hello"])
    assert first.wait_for_say("Hi, how are you?", timeout=30), first.transcript()
    second = place(twilio, ["hello", "goodbye"])
    assert second.wait_ended(timeout=60), second.transcript()
    assert second.said() == [GREETING, "Hi, how are you?", "Goodbye! Thanks for calling."], second.transcript()
    kinds = [kind for _, kind, _ in second.events]
    assert "stream-start" not in kinds and "gather" in kinds  # Twilio recognized this caller
    assert "streams live (MAX_CONCURRENT_STREAMS); answering in Gather mode" in gateway.logs()
    # The first call still has its stream and is heard.
    assert not first.over and first.streams[0].running
    first.hang_up()
    assert first.wait_ended(timeout=10)


@pytest.mark.parametrize("provider", ["google", "twilio"])
def test_call_past_max_call_seconds_hears_goodbye_and_is_hung_up(provider, twilio, chatbot, start_gateway):
    gateway = start_gateway(STT_PROVIDER=provider, MAX_CALL_SECONDS="3")
    call = place(twilio, ["hello", ("silence", 120)])
    assert call.wait_ended(timeout=20), call.transcript()
    said = call.said()
    assert said[:2] == [GREETING, "Hi, how are you?"] and said[-1] == TIME_UP, call.transcript()
    assert [d for _, kind, d in call.events if kind == "hangup"] == ["<Hangup/>"]
    assert updates(twilio, call)[-1].endswith(f"<Say language=\"en-US\">{TIME_UP}</Say><Hangup /></Response>")
    assert call.duration >= 3 * 4 * 0.9  # three wall seconds: twelve call seconds at the stand-in's speed
    assert wait_until(lambda: "reached MAX_CALL_SECONDS=3" in gateway.logs(), timeout=5)
