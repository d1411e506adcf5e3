"""The ConversationRelay client against a bot written for ConversationRelay (the stand-in checks Twilio's shapes)."""
import time

import pytest
from twilio.request_validator import RequestValidator

from gateway.chatbots import relay_protocol as rp
from gateway.chatbots.conversationrelay import session_id_for
from gateway.chatbots.reply import ChatbotError
from standins.conversationrelay_bot import end, language, pause, play, say, send_digits, tokens
from standins.relay_handoff import HandoffEndpoint
from tests.relay_fixtures import ACCOUNT_SID, AUTH_TOKEN, CALLED, CALLER, bot, pushes, relay  # noqa: F401 (fixtures)


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


def test_the_interrupt_reaches_the_bot_before_the_prompt_of_the_interrupting_words(bot, pushes):
    client = relay(bot, pushes)
    said = client.ask("hello", "CA119").text
    for attempt in range(5):
        client.interrupted("CA119", said, "You")
        client.ask(f"wait {attempt}", "CA119")
    kinds = [m["type"] for m in bot.connections[0].received if m["type"] in ("interrupt", "prompt")]
    assert kinds == ["prompt"] + ["interrupt", "prompt"] * 5
    client.close()


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
