"""The ConversationRelay client's faults and settings: refusals, bad frames, silence, closed sockets, one reopen."""
import logging
import threading
import time

import pytest

from gateway.chatbots.conversationrelay import session_id_for
from gateway.chatbots.reply import ChatbotError
from standins.conversationrelay_bot import ConversationRelayBot, close, pause, raw, say
from tests.relay_fixtures import ACCOUNT_SID, AUTH_TOKEN, CALLER, bot, pushes, relay  # noqa: F401 (fixtures)


def test_a_refused_handshake_is_a_chatbot_error_naming_the_status(pushes, caplog):
    with ConversationRelayBot(AUTH_TOKEN, refuse=403) as refusing:
        client = relay(refusing, pushes)
        with caplog.at_level(logging.WARNING, "gateway.chatbots"), pytest.raises(ChatbotError) as refused:
            client.ask("hello", "CA110")
        client.close()
    assert str(refused.value) == "refused the websocket handshake: HTTP 403"
    # The turn that asked writes the one log line, with the apology the caller hears (turn.ask).
    assert not [r for r in caplog.records if r.name.startswith("gateway.chatbots")]


def test_a_wrong_auth_token_is_refused_by_a_bot_that_validates(pushes):
    with ConversationRelayBot("another-token") as strict:
        client = relay(strict, pushes)
        with pytest.raises(ChatbotError, match="HTTP 403"):
            client.ask("hello", "CA111")
        client.close()
        assert strict.violations and "X-Twilio-Signature" in strict.violations[0]


def test_malformed_frames_and_unknown_types_never_end_the_session(bot, pushes, caplog):
    bot.on("hello", raw("{this is not json"), raw('{"type":"dance"}'), say("Still here."))
    client = relay(bot, pushes)
    with caplog.at_level(logging.WARNING, "gateway.chatbots"):
        assert client.ask("hello", "CA112").text == "Still here."
    assert len([r for r in caplog.records if "invalid frame" in r.getMessage()]) == 2
    assert bot.wait_for(lambda: len(bot.connections[0].of_type("error")) == 2)  # answered as Twilio answers them
    assert [m["description"][:24] for m in bot.connections[0].of_type("error")] == ["Invalid message received"] * 2
    assert len(bot.connections) == 1
    client.close()


def test_a_silent_bot_is_a_chatbot_error_past_the_timeout(bot, pushes):
    bot.on("anyone there", pause(0))
    client = relay(bot, pushes, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ChatbotError, match="no answer within 0.5 s"):
        client.ask("anyone there", "CA113")
    assert time.monotonic() - started < 1.5
    assert client.ask("hello", "CA113").text == "You said hello."  # the session goes on
    client.close()


def test_a_socket_closed_mid_call_is_reopened_once_with_a_new_setup_for_the_same_session(bot, pushes):
    bot.on("book", close(1011))  # the first time; then:
    bot.on("book", say("Booked."))
    client = relay(bot, pushes)
    assert client.ask("book", "CA114", caller=CALLER).text == "Booked."  # the prompt went again on the new socket
    first, second = bot.connections
    assert first.setup["sessionId"] == second.setup["sessionId"] == session_id_for("CA114")
    assert [m["type"] for m in second.received] == ["setup", "prompt"]
    client.close()


def test_a_socket_closed_again_gives_up_until_the_next_prompt(bot, pushes):
    for answer in (close(1011), close(1011), say("Booked.")):  # in turn
        bot.on("book", answer)
    client = relay(bot, pushes)
    with pytest.raises(ChatbotError):
        client.ask("book", "CA115")
    assert client.ask("book", "CA115").text == "Booked."  # the next prompt opens a new socket
    assert len(bot.connections) == 3
    client.close()


def test_the_socket_closes_when_the_call_ends(bot, pushes):
    client = relay(bot, pushes)
    client.ask("hello", "CA116")
    client.end_call("CA116")
    assert bot.wait_for(lambda: bot.connections[0].closed_at is not None, 10.0)
    client.close()


def test_the_settings_name_every_problem_at_once():
    from gateway.config import Config, ConfigError
    account = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    config = Config.from_env({**account, "CHATBOT_PROTOCOL": "conversationrelay", "CHATBOT_URL": "wss://bot.example/ws",
                              "CHATBOT_PARAMETERS": '{"tier": "gold"}',
                              "CHATBOT_HANDOFF_URL": "https://bot.example/handoff"})
    assert (config.chatbot_parameters, config.chatbot_handoff_url) == ({"tier": "gold"}, "https://bot.example/handoff")
    assert Config.from_env({**account, "CHATBOT_PROTOCOL": "conversationrelay",
                            "CHATBOT_URL": "ws://localhost:8080/ws"}).chatbot_parameters == {}
    with pytest.raises(ConfigError) as refused:
        Config.from_env({**account, "CHATBOT_PROTOCOL": "conversationrelay", "CHATBOT_URL": "https://bot.example/ws",
                         "CHATBOT_PARAMETERS": '["not", "an object"]', "CHATBOT_HANDOFF_URL": "bot.example"})
    message = str(refused.value)
    assert "CHATBOT_URL must be a wss:// URL" in message and "CHATBOT_PARAMETERS must be a JSON object" in message
    assert "CHATBOT_HANDOFF_URL must start with https://" in message


def test_make_chatbot_builds_the_relay_client_from_the_settings(bot, pushes):
    from gateway.calls.store import CallStore
    from gateway.chatbots import make_chatbot
    from gateway.config import Config
    config = Config.from_env({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                              "CHATBOT_PROTOCOL": "conversationrelay", "CHATBOT_URL": bot.url,
                              "CHATBOT_PARAMETERS": '{"tier": "gold"}', "LANGUAGE": "fr-FR"})
    client = make_chatbot(config, CallStore())
    client.on_unprompted = pushes
    assert client.ask("bonjour", "CA117").text == "You said bonjour."
    assert bot.connections[0].setup["customParameters"] == {"tier": "gold"}
    assert bot.connections[0].of_type("prompt")[0]["lang"] == "fr-FR"
    client.close()


def test_a_socket_left_open_past_the_longest_call_is_closed(bot, pushes):
    client = relay(bot, pushes, max_session_seconds=0.5)
    client.open("CA118", caller=CALLER)
    assert bot.wait_for(lambda: bot.connections and bot.connections[0].closed_at is not None, 5.0)
    client.close()


def test_the_stand_in_catches_what_twilio_would_never_send():
    from websockets.sync.client import connect

    from gateway.chatbots.relay_handoff import twilio_signature
    with ConversationRelayBot(AUTH_TOKEN) as strict:
        with connect(strict.url, additional_headers={"X-Twilio-Signature": twilio_signature(AUTH_TOKEN, strict.url)}) \
                as ws:
            ws.send('{"type": "prompt", "voicePrompt": "hi", "lang": "en-US", "last": false}')
            ws.send('{"type": "setup", "sessionId": "", "callSid": "CA1", "accountSid": "AC1", "from": "", '
                    '"to": "", "direction": "inbound", "customParameters": "tier=gold", "extra": 1}')
            ws.send('{"type": "dtmf", "digit": "12"}')
            ws.send('{"type": "interrupt", "utteranceUntilInterrupt": "Hi", "durationUntilInterruptMs": "460"}')
            assert strict.wait_for(lambda: len(strict.violations) >= 8)
    found = " | ".join(strict.violations)
    for breach in ("first message is 'prompt'", "a partial prompt", "second setup", "empty sessionId",
                   "customParameters", "'extra'", "not one key", "durationUntilInterruptMs"):
        assert breach in found, breach


def test_a_prompt_overtaken_by_a_newer_one_is_a_chatbot_error_not_a_crash(bot, pushes):
    bot.on("slow", pause(0.6), say("Slow answer."))
    client = relay(bot, pushes)
    client.ask("hello", "CA121")
    outcome = []

    def older():
        try:
            outcome.append(client.ask("slow", "CA121").text)
        except ChatbotError as exc:
            outcome.append(f"error: {exc}")

    thread = threading.Thread(target=older)
    thread.start()
    time.sleep(0.2)
    assert client.ask("newer", "CA121").text == "Slow answer."  # the bot's next words answer the newer prompt
    thread.join(5)
    assert outcome == ["error: a newer prompt took its place"]
    client.close()
