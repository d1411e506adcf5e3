"""Graceful shutdown: on SIGTERM every live call finishes its turn and moves, politely, to the next process."""
from __future__ import annotations

import logging
import signal
import threading
import time
from typing import TYPE_CHECKING

from ..twilio import twiml
from ..chatbots.reply import Reply
from ..dialogue.answers import call_config, stream_reply
from .handoff import Handoff, resume_url

if TYPE_CHECKING:
    from ..calls.coordination import TurnLocks
    from ..calls.live_calls import LiveCalls
    from ..calls.store import CallStore
    from ..config import Config
    from ..dialogue.conversation import Conversation
    from ..twilio.rest import CallUpdater

log = logging.getLogger(__name__)

SPEAKING_POLL_SECONDS = 0.2  # how often a call's hand-over looks again whether its answer is still being heard


class Drain:
    """This process's shutdown: refuses new calls and streams, hands every live call on through /resume."""

    def __init__(self, config: Config, store: CallStore, updater: CallUpdater, live: LiveCalls, turns: TurnLocks,
                 budget_seconds: float = 20.0):
        self.config, self.store, self.updater, self.live, self.turns = config, store, updater, live, turns
        self.budget = budget_seconds  # how long a call's turn in flight may keep the drain waiting
        self._draining = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def draining(self) -> bool:
        """True once the shutdown has begun."""
        return self._draining.is_set()

    def install(self) -> bool:
        """Chain a SIGTERM handler before gunicorn's worker handler (it stops accepting and waits for requests).

        Only under a gunicorn worker, in the main thread: elsewhere SIGTERM keeps its usual meaning.
        """
        if threading.current_thread() is not threading.main_thread():
            return False
        previous = signal.getsignal(signal.SIGTERM)
        worker = getattr(previous, "__self__", None)
        if worker is None or not type(worker).__module__.startswith("gunicorn."):
            return False
        graceful = getattr(getattr(worker, "cfg", None), "graceful_timeout", None)
        if isinstance(graceful, (int, float)) and graceful > 0:
            self.budget = max(1.0, graceful - 5.0)  # leave time to send the handoffs before gunicorn gives up

        def on_sigterm(signum, frame):
            self.begin()  # no logging here: the signal may land while the main thread holds a logging lock
            previous(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)
        signal.siginterrupt(signal.SIGTERM, False)  # as gunicorn had it: the signal must not break system calls
        return True

    def begin(self) -> None:
        """Start draining (idempotent); the handoffs run in a background thread."""
        if self._draining.is_set():
            return
        self._draining.set()
        self._thread = threading.Thread(target=self._run, name="drain", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every call live at the start of the drain has been dealt with."""
        return self._done.wait(timeout)

    def _run(self) -> None:
        """Hand every live call on; a call with a turn in flight hands itself on with that turn's answer."""
        try:
            conversations = self.live.all()
            log.info("shutting down: handing %d live calls on to the next process; new calls are passed on",
                     len(conversations))
            for conversation in conversations:  # first, so a turn finishing now delivers its answer via the handoff
                conversation.reply_twiml = lambda reply, c=conversation: self._hand_on_reply(c, reply)
            threads = [threading.Thread(target=self._hand_on_safely, args=(c,), name="drain-call", daemon=True)
                       for c in conversations]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + self.budget + 5
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            log.info("shutdown: every live call has been dealt with")
        except Exception:  # the thread's boundary: log it; gunicorn still stops the process at its graceful timeout
            log.exception("shutdown: handing calls on failed")
        finally:
            self._done.set()

    def _hand_on_reply(self, conversation: Conversation, reply: Reply) -> str:
        """A turn's answer while draining: said by the next process, right after its stream starts hearing."""
        if reply.action_type == "hangup":  # the call ends with this answer: nothing to move
            return stream_reply(call_config(self.config, self.store.get(conversation.call_sid)),
                                reply, conversation.base_url)
        conversation.close()  # the next process hears the caller from now on; two listeners would answer twice
        log.info("call %s: its turn's answer goes with the call to the next process", conversation.call_sid)
        return self.handoff_twiml(conversation.call_sid, conversation.base_url, reply)

    def _hand_on_safely(self, conversation: Conversation) -> None:
        """The drain-call thread's boundary: a call that cannot be moved (its state unreachable) ends with us."""
        try:
            self._hand_on_when_idle(conversation)
        except Exception as exc:
            log.error("call %s: could not be handed on (%s: %s); it ends with this process", conversation.call_sid,
                      exc.__class__.__name__, exc)

    def _hand_on_when_idle(self, conversation: Conversation) -> None:
        """Once the call's turn in flight (if any) is over, move the call unless that turn already did."""
        call_sid = conversation.call_sid
        started = time.monotonic()
        conversation.answer_waiting_words()  # its answer goes with the call (reply_twiml), like a turn in flight's
        # The caller may still be hearing an answer: an update now would cut it off. Looked at again and again, since
        # the outbound track pushes the prompt's end on while it is still heard (a voice slower than the estimate).
        patience = started + self.budget / 2
        while (speaking := conversation.prompt.speaking_for()) > 0 and time.monotonic() < patience:
            time.sleep(min(speaking, SPEAKING_POLL_SECONDS, max(0.0, patience - time.monotonic())))
        turn = self.turns.acquire(call_sid, max(1.0, self.budget - (time.monotonic() - started)))
        if turn is None:
            log.warning("call %s: its turn is still running after %g s; left to end with this process", call_sid,
                        self.budget)
            return
        try:
            state = self.store.get(call_sid)
            if conversation.closed or state is None or state.ended:
                return  # moved by its turn, switched to <Gather>, or over
            conversation.close()
            if conversation.held:  # a goodbye or a transfer is playing out: an update would cut it short
                log.info("call %s: hangup or transfer under way; not moved", call_sid)
                return
            outcome = self.updater.update(call_sid, self.handoff_twiml(call_sid, conversation.base_url))
            log.info("call %s: handed on to the next process (%s)", call_sid, outcome.value)
        finally:
            turn.release()

    def handoff_twiml(self, call_sid: str, base_url: str, reply: Reply | None = None) -> str:
        """DRAIN_MESSAGE, then a redirect to /resume carrying the call's state (and the answer still to be said)."""
        config = self.config
        state = self.store.get(call_sid)
        hints = (reply.hints if reply and reply.hints else ()) or (state.hints if state else ())
        handoff = Handoff(say=reply.text if reply else "", action=reply.action_type if reply else None,
                          to=reply.transfer_to if reply else None, hints=hints,
                          reprompt=reply.reprompt if reply else (state.reprompt if state else ""),
                          started=state.started_at if state else None,
                          language=state.language if state else "", voice=state.voice if state else "")
        config = call_config(config, state)
        return twiml.handoff(resume_url(base_url, handoff), config.drain_message, language=config.language,
                             voice=config.voice)

    def pass_on_new_call(self, call_sid: str, base_url: str) -> str:
        """A call coming in while this process drains: after a second, /resume greets it in the next process."""
        config = self.config
        log.info("call %s came in while shutting down; passing it on to the next process", call_sid)
        handoff = Handoff(say=config.greeting, hints=config.hints, started=time.time())
        return twiml.handoff(resume_url(base_url, handoff), pause_seconds=1)
