"""A live call's dialogue: final transcripts in, chatbot turns out, delivered as call updates, one at a time."""
from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Executor
from dataclasses import dataclass

from . import twiml
from .calls import CallStore
from .chatbot import ChatbotClient, ChatbotError, Reply
from .config import Config
from .recognizers import Recognizer, Transcript
from .twilio_calls import CallUpdater, UpdateResult

log = logging.getLogger(__name__)


@dataclass
class Services:
    """The long-lived collaborators a call needs, built once by the app factory."""

    config: Config
    store: CallStore
    chatbot: ChatbotClient
    updater: CallUpdater
    executor: Executor
    live: LiveCalls


def ask(services: Services, call_sid: str, message: str, input_type: str, caller: str = "") -> tuple[Reply, str | None]:
    """Ask the chatbot; on any failure return the apology (the call goes on) and the reason."""
    try:
        return services.chatbot.ask(message, call_sid, input_type, caller=caller), None
    except ChatbotError as exc:
        log.warning("chatbot failed for call %s: %s; the caller hears an apology", call_sid, exc)
        return Reply(text=services.config.apology), str(exc)


def log_turn(call_sid: str, transcript: str, reply: Reply, elapsed_ms: float, outcome: str, error: str | None) -> None:
    """Write the one structured log line every turn gets."""
    log.info("turn %s", json.dumps({
        "call": call_sid, "transcript": transcript, "reply": reply.text,
        "action": reply.action_type, "ms": round(elapsed_ms, 1), "update": outcome, "chatbot_error": error,
    }))


def listening(config: Config, base_url: str) -> dict:
    """How the stream modes' keep-alive loop waits, as twiml.incoming_call/listen/reply options: a <Pause> inside a
    keys-only <Gather> posting to /dtmf. The Pause and the Gather's timeout add up to NO_INPUT_SECONDS when set (each
    /listen hit then ends one silent stretch), else to LISTEN_PAUSE_SECONDS (the call is just kept open)."""
    total = config.no_input_seconds or config.listen_pause_seconds
    timeout = min(config.dtmf_timeout, total)
    return {"pause_seconds": total - timeout, "dtmf_url": base_url + "/dtmf", "dtmf_timeout": timeout}


def stream_reply(config: Config, reply: Reply, base_url: str) -> str:
    """The TwiML that speaks a reply in the stream modes and acts on it: keep listening, hang up, or transfer."""
    return twiml.reply(reply, base_url + "/listen", language=config.language, voice=config.voice,
                       **listening(config, base_url), **config.transfer_options(base_url + "/transfer"))


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
        return config.no_input_goodbye, True
    log.info("call %s: no input; reprompt %d of %d", call_sid, count, config.no_input_max_reprompts)
    return prompt, False


class Conversation:
    """Connects one call's recognizer to the chatbot and the call; turns of a call run in order."""

    def __init__(self, call_sid: str, caller: str, services: Services, recognizer: Recognizer, base_url: str):
        self.call_sid = call_sid
        self.caller = caller
        self.services = services
        self.recognizer = recognizer
        self.base_url = base_url
        self.turn_lock = threading.Lock()  # one turn at a time per call (speech or keys), in the order heard
        self._closed = threading.Event()
        self._held = threading.Event()  # a hangup or transfer is under way: speech gets no answer

    def start(self) -> None:
        """Start hearing the caller."""
        self.recognizer.start(self.on_result)

    def feed(self, mulaw: bytes) -> None:
        """Pass the caller's audio on to the recognizer."""
        if not self._closed.is_set():
            self.recognizer.feed(mulaw)

    def on_result(self, transcript: Transcript) -> None:
        """Queue a turn for each non-empty final transcript; returns at once."""
        if transcript.is_final and transcript.text.strip() and not self._closed.is_set():
            self.services.store.heard(self.call_sid)  # the silence clock starts again, reprompts are counted afresh
            self.services.executor.submit(self._safe_turn, transcript.text.strip(), time.monotonic())

    def _safe_turn(self, text: str, heard_at: float) -> None:
        """The executor's boundary: an unexpected error is logged with its traceback, never lost in a Future."""
        try:
            self._turn(text, heard_at)
        except Exception:
            log.exception("turn for call %s failed unexpectedly; the call keeps listening", self.call_sid)

    def _turn(self, text: str, heard_at: float) -> None:
        """Ask the chatbot and update the call; runs on the turn executor."""
        with self.turn_lock:
            if self._call_has_ended():
                log.info("call %s has already ended; dropping the turn for %r", self.call_sid, text)
                return
            if self._held.is_set():  # updating the call now would cut a transfer or the goodbye short
                log.info("call %s is being transferred or hung up; not answering %r", self.call_sid, text)
                return
            state = self.services.store.get(self.call_sid)
            reply, error = ask(self.services, self.call_sid, text, "speech", self.caller)
            if self._call_has_ended():
                log.info("call %s has already ended while its reply was in flight; reply dropped", self.call_sid)
                return
            document = stream_reply(self.services.config, reply, self.base_url)
            outcome = self.services.updater.update(self.call_sid, document)
            log_turn(self.call_sid, text, reply, (time.monotonic() - heard_at) * 1000, outcome.value, error)
            if outcome is UpdateResult.CALL_ENDED:
                self.services.store.end(self.call_sid)
                self.close()
                return
            if outcome is UpdateResult.SENT:
                self.answered(reply)
            elif reply.hints:
                self.recognizer.set_hints(reply.hints)
            self.services.store.record_turn(self.call_sid, reply.hints or (state.hints if state else ()), reply.reprompt)

    def answered(self, reply: Reply) -> None:
        """The caller is hearing `reply` (by a call update or a webhook's TwiML): follow its hints and action."""
        if reply.action_type is not None:
            self._held.set()  # until the goodbye ends the call, or /transfer brings the caller back
        if reply.hints:
            self.recognizer.set_hints(reply.hints)

    def resume(self) -> None:
        """Answer the caller again (a transfer was not answered)."""
        self._held.clear()

    def _call_has_ended(self) -> bool:
        """True once the stream stopped or Twilio said the call is over."""
        state = self.services.store.get(self.call_sid)
        return state is None or state.ended

    @property
    def closed(self) -> bool:
        """True once the call ended or another stream took over: its stream need not be read any more."""
        return self._closed.is_set()

    def close(self) -> None:
        """Stop hearing the caller and release the recognizer (idempotent)."""
        if not self._closed.is_set():
            self._closed.set()
            self.recognizer.close()


class LiveCalls:
    """The conversations this process is running, by CallSid, so /status can release them."""

    def __init__(self):
        self._calls: dict[str, Conversation] = {}
        self._lock = threading.Lock()

    def add(self, conversation: Conversation) -> None:
        """Track a conversation, closing any older one for the same call (a reconnected stream)."""
        with self._lock:
            old = self._calls.get(conversation.call_sid)
            self._calls[conversation.call_sid] = conversation
        if old is not None:
            log.warning("call %s opened a second stream; closing the first", conversation.call_sid)
            old.close()

    def release(self, call_sid: str, conversation: Conversation | None = None) -> None:
        """Close and forget a call's conversation (only `conversation` itself, when given)."""
        with self._lock:
            current = self._calls.get(call_sid)
            if current is None or (conversation is not None and current is not conversation):
                current = None
            else:
                del self._calls[call_sid]
        if current is not None:
            current.close()

    def get(self, call_sid: str) -> Conversation | None:
        """The call's live conversation in this process, if its stream is open here."""
        with self._lock:
            return self._calls.get(call_sid)

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)
