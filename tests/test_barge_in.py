"""Issue 4, barge-in: a caller who speaks over the bot stops it and is answered; a protected prompt plays to its end."""
from __future__ import annotations

import pytest

from tests.conftest import SPEED
from tests.test_phone_dialogue import GREETING, normalized, place

HELP = "You can say hello, good, bad, book a table, or goodbye."
HI = "Hi, how are you?"
BYE = "Goodbye! Thanks for calling."


def _event_time(call, kind: str, detail) -> float:
    """Call seconds (wall x speed) at which the stand-in recorded `kind` with `detail`."""
    return next(t for t, k, d in call.events if k == kind and d == detail) * SPEED


@pytest.mark.parametrize("provider", ["google", "sphinx", "deepgram", "assemblyai"])
def test_caller_speaking_over_the_bot_stops_it_and_is_answered(provider, twilio, chatbot, start_gateway):
    gateway = start_gateway(STT_PROVIDER=provider)
    # "hello" is one of the help text's own words, so its final (not an interim) stops the prompt, about 1.2 call
    # seconds after the caller began: begun 0.4 s into the prompt, 1.7 s of it are left; begun at 0.8 s the 1.0 s
    # margin below was 75 ms of wall time, which a loaded machine's slower recognition overran.
    call = place(twilio, ["what_can_you_do", ("barge-in", "hello", 0.4), "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, HELP, HI, BYE], call.transcript()
    assert [d for _, k, d in call.events if k == "say-interrupted"] == [HELP], call.transcript()
    assert [normalized(m).replace(" ", "") for m in chatbot.messages()] == ["whatcanyoudo", "hello", "goodbye"]
    # The bot went quiet soon after the caller began, long before the help text would have ended.
    began, stopped = _event_time(call, "caller-speaks", "hello"), _event_time(call, "say-interrupted", HELP)
    help_ends = _event_time(call, "say", HELP) + 0.06 * len(HELP)
    print(f"\n{provider}: the bot stopped {stopped - began:.2f} call seconds after the caller began speaking "
          f"({help_ends - stopped:.1f} s of the prompt left unsaid)")
    assert began < stopped < help_ends - 1.0
    assert "barge-in, the caller spoke over the bot" in gateway.logs()


LONG_GREETING = ("Hello! You are talking to Chatline. I can book you a table, tell you our opening hours, or "
                 "answer a question. How can I help?")


def test_greeting_can_be_interrupted_too(twilio, chatbot, start_gateway):
    # A greeting of 7.5 call seconds (1.9 s of wall time at the stand-in's speed), so that the caller's "hello", begun
    # 0.5 call seconds into it, is heard before its end on a loaded machine too: the default greeting is over 0.8 s of
    # wall time after it starts, less than the stand-in's recognition took under three workers' load.
    start_gateway(GREETING=LONG_GREETING)
    call = place(twilio, [("barge-in", "hello", 0.5), "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    assert [d for _, k, d in call.events if k == "say-interrupted"] == [LONG_GREETING], call.transcript()
    assert call.said() == [LONG_GREETING, HI, BYE], call.transcript()


def test_barge_in_off_lets_every_prompt_finish_and_still_answers(twilio, chatbot, start_gateway):
    gateway = start_gateway(BARGE_IN="false")
    call = place(twilio, ["what_can_you_do", ("barge-in", "hello", 0.8), "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, HELP, HI, BYE], call.transcript()
    assert not [d for _, k, d in call.events if k == "say-interrupted"], call.transcript()
    # The answer to "hello" waited for the help text to end instead of cutting it.
    assert _event_time(call, "say", HI) >= _event_time(call, "say", HELP) + 0.06 * len(HELP) * 0.95
    assert "may not be interrupted" in gateway.logs()


def test_chatbot_can_protect_one_prompt(twilio, chatbot, start_gateway):
    asked = []

    def protect_the_first_help(request, answer):
        asked.append(request["message"])
        return {**answer, "barge_in": False} if asked.count("what can you do") == 1 else answer

    chatbot.amend = protect_the_first_help
    start_gateway()
    call = place(twilio, ["what_can_you_do", ("barge-in", "what_can_you_do", 0.8), ("barge-in", "goodbye", 0.8)])
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, HELP, HELP, BYE], call.transcript()
    # The protected help text played out; the same text again, an ordinary prompt this time, was cut by "goodbye".
    interrupted = [(t, d) for t, k, d in call.events if k == "say-interrupted"]
    second_help = [t for t, k, d in call.events if k == "say" and d == HELP][1]
    assert [d for _, d in interrupted] == [HELP] and interrupted[0][0] > second_help, call.transcript()

