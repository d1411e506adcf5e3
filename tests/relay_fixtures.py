"""What the ConversationRelay client tests share: the stand-in bot, the pushes the client makes, a client for it."""
import threading
import time

import pytest

from gateway.chatbots import relay_protocol as rp
from gateway.chatbots.conversationrelay import ConversationRelayChatbot
from standins.conversationrelay_bot import ConversationRelayBot

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "c0ffee" * 5 + "00"
CALLER, CALLED = "+15551230001", "+15550009999"


class Pushes:
    """What the client pushed (said with no prompt pending), for tests to wait on."""

    def __init__(self):
        self.replies: list[tuple[str, rp.RelayReply]] = []
        self._lock = threading.Lock()

    def __call__(self, call_sid, reply):
        with self._lock:
            self.replies.append((call_sid, reply))

    def wait(self, count: int, timeout: float = 5.0) -> list[rp.RelayReply]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.replies) < count:
            time.sleep(0.02)
        return [reply for _, reply in self.replies]


def checked_bot():
    """The stand-in bot for a test (a fixture's body): afterwards, nothing the gateway sent broke Twilio's shapes."""
    with ConversationRelayBot(AUTH_TOKEN) as standin:
        yield standin
    assert standin.violations == []


@pytest.fixture
def bot():
    """The checked stand-in bot (import this fixture into a test module to use it)."""
    yield from checked_bot()


@pytest.fixture
def pushes():
    """What the client pushes, recorded."""
    return Pushes()


def relay(bot, pushes, **options) -> ConversationRelayChatbot:
    options = {"timeout": 2.0, "quiet_seconds": 0.3, **options}
    return ConversationRelayChatbot(bot.url, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, on_unprompted=pushes,
                                    **options)
