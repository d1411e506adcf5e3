"""One turn: what happens when a caller's input (words, keys, an option) meets a call.

Every turn goes this one way, whoever carries the answer: ask the chatbot, record the answer (and let go of the
words it answers) in one change of the call's state, deliver it, mark it said, log the turn and publish it to the
monitor. A webhook's turn (`/dtmf`, `/gather`) is delivered as that webhook's own TwiML (`answer_in_webhook`); the
stream's turns and a turn recovered after its process died are delivered by a call update (`answer_by_update`)
through a `Line`. Which TwiML carries a reply is decided by the pure functions of `replies.py`.
"""
from __future__ import annotations

import json
import logging
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from ..calls.store import CallState
from ..chatbots import FirstSentence
from ..chatbots.reply import ChatbotError, Reply
from ..twilio.rest import UpdateResult
from .phone_answer import next_message, offer_links
from .phone_answer import heard as phone_heard
from .prompt import say_seconds

if TYPE_CHECKING:
    from ..calls.coordination import Turn
    from ..services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Heard:
    """The caller's input for one turn: what the chatbot is sent as `message` and `input`."""

    call_sid: str
    words: str
    input_type: str = "speech"  # "speech", "dtmf" or "option", as the chatbot API names them
    caller: str = ""
    heard_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Answer:
    """The chatbot's answer to one turn, the failure behind an apology (if any), and the call's state once recorded."""

    reply: Reply
    error: str | None
    state: CallState | None
    chatbot_ms: float


class Line(Protocol):
    """How a turn's answer reaches a live call by a call update: the call's stream conversation, or a bare line for a
    turn recovered after the stream's process died."""

    lock: AbstractContextManager  # held while the update goes out, so this process's barge-in never lands after it

    def document(self, reply: Reply, state: CallState | None) -> str:
        """The TwiML that gives the caller `reply` now (`state`: the call's, as the answer was recorded)."""

    def ready(self, turn: Turn | None, state: CallState | None) -> bool:
        """Whether the answer may go out now (after any prompt that may not be cut; no newer turn took over)."""

    def not_delivered(self, reply: Reply, outcome: UpdateResult) -> None:
        """The update did not reach the caller (`outcome`): close what listens on an ended call, keep hints."""


def chosen(services: Services, heard: Heard, state: CallState | None = None) -> tuple[str, str]:
    """The chatbot's (message, input) for the caller's words or keys: while the last answer's options hold, a key or
    words that choose one send its payload as "option"; anything else goes as it came (a key with no option, dtmf).
    `state`: the call's, when the turn has just read it."""
    if heard.input_type not in ("speech", "dtmf"):
        return heard.words, heard.input_type
    state = state or services.store.get(heard.call_sid)
    if state is None or not state.options:
        return heard.words, heard.input_type
    by_key = heard.input_type == "dtmf"
    message, input_type = next_message(state.options, key=heard.words if by_key else None,
                                       words=None if by_key else heard.words)
    if input_type == "option":
        log.info("call %s: the caller chose option %d of %d by %s", heard.call_sid,
                 [payload for _, payload in state.options].index(message) + 1, len(state.options),
                 "key" if by_key else "voice")
    return message, input_type


def ask(services: Services, heard: Heard, on_first_sentence: FirstSentence | None = None,
        state: CallState | None = None) -> tuple[Reply, str | None]:
    """Ask the chatbot; on any failure return the apology (the call goes on) and the reason."""
    message, input_type = chosen(services, heard, state)
    try:
        return services.chatbot.ask(message, heard.call_sid, input_type, caller=heard.caller,
                                    on_first_sentence=on_first_sentence), None
    except ChatbotError as exc:
        log.warning("chatbot failed for call %s: %s; the caller hears an apology", heard.call_sid, exc)
        return Reply(text=services.config.apology), str(exc)


def record(services: Services, call_sid: str, reply: Reply) -> CallState | None:
    """Keep what a reply changes for the rest of the call (hints, reprompt, a switch of language or voice) and let go
    of the words it answers, in one change; the call's state afterwards (None for an unknown call)."""
    state = services.store.answer(call_sid, reply.hints, reply.reprompt, reply.language, reply.voice, reply.options)
    if state is not None and (reply.language or reply.voice):
        log.info("call %s: the chatbot switched to language %s, voice %s", call_sid,
                 state.language or services.config.language, reply.voice or "default")
    return state


def phone_fit(services: Services, reply: Reply, state: CallState | None) -> Reply:
    """A recorded answer ready for the phone: its links offered by text message (once, here), and the sentence the
    caller is owed (a text message that could not be sent) said first. Its text stays the chatbot's."""
    if state is None or state.ended:
        return reply
    config = services.config.for_call(state.language, state.voice)
    reply = offer_links(reply, config, call_sid=state.call_sid, caller=state.caller, called=state.called,
                        sender=services.messages)
    return replace(reply, preface=state.owed) if state.owed else reply


def said(services: Services, call_sid: str, reply: Reply) -> None:
    """The caller now hears `reply` (a call update or a webhook's TwiML, from any process): until it is over the
    caller's speech may cut it; an action holds the call; the stream's recognizer follows its hints and language.
    How long it lasts is told from the words said (phone_answer.heard); the prompt's text stays the chatbot's."""
    config = services.config
    words = heard_text(reply, config)
    services.store.said(call_sid, say_seconds(words, config.say_chars_per_second) if words else 0.0,
                        reply.barge_in and config.barge_in, reply.text, hold=reply.holds_call,
                        owed=reply.preface)
    if reply.hints or reply.listen_language:
        services.tell_stream(call_sid, {"type": "answered", "hints": list(reply.hints),
                                        "language": reply.listen_language or ""})


def finish(services: Services, heard: Heard, answer: Answer, outcome: str, delivered: bool = True) -> None:
    """The turn's one log line and its monitor event."""
    elapsed_ms = (time.monotonic() - heard.heard_at) * 1000
    log_turn(heard.call_sid, heard.words, answer.reply, elapsed_ms, outcome, answer.error,
             words=services.config.log_transcripts)
    services.events.bot_said(heard.call_sid, answer.reply, answer.chatbot_ms, elapsed_ms, answer.error,
                             delivered=delivered)


def asked(services: Services, heard: Heard, on_first_sentence: FirstSentence | None = None,
          state: CallState | None = None) -> Answer:
    """Ask the chatbot and record its answer (`state`: the call's, when the turn has just read it)."""
    started = time.monotonic()
    reply, error = ask(services, heard, on_first_sentence, state)
    chatbot_ms = (time.monotonic() - started) * 1000
    state = record(services, heard.call_sid, reply)
    return Answer(phone_fit(services, reply, state), error, state, chatbot_ms)


def answer_in_webhook(services: Services, heard: Heard) -> Answer:
    """A turn whose answer is a webhook's own TwiML (keys on /dtmf, a <Gather> result): after any speech turn of the
    call in flight, so the chatbot sees one message at a time, in order. The caller hears the answer as the webhook
    returns, so it is marked said here; the webhook picks the TwiML (replies.py) from the answer's state."""
    services.events.caller_said(heard.call_sid, heard.words, heard.input_type)
    with services.turn(heard.call_sid) as turn:
        if turn is None:
            log.warning("call %s: another turn is still running; answering this one anyway", heard.call_sid)
        answer = asked(services, heard)
        said(services, heard.call_sid, answer.reply)
        finish(services, heard, answer, "answered")
        return answer


def answer_by_update(services: Services, heard: Heard, line: Line, turn: Turn | None,
                     early: EarlySentenceLike | None = None, state: CallState | None = None) -> bool:
    """A turn answered by a call update, under the call's turn lock (`turn`); True once its answer went out.

    The words wait in the call's state (`store.answering`, set by the caller of this, which passes the `state` that
    change left) until the answer is recorded, just before the update: a process that dies before that leaves them
    for the one taking the call over. The state is read once per turn, and each change returns the next."""
    call_sid = heard.call_sid
    state = state or services.store.get(call_sid)
    if state is None or state.ended:
        log.info("call %s has already ended; dropping a turn of %d characters", call_sid, len(heard.words))
        return False
    if state.held:  # updating the call now would cut a transfer or the goodbye short
        log.info("call %s is being transferred or hung up; not answering %d characters", call_sid, len(heard.words))
        return False
    answer = asked(services, heard, early.say if early is not None else None, state)
    if answer.state is None or answer.state.ended:
        if early is not None:
            early.drop()
        log.info("call %s has already ended while its reply was in flight; reply dropped", call_sid)
        return False
    if early is not None and early.rest(answer.reply):  # its first sentence is being said: /continue has the rest
        finish(services, heard, answer, "first-sentence")
        return False
    return deliver(services, heard, answer, line, turn)


def deliver(services: Services, heard: Heard, answer: Answer, line: Line, turn: Turn | None) -> bool:
    """Give the caller a recorded answer by a call update through `line`, mark it said, log and publish it; True
    once it went out. Also the way for a reply no input asked for (a bot that speaks first): record it, then
    deliver it with a `Heard` of no words."""
    call_sid = heard.call_sid
    document = line.document(answer.reply, answer.state)
    if not line.ready(turn, answer.state):
        return False
    with line.lock:
        outcome = services.updater.update(call_sid, document)
        if outcome is UpdateResult.SENT:
            said(services, call_sid, answer.reply)
    finish(services, heard, answer, outcome.value, delivered=outcome is UpdateResult.SENT)
    if outcome is UpdateResult.CALL_ENDED:
        services.store.end(call_sid)
    if outcome is not UpdateResult.SENT:
        line.not_delivered(answer.reply, outcome)
    return outcome is UpdateResult.SENT


class EarlySentenceLike(Protocol):
    """A turn's first sentence said while the chatbot writes the rest (first_sentence.EarlySentence)."""

    def say(self, sentence: str) -> bool: ...

    def rest(self, reply: Reply) -> bool: ...

    def drop(self) -> None: ...


def greeting(services: Services, call_sid: str, caller: str = "") -> Reply:
    """What a new call hears first: GREETING, or with CHATBOT_GREETING the chatbot's answer to the documented first
    request (`"message": ""`, `"input": "start"`); a chatbot that fails or answers no text leaves GREETING."""
    config = services.config
    if not config.chatbot_greeting:
        return Reply(config.greeting)
    try:  # an answer with no text and no action is a ChatbotError too (parse_reply): the caller hears GREETING
        return services.chatbot.ask("", call_sid, "start", caller=caller)
    except ChatbotError as exc:
        log.warning("chatbot greeting failed for call %s: %s; greeting with GREETING", call_sid, exc)
        return Reply(config.greeting)


def no_input(services: Services, call_sid: str, quiet_for: float = 0.0) -> tuple[str, bool] | None:
    """The caller stayed silent through a prompt: what to say, and whether to hang up after saying it.

    The chatbot's `reprompt` from its last reply (else NO_INPUT_PROMPT), NO_INPUT_MAX_REPROMPTS times in a row, then
    NO_INPUT_GOODBYE and a hang-up. With NO_INPUT_SECONDS off nothing is counted: reprompt, never hang up. None when
    the caller was heard less than `quiet_for` seconds ago (their turn is on its way) or the call is over.
    """
    config = services.config
    state = services.store.get(call_sid)
    prompt = (state.reprompt if state else "") or config.no_input_prompt
    if not config.no_input_seconds:
        return prompt, False
    count = services.store.reprompted(call_sid, quiet_for)
    if not count:
        return None
    if count > config.no_input_max_reprompts:
        log.info("call %s: no input after %d reprompts; saying goodbye", call_sid, count - 1)
        services.events.action(call_sid, "no-input", text=config.no_input_goodbye)
        return config.no_input_goodbye, True
    log.info("call %s: no input; reprompt %d of %d", call_sid, count, config.no_input_max_reprompts)
    services.events.action(call_sid, "reprompt", text=prompt)
    return prompt, False


def heard_text(reply: Reply, config) -> str:
    """The words the caller hears of `reply`, as one plain string (the say-duration estimate)."""
    return phone_heard(reply, config).text if reply.text or reply.options or reply.preface else ""


def log_turn(call_sid: str, transcript: str, reply: Reply, elapsed_ms: float, outcome: str, error: str | None,
             *, words: bool = False) -> None:
    """Write the one structured log line every turn gets; the words themselves only with `words` (LOG_TRANSCRIPTS)."""
    line = {"call": call_sid, "heard_chars": len(transcript), "reply_chars": len(reply.text)}
    if words:
        line.update(transcript=transcript, reply=reply.text)
    line.update(action=reply.action_type, ms=round(elapsed_ms, 1), update=outcome, chatbot_error=error)
    log.info("turn %s", json.dumps(line))
