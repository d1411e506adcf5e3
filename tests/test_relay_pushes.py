"""What a ConversationRelay bot says unprompted waits behind what the caller hears and is dropped when the caller cut
it short; the bot's websockets close at shutdown."""
from __future__ import annotations

import pytest

from gateway import create_app
from gateway.calls.store import CallState
from gateway.config import Config
from gateway.dialogue.relay_pushes import _behind, _cut_short
from gateway.ops.shutdown import close_services
from standins.conversationrelay_bot import ConversationRelayBot
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN


def state(prompt: int, cut: bool) -> CallState:
    return CallState("CA1", prompt=prompt, prompt_cut=cut)


@pytest.mark.parametrize("arrived, late, locked, now, cut, dropped", [
    (3, False, False, 3, False, False),  # waits behind prompt 3, which plays on
    (3, False, False, 3, True, True),  # the caller cut prompt 3: the rest of that answer goes
    (2, False, False, 3, True, True),  # came in before the first sentence it follows, which the caller cut
    (3, True, False, 3, True, False),  # came in after the cut, while the interrupting words' turn may run: wait
    (3, True, True, 3, True, True),  # ...under the turn lock with prompt 3 still the last: the cut answer's rest
    (3, True, True, 4, False, False),  # ...a new answer went out since: this is its rest
])
def test_what_waited_behind_a_cut_prompt_is_dropped(arrived, late, locked, now, cut, dropped):
    assert _cut_short(state(now, cut), arrived, late, locked) is dropped


def test_a_push_waits_behind_the_answer_whose_rest_it_is():
    assert _behind(state(4, False), 3, True) == (4, False)  # the first sentence went out after it came in
    assert _behind(state(4, True), 3, False) == (3, False)  # cut: left for _cut_short
    assert _behind(state(3, False), 3, False) == (3, False)


def test_shutdown_closes_every_calls_websocket_to_the_bot(tmp_path):
    with ConversationRelayBot(AUTH_TOKEN) as bot:
        config = Config(twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN, stt_provider="twilio",
                        chatbot_protocol="conversationrelay", chatbot_url=bot.url,
                        database_url=f"sqlite:///{tmp_path}/history.db")
        services = create_app(config, start_background=False).extensions["chatline"]
        services.chatbot.open("CA1", caller="+15551230001", called="+15550009999")
        assert bot.wait_for(lambda: bot.connections and bot.connections[0].setup is not None)
        close_services(services)
        assert bot.wait_for(lambda: bot.connections[0].closed_at is not None, 5.0)
    assert bot.violations == []
