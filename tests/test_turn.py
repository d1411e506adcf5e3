"""One turn (gateway/dialogue/turn.py) in-process, with narrow fakes at its seams: a chatbot that answers from a
script, an updater that records the TwiML it would send, and the in-process call store."""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

from gateway.calls.live_calls import LiveCalls
from gateway.calls.store import InMemoryCallStore
from gateway.chatbots.reply import ChatbotError, Reply
from gateway.config import Config
from gateway.dialogue import replies
from gateway.dialogue.turn import Heard, answer_by_update, answer_in_webhook
from gateway.services import Services
from gateway.twilio.rest import UpdateResult

CONFIG = Config(twilio_account_sid="AC" + "0" * 32, twilio_auth_token="t")
BASE = "https://gw.example"


class ScriptedChatbot:
    """Answers each message with the next reply of its script (a ChatbotError is raised as a failure)."""

    def __init__(self, *answers: Reply | ChatbotError):
        self.answers, self.asked = list(answers), []

    def ask(self, message, session_id, input_type="speech", *, caller="", on_first_sentence=None):
        self.asked.append((message, input_type))
        answer = self.answers.pop(0)
        if isinstance(answer, ChatbotError):
            raise answer
        return answer

    def interrupted(self, session_id, said, heard):
        pass

    def close(self):
        pass


class RecordingUpdater:
    """Records each call update, and what the call's state said about the turn's words when it went out."""

    def __init__(self, store, outcome=UpdateResult.SENT):
        self.store, self.outcome, self.sent, self.unanswered_then = store, outcome, [], []

    def update(self, call_sid, twiml):
        self.sent.append(twiml)
        self.unanswered_then.append(self.store.get(call_sid).unanswered)
        return self.outcome


class BareLine:
    """A call's line with nothing to wait for."""

    lock = contextlib.nullcontext()

    def __init__(self, services, call_sid):
        self.services, self.call_sid, self.missed = services, call_sid, []

    def document(self, reply, state):
        return replies.answer_twiml(self.services.config, state, reply, BASE)[0]

    def ready(self, turn, state):
        return True

    def not_delivered(self, reply, outcome):
        self.missed.append(outcome)


def services_with(chatbot, outcome=UpdateResult.SENT):
    store = InMemoryCallStore()
    store.open("CA1", caller="+15551230001")
    return Services(CONFIG, store, chatbot, RecordingUpdater(store, outcome), ThreadPoolExecutor(1), LiveCalls())


def test_a_streamed_turns_words_are_let_go_before_its_answer_goes_out_so_a_takeover_never_says_it_twice():
    services = services_with(ScriptedChatbot(Reply("Hi, how are you?", hints=("good", "bad"))))
    services.store.answering("CA1", "hello")  # what the stream's turn does first
    assert answer_by_update(services, Heard("CA1", "hello"), BareLine(services, "CA1"), None)
    # At the moment of the update nothing was left for a process taking the call over to answer again.
    assert services.updater.unanswered_then == [""]
    assert "<Say language=\"en-US\">Hi, how are you?</Say>" in services.updater.sent[0]
    state = services.store.get("CA1")
    assert (state.turns, state.hints, state.prompt, state.prompt_text) == (1, ("good", "bad"), 1, "Hi, how are you?")


def test_a_turn_on_an_ended_or_held_call_asks_nobody_and_sends_nothing():
    chatbot = ScriptedChatbot(Reply("never said"))
    services = services_with(chatbot)
    services.store.hold("CA1")
    assert not answer_by_update(services, Heard("CA1", "hello"), BareLine(services, "CA1"), None)
    services.store.end("CA1")
    assert not answer_by_update(services, Heard("CA1", "hello"), BareLine(services, "CA1"), None)
    assert chatbot.asked == [] and services.updater.sent == []


def test_an_update_that_fails_is_not_marked_said_and_the_line_hears_of_it():
    services = services_with(ScriptedChatbot(Reply("Hi")), outcome=UpdateResult.FAILED)
    line = BareLine(services, "CA1")
    assert not answer_by_update(services, Heard("CA1", "hello"), line, None)
    assert line.missed == [UpdateResult.FAILED] and services.store.get("CA1").prompt == 0


def test_keys_are_answered_in_the_webhooks_own_twiml_and_a_failing_chatbot_leaves_the_apology():
    services = services_with(ScriptedChatbot(ChatbotError("down"), Reply("Bye", "hangup")))
    answer = answer_in_webhook(services, Heard("CA1", "1", "dtmf"))
    assert (answer.reply.text, answer.error, answer.state.turns) == (CONFIG.apology, "down", 1)
    assert services.updater.sent == []  # no call update: the webhook answers with the TwiML
    goodbye = answer_in_webhook(services, Heard("CA1", "2", "dtmf"))
    assert goodbye.reply.action_type == "hangup" and services.store.get("CA1").held  # the goodbye is not cut
    assert services.chatbot.asked == [("1", "dtmf"), ("2", "dtmf")]
