"""Each chatbot protocol against its stand-in over real HTTP: what is sent, what the caller would hear, and faults."""
from __future__ import annotations

import logging
import time

import pytest

from gateway.calls.store import InMemoryCallStore
from gateway.chatbots.reply import ChatbotError
from gateway.chatbots import OpenAIChatbot, RasaChatbot
from gateway.chatbots.openai import first_sentence
from gateway.dialogue.prompt import PromptClock
from standins.openai_api import Answer, Fault, OpenAIStandIn
from standins.rasa import RasaStandIn

RASA_SCRIPT = {
    "/greet": [{"text": "Welcome to the bakery."}, {"text": "What would you like?",
                                                    "buttons": [{"title": "bread", "payload": "/bread"},
                                                                {"title": "cake", "payload": "/cake"}]}],
    "cake": [{"text": "Cake it is."}, {"image": "https://example.com/cake.png"},
             {"attachment": {"type": "file"}}, {"text": "Anything else?"}],
    "bye": [{"text": "Bye & thanks!"}, {"custom": {"action": "hangup"}}],
    "agent": [{"text": "Transferring."}, {"custom": {"action": {"type": "transfer", "to": "+15550001111"}}}],
    "nothing": [],
}


def test_rasa_texts_in_order_buttons_as_options_and_hints_and_custom_actions(caplog):
    with RasaStandIn(RASA_SCRIPT) as rasa:
        bot = RasaChatbot(rasa.url, timeout=3, greeting_message="/greet")
        greeting = bot.ask("", "CA1", "start")
        assert greeting.text == "Welcome to the bakery. What would you like?" and greeting.hints == ("bread", "cake")
        assert greeting.options == (("bread", "/bread"), ("cake", "/cake"))
        with caplog.at_level(logging.DEBUG, logger="gateway.chatbots.rasa"):
            cake = bot.ask("cake", "CA1")
        # The image is a link in the text: the phone-text layer sends it by SMS and never reads it out.
        assert cake.text == "Cake it is. ![image](https://example.com/cake.png) Anything else?" and cake.hints == ()
        assert "attachment" in caplog.text
        bye = bot.ask("bye", "CA1")
        assert (bye.text, bye.action_type) == ("Bye & thanks!", "hangup")
        agent = bot.ask("agent", "CA2")
        assert (agent.action_type, agent.transfer_to) == ("transfer", "+15550001111")
        with pytest.raises(ChatbotError, match="empty"):  # Rasa said nothing: the caller hears the apology
            bot.ask("nothing", "CA1")
        assert rasa.requests[:2] == [{"sender": "CA1", "message": "/greet"}, {"sender": "CA1", "message": "cake"}]
        rasa.status = 500
        with pytest.raises(ChatbotError, match="HTTP 500"):
            bot.ask("cake", "CA1")


def _model(messages):
    said = messages[-1]["content"] if messages[-1]["role"] == "user" else ""
    if said == "bye":
        return Answer("Goodbye!", (("end_call", {}),))
    if said == "agent":
        return Answer(None, (("transfer_call", {"to": "+15550001111"}),))
    return Answer(f"You said {said or 'nothing'}. I have {len(messages)} messages so far.")


@pytest.fixture
def api():
    with OpenAIStandIn(_model) as standin:
        yield standin


def _bot(api, store, **options):
    defaults = dict(model="gpt-test", prompt="Be brief.", api_key=api.api_key, temperature=0.3, history_turns=2,
                    timeout=2.0)
    return OpenAIChatbot(api.url, store, **{**defaults, **options})


def _store(*sids):
    store = InMemoryCallStore()
    for sid in sids:
        store.open(sid)
    return store


def test_openai_sends_prompt_history_and_tools_and_keeps_calls_apart(api):
    store = _store("CA1", "CA2")
    bot = _bot(api, store)
    assert bot.ask("hello", "CA1").text == "You said hello. I have 2 messages so far."
    bot.ask("book a table", "CA2")
    assert bot.ask("for four", "CA1").text == "You said for four. I have 4 messages so far."
    first, _, third = api.requests
    assert first["model"] == "gpt-test" and first["temperature"] == 0.3 and "stream" not in first
    assert [t["function"]["name"] for t in first["tools"]] == ["end_call", "transfer_call", "offer_options"]
    assert third["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"},
                                 {"role": "assistant", "content": "You said hello. I have 2 messages so far."},
                                 {"role": "user", "content": "for four"}]
    assert [m["content"] for m in store.history("CA2")] == ["book a table",
                                                            "You said book a table. I have 2 messages so far."]
    bot.ask("again", "CA1")  # three turns, two kept
    assert [m["content"] for m in store.history("CA1") if m["role"] == "user"] == ["for four", "again"]


def test_openai_tools_become_actions_and_their_text_is_said(api):
    store = _store("CA1")
    bot = _bot(api, store)
    assert bot.ask("", "CA1", "start").text == "You said nothing. I have 1 messages so far."  # the greeting
    assert api.requests[0]["messages"] == [{"role": "system", "content": "Be brief."}]
    assert store.history("CA1") == [{"role": "assistant", "content": "You said nothing. I have 1 messages so far."}]
    bye = bot.ask("bye", "CA1")
    assert (bye.text, bye.action_type) == ("Goodbye!", "hangup")
    agent = bot.ask("agent", "CA1")
    assert (agent.text, agent.action_type, agent.transfer_to) == ("", "transfer", "+15550001111")


def test_openai_streamed_answer_hands_over_its_first_sentence_while_the_rest_is_written(api):
    api.tokens_per_second = 50
    handed = []
    bot = _bot(api, _store("CA1"))
    started = time.monotonic()
    reply = bot.ask("bye", "CA1", on_first_sentence=lambda s: handed.append((s, time.monotonic())) or True)
    assert (reply.text, reply.action_type) == ("Goodbye!", "hangup") and handed == []  # one short sentence
    reply = bot.ask("a long question", "CA1", on_first_sentence=lambda s: handed.append((s, time.monotonic())) or True)
    assert api.requests[-1]["stream"] is True
    assert [s for s, _ in handed] == ["You said a long question."]
    assert reply.text == "You said a long question. I have 4 messages so far."
    assert handed[0][1] - started < time.monotonic() - started - 0.05  # handed over before the answer was complete


@pytest.mark.parametrize("fault, reason", [
    (Fault(status=401), "HTTP 401: Incorrect API key"),
    (Fault(status=500), "HTTP 500"),
    (Fault(status=429, retry_after=30), "Retry-After 30 s is past the turn's timeout"),
    (Fault(malformed=True), "invalid JSON"),
    (Fault(stall=3.0), "within 2 s"),
])
def test_openai_faults_are_chatbot_errors_that_keep_the_history_clean(api, fault, reason):
    store = _store("CA1")
    api.faults.append(fault)
    with pytest.raises(ChatbotError, match=reason):
        _bot(api, store).ask("hello", "CA1")
    assert store.history("CA1") == []


def test_openai_429_with_a_short_retry_after_is_waited_out_within_the_turn(api):
    api.faults.append(Fault(status=429, retry_after=0.5))
    started = time.monotonic()
    assert _bot(api, _store("CA1")).ask("hello", "CA1").text.startswith("You said hello.")
    assert 0.5 <= time.monotonic() - started < 2.0 and len(api.requests) == 2


def test_barge_in_cuts_the_last_answer_to_what_was_heard(api):
    store = _store("CA1")
    bot = _bot(api, store)
    bot.ask("hello", "CA1")
    said = store.history("CA1")[-1]["content"]
    clock = PromptClock(store, "CA1")
    clock.speaking(2.0, True, said)
    _, heard = clock.heard(store.now() + 0.8)  # 0.8 of 2 seconds in: about the first 40%
    assert said.startswith(heard) and 0 < len(heard) < len(said) * 0.5 and not said[len(heard)].isalnum()
    bot.interrupted("CA1", said, heard)
    assert store.history("CA1")[-1]["content"] == heard
    bot.ask("what", "CA1")
    assert api.requests[-1]["messages"][2] == {"role": "assistant", "content": heard}


def test_first_sentence_needs_a_whole_sentence_worth_saying():
    assert first_sentence("Sure. I can help with that") is None  # "Sure." alone is too short; the next is unfinished
    assert first_sentence("Sure. I can help with that. And more") == "Sure. I can help with that."
    assert first_sentence("The price is 3.50 dollars") is None
    assert first_sentence('He said "it is ready!" Come in') == 'He said "it is ready!"'
    assert first_sentence("Hello there, caller. ") == "Hello there, caller."


def test_the_call_store_keeps_a_bounded_history_per_call_and_forgets_it_with_the_call():
    now = [0.0]
    store = InMemoryCallStore(forget_after_seconds=10, clock=lambda: now[0])
    store.open("CA1")
    store.add_history("CA0", [{"role": "user", "content": "lost"}], keep=4)  # an unknown call keeps nothing
    for n in range(3):
        store.add_history("CA1", [{"role": "user", "content": f"q{n}"}, {"role": "assistant", "content": f"a{n}"}], 4)
    assert [m["content"] for m in store.history("CA1")] == ["q1", "a1", "q2", "a2"] and store.history("CA0") == []
    store.history("CA1")[0]["content"] = "changed"  # a copy
    assert store.history("CA1")[0]["content"] == "q1"
    assert store.cut_reply("CA1", "a2", "a") and store.history("CA1")[-1]["content"] == "a"
    assert not store.cut_reply("CA1", "Are you still there?", "Are")
    store.end("CA1")
    now[0] = 20.0
    store.open("CA2")  # the sweep runs on open
    assert store.history("CA1") == []


def test_chatbot_protocol_settings_are_read_and_checked():
    from gateway.config import Config, ConfigError

    base = {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}
    config = Config.from_env({**base, "CHATBOT_PROTOCOL": "OpenAI", "CHATBOT_URL": "http://localhost:11434/v1",
                              "CHATBOT_MODEL": "llama3.2", "CHATBOT_API_KEY": "sk-secret-key",
                              "CHATBOT_TEMPERATURE": "0.7", "CHATBOT_HISTORY_TURNS": "5", "CHATBOT_STREAM": "false"})
    assert (config.chatbot_protocol, config.chatbot_model, config.chatbot_temperature, config.chatbot_history_turns,
            config.chatbot_stream) == ("openai", "llama3.2", 0.7, 5, False)
    assert "sk-secret-key" not in repr(config)
    assert Config.from_env(base).chatbot_protocol == "chatline"
    assert Config.from_env({**base, "CHATBOT_PROTOCOL": "rasa"}).chatbot_greeting_message == "/greet"
    with pytest.raises(ConfigError) as raised:
        Config.from_env({**base, "CHATBOT_PROTOCOL": "openai", "CHATBOT_TEMPERATURE": "hot",
                         "CHATBOT_HISTORY_TURNS": "0"})
    for problem in ("CHATBOT_URL is required", "CHATBOT_MODEL is required", "CHATBOT_TEMPERATURE must be",
                    "CHATBOT_HISTORY_TURNS must be"):
        assert problem in str(raised.value)
    with pytest.raises(ConfigError, match="CHATBOT_PROTOCOL must be one of chatline, rasa, openai"):
        Config.from_env({**base, "CHATBOT_PROTOCOL": "dialogflow"})
