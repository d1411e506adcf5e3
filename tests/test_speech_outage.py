"""Google down past SPEECH_OUTAGE_SECONDS: the call listens through <Gather> instead of going deaf, and comes back."""
from __future__ import annotations

import threading
import time

import pytest

from gateway.audio import silence
from gateway.recognizers.google import GoogleRecognizer
from tests.conftest import ears
from tests.test_google_recognizer import HINTS, Heard, speech_of
from tests.test_phone_dialogue import normalized, place, updates, wait_until


class Fed:
    """Feeds a recognizer 20 ms frames, four times faster than real time, as a Media Stream does, until stopped."""

    def __init__(self, recognizer):
        self.recognizer, self.queue, self.lock = recognizer, bytearray(), threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def say(self, audio: bytes) -> None:
        with self.lock:
            self.queue += audio

    def _run(self):
        while self.running:
            with self.lock:
                frame, self.queue[:160] = bytes(self.queue[:160]) or silence(20), b""
            self.recognizer.feed(frame)
            time.sleep(0.005)

    def stop(self):
        self.running = False
        self.thread.join(2)


def test_recognizer_reports_an_outage_past_the_threshold_and_its_end(speech):
    reports: list[tuple[float, bool]] = []
    # A single failed stream is a blip, not an outage. The fault is set before the recognizer starts: it goes to the
    # next stream opened, and on a loaded machine the first one may open before the line after rec.start() runs.
    speech.end_streams_after(0.3, times=1)
    rec = GoogleRecognizer(hints=HINTS, emulator_host=speech.address, outage_seconds=1.0, working_after_seconds=0.5)
    heard = Heard()
    rec.start(heard, on_health=lambda ok: reports.append((time.monotonic(), ok)))
    fed = Fed(rec)
    try:
        speech.wait_for_streams(2)
        time.sleep(1.5)
        assert reports == []
        down_at = time.monotonic()
        speech.unavailable(True, end_open_streams=True)
        assert wait_until(lambda: reports, 5)
        assert reports[0][1] is False and 1.0 <= reports[0][0] - down_at < 2.0  # on time, not a backoff later
        tried = len(speech.streams)
        time.sleep(2.0)
        assert len(speech.streams) - tried <= 3 and len(reports) == 1  # retrying with backoff; reported once
        speech.unavailable(False)
        assert wait_until(lambda: len(reports) == 2, 10), reports
        assert reports[1][1] is True
        fed.say(speech_of("hello") + silence(800))
        assert heard.wait(1) == ["hello"]  # and it hears the caller again
    finally:
        fed.stop()
        rec.close()


@pytest.mark.parametrize("provider", ["google", "deepgram", "assemblyai"])
def test_recognizer_down_mid_call_moves_the_call_to_gather_and_back(provider, twilio, chatbot, start_gateway,
                                                                     request):
    speech = ears(request, provider)
    gateway = start_gateway(STT_PROVIDER=provider, SPEECH_OUTAGE_SECONDS="2", NO_INPUT_SECONDS="0")
    # Silences (call seconds, 4x faster in wall time) leave room for the outage to be noticed and for its end;
    # NO_INPUT_SECONDS=0, so no reprompt mixes into them.
    call = place(twilio, ["hello", ("silence", 24), "book_a_table", ("silence", 48), "for_four_people", "goodbye"])
    assert call.wait_for_say("Hi, how are you?", timeout=30), call.transcript()
    down_at = time.time()
    speech.unavailable(True, end_open_streams=True)

    def gather_update():
        return next((r for r in twilio.rest_requests if call.sid in r["path"] and r["method"] == "POST"
                     and '<Gather action="https://chatline.test/gather"' in r["form"].get("Twiml", "")), None)

    switch = wait_until(gather_update, 10)
    assert switch, call.transcript()
    assert 'input="speech dtmf"' in switch["form"]["Twiml"] and "<Say" not in switch["form"]["Twiml"]
    assert 2.0 <= switch["time"] - down_at < 4.0  # within about the threshold; the caller hears no error

    # The caller's next words are recognized by Twilio's <Gather> and answered in its webhook.
    assert call.wait_for_say("For how many people?", timeout=30), call.transcript()
    assert call.wait_for_event("gather-result", 0, lambda result: isinstance(result, dict)
                               and result.get("SpeechResult") == "i would like to book a table"), call.transcript()
    speech.unavailable(False)

    assert call.wait_ended(timeout=60), call.transcript()
    said = call.said()
    assert said[-3:] == ["For how many people?", "Your table for four is booked.", "Goodbye! Thanks for calling."]
    assert [normalized(m).replace(" ", "") for m in chatbot.messages()] == [
        "hello", "iwouldliketobookatable", "forfourpeople", "goodbye"]  # each said once, answered once
    # Back on the stream: Google heard the last turns, and their answers came as call updates, not <Gather> answers.
    assert any(getattr(f, "text", f) == "for four people" for s in speech.streams for f in s.finals)
    late = updates(twilio, call)[2:]  # after the first reply and the switch to <Gather>
    assert any("Your table for four is booked." in doc for doc in late) and "<Hangup" in late[-1]
    logs = gateway.logs()
    assert "speech recognition down for over 2 s" in logs and "listens through the Media Stream again" in logs
    assert "Traceback" not in logs


def test_only_one_source_answers_across_the_switch_back(speech):
    from concurrent.futures import ThreadPoolExecutor

    from gateway.calls.store import InMemoryCallStore
    from gateway.chatbots.reply import Reply
    from gateway.chatbots import ChatlineChatbot
    from gateway.config import Config
    from gateway.dialogue.conversation import Conversation
    from gateway.services import Services
    from gateway.calls.live_calls import LiveCalls
    from gateway.recognizers import Transcript
    from gateway.dialogue.answers import listening_reply
    from gateway.twilio.rest import CallUpdater

    config = Config("AC" + "0" * 32, "token")
    services = Services(config, InMemoryCallStore(), ChatlineChatbot("http://127.0.0.1:9/message"),
                        CallUpdater(config.twilio_account_sid, "token", "http://127.0.0.1:9"),
                        ThreadPoolExecutor(1), LiveCalls())
    services.store.open("CA1")
    conversation = Conversation("CA1", "", services, GoogleRecognizer(emulator_host=speech.address), "https://gw")
    services.live.add(conversation)
    conversation.feed(silence(2000))
    services.store.set_speech("CA1", down=True, fallback=True)  # what an outage report does
    assert not conversation.outage.stream_may_answer(Transcript("hello", end_seconds=1.0))
    on_gather = listening_reply(services, "CA1", Reply("Hi"), "https://gw")
    assert 'input="speech dtmf"' in on_gather and "<Say" in on_gather and "https://gw/gather" in on_gather
    services.store.set_speech("CA1", down=False)  # recognition is back: the next answer leaves <Gather>
    back = listening_reply(services, "CA1", Reply("Hi"), "https://gw")
    assert "https://gw/listen" in back and "https://gw/gather" not in back
    assert services.store.get("CA1").speech_fallback is False
    # Words that ended before the switch were the <Gather>'s; words after it are the stream's.
    assert not conversation.outage.stream_may_answer(Transcript("hello", end_seconds=1.5))
    conversation.feed(silence(1000))
    assert conversation.outage.stream_may_answer(Transcript("good", end_seconds=2.5))
    conversation.close()
    services.executor.shutdown()


def test_outage_threshold_is_read_from_the_environment():
    import pytest

    from gateway.config import Config, ConfigError

    account = {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t"}
    assert Config.from_env(account).speech_outage_seconds == 5.0
    assert Config.from_env({**account, "SPEECH_OUTAGE_SECONDS": "2.5"}).speech_outage_seconds == 2.5
    with pytest.raises(ConfigError, match="SPEECH_OUTAGE_SECONDS"):
        Config.from_env({**account, "SPEECH_OUTAGE_SECONDS": "0"})
