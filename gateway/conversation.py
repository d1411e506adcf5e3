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


class Conversation:
    """Connects one call's recognizer to the chatbot and the call; turns of a call run in order."""

    def __init__(self, call_sid: str, caller: str, services: Services, recognizer: Recognizer, listen_url: str):
        self.call_sid = call_sid
        self.caller = caller
        self.services = services
        self.recognizer = recognizer
        self.listen_url = listen_url
        self._turn_lock = threading.Lock()  # one turn at a time per call, in the order heard
        self._closed = threading.Event()

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
            self.services.executor.submit(self._safe_turn, transcript.text.strip(), time.monotonic())

    def _safe_turn(self, text: str, heard_at: float) -> None:
        """The executor's boundary: an unexpected error is logged with its traceback, never lost in a Future."""
        try:
            self._turn(text, heard_at)
        except Exception:
            log.exception("turn for call %s failed unexpectedly; the call keeps listening", self.call_sid)

    def _turn(self, text: str, heard_at: float) -> None:
        """Ask the chatbot and update the call; runs on the turn executor."""
        with self._turn_lock:
            if self._call_has_ended():
                log.info("call %s has already ended; dropping the turn for %r", self.call_sid, text)
                return
            state = self.services.store.get(self.call_sid)
            reply, error = ask(self.services, self.call_sid, text, "speech", self.caller)
            if self._call_has_ended():
                log.info("call %s has already ended while its reply was in flight; reply dropped", self.call_sid)
                return
            config = self.services.config
            transfer_url = self.listen_url.rsplit("/", 1)[0] + "/transfer"
            document = twiml.reply(reply, self.listen_url, language=config.language, voice=config.voice,
                                   pause_seconds=config.listen_pause_seconds, **config.transfer_options(transfer_url))
            outcome = self.services.updater.update(self.call_sid, document)
            log_turn(self.call_sid, text, reply, (time.monotonic() - heard_at) * 1000, outcome.value, error)
            if outcome is UpdateResult.CALL_ENDED:
                self.services.store.end(self.call_sid)
                self.close()
                return
            if reply.hints:
                self.recognizer.set_hints(reply.hints)
            self.services.store.record_turn(self.call_sid, reply.hints or (state.hints if state else ()))

    def _call_has_ended(self) -> bool:
        """True once the stream stopped or Twilio said the call is over."""
        state = self.services.store.get(self.call_sid)
        return state is None or state.ended

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

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)
