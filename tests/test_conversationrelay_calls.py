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


def test_a_greeting_after_setup_is_said_first(twilio, bot, start_gateway):
    bot.greeting(say("Welcome to Bistro Bot. What can I get you?"))
    relay_gateway(start_gateway, bot, GREETING="")  # GREETING is ConversationRelay's welcomeGreeting: none here
    call = place(twilio, ["hello"])
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
