"""The whole product through real processes: Twilio stand-in → gunicorn gateway → Speech-to-Text stand-in → sample bot."""
from __future__ import annotations

import json
import time

import pytest
import requests

from tests.conftest import PUBLIC_URL

GREETING = "Hello! You are talking to Chatline. How can I help?"
APOLOGY = "Sorry, I'm having trouble right now. Please try again in a moment."


def wait_until(predicate, timeout: float, interval: float = 0.05):
    """Poll `predicate` until it is truthy or `timeout` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()) and time.monotonic() < deadline:
        time.sleep(interval)
    return result


def place(twilio, caller):
    """Dial the gateway's number the way Twilio does: /voice for the call, /status for its end."""
    from standins.twilio import Caller

    return twilio.place_call(f"{PUBLIC_URL}/voice", caller if isinstance(caller, Caller) else Caller(caller),
                             status_callback=f"{PUBLIC_URL}/status")


def updates(twilio, call):
    """The TwiML documents the gateway sent to this call over the REST API."""
    return [r["form"].get("Twiml", "") for r in twilio.rest_requests if call.sid in r["path"] and r["method"] == "POST"]


def test_hello_to_goodbye_ends_with_hangup(twilio, speech, chatbot, gateway):
    call = place(twilio, ["hello", "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, "Hi, how are you?", "Goodbye! Thanks for calling."], call.transcript()
    assert [m.replace(" ", "") for m in chatbot.messages()] == ["hello", "goodbye"]  # "good bye" is a hint too
    assert [r["session_id"] for r in chatbot.requests] == [call.sid, call.sid]
    assert all(r["input"] == "speech" for r in chatbot.requests)
    sent = updates(twilio, call)
    assert len(sent) == 2 and sent[-1].endswith("<Say language=\"en-US\">Goodbye! Thanks for calling.</Say><Hangup /></Response>")
    kinds = [kind for _, kind, _ in call.events]
    assert "hangup" in kinds and "stream-refused" not in kinds
    # Audio went to Google as Twilio sent it, batched, with the chatbot's hints after the first turn.
    first = speech.streams[0]
    assert (first.encoding, first.sample_rate_hertz, first.model, first.language_code) == ("MULAW", 8000, "phone_call", "en-US")
    assert first.interim_results is True
    assert max(first.chunk_sizes) >= 800 and sorted(first.chunk_sizes)[len(first.chunk_sizes) // 2] == 800
    assert any("good" in s.phrases for s in speech.streams[1:])
    # One structured line per turn, and everything released once Twilio reported the call completed.
    turns = [json.loads(line.split("turn ", 1)[1]) for line in gateway.logs().splitlines() if " turn {" in line]
    assert [(t["call"], t["action"], t["update"]) for t in turns] == [(call.sid, None, "sent"), (call.sid, "hangup", "sent")]
    assert all(isinstance(t["ms"], float) and t["heard_chars"] and t["reply_chars"] for t in turns)
    # No words in the logs unless LOG_TRANSCRIPTS is on, and the caller's number only masked.
    assert "transcript" not in turns[0] and "Hi, how are you?" not in gateway.logs(), gateway.logs()
    assert "+15551230001" not in gateway.logs() and "***0001" in gateway.logs()
    assert wait_until(lambda: "Live calls in this process: 0" in requests.get(gateway.url + "/", timeout=5).text, 5)


def test_reply_with_special_characters_is_heard_as_written(twilio, chatbot, gateway):
    call = place(twilio, ["hello", "special_characters", "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    # Heard as written; the phone-text layer ends the sentence with a full stop (a pause, not a word).
    assert "Fish & chips < \"steak\" > 'pie'." in call.said(), (chatbot.messages(), call.transcript())
    assert any("Fish &amp; chips &lt; \"steak\" &gt; 'pie'" in doc for doc in updates(twilio, call))


@pytest.mark.parametrize("provider", ["google", "deepgram", "assemblyai"])
def test_stream_ended_mid_utterance_loses_nothing(provider, twilio, chatbot, start_gateway, request):
    from standins.twilio import Caller
    from tests.conftest import ears

    # "i would like to book a table" runs from 2.0 s to 3.8 s of stream audio; the provider drops the stream at
    # 2.8 s. Without re-sending, the next stream would hear only "...a table".
    standin = ears(request, provider)
    standin.end_streams_after(2.8, times=1)
    start_gateway(STT_PROVIDER=provider)
    call = place(twilio, Caller.at_times([(2.0, "book_a_table"), (9.0, "goodbye")]))
    assert call.wait_ended(timeout=60), call.transcript()
    assert normalized(chatbot.messages()[0]) == "i would like to book a table"
    assert "For how many people?" in call.said()
    first = standin.streams[0]
    assert (first.code == "UNAVAILABLE" if provider == "google" else first.ended == "fault") and len(standin.streams) >= 2


def normalized(text: str) -> str:
    """A transcript as the sample chatbot matches it: AssemblyAI's formatted turns are capitalized and punctuated."""
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace() or c == "'").split())


@pytest.mark.parametrize("provider", ["google", "deepgram", "assemblyai"])
def test_with_reprompts_off_thirty_seconds_of_silence_keeps_the_call_up(provider, twilio, chatbot, start_gateway):
    # Longer than Deepgram's 10 s idle limit, let alone our own pauses; the keep-alive loop alone (the default
    # reprompts after 8 s).
    start_gateway(STT_PROVIDER=provider, NO_INPUT_SECONDS="0")
    call = place(twilio, [("silence", 30), "hello", "goodbye"])
    assert call.wait_ended(timeout=90), call.transcript()
    assert call.said()[1:] == ["Hi, how are you?", "Goodbye! Thanks for calling."], call.transcript()
    redirects = [detail for _, kind, detail in call.events if kind == "redirect"]
    assert redirects and all(url == f"{PUBLIC_URL}/listen" for url in redirects)


def test_call_that_ends_while_its_reply_is_in_flight(twilio, chatbot, gateway):
    chatbot.delay = 2.0
    call = place(twilio, ["hello"])
    assert wait_until(lambda: chatbot.requests, timeout=30), call.transcript()  # the turn is in flight
    call.hang_up()
    assert call.wait_ended(timeout=10)
    # The reply arrives after the call ended: it is dropped quietly (or Twilio answers 21220), nothing breaks.
    assert wait_until(lambda: "has already ended" in gateway.logs(), timeout=10), gateway.logs()
    assert "Traceback" not in gateway.logs() and "ERROR" not in gateway.logs()
    assert not [r for r in twilio.rest_requests if call.sid in r["path"] and r["status"] == 200]
    # The gateway is still fine: a new call works end to end.
    chatbot.delay = 0
    second = place(twilio, ["hello", "goodbye"])
    assert second.wait_ended(timeout=60) and second.said()[-1] == "Goodbye! Thanks for calling."


def test_a_dropped_media_stream_is_started_again(twilio, speech, chatbot, start_gateway):
    from standins.twilio import Caller

    gateway = start_gateway(LISTEN_PAUSE_SECONDS="4")
    call = place(twilio, Caller(["hello", ("silence", 10), "goodbye"]))
    assert call.wait_for_say("Hi, how are you?", timeout=20), call.transcript()
    call.drop_streams()  # the network breaks: no stop message; the call itself goes on
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, "Hi, how are you?", "Goodbye! Thanks for calling."], call.transcript()
    assert len(call.streams) == 2 and [kind for _, kind, _ in call.events].count("stream-dropped") == 1
    assert "closed without a stop message" in gateway.logs() and "starting a new one" in gateway.logs()
