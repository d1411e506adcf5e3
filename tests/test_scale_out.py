"""Two gateway processes on one Redis behind a round-robin router: every call behaves as with one process."""
from __future__ import annotations

import json
import os
import signal

import pytest

from tests.conftest import PUBLIC_URL
from tests.test_keys_and_silence import FALLBACK, GOODBYE, STILL_THERE
from tests.test_phone_dialogue import GREETING, place, wait_until

# Two gateways, a Redis and a stream each: these run one at a time (on one xdist worker), as each kills, freezes or
# restarts its processes on a schedule of its own.
pytestmark = pytest.mark.xdist_group("scale-out")

HELP = "You can say hello, good, bad, book a table, or goodbye."
HI = "Hi, how are you?"
BYE = "Goodbye! Thanks for calling."


@pytest.fixture
def two_gateways(redis_server, start_gateway, twilio):
    """Start two `web:` processes on one REDIS_URL; each webhook and each stream goes to the next, in turn."""

    def start(**overrides: str):
        # Reprompts off unless a test asks for them: the long silences here are room for a kill, a restart or an
        # outage, not a silent caller (the reprompt test sets its own NO_INPUT_SECONDS).
        settings = {"REDIS_URL": redis_server.url, "NO_INPUT_SECONDS": "0", **overrides}
        gateways = [start_gateway(**settings) for _ in range(2)]
        twilio.tunnel[PUBLIC_URL] = [gateway.url for gateway in gateways]
        return gateways

    return start


def turn_lines(gateways) -> list[dict]:
    return [json.loads(line.split("turn ", 1)[1]) for gateway in gateways for line in gateway.logs().splitlines()
            if " turn {" in line]


def test_keys_and_speech_across_two_processes(twilio, chatbot, two_gateways):
    gateways = two_gateways()
    call = place(twilio, [("dtmf", "1"), "book_table", ("dtmf", "2#"), "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    assert [(r["input"], r["message"].replace(" ", "")) for r in chatbot.requests] == [
        ("dtmf", "1"), ("speech", "bookatable"), ("dtmf", "2"), ("speech", "goodbye")]
    assert call.said() == [GREETING, FALLBACK, "For how many people?", "Your table for two is booked.",
                           BYE], call.transcript()
    # Both processes served the call: the one holding the stream answered speech, webhooks landed on either.
    assert all(call.sid in gateway.logs() for gateway in gateways)
    assert sorted(t["update"] for t in turn_lines(gateways)) == ["answered", "answered", "sent", "sent"]
    assert "call state in Redis" in gateways[0].logs()
    assert not any("Traceback" in gateway.logs() for gateway in gateways)


def test_a_silent_caller_is_reprompted_once_per_silence_across_processes(twilio, chatbot, two_gateways):
    two_gateways(NO_INPUT_SECONDS="3")
    call = place(twilio, [])
    assert call.wait_ended(timeout=30), call.transcript()
    assert call.said() == [GREETING, STILL_THERE, STILL_THERE, GOODBYE], call.transcript()
    assert chatbot.requests == []


def test_barge_in_on_a_prompt_sent_by_the_other_process(twilio, chatbot, two_gateways):
    gateways = two_gateways()
    call = place(twilio, ["what_can_you_do", ("barge-in", "hello", 0.8), "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, HELP, HI, BYE], call.transcript()
    assert [d for _, k, d in call.events if k == "say-interrupted"] == [HELP], call.transcript()
    assert any("barge-in, the caller spoke over the bot" in gateway.logs() for gateway in gateways)


def test_the_call_deadline_fires_once_across_processes(twilio, chatbot, two_gateways):
    gateways = two_gateways(MAX_CALL_SECONDS="3")
    call = place(twilio, ["hello", ("silence", 120)])
    assert call.wait_ended(timeout=20), call.transcript()
    assert call.said()[-1] == "We have reached the time limit for this call. Thank you for calling, goodbye!"
    assert [d for _, kind, d in call.events if kind == "hangup"] == ["<Hangup/>"]
    assert wait_until(lambda: any("reached MAX_CALL_SECONDS=3" in g.logs() for g in gateways), timeout=5)
    assert sum(g.logs().count("reached MAX_CALL_SECONDS=3") for g in gateways) == 1  # one goodbye, not one each


def test_unanswered_transfer_brings_the_caller_back_across_processes(twilio, chatbot, two_gateways):
    from tests.test_transfer import FAILED, TRANSFER

    two_gateways(TRANSFER_TIMEOUT="20")
    chatbot.body = TRANSFER
    call = place(twilio, ["hello"])
    assert call.wait_for_say(FAILED, timeout=30), call.transcript()
    said = call.said()
    assert said[said.index(FAILED) - 1] == "Putting you through to a person."
    assert [d for _, kind, d in call.events if kind == "dial"] == ["+15550001111"]
    failed_at = next(t for t, kind, d in call.events if kind == "say" and d == FAILED)
    assert wait_until(lambda: any(t >= failed_at and kind in ("pause", "gather") for t, kind, _ in call.events), 10)
    assert call.status != "completed", call.transcript()  # back with the bot, listening
    call.hang_up()
    assert call.wait_ended(timeout=10)


def test_a_redis_restart_mid_call_keeps_the_call(twilio, chatbot, two_gateways, redis_server):
    gateways = two_gateways()
    call = place(twilio, ["hello", ("silence", 12), "goodbye"])
    assert call.wait_for_say(HI, timeout=30), call.transcript()
    redis_server.stop()  # the append-only file has every change written before
    redis_server.start()
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, HI, BYE], call.transcript()
    assert [r["session_id"] for r in chatbot.requests] == [call.sid, call.sid]
    assert not any("Traceback" in gateway.logs() for gateway in gateways)


def stream_holder(gateways, redis_server, call):
    """The gateway whose worker holds the call's stream (the store says which process), and the other one."""
    owner = json.loads(redis_server.client().get(f"chatline:call:{call.sid}"))["stream_owner"]
    worker = int(owner.split(":")[1])
    holder = next(g for g in gateways if os.getpgid(worker) == g.process.pid)
    return holder, next(g for g in gateways if g is not holder)


def test_kill_9_of_the_stream_holder_and_the_call_goes_on(twilio, chatbot, two_gateways, redis_server):
    gateways = two_gateways()
    call = place(twilio, ["hello", ("silence", 40), "goodbye"])
    assert call.wait_for_say(HI, timeout=30), call.transcript()
    # A kill while the caller is silent: the turn that said HI has finished (its line is logged once the call's
    # state no longer holds its words). A kill inside a turn is the next test's.
    assert wait_until(lambda: len(turn_lines(gateways)) == 1, timeout=10), [g.logs()[-2000:] for g in gateways]
    holder, survivor = stream_holder(gateways, redis_server, call)
    twilio.tunnel[PUBLIC_URL] = [survivor.url]  # the router stops sending requests to a dead process
    call.record("test", "kill -9")
    os.killpg(holder.process.pid, signal.SIGKILL)
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, HI, BYE], call.transcript()
    assert [r["session_id"] for r in chatbot.requests] == [call.sid, call.sid]  # the chatbot's session goes on
    killed = next(t for t, kind, d in call.events if kind == "test")
    restarted = [t for t, kind, _ in call.events if kind == "stream-start" and t > killed]
    assert restarted and (restarted[0] - killed) < 5.0, call.transcript()  # heard again within 5 s
    assert not any(kind == "say-interrupted" for _, kind, _ in call.events)  # nothing the caller heard was cut
    print(f"\nkill -9: the caller was heard again after {restarted[0] - killed:.2f} s")
    assert "stopped; starting a new stream" in survivor.logs()


def test_kill_9_during_a_turn_answers_its_words_and_frees_the_turn(twilio, chatbot, two_gateways,
                                                                         redis_server):
    gateways = two_gateways()
    from standins.twilio import Caller

    chatbot.delay = 3.0  # the stream's process is still asking the chatbot about "hello" when it dies
    call = place(twilio, Caller.at_times([(1.0, "hello"), (24.0, "goodbye")]))
    assert wait_until(lambda: chatbot.requests, timeout=30), call.transcript()
    holder, survivor = stream_holder(gateways, redis_server, call)
    twilio.tunnel[PUBLIC_URL] = [survivor.url]
    os.killpg(holder.process.pid, signal.SIGKILL)
    chatbot.delay = 0.0
    assert call.wait_ended(timeout=60), call.transcript()
    # The words the dead process was answering are answered by the survivor (the chatbot hears them again): the
    # caller is not left in silence.
    assert call.said()[:2] == [GREETING, HI], call.transcript()
    assert "died answering 5 characters; answering them here" in survivor.logs()
    heard = [message.replace(" ", "") for message in chatbot.messages()]  # "good bye" is "goodbye"
    assert heard[-1] == "goodbye" and heard.count("hello") == 2
    # The dead process's turn lock does not hold up the caller's next words until it expires (CHATBOT_TIMEOUT + 5 s
    # of waiting, 40 call seconds here): they are answered as promptly as any.
    assert call.said()[-1] == BYE, call.transcript()
    spoke = next(t for t, kind, d in call.events if kind == "caller-speaks" and d == "goodbye")
    answered = next(t for t, kind, d in call.events if kind == "say" and d == BYE)
    assert answered - spoke < 12, call.transcript()
    assert "freed the turn the stopped process held" in survivor.logs()


def test_redis_gone_mid_call_leaves_the_caller_an_apology_not_silence(twilio, chatbot, two_gateways, redis_server):
    from tests.test_phone_dialogue import APOLOGY

    gateways = two_gateways()
    call = place(twilio, ["hello", ("silence", 8), "goodbye", ("silence", 60)])
    assert call.wait_for_say(HI, timeout=30), call.transcript()
    redis_server.stop()
    try:
        assert call.wait_for_say(APOLOGY, timeout=30), call.transcript()
        assert call.status != "completed", call.transcript()  # the call goes on listening
        assert any(line in g.logs() for g in gateways for line in (  # one clear line, wherever Redis was missed
            "could not be handled", "call state unavailable", "failed unexpectedly; the caller hears the apology"))
    finally:
        redis_server.start()
    call.hang_up()
    assert call.wait_ended(timeout=15)
    assert chatbot.messages() == ["hello"]


def test_the_sample_chatbot_keeps_its_dialogues_in_the_same_redis(redis_server, monkeypatch):
    from chatbot_api import create_app

    monkeypatch.setenv("REDIS_URL", redis_server.url)
    first, second = create_app().test_client(), create_app().test_client()  # two workers

    def say(client, message):
        return client.post("/message", json={"message": message, "session_id": "CA-shared", "input": "speech"}).json

    assert say(first, "book a table")["text"] == "For how many people?"
    assert say(second, "four")["text"] == "Your table for four is booked."  # the other worker knew the dialogue
    assert redis_server.client().ttl("chatline:chatbot-session:CA-shared") > 0  # forgotten after inactivity


def test_web_concurrency_gives_one_gateway_two_workers_that_share_every_call(twilio, chatbot, start_gateway,
                                                                             redis_server):
    gateway = start_gateway(REDIS_URL=redis_server.url, WEB_CONCURRENCY="2")
    assert wait_until(lambda: gateway.logs().count("Booting worker") == 2, timeout=15), gateway.logs()
    call = place(twilio, [("dtmf", "1"), "book_table", ("dtmf", "2#"), "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, FALLBACK, "For how many people?", "Your table for two is booked.",
                           BYE], call.transcript()


def test_google_down_mid_call_moves_the_call_to_gather_and_back_across_processes(twilio, speech, chatbot,
                                                                                 two_gateways):
    gateways = two_gateways(SPEECH_OUTAGE_SECONDS="2")
    call = place(twilio, ["hello", ("silence", 24), "book_a_table", ("silence", 48), "for_four_people", "goodbye"])
    assert call.wait_for_say(HI, timeout=30), call.transcript()
    speech.unavailable(True, end_open_streams=True)
    # The <Gather> result lands on either process; it answers, and the stream's process follows.
    assert call.wait_for_say("For how many people?", timeout=30), call.transcript()
    assert call.wait_for_event("gather-result", 0, lambda result: isinstance(result, dict)
                               and result.get("SpeechResult") == "i would like to book a table"), call.transcript()
    speech.unavailable(False)
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said()[-3:] == ["For how many people?", "Your table for four is booked.", BYE], call.transcript()
    assert [m.replace(" ", "") for m in chatbot.messages()] == [
        "hello", "iwouldliketobookatable", "forfourpeople", "goodbye"]  # each said once, answered once
    assert any(f.text == "for four people" for s in speech.streams for f in s.finals)  # back on the stream
    logs = "".join(gateway.logs() for gateway in gateways)
    assert "speech recognition down for over 2 s" in logs and "listens through the Media Stream again" in logs


def test_a_stalled_stream_holder_gives_its_stream_up_and_no_turn_is_answered_twice(twilio, chatbot, two_gateways,
                                                                                    redis_server):
    gateways = two_gateways()
    call = place(twilio, ["hello", ("silence", 40), "goodbye"])
    assert call.wait_for_say(HI, timeout=30), call.transcript()
    # Frozen between turns, as the kill -9 test kills: once the turn that said HI has let its words go.
    assert wait_until(lambda: len(turn_lines(gateways)) == 1, timeout=10), [g.logs()[-2000:] for g in gateways]
    holder, survivor = stream_holder(gateways, redis_server, call)
    os.killpg(holder.process.pid, signal.SIGSTOP)  # frozen past its heartbeat: it looks dead
    try:
        assert wait_until(lambda: "stopped; starting a new stream" in survivor.logs(), timeout=10)
    finally:
        os.killpg(holder.process.pid, signal.SIGCONT)
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, HI, BYE], call.transcript()
    assert [m.replace(" ", "") for m in chatbot.messages()] == ["hello", "goodbye"]  # each answered once
    assert wait_until(lambda: "took this stalled process's stream over" in holder.logs(), timeout=5)
