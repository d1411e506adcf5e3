"""A bot written for Twilio ConversationRelay holds real calls through the gateway (CHATBOT_PROTOCOL=conversationrelay):
the real gunicorn, the Twilio stand-in's calls, and the ConversationRelay stand-in bot checking every frame."""
from __future__ import annotations

import pytest

from standins.conversationrelay_bot import ConversationRelayBot, end, language, play, say, send_digits, tokens
from standins.relay_handoff import HandoffEndpoint
from tests.conftest import AUTH_TOKEN
from tests.test_phone_dialogue import GREETING, place, updates, wait_until

HI = "Hi there."


@pytest.fixture
def bot():
    """The stand-in bot; afterwards, nothing the gateway sent it broke Twilio's documented shapes."""
    with ConversationRelayBot(AUTH_TOKEN) as standin:
        yield standin
    assert standin.violations == []


def relay_gateway(start_gateway, bot, **overrides: str):
    return start_gateway(CHATBOT_PROTOCOL="conversationrelay", CHATBOT_URL=bot.url, **overrides)


def test_a_streamed_answer_is_said_sentence_by_sentence(twilio, bot, start_gateway):
    bot.on("hello", tokens("Hi ", "there. I am ", "a relay bot", ". What shall", " we do?", gap=0.05, last=False))
    gateway = relay_gateway(start_gateway, bot)
    call = place(twilio, ["hello"])
    assert call.wait_for_say("What shall we do?".__eq__, timeout=20), call.transcript()
    assert call.said() == [GREETING, HI, "I am a relay bot.", "What shall we do?"], call.transcript()
    assert not [d for _, k, d in call.events if k == "say-interrupted"], call.transcript()  # none cut the one before
    (connection,) = bot.connections
    assert connection.setup["callSid"] == call.sid and connection.setup["customParameters"] == {}
    assert [m["voicePrompt"] for m in connection.of_type("prompt")] == ["hello"]
    call.hang_up()
    assert bot.wait_for(lambda: connection.closed_at is not None, 10.0)  # the socket closes with the call
    assert "Traceback" not in gateway.logs()
