"""The ConversationRelay client against a bot written for ConversationRelay (the stand-in checks Twilio's shapes)."""
import logging
import threading
import time

import pytest
from twilio.request_validator import RequestValidator

from gateway.chatbots import relay_protocol as rp
from gateway.chatbots.conversationrelay import ConversationRelayChatbot, session_id_for
from gateway.chatbots.reply import ChatbotError
from standins.conversationrelay_bot import (ConversationRelayBot, close, end, language, pause, play, raw, say,
                                            send_digits, tokens)
from standins.relay_handoff import HandoffEndpoint

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


@pytest.fixture
def bot():
    with ConversationRelayBot(AUTH_TOKEN) as standin:
        yield standin
    assert standin.violations == []  # nothing the gateway sent broke Twilio's documented shapes


@pytest.fixture
def pushes():
    return Pushes()


def relay(bot, pushes, **options) -> ConversationRelayChatbot:
    options = {"timeout": 2.0, "quiet_seconds": 0.3, **options}
    return ConversationRelayChatbot(bot.url, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, on_unprompted=pushes,
                                    **options)


def test_setup_is_sent_once_at_the_calls_start_signed_as_twilio_signs(bot, pushes):
    client = relay(bot, pushes, parameters={"tier": "gold", "n": 2}, api_key="bot-key-1")
    bot.api_key = "bot-key-1"
    client.open("CA100", caller=CALLER, called=CALLED, forwarded_from="+15550000000")
    assert bot.wait_for(lambda: bot.connections and bot.connections[0].setup)
    connection = bot.connections[0]
    setup = connection.setup
    assert setup["sessionId"] == session_id_for("CA100") and setup["sessionId"].startswith("VX")
    assert (setup["callSid"], setup["accountSid"], setup["from"], setup["to"], setup["direction"]) == (
        "CA100", ACCOUNT_SID, CALLER, CALLED, "inbound")
    assert setup["forwardedFrom"] == "+15550000000" and setup["customParameters"] == {"tier": "gold", "n": 2}
    assert RequestValidator(AUTH_TOKEN).validate(bot.url, {}, connection.signature)
    assert connection.authorization == "Bearer bot-key-1"
    assert client.ask("hello there", "CA100").text == "You said hello there."
    assert [m["type"] for m in connection.received] == ["setup", "prompt"] and len(bot.connections) == 1
    assert connection.of_type("prompt")[0] == {"type": "prompt", "voicePrompt": "hello there", "lang": "en-US",
                                               "last": True}
    client.close()


def test_without_parameters_custom_parameters_is_an_empty_object(bot, pushes):
    client = relay(bot, pushes)
    client.ask("hi", "CA101", caller=CALLER)  # a call opened on its first prompt (a process that took it over)
    assert bot.connections[0].setup["customParameters"] == {} and bot.connections[0].setup["from"] == CALLER
    client.close()


def test_streamed_sentences_are_said_as_they_complete_without_waiting_for_last(bot, pushes):
    bot.on("book a table", tokens("Sure", ". For how", " many people? I can", " also", "", " book for tonight",
                                  last=False, gap=0.15))
    client = relay(bot, pushes)
    started = time.monotonic()
    first = client.ask("book a table", "CA102")
    assert first.text == "Sure." and first.parts == (rp.Say("Sure."),)
    assert time.monotonic() - started < 0.6  # before the bot was done streaming
    later = pushes.wait(2)
    assert [r.text for r in later] == ["For how many people?", "I can also book for tonight"]  # the rest once quiet
    client.close()


def test_a_greeting_after_setup_and_an_idle_reprompt_are_pushed(bot, pushes):
    bot.greeting(say("Welcome to Bistro Bot."), pause(0.3), say("Are you still there?"))
    client = relay(bot, pushes)
    client.open("CA103", caller=CALLER, called=CALLED)
    assert [r.text for r in pushes.wait(2)] == ["Welcome to Bistro Bot.", "Are you still there?"]
    assert {call_sid for call_sid, _ in pushes.replies} == {"CA103"}
    client.close()


def test_keys_go_one_dtmf_message_each_and_never_as_a_prompt(bot, pushes):
    bot.on("dtmf:#", say("You entered your code."))
    client = relay(bot, pushes, timeout=1.0)
    assert client.ask("42#", "CA104", "dtmf").text == "You entered your code."
    assert bot.connections[0].of_type("dtmf") == [{"type": "dtmf", "digit": d} for d in "42#"]
    assert bot.connections[0].of_type("prompt") == []
    assert client.ask("7", "CA104", "dtmf").parts == ()  # a bot may take a key silently: no apology for that
    client.close()


def test_a_barge_in_sends_interrupt_with_what_the_caller_heard(bot, pushes):
    client = relay(bot, pushes, chars_per_second=10.0)
    client.ask("hello", "CA105")
    client.interrupted("CA105", "You said hello.", "You said", duration_ms=812)
    client.interrupted("CA105", "You said hello.", "You said")  # no measured time: reckoned from the voice's speed
    assert bot.wait_for(lambda: len(bot.connections[0].of_type("interrupt")) == 2)
    assert bot.connections[0].of_type("interrupt") == [
        {"type": "interrupt", "utteranceUntilInterrupt": "You said", "durationUntilInterruptMs": 812},
        {"type": "interrupt", "utteranceUntilInterrupt": "You said", "durationUntilInterruptMs": 800}]
    client.close()


def test_play_tones_and_text_come_in_the_bots_order(bot, pushes):
    bot.on("menu", tokens("Here is our jingle. "), play("https://bot.example/jingle.mp3", 2), send_digits("1w2"),
           say("Pick a dish."))
    client = relay(bot, pushes)
    first = client.ask("menu", "CA106")
    rest = pushes.wait(3)
    parts = [*first.parts, *(p for r in rest for p in r.parts)]
    assert parts == [rp.Say("Here is our jingle."), rp.Play("https://bot.example/jingle.mp3", 2),
                     rp.SendDigits("1w2"), rp.Say("Pick a dish.")]
    client.close()


def test_a_language_switch_changes_the_voice_and_the_prompts_lang(bot, pushes):
    bot.on("spanish please", language("es-ES", "es-ES"), say("Hola, ¿en qué puedo ayudarle?"))
    client = relay(bot, pushes)
    switched = client.ask("spanish please", "CA107")
    assert (switched.tts_language, switched.transcription_language, switched.language) == ("es-ES",) * 3
    assert switched.text == "Hola, ¿en qué puedo ayudarle?"
    client.ask("una mesa", "CA107")
    assert bot.connections[0].of_type("prompt")[-1]["lang"] == "es-ES"
    client.close()


def test_end_says_the_pending_text_then_posts_the_handoff_signed_as_twilio_does(bot, pushes):
    data = '{"reasonCode":"live-agent-handoff","reason":"The caller asked for a person"}'
    bot.on("a person please", tokens("Let me transfer you. One", " moment", last=False), end(data),
           say("Never said."))
    with HandoffEndpoint("<Response><Dial>+15550001111</Dial></Response>") as endpoint:
        client = relay(bot, pushes, handoff_url=endpoint.url)
        client.open("CA108", caller=CALLER, called=CALLED)
        assert client.ask("a person please", "CA108").text == "Let me transfer you."
        (ended,) = pushes.wait(1)
        assert ended.text == "One moment" and ended.ended and ended.action_type is None
        assert ended.handoff_twiml == "<Response><Dial>+15550001111</Dial></Response>"
        (form, headers), = endpoint.requests
    assert {k: form[k] for k in ("AccountSid", "CallSid", "From", "To", "CallStatus", "HandoffData")} == {
        "AccountSid": ACCOUNT_SID, "CallSid": "CA108", "From": CALLER, "To": CALLED, "CallStatus": "in-progress",
        "HandoffData": data}
    assert RequestValidator(AUTH_TOKEN).validate(endpoint.url, form, headers["X-Twilio-Signature"])
    assert bot.wait_for(lambda: bot.connections[0].closed_at is not None, 10.0)  # closed within 10 s of `end`
    time.sleep(0.3)
    assert len(pushes.replies) == 1  # nothing after `end` is said
    client.close()


def test_end_without_a_handoff_url_hangs_up_after_the_last_words(bot, pushes):
    bot.on("goodbye", say("Goodbye!"), end())
    client = relay(bot, pushes)
    first = client.ask("goodbye", "CA109")
    replies = [first, *pushes.wait(1)]
    assert replies[0].text == "Goodbye!" and replies[-1].ended and replies[-1].action_type == "hangup"
    with pytest.raises(ChatbotError):
        client.ask("are you there", "CA109")
    client.close()


def test_a_refused_handshake_is_a_chatbot_error_with_one_clear_line(pushes, caplog):
    with ConversationRelayBot(AUTH_TOKEN, refuse=403) as refusing:
        client = relay(refusing, pushes)
        with caplog.at_level(logging.WARNING, "gateway.chatbots"), pytest.raises(ChatbotError, match="HTTP 403"):
            client.ask("hello", "CA110")
        client.close()
    lines = [r for r in caplog.records if r.name.startswith("gateway.chatbots")]
    assert len(lines) == 1 and "CA110" in lines[0].getMessage() and "403" in lines[0].getMessage()


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
    assert "CHATBOT_URL must be the bot's websocket" in message and "CHATBOT_PARAMETERS must be a JSON object" in message
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


def test_the_interrupt_reaches_the_bot_before_the_prompt_of_the_interrupting_words(bot, pushes):
    client = relay(bot, pushes)
    said = client.ask("hello", "CA119").text
    for attempt in range(5):
        client.interrupted("CA119", said, "You")
        client.ask(f"wait {attempt}", "CA119")
    kinds = [m["type"] for m in bot.connections[0].received if m["type"] in ("interrupt", "prompt")]
    assert kinds == ["prompt"] + ["interrupt", "prompt"] * 5
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


def test_a_tokens_language_and_protection_hold_for_its_sentence_only(bot, pushes):
    bot.on("terms", tokens("Las condiciones", " se aplican. ", lang="es-ES", interruptible=False),
           say("Anything else?"))
    client = relay(bot, pushes)
    protected = client.ask("terms", "CA120")
    assert protected.parts == (rp.Say("Las condiciones se aplican.", "es-ES", False),)
    assert protected.barge_in is False
    (after,) = pushes.wait(1)
    assert after.parts == (rp.Say("Anything else?"),) and after.barge_in is True
    client.close()
