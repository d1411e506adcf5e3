"""Issue 4 end to end: keys in the stream modes (a keys-only <Gather> around the keep-alive), and callers who go silent."""
from __future__ import annotations

import json

import pytest

from tests.conftest import PUBLIC_URL, SPEED
from tests.test_phone_dialogue import GREETING, place, updates

FALLBACK = "Sorry, I didn't catch that. You can say hello, good, bad, book a table, or goodbye."
STILL_THERE = "Are you still there?"
GOODBYE = "I haven't heard anything, so I'll hang up now. Goodbye!"
KEYS = f'<Gather action="{PUBLIC_URL}/dtmf" finishOnKey="#" input="dtmf" method="POST" timeout="5">'


@pytest.mark.parametrize("provider", ["google", "sphinx"])
def test_keys_reach_the_chatbot_as_dtmf_while_the_stream_hears_speech(provider, twilio, chatbot, start_gateway):
    gateway = start_gateway(STT_PROVIDER=provider)
    call = place(twilio, [("dtmf", "1"), "book_table", ("dtmf", "2#"), "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    assert [(r["input"], r["message"].replace(" ", "")) for r in chatbot.requests] == [  # "good bye" is a hint too
        ("dtmf", "1"), ("speech", "bookatable"), ("dtmf", "2"), ("speech", "goodbye")]
    assert call.said() == [GREETING, FALLBACK, "For how many people?", "Your table for two is booked.",
                           "Goodbye! Thanks for calling."], call.transcript()
    # Keys came back to /dtmf, answered in the webhook's own TwiML; speech answers went out as call updates.
    gathers = [detail for _, kind, detail in call.events if kind == "gather"]
    assert gathers and all(g["action"] == f"{PUBLIC_URL}/dtmf" and g["input"] == "dtmf" for g in gathers)
    sent = updates(twilio, call)
    # The default silence clock (NO_INPUT_SECONDS=8): a 3 s pause, then the keys <Gather>'s 5 s.
    assert len(sent) == 2 and KEYS + '<Say language="en-US">For how many people?</Say><Pause length="3" /></Gather>' \
        f'<Redirect method="POST">{PUBLIC_URL}/listen</Redirect>' in sent[0]
    assert [kind for _, kind, _ in call.events].count("barge-in") == 2  # each key cut the keep-alive short
    turns = [json.loads(line.split("turn ", 1)[1]) for line in gateway.logs().splitlines() if " turn {" in line]
    assert [(t["heard_chars"], t["update"]) for t in turns][:1] == [(1, "answered")]
    assert "Traceback" not in gateway.logs()


def test_silent_caller_is_reprompted_twice_then_hung_up_on(twilio, chatbot, start_gateway):
    # Gather mode's silence (Twilio's own <Gather timeout>) is tested in process: test_dialogue_webhooks.py.
    start_gateway(NO_INPUT_SECONDS="3")
    call = place(twilio, [])
    assert call.wait_ended(timeout=30), call.transcript()
    assert call.said() == [GREETING, STILL_THERE, STILL_THERE, GOODBYE], call.transcript()
    assert [d for _, kind, d in call.events if kind == "hangup"] == ["<Hangup/>"]
    assert chatbot.requests == []
    says = [t for t, kind, _ in call.events if kind == "say"]
    greeting_ends = says[0] + 0.06 * len(GREETING) / SPEED
    assert says[1] - greeting_ends >= 3 / SPEED * 0.9  # three call seconds of silence before the first reprompt
    # The reprompts come from /listen, in the same keys-taking keep-alive.
    assert all(d["timeout"] == "3" and d["action"] == f"{PUBLIC_URL}/dtmf"
               for _, kind, d in call.events if kind == "gather")


def test_with_default_settings_a_silent_caller_is_reprompted_twice_then_hung_up_on(twilio, chatbot, start_gateway):
    start_gateway()  # NO_INPUT_SECONDS, NO_INPUT_MAX_REPROMPTS and their texts as a new deployment has them
    call = place(twilio, [])
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, STILL_THERE, STILL_THERE, GOODBYE], call.transcript()
    assert [d for _, kind, d in call.events if kind == "hangup"] == ["<Hangup/>"] and chatbot.requests == []
    says = [t for t, kind, _ in call.events if kind == "say"]
    for before, after, text in zip(says, says[1:], [GREETING, STILL_THERE, STILL_THERE]):
        # About eight call seconds of silence after each prompt ends, before the next one.
        assert 8 / SPEED * 0.9 <= after - (before + 0.06 * len(text) / SPEED) <= 8 / SPEED * 1.5, call.transcript()


@pytest.mark.parametrize("provider, answer, reply", [
    ("google", "hello", "Hi, how are you?"),
    ("google", ("dtmf", "1"), FALLBACK),
])
def test_caller_heard_after_a_reprompt_starts_the_count_again(provider, answer, reply, twilio, chatbot, start_gateway):
    start_gateway(STT_PROVIDER=provider, NO_INPUT_SECONDS="3")
    call = place(twilio, [("silence", 4), answer])
    assert call.wait_ended(timeout=60), call.transcript()
    said = call.said()
    assert said[:2] == [GREETING, STILL_THERE] and reply in said, call.transcript()
    # Two fresh reprompts after the answer, not just the one left before: the count started again.
    assert said[said.index(reply):] == [reply, STILL_THERE, STILL_THERE, GOODBYE], call.transcript()
    assert len(chatbot.requests) == 1


def test_chatbot_reprompt_replaces_the_default(twilio, chatbot, start_gateway):
    # 6 s of silence (1.5 s at the stand-in's speed) leaves "hello" time to be heard first on a busy machine.
    start_gateway(NO_INPUT_SECONDS="6", NO_INPUT_MAX_REPROMPTS="1", NO_INPUT_GOODBYE="Bye for now.")
    chatbot.body = json.dumps({"text": "Hi there.", "action": None, "reprompt": "Say hello, or press 1."})
    call = place(twilio, ["hello"])
    assert call.wait_ended(timeout=30), call.transcript()
    assert call.said() == [GREETING, "Hi there.", "Say hello, or press 1.", "Bye for now."], call.transcript()

