"""A bot written for Twilio ConversationRelay holds real calls through the gateway (CHATBOT_PROTOCOL=conversationrelay):
the real gunicorn, the Twilio stand-in's calls, and the ConversationRelay stand-in bot checking every frame."""
from __future__ import annotations

import os
import signal

import pytest

from standins.conversationrelay_bot import (ConversationRelayBot, close, end, language, pause, play, raw, say,
                                            send_digits, tokens)
from standins.relay_handoff import HandoffEndpoint
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
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


def test_a_greeting_after_setup_is_said_first(twilio, bot, start_gateway):
    bot.greeting(say("Welcome to Bistro Bot. What can I get you?"))
    relay_gateway(start_gateway, bot, GREETING="")  # GREETING is ConversationRelay's welcomeGreeting: none here
    # The caller answers once the greeting is over: words said between its sentences would be answered at once,
    # and that answer would cut the sentence still to come.
    call = place(twilio, [("silence", 3), "hello"])
    assert call.wait_for_say("You said hello.", timeout=20), call.transcript()
    assert call.said() == ["Welcome to Bistro Bot.", "What can I get you?", "You said hello."], call.transcript()
    call.hang_up()


def test_play_and_send_digits_run_in_order_with_the_text(twilio, bot, start_gateway):
    bot.on("hello", say("Here is our jingle."), play("https://bot.example/jingle.mp3", 2), send_digits("1w2"),
           say("Pick a dish."))
    relay_gateway(start_gateway, bot)
    call = place(twilio, ["hello"])
    assert call.wait_for_say("Pick a dish.", timeout=20), call.transcript()
    heard = [(k, d) for _, k, d in call.events if k in ("say", "play")]
    assert heard == [("say", GREETING), ("say", "Here is our jingle."), ("play", "https://bot.example/jingle.mp3"),
                     ("play", "1w2"), ("say", "Pick a dish.")], call.transcript()
    documents = "".join(updates(twilio, call))
    assert '<Play loop="2">https://bot.example/jingle.mp3</Play><Play digits="1w2" />' in documents
    call.hang_up()


def test_a_language_message_switches_the_voice_and_the_recognizer(twilio, speech, bot, start_gateway):
    # Each kind apart, as ConversationRelay takes them (the Speech stand-in hears English only).
    bot.on("hello", language("es-ES", "en-GB"), say("Hola, bienvenido."))
    bot.on("goodbye", say("Adiós."), end())
    relay_gateway(start_gateway, bot)
    call = place(twilio, ["hello", "goodbye"])
    assert call.wait_ended(timeout=30), call.transcript()  # `end` with no handoff URL: the call hangs up
    assert call.said() == [GREETING, "Hola, bienvenido.", "Adiós."], call.transcript()
    documents = updates(twilio, call)
    assert '<Say language="es-ES">Hola, bienvenido.</Say>' in documents[0]
    assert '<Say language="es-ES">Adiós.</Say>' in documents[1] and "<Hangup />" in documents[-1]
    assert not [d for _, k, d in call.events if k == "say-interrupted"], call.transcript()  # hung up after it
    languages = [record.language_code for record in speech.streams]
    assert languages[0] == "en-US" and languages[-1] == "en-GB", languages  # recognition restarted in en-GB
    prompts = bot.connections[0].of_type("prompt")
    assert [(p["voicePrompt"], p["lang"]) for p in prompts] == [("hello", "en-US"), ("goodbye", "en-GB")]


def test_end_hands_the_call_to_the_handoff_urls_twiml_after_the_last_words(twilio, bot, start_gateway):
    from twilio.request_validator import RequestValidator

    data = '{"reasonCode":"live-agent-handoff"}'
    bot.on("hello", tokens("Let me transfer you. One", " moment.", last=False), end(data), say("Never said."))
    with HandoffEndpoint("<Response><Dial>+15550001111</Dial></Response>") as endpoint:
        relay_gateway(start_gateway, bot, CHATBOT_HANDOFF_URL=endpoint.url)
        call = place(twilio, ["hello"])
        assert call.wait_ended(timeout=30), call.transcript()
        (form, headers), = endpoint.requests
    assert call.said() == [GREETING, "Let me transfer you.", "One moment."], call.transcript()
    assert [d for _, k, d in call.events if k == "dial"] == ["+15550001111"], call.transcript()  # the <Dial> ran
    assert not [d for _, k, d in call.events if k == "say-interrupted"], call.transcript()
    assert (form["CallSid"], form["From"], form["HandoffData"]) == (call.sid, call.from_, data)
    assert RequestValidator(AUTH_TOKEN).validate(endpoint.url, form, headers["X-Twilio-Signature"])
    assert bot.wait_for(lambda: bot.connections[0].closed_at is not None, 10.0)  # closed within 10 s of `end`


def test_keys_reach_the_bot_as_dtmf_one_message_each(twilio, bot, start_gateway):
    bot.on("dtmf:2", say("You entered forty two."))
    relay_gateway(start_gateway, bot)
    call = place(twilio, [("dtmf", "42#")])
    assert call.wait_for_say("You entered forty two.", timeout=20), call.transcript()
    (connection,) = bot.connections
    assert connection.of_type("dtmf") == [{"type": "dtmf", "digit": "4"}, {"type": "dtmf", "digit": "2"}]
    assert connection.of_type("prompt") == []  # a key is never a prompt
    call.hang_up()


LONG = ("I can book a table for you, tell you our opening hours, read you the menu of the day, and answer any "
        "question you have about the restaurant. ")


def test_a_barge_in_interrupts_the_bot_before_the_interrupting_words_prompt(twilio, bot, start_gateway):
    bot.on("what can you do", tokens(LONG, "This second sentence is never heard. ", last=True))
    gateway = relay_gateway(start_gateway, bot)
    call = place(twilio, ["what_can_you_do", ("barge-in", "hello", 1.0)])
    assert call.wait_for_say("You said hello.", timeout=30), call.transcript()
    assert [d for _, k, d in call.events if k == "say-interrupted"] == [LONG.strip()], call.transcript()
    assert "This second sentence is never heard." not in call.said(), call.transcript()
    kinds = [m["type"] for m in bot.connections[0].received]
    assert kinds == ["setup", "prompt", "interrupt", "prompt"], kinds  # the interrupt before the words' prompt
    interrupt = bot.connections[0].of_type("interrupt")[0]
    assert LONG.startswith(interrupt["utteranceUntilInterrupt"]) and interrupt["utteranceUntilInterrupt"] != LONG
    assert interrupt["durationUntilInterruptMs"] > 0
    assert "barge-in, the caller spoke over the bot" in gateway.logs()
    call.hang_up()


APOLOGY = "Sorry, I'm having trouble right now. Please try again in a moment."


def test_a_bot_that_refuses_the_handshake_leaves_the_caller_an_apology_not_silence(twilio, start_gateway):
    with ConversationRelayBot(AUTH_TOKEN, refuse=403) as bot:
        gateway = relay_gateway(start_gateway, bot)
        call = place(twilio, ["hello", "goodbye"])
        assert wait_until(lambda: call.said().count(APOLOGY) == 2, timeout=30), call.transcript()
        assert bot.violations == []  # refused for its own reason, not for a bad signature
    assert call.said() == [GREETING, APOLOGY, APOLOGY], call.transcript()
    assert call.status != "completed"  # the call goes on
    assert "refused the websocket handshake: HTTP 403" in gateway.logs()
    assert "Traceback" not in gateway.logs()
    call.hang_up()


def test_a_bot_that_closes_mid_call_is_reopened_once_with_a_new_setup(twilio, bot, start_gateway):
    bot.on("hello", pause(0.1), close(1011))
    bot.on("hello", say("Sorry, I dropped you. Hello again."))
    gateway = relay_gateway(start_gateway, bot)
    call = place(twilio, ["hello"])
    assert call.wait_for_say("Hello again.", timeout=20), call.transcript()
    assert call.said() == [GREETING, "Sorry, I dropped you.", "Hello again."], call.transcript()
    first, second = bot.connections
    assert second.setup["sessionId"] == first.setup["sessionId"] and second.setup["callSid"] == call.sid
    assert [m["voicePrompt"] for m in second.of_type("prompt")] == ["hello"]  # the waiting prompt, sent again
    assert "closed its websocket mid-call (code 1011); reopening it" in gateway.logs()
    call.hang_up()


def test_malformed_frames_and_unknown_types_never_end_the_session(twilio, bot, start_gateway):
    bot.on("hello", raw("{not json"), raw('{"type": "dance"}'), say("Still here."))
    gateway = relay_gateway(start_gateway, bot)
    call = place(twilio, ["hello"])
    assert call.wait_for_say("Still here.", timeout=20), call.transcript()
    assert call.said() == [GREETING, "Still here."], call.transcript()
    assert len(bot.connections) == 1 and len(bot.connections[0].of_type("error")) == 2  # told, never dropped
    assert gateway.logs().count("the bot sent an invalid frame, ignored") == 2
    call.hang_up()


def test_a_bot_silent_past_the_timeout_gives_an_apology_and_the_call_goes_on(twilio, bot, start_gateway):
    bot.on("hello", pause(2.0))  # says nothing: past CHATBOT_TIMEOUT
    gateway = relay_gateway(start_gateway, bot, CHATBOT_TIMEOUT="1")
    call = place(twilio, ["hello", "goodbye"])
    assert call.wait_for_say("You said goodbye.", timeout=30), call.transcript()
    assert call.said() == [GREETING, APOLOGY, "You said goodbye."], call.transcript()
    assert "no answer within 1 s" in gateway.logs()
    call.hang_up()


@pytest.mark.xdist_group("scale-out")  # two gateways and a kill: with the other scale-out tests, one at a time
def test_after_kill_9_the_process_taking_the_call_over_opens_a_new_connection_for_the_session(
        twilio, bot, start_gateway, redis_server):
    from tests.test_scale_out import stream_holder, turn_lines

    bot.on("goodbye", say("Bye now."), end())
    settings = {"REDIS_URL": redis_server.url, "NO_INPUT_SECONDS": "0", "CHATBOT_PROTOCOL": "conversationrelay",
                "CHATBOT_URL": bot.url}
    gateways = [start_gateway(**settings) for _ in range(2)]
    twilio.tunnel[PUBLIC_URL] = [gateway.url for gateway in gateways]
    call = place(twilio, ["hello", ("silence", 40), "goodbye"])
    assert call.wait_for_say("You said hello.", timeout=30), call.transcript()
    assert wait_until(lambda: len(turn_lines(gateways)) == 1, timeout=10), [g.logs()[-2000:] for g in gateways]
    holder, survivor = stream_holder(gateways, redis_server, call)
    twilio.tunnel[PUBLIC_URL] = [survivor.url]  # the router stops sending requests to a dead process
    os.killpg(holder.process.pid, signal.SIGKILL)
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, "You said hello.", "Bye now."], call.transcript()
    first, second = bot.connections
    assert second.setup["sessionId"] == first.setup["sessionId"] and second.setup["callSid"] == call.sid
    assert [m["voicePrompt"] for m in first.of_type("prompt")] == ["hello"]
    assert [m["voicePrompt"] for m in second.of_type("prompt")] == ["goodbye"]
    assert "Traceback" not in survivor.logs()


@pytest.mark.xdist_group("scale-out")
def test_keys_pressed_on_the_other_process_reach_the_bot_on_the_calls_one_connection(
        twilio, bot, start_gateway, redis_server):
    from tests.test_scale_out import stream_holder

    bot.on("dtmf:2", say("You entered forty two."))
    bot.on("goodbye", say("Bye now."), end())
    settings = {"REDIS_URL": redis_server.url, "NO_INPUT_SECONDS": "0", "CHATBOT_PROTOCOL": "conversationrelay",
                "CHATBOT_URL": bot.url}
    gateways = [start_gateway(**settings) for _ in range(2)]
    twilio.tunnel[PUBLIC_URL] = [gateway.url for gateway in gateways]
    call = place(twilio, ["hello", ("silence", 8), ("dtmf", "42#"), "goodbye"])
    assert call.wait_for_say("You said hello.", timeout=30), call.transcript()
    holder, other = stream_holder(gateways, redis_server, call)
    twilio.tunnel[PUBLIC_URL] = [other.url]  # the keys' webhook lands on the process without the stream
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, "You said hello.", "You entered forty two.", "Bye now."], call.transcript()
    (connection,) = bot.connections  # one connection for the call, whichever process took the keys
    assert connection.of_type("dtmf") == [{"type": "dtmf", "digit": "4"}, {"type": "dtmf", "digit": "2"}]
    assert "keys sent to the process holding the call's stream" in other.logs()


def test_the_bots_own_idle_reprompt_is_said_to_a_silent_caller(twilio, bot, start_gateway):
    bot.greeting(say("Welcome."), pause(0.8), say("Are you still there?"))
    relay_gateway(start_gateway, bot, GREETING="", NO_INPUT_SECONDS="0")  # the bot reprompts, not the gateway
    call = place(twilio, [])
    assert call.wait_for_say("Are you still there?", timeout=20), call.transcript()
    assert call.said() == ["Welcome.", "Are you still there?"], call.transcript()
    call.hang_up()
