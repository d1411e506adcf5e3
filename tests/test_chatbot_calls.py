"""Whole phone calls with a Rasa bot and an OpenAI-compatible model: Twilio stand-in → gunicorn gateway → stand-ins."""
from __future__ import annotations

import re

import pytest
import requests

from standins.openai_api import Answer, Fault, OpenAIStandIn
from standins.rasa import RasaStandIn
from standins.twilio import Caller
from tests.conftest import PUBLIC_URL
from tests.test_phone_dialogue import APOLOGY, GREETING, place, updates

PROMPT = "You are the phone assistant of a small restaurant."
HELP = "I can tell you about our opening hours, our menu and our prices. I can also book you a table for tonight."
HELLO = "Hi, this is the restaurant assistant. How can I help you today?"
BYE = "Goodbye, thanks for calling."
PUT_THROUGH = "Let me put you through to our booking desk. One moment please."
NOBODY = "Sorry, nobody could take your call right now. Let's carry on."


def model(messages):
    """The stand-in model: a scripted answer to the caller's last words; goodbye ends the call with end_call."""
    said = messages[-1]["content"].replace(" ", "") if messages[-1]["role"] == "user" else ""
    if said == "goodbye":
        return Answer(BYE, (("end_call", {}),))
    if said == "whatcanyoudo":
        return Answer(HELP)
    if said == "hello":
        return Answer(HELLO)
    if said == "iwouldliketobookatable":
        return Answer(PUT_THROUGH, (("transfer_call", {"to": "+15550001111"}),))
    if said == "howareyou":  # a streamed goodbye: the hang-up comes after the rest
        return Answer("I am fine, thank you for asking. Goodbye now!", (("end_call", {}),))
    return Answer(f"You said {messages[-1]['content']}.")


@pytest.fixture
def openai_api():
    with OpenAIStandIn(model) as api:
        yield api


def start_openai(start_gateway, api, **settings):
    return start_gateway(CHATBOT_PROTOCOL="openai", CHATBOT_URL=api.url, CHATBOT_MODEL="gpt-standin",
                         CHATBOT_PROMPT=PROMPT, CHATBOT_API_KEY=api.api_key, CHATBOT_TEMPERATURE="0.2", **settings)


def users(messages):
    return [m["content"].replace(" ", "") for m in messages if m["role"] == "user"]


def test_rasa_bot_holds_a_call_its_buttons_guide_the_recognizer_and_it_hangs_up(twilio, speech, chatbot,
                                                                                  start_gateway):
    script = {
        "/greet": [{"text": "Welcome to the Rasa bakery."},
                   {"text": "You can book a table.", "buttons": [{"title": "i would like to book a table",
                                                                   "payload": "/book"}]}],
        "/book": [{"text": "For how many people?", "buttons": [{"title": "for four people", "payload": "/four"}]},
                  {"image": "https://example.com/table.png"}],
        "/four": [{"text": "A table for four, done."},
                  {"text": "Anything else?", "buttons": [{"title": "goodbye", "payload": "/bye"}]}],
        "/bye": [{"text": "Goodbye from Rasa!"}, {"custom": {"action": "hangup"}}],
    }
    with RasaStandIn(script) as rasa:
        start_gateway(CHATBOT_PROTOCOL="rasa", CHATBOT_URL=rasa.url, CHATBOT_GREETING="true")
        call = place(twilio, Caller(["book_a_table", "for_four_people", ("dtmf", "1")]))
        assert call.wait_ended(timeout=60), call.transcript()
        # The buttons are said as a menu after the text, and the image goes by text message instead of being read.
        assert call.said() == [
            "Welcome to the Rasa bakery. You can book a table. You can say i would like to book a table. Or press 1.",
            "For how many people? I'm sending you the link by text message. You can say for four people. Or press 1.",
            "A table for four, done. Anything else? You can say goodbye. Or press 1.",
            "Goodbye from Rasa!"], call.transcript()
        assert "hangup" in [kind for _, kind, _ in call.events]
        # Saying a button's title, or pressing its key, sends Rasa its payload, as a click in Rasa's web widget does.
        assert rasa.messages() == ["/greet", "/book", "/four", "/bye"]
        assert {r["sender"] for r in rasa.requests} == {call.sid}
        assert [(m["to"], m["body"].splitlines()[-1]) for m in twilio.messages] == [
            ("+15551230001", "https://example.com/table.png")]
    # "for four people" is not among HINTS: the recognizer heard it because the buttons named it.
    assert any("for four people" in s.phrases for s in speech.streams)
    assert any(s.phrases == ("goodbye",) for s in speech.streams)


def test_openai_model_holds_a_call_first_sentence_first_with_history_and_ends_it(twilio, chatbot, openai_api,
                                                                                  start_gateway):
    gateway = start_openai(start_gateway, openai_api)
    call = place(twilio, Caller(["hello", "what_can_you_do", "goodbye"], think_time=1.5))
    assert call.wait_ended(timeout=60), call.transcript()
    first, rest = HELLO.split(". ", 1)
    assert call.said() == [GREETING, first + ".", rest, HELP.split(". ")[0] + ".", HELP.split(". ", 1)[1], BYE], \
        call.transcript()
    assert "hangup" in [kind for _, kind, _ in call.events]
    # The first update carried the first sentence and a <Redirect> to /continue; Twilio fetched the rest there.
    sent = updates(twilio, call)
    assert re.search(r"<Say language=\"en-US\">Hi, this is the restaurant assistant.</Say>"
                     r"<Redirect method=\"POST\">https://chatline.test/continue\?answer=\w+</Redirect>", sent[0]), sent
    assert sent[-1].endswith(f"<Say language=\"en-US\">{BYE}</Say><Hangup /></Response>"), sent
    assert sum("/continue?answer=" in url for _, kind, url in call.events if kind == "webhook") == 2
    # Every request: the model, the prompt, the key, the temperature, the tools, and the history so far, streamed.
    asked = openai_api.requests
    assert [r["stream"] for r in asked] == [True, True, True]
    assert {(r["model"], r["temperature"], r["messages"][0]["content"]) for r in asked} == {("gpt-standin", 0.2, PROMPT)}
    assert {h["Authorization"] for h in openai_api.headers} == {f"Bearer {openai_api.api_key}"}
    assert asked[2]["messages"][1:] == [{"role": "user", "content": "hello"}, {"role": "assistant", "content": HELLO},
                                        {"role": "user", "content": "what can you do"},
                                        {"role": "assistant", "content": HELP},
                                        {"role": "user", "content": asked[2]["messages"][-1]["content"]}]
    assert f"first sentence ({len(first) + 1} characters) sent" in gateway.logs()
    # /continue is a webhook like the others: unsigned, it is refused.
    assert requests.post(gateway.url + "/continue?answer=x", data={"CallSid": call.sid}, timeout=5).status_code == 403


def test_the_rest_is_said_even_when_continue_reaches_another_process(twilio, chatbot, openai_api, start_gateway):
    # NO_INPUT_SECONDS=0: the caller's 8 s of thinking is room for the hand-off, not a silence to reprompt.
    gateway = start_openai(start_gateway, openai_api, NO_INPUT_SECONDS="0")
    other = start_openai(start_gateway, openai_api, NO_INPUT_SECONDS="0")  # a second process that never heard of the call
    twilio.tunnel[PUBLIC_URL] = gateway.url
    twilio.tunnel[PUBLIC_URL + "/continue"] = other.url + "/continue"
    call = place(twilio, Caller(["hello", "goodbye"], think_time=8.0))
    assert call.wait_ended(timeout=60), call.transcript()
    first, rest = HELLO.split(". ", 1)
    assert call.said() == [GREETING, first + ".", rest, BYE], call.transcript()
    assert "the rest of the answer is not here" in other.logs()
    assert "/continue did not reach this process" in gateway.logs()


def test_a_streamed_answer_transfers_and_hangs_up_after_its_rest(twilio, chatbot, openai_api, start_gateway):
    start_openai(start_gateway, openai_api)
    call = place(twilio, Caller(["book_a_table", "how_are_you"], think_time=1.5))
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said() == [GREETING, "Let me put you through to our booking desk.", "One moment please.", NOBODY,
                           "I am fine, thank you for asking.", "Goodbye now!"], call.transcript()
    kinds = [(kind, detail) for _, kind, detail in call.events if kind in ("dial", "hangup")]
    assert kinds[0] == ("dial", "+15550001111") and kinds[-1][0] == "hangup", call.transcript()


def test_two_concurrent_calls_keep_their_histories_apart(twilio, chatbot, openai_api, start_gateway):
    start_openai(start_gateway, openai_api, CHATBOT_STREAM="false")
    scripts = {"a": ["hello", "what_can_you_do", "goodbye"], "b": ["what_can_you_do", "hello", "goodbye"]}
    calls = {name: place(twilio, turns) for name, turns in scripts.items()}
    assert all(call.wait_ended(timeout=90) for call in calls.values()), [c.transcript() for c in calls.values()]
    expected = {name: [t.replace("_", "") for t in turns] for name, turns in scripts.items()}
    seen = {"a": 0, "b": 0}
    for asked in openai_api.conversations():
        heard = users(asked)
        name = "a" if heard[0] == "hello" else "b"
        assert heard == expected[name][:len(heard)], (name, heard)  # one call's words only, in order
        seen[name] += 1
    assert seen == {"a": 3, "b": 3}
    assert all(call.said()[-1] == BYE for call in calls.values())


def test_barge_in_cuts_the_history_to_what_the_caller_heard(twilio, chatbot, openai_api, start_gateway):
    start_openai(start_gateway, openai_api)
    call = place(twilio, Caller(["what_can_you_do", ("barge-in", "hello", 0.8), "goodbye"], think_time=1.5))
    assert call.wait_ended(timeout=60), call.transcript()
    first_sentence = HELP.split(". ")[0] + "."
    assert [d for _, k, d in call.events if k == "say-interrupted"] == [first_sentence], call.transcript()
    assert HELP.split(". ", 1)[1] not in call.said()  # the rest was never reached
    answered_hello = next(r for r in openai_api.conversations() if users(r)[-1] == "hello")
    cut = answered_hello[2]
    assert cut["role"] == "assistant" and first_sentence.startswith(cut["content"]), cut
    assert len(cut["content"]) < len(first_sentence), cut
    print(f"\nthe caller heard {cut['content']!r} of {first_sentence!r}")


def test_every_provider_error_is_an_apology_and_the_call_goes_on(twilio, chatbot, openai_api, start_gateway):
    gateway = start_openai(start_gateway, openai_api)
    openai_api.faults.extend([Fault(status=401), Fault(status=429, retry_after=30), Fault(status=500),
                              Fault(malformed=True), Fault(stall=4.5), Fault(status=429, retry_after=0.5)])
    call = place(twilio, Caller(["hello"] * 5 + ["goodbye"], think_time=1.0))
    assert call.wait_ended(timeout=90), call.transcript()
    assert call.said() == [GREETING] + [APOLOGY] * 5 + [BYE], call.transcript()
    logs = gateway.logs()
    for reason in ("answered HTTP 401: Incorrect API key", "answered HTTP 429", "Retry-After 30 s is past the turn",
                   "answered HTTP 500", "streamed a chunk that is not a chat.completion.chunk", "within 3 s"):
        assert len(re.findall(f"chatbot failed for call {call.sid}: [^\\n]*{re.escape(reason)}", logs)) == 1, reason
    assert "retrying in 0.5 s as Retry-After asks" in logs
    assert openai_api.api_key not in logs
    # The failed turns left no trace in the history: the goodbye was asked with the system prompt and itself only.
    assert users(openai_api.conversations()[-1]) == ["goodbye"]
