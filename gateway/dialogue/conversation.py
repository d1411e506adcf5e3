"""A live call's dialogue: final transcripts in, chatbot turns out, delivered as call updates, one at a time."""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Callable

from ..twilio import twiml
from ..calls.store import CallState
from ..chatbots.reply import ChatbotError, Reply
from ..chatbots import FirstSentence
from .first_sentence import EarlySentence
from .answers import apology_document, listening, listening_reply
from .prompt import PromptClock, say_seconds
from ..recognizers import Recognizer, Transcript
from ..services import Services
from .speech_outage import OutageFallback
from ..twilio.rest import UpdateResult

if TYPE_CHECKING:
    from ..calls.coordination import Turn

log = logging.getLogger(__name__)


def ask(services: Services, call_sid: str, message: str, input_type: str, caller: str = "",
        on_first_sentence: FirstSentence | None = None) -> tuple[Reply, str | None]:
    """Ask the chatbot; on any failure return the apology (the call goes on) and the reason."""
    try:
        return services.chatbot.ask(message, call_sid, input_type, caller=caller,
                                    on_first_sentence=on_first_sentence), None
    except ChatbotError as exc:
        log.warning("chatbot failed for call %s: %s; the caller hears an apology", call_sid, exc)
        return Reply(text=services.config.apology), str(exc)


def webhook_turn(services: Services, call_sid: str, message: str, input_type: str,
                 caller: str = "") -> tuple[Reply, str | None, CallState | None]:
    """A turn whose answer is a webhook's own TwiML (keys on /dtmf, a <Gather> result): after any speech turn of the
    call in flight, so the chatbot sees one message at a time, in order. The reply, the failure if any, and the
    call's state once the reply is remembered."""
    heard_at = time.monotonic()
    services.events.caller_said(call_sid, message, input_type)
    with services.turn(call_sid) as turn:
        if turn is None:
            log.warning("call %s: another turn is still running; answering this one anyway", call_sid)
        asked_at = time.monotonic()
        reply, error = ask(services, call_sid, message, input_type, caller)
        answered_at = time.monotonic()
        state = remember(services, call_sid, reply)
        said(services, call_sid, reply)
        services.events.bot_said(call_sid, reply, (answered_at - asked_at) * 1000,
                                 (time.monotonic() - heard_at) * 1000, error)
        return reply, error, state


def said(services: Services, call_sid: str, reply: Reply) -> None:
    """The caller now hears `reply` (a call update or a webhook's TwiML, from any process): until it is over the
    caller's speech may cut it; an action holds the call; the stream's recognizer follows its hints and language."""
    store, config = services.store, services.config
    if reply.action_type is not None:
        store.hold(call_sid)  # until the goodbye ends the call, or /transfer brings the caller back
    store.speaking(call_sid, say_seconds(reply.text, config.say_chars_per_second) if reply.text else 0.0,
                   reply.barge_in and config.barge_in, reply.text)
    if reply.hints or reply.language:
        services.tell_stream(call_sid, {"type": "answered", "hints": list(reply.hints),
                                        "language": reply.language or ""})


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


def log_turn(call_sid: str, transcript: str, reply: Reply, elapsed_ms: float, outcome: str, error: str | None,
             *, words: bool = False) -> None:
    """Write the one structured log line every turn gets; the words themselves only with `words` (LOG_TRANSCRIPTS)."""
    line = {"call": call_sid, "heard_chars": len(transcript), "reply_chars": len(reply.text)}
    if words:
        line.update(transcript=transcript, reply=reply.text)
    line.update(action=reply.action_type, ms=round(elapsed_ms, 1), update=outcome, chatbot_error=error)
    log.info("turn %s", json.dumps(line))


def remember(services: Services, call_sid: str, reply: Reply) -> CallState | None:
    """Keep what a reply changes for the rest of the call: its hints (else the last ones), its reprompt, and a switch
    of language or voice. Returns the call's state afterwards (None for an unknown call)."""
    store = services.store
    state = store.get(call_sid)
    if state is None:
        return None
    if reply.language or reply.voice:
        log.info("call %s: the chatbot switched to language %s, voice %s", call_sid,
                 reply.language or state.language or services.config.language, reply.voice or "default")
        store.speak_as(call_sid, reply.language or state.language, reply.voice or "")
    return store.record_turn(call_sid, reply.hints or state.hints, reply.reprompt)


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


class Conversation:
    """Connects one call's recognizer to the chatbot and the call; turns of a call run in order."""

    def __init__(self, call_sid: str, caller: str, services: Services, recognizer: Recognizer, base_url: str):
        self.call_sid = call_sid
        self.caller = caller
        self.services = services
        self.recognizer = recognizer
        self.base_url = base_url
        self._queue_lock = threading.Lock()
        self._turns: deque[Callable[[], None]] = deque()  # speech turns (and cuts) waiting for the one task
        self._taking_turns = False
        self._closed = threading.Event()
        self.prompt = PromptClock(services.store, call_sid)  # what the caller is hearing, for barge-in
        # How a turn's reply reaches the call when not by this stream's keep-alive loop: handed to the next process
        # during a graceful shutdown (drain.py), or inside a <Gather> once the stream is gone (limits.py).
        self.reply_twiml: Callable[[Reply], str] | None = None
        self.outage = OutageFallback(self)  # recognition down: the call listens through <Gather> meanwhile

    def start(self, greeting_seconds: float = 0.0) -> None:
        """Start hearing the caller, who may speak over the greeting (from /voice's TwiML) for `greeting_seconds`."""
        if greeting_seconds > 0:  # a restarted stream leaves what the caller hears as it was
            self._speaking(greeting_seconds, interruptible=True)
        self.recognizer.start(self.on_result, on_health=self.outage.health_changed)

    def feed(self, mulaw: bytes) -> None:
        """Pass the caller's audio on to the recognizer."""
        if not self._closed.is_set():
            self.outage.heard_audio(len(mulaw))
            self.recognizer.feed(mulaw)

    def on_result(self, transcript: Transcript) -> None:
        """Queue a turn for each non-empty final transcript; the first sound of speech may barge in; returns at once."""
        if self._closed.is_set():
            return
        try:
            if not transcript.is_final:
                if transcript.speech_started or transcript.text.strip():
                    self._barge_in()
            elif transcript.text.strip() and self.outage.stream_may_answer(transcript):
                self.services.store.heard(self.call_sid)  # the silence clock starts again, reprompts counted afresh
                self.services.events.caller_said(self.call_sid, transcript.text.strip())
                self._queue_turn(transcript.text.strip(), time.monotonic())
        except Exception as exc:  # the recognizer's callback boundary: the call's state may be unreachable
            log.error("call %s: a transcript could not be handled (%s: %s)", self.call_sid, exc.__class__.__name__, exc)
            if transcript.is_final and transcript.text.strip():  # its turn apologizes if the state stays unreachable
                self._queue_turn(transcript.text.strip(), time.monotonic())

    def speaking(self, text: str, interruptible: bool = True) -> int:
        """The caller now hears `text`: until it is over, speech from the caller stops it (when interruptible).
        Returns the prompt's number (PromptClock)."""
        return self._speaking(say_seconds(text, self.services.config.say_chars_per_second) if text else 0.0,
                              interruptible, text)

    def _speaking(self, seconds: float, interruptible: bool, text: str = "") -> int:
        return self.prompt.speaking(seconds, interruptible and self.services.config.barge_in, text)

    def _barge_in(self) -> None:
        """The caller started speaking: if the bot is still talking, stop it (once per prompt)."""
        prompt = self.prompt.barge_in()  # None while held: a goodbye or transfer is never cut
        if prompt is not None:
            said, heard = self.prompt.heard(self.services.store.now())
            self.services.executor.submit(self._stop_talking, prompt, time.monotonic())
            if said and heard != said:  # the chatbot learns what the caller heard, after the turn it answered
                self._queue(partial(self._cut, said, heard))

    def _cut(self, said: str, heard: str) -> None:
        """The caller heard only `heard` of `said`: a chatbot keeping the call's history keeps only that."""
        with self.services.turn(self.call_sid):
            self.services.chatbot.interrupted(self.call_sid, said, heard)

    def _stop_talking(self, prompt: int, heard_at: float) -> None:
        """Replace the prompt being said with the listening loop, unless another prompt replaced it already."""
        try:
            with self.prompt.lock:
                if not self.prompt.is_current(prompt):
                    return
                config = self.services.config
                outcome = self.services.updater.update(self.call_sid, twiml.listen(
                    self.base_url + "/listen", **listening(config, self.base_url)))
                self.prompt.stopped(prompt)
            self.services.continuations.cut_short(self.call_sid)  # a first sentence's rest is not said now
            if outcome is UpdateResult.SENT:
                self.services.events.action(self.call_sid, "barge-in")
            log.info("call %s: barge-in, the caller spoke over the bot; stopped it in %.0f ms (%s)",
                     self.call_sid, (time.monotonic() - heard_at) * 1000, outcome.value)
        except Exception:  # the executor's boundary
            log.exception("barge-in for call %s failed; the prompt plays on", self.call_sid)

    def _queue_turn(self, text: str, heard_at: float) -> None:
        """Queue a turn; one pool task per call works through the queue, so a slow chatbot holds one thread per call
        (not one per utterance) and the call's turns keep their order."""
        self._queue(partial(self._turn, text, heard_at))

    def _queue(self, work: Callable[[], None]) -> None:
        """Queue `work` behind the call's turns, starting the one task taking them if none is."""
        with self._queue_lock:
            self._turns.append(work)
            if self._taking_turns:
                return
            self._taking_turns = True
        self.services.executor.submit(self._take_turns)

    def _take_turns(self) -> None:
        """The executor's boundary: run queued turns in order; an unexpected error is logged, never lost in a Future."""
        while True:
            with self._queue_lock:
                if not self._turns:
                    self._taking_turns = False
                    return
                work = self._turns.popleft()
            try:
                work()
            except Exception:
                log.exception("turn for call %s failed unexpectedly; the caller hears the apology", self.call_sid)
                self.services.updater.update(self.call_sid, apology_document(self.services.config, self.base_url))

    def _turn(self, text: str, heard_at: float) -> None:
        """Ask the chatbot and update the call; runs on the turn executor. Until it is done the words wait in the
        call's state, so that if this process dies mid-turn the process that takes the call over answers them."""
        with self.services.turn(self.call_sid) as turn:
            self.services.store.answering(self.call_sid, text)
            delivered = False
            try:
                delivered = self._answer(turn, text, heard_at)
            finally:
                if not delivered:
                    self.services.store.answering(self.call_sid, "")

    def _answer(self, turn: Turn | None, text: str, heard_at: float) -> bool:
        """The turn itself, under the call's turn lock; True once its answer went out (and the words were let go)."""
        if turn is None:
            log.warning("call %s: another turn is still running; answering this one anyway", self.call_sid)
        if self._call_has_ended():
            log.info("call %s has already ended; dropping a turn of %d characters", self.call_sid, len(text))
            return False
        if self.held:  # updating the call now would cut a transfer or the goodbye short
            log.info("call %s is being transferred or hung up; not answering %d characters", self.call_sid,
                     len(text))
            return False
        first = EarlySentence(self, heard_at)
        asked_at = time.monotonic()
        reply, error = ask(self.services, self.call_sid, text, "speech", self.caller, first.say)
        chatbot_ms = (time.monotonic() - asked_at) * 1000
        if self._call_has_ended():
            first.drop()
            log.info("call %s has already ended while its reply was in flight; reply dropped", self.call_sid)
            return False
        remember(self.services, self.call_sid, reply)
        if first.rest(reply):  # its first sentence is being said: /continue answers with the rest
            elapsed_ms = (time.monotonic() - heard_at) * 1000
            log_turn(self.call_sid, text, reply, elapsed_ms, "first-sentence", error,
                     words=self.services.config.log_transcripts)
            self.services.events.bot_said(self.call_sid, reply, chatbot_ms, elapsed_ms, error)
            return False
        document = self.reply_document(reply)
        if not self.wait_for_protected_prompt():
            return False
        if turn is not None and not self.services.store.fenced(self.call_sid, turn.token):
            log.warning("call %s: a newer turn took over while this one ran; its answer is dropped", self.call_sid)
            return False
        with self.prompt.lock:
            outcome = self.services.updater.update(self.call_sid, document)
            if outcome is UpdateResult.SENT:
                self.services.store.answering(self.call_sid, "")  # the caller hears the answer: nothing to redo
                said(self.services, self.call_sid, reply)
        elapsed_ms = (time.monotonic() - heard_at) * 1000
        log_turn(self.call_sid, text, reply, elapsed_ms, outcome.value, error,
                 words=self.services.config.log_transcripts)
        self.services.events.bot_said(self.call_sid, reply, chatbot_ms, elapsed_ms, error,
                                      delivered=outcome is UpdateResult.SENT)
        if outcome is UpdateResult.CALL_ENDED:
            self.services.store.end(self.call_sid)
            self.close()
        elif outcome is not UpdateResult.SENT and reply.hints:
            self.recognizer.set_hints(reply.hints)
        return outcome is UpdateResult.SENT

    def reply_document(self, reply: Reply) -> str:
        """The TwiML that gives the caller `reply` by a call update: by reply_twiml when set, else on this stream."""
        if self.reply_twiml is not None:
            return self.reply_twiml(reply)
        return listening_reply(self.services, self.call_sid, reply, self.base_url)

    def wait_for_protected_prompt(self) -> bool:
        """Wait until a prompt that may not be interrupted is over; False when the call stopped being heard first."""
        wait = self.prompt.protected_for()
        if wait > 0:
            log.info("call %s: answer waits %.1f s for a prompt that may not be interrupted", self.call_sid, wait)
            return not self._closed.wait(wait)
        return True

    def answered(self, reply: Reply) -> None:
        """The caller is hearing `reply` (by a call update or a webhook's TwiML): see `said`."""
        said(self.services, self.call_sid, reply)

    def on_event(self, event: dict) -> None:
        """Act on word from a webhook (in this process or another) about this call's stream."""
        kind = event.get("type")
        if kind == "answered":  # the caller hears a reply: listen for what it expects next
            if event.get("language"):
                self.recognizer.set_language(event["language"])
            if event.get("hints"):
                self.recognizer.set_hints(tuple(event["hints"]))
        elif kind == "back_to_stream":
            self.outage.answer_from_now()
        elif kind == "stream_taken" and event.get("from") == self.services.me:
            log.warning("call %s: another process took this stalled process's stream over; closing it here",
                        self.call_sid)
            self.close()

    @property
    def held(self) -> bool:
        """True while a hangup or transfer is under way (an update now would cut it short)."""
        state = self.services.store.get(self.call_sid)
        return state is not None and state.held

    def _call_has_ended(self) -> bool:
        """True once the stream stopped or Twilio said the call is over."""
        state = self.services.store.get(self.call_sid)
        return state is None or state.ended

    @property
    def closed(self) -> bool:
        """True once the conversation stopped hearing the caller (call ended, handed on, or switched to <Gather>)."""
        return self._closed.is_set()

    def close(self) -> None:
        """Stop hearing the caller and release the recognizer (idempotent)."""
        if not self._closed.is_set():
            self._closed.set()
            self.recognizer.close()
