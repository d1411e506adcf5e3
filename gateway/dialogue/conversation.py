"""A live call's dialogue: final transcripts in, chatbot turns out, delivered as call updates, one at a time."""
from __future__ import annotations

import logging
import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Callable

from ..twilio import twiml
from ..chatbots.reply import Reply
from .first_sentence import EarlySentence
from .serial import SerialWork
from .answers import apology_document, listening, listening_reply
from .prompt import PromptClock, say_seconds
from ..recognizers import Recognizer, Transcript
from ..services import Services
from .speech_outage import OutageFallback
from .stream_turns import StreamTurns
from .turn_taking import SPEECH
from ..twilio.rest import UpdateResult
from .turn import Heard, answer_by_update, said

if TYPE_CHECKING:
    from ..calls.coordination import Turn
    from ..calls.store import CallState

log = logging.getLogger(__name__)


class Conversation:
    """Connects one call's recognizer to the chatbot and the call; turns of a call run in order."""

    def __init__(self, call_sid: str, caller: str, services: Services, recognizer: Recognizer, base_url: str):
        self.call_sid = call_sid
        self.caller = caller
        self.services = services
        self.recognizer = recognizer
        self.base_url = base_url
        # Speech turns (and cuts), one at a time: a slow chatbot holds one thread per call, not one per utterance.
        self._turns = SerialWork(services.executor, f"turn for call {call_sid} failed unexpectedly; the caller hears "
                                 "the apology", on_error=self._apologize)
        # The recognizer's results, off its shared loop (they read and change the call's state) and never behind a
        # turn waiting for the chatbot: a barge-in is decided while the turn before it is still being answered.
        self._results = SerialWork(services.heard, f"call {call_sid}: a transcript could not be handled")
        self._closed = threading.Event()
        self.prompt = PromptClock(services.store, call_sid)  # what the caller is hearing, for barge-in
        # How a turn's reply reaches the call when not by this stream's keep-alive loop: handed to the next process
        # during a graceful shutdown (drain.py), or inside a <Gather> once the stream is gone (limits.py).
        self.reply_twiml: Callable[[Reply], str] | None = None
        self.outage = OutageFallback(self, services)  # recognition down: the call listens through <Gather> meanwhile
        self.listener = StreamTurns(services, call_sid, services.config.language)  # what the caller hears and says

    def start(self, greeting_seconds: float = 0.0) -> None:
        """Start hearing the caller, who may speak over the greeting (from /voice's TwiML) for `greeting_seconds`."""
        if greeting_seconds > 0:  # a restarted stream leaves what the caller hears as it was
            state = self.services.store.get(self.call_sid)
            self._speaking(greeting_seconds, interruptible=True, text=state.prompt_text if state else "")
        self.recognizer.start(self.on_result, on_health=self.outage.health_changed)

    def feed(self, mulaw: bytes) -> None:
        """Pass the caller's audio on to the recognizer."""
        if not self._closed.is_set():
            self.outage.heard_audio(len(mulaw))
            self.recognizer.feed(mulaw)

    def on_result(self, transcript: Transcript) -> None:
        """The recognizer's callback (on the shared speech loop): the result is handled on the `heard` pool, in
        order."""
        if not self._closed.is_set():
            self._results.submit(partial(self._result, transcript))

    def _result(self, transcript: Transcript) -> None:
        """The caller's words: the first recognized word that is neither a backchannel nor the prompt's echo stops
        the prompt; a final that is speech becomes a turn once the caller has finished (unfinished sentences wait
        and are joined); backchannels and echo over a prompt are dropped."""
        if self._closed.is_set():
            return
        text = transcript.text.strip()
        try:
            if transcript.speech_started:
                self.listener.speech_started()  # no barge-in on a sound: wait for words
            if not transcript.is_final:
                if text and self.listener.interrupts(text):
                    self._barge_in()
            elif text and self.outage.stream_may_answer(transcript):
                self._final(text, transcript.confidence)
        except Exception as exc:  # the recognizer's callback boundary: the call's state may be unreachable
            log.error("call %s: a transcript could not be handled (%s: %s)", self.call_sid, exc.__class__.__name__, exc)
            if transcript.is_final and text:  # its turn apologizes if the state stays unreachable
                self._queue_turn(text, time.monotonic())

    def _final(self, text: str, confidence: float = 1.0) -> None:
        """A final transcript: dropped (backchannel, echo), or the caller's words, answered once they finished."""
        kind = self.listener.classify(text, final=True)
        if kind != SPEECH:
            self.listener.dropped()
            log.info("call %s: %s over the prompt (%d characters) neither stops it nor is a turn", self.call_sid,
                     kind, len(text))
            return
        if self.listener.interrupts(text, final=True):  # recognizers that send no interims stop the prompt on the final
            self._barge_in()
        self.services.store.heard(self.call_sid)  # the silence clock starts again, reprompts counted afresh
        turn = self.listener.final(text, confidence)
        if turn is not None:
            self._take_words(turn)
        else:
            log.info("call %s: %d characters wait for the rest of the caller's sentence", self.call_sid, len(text))

    def _take_words(self, turn: str) -> None:
        """The caller finished their turn: the chatbot gets it (one message, however many finals it took)."""
        self.services.events.caller_said(self.call_sid, turn)
        self._queue_turn(turn, time.monotonic())

    def tick(self) -> None:
        """The stream loop's beat: an unfinished sentence whose wait ran out is answered as it is."""
        if self._closed.is_set():
            return
        turn = self.listener.tick()
        if turn is not None:
            self._take_words(turn)

    def answer_waiting_words(self) -> None:
        """The call is moving on (a graceful shutdown hands it to the next process): words still waiting for the
        caller to finish their sentence are answered now, on this thread, rather than lost with this process."""
        turn = self.listener.flush()
        if turn is not None and not self._closed.is_set():
            log.info("call %s: answering %d characters that waited for more before the call moves on",
                     self.call_sid, len(turn))
            self.services.events.caller_said(self.call_sid, turn)
            self._turn(turn, time.monotonic())

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
            said, heard = self.listener.heard(*self.prompt.heard(self.services.store.now()))
            self.services.executor.submit(self._stop_talking, prompt, time.monotonic())
            if said and heard != said:  # the chatbot learns what the caller heard, after the turn it answered
                self._turns.submit(partial(self._cut, said, heard))

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
        """Queue a turn behind the call's turns: they keep their order."""
        self._turns.submit(partial(self._turn, text, heard_at))

    def _apologize(self) -> None:
        """A turn failed unexpectedly (logged): the caller hears the apology, and the call goes on."""
        self.services.updater.update(self.call_sid, apology_document(self.services.config, self.base_url))

    def _turn(self, text: str, heard_at: float) -> None:
        """Ask the chatbot and update the call; runs on the turn executor. Until it is done the words wait in the
        call's state, so that if this process dies mid-turn the process that takes the call over answers them."""
        with self.services.turn(self.call_sid) as turn:
            state = self.services.store.answering(self.call_sid, text)
            delivered = False
            try:
                delivered = self._answer(turn, text, heard_at, state)
            finally:
                if not delivered:
                    self.services.store.answering(self.call_sid, "")

    def _answer(self, turn: Turn | None, text: str, heard_at: float, state: CallState | None) -> bool:
        """The turn itself (turn.py), under the call's turn lock; True once its answer went out."""
        if turn is None:
            log.warning("call %s: another turn is still running; answering this one anyway", self.call_sid)
        heard = Heard(self.call_sid, text, "speech", self.caller, heard_at)
        return answer_by_update(self.services, heard, self, turn, EarlySentence(self, self.services, heard_at),
                                state)

    def _keys(self, digits: str) -> None:
        """Keys as a turn of this stream's (the chatbot's connection for the call is held here)."""
        with self.services.turn(self.call_sid) as turn:
            answer_by_update(self.services, Heard(self.call_sid, digits, "dtmf", self.caller), self, turn)

    # ---- the call's line for turn.answer_by_update ----------------------------------------------------------
    @property
    def lock(self) -> threading.Lock:
        """Held while this process sends a call update (PromptClock.lock)."""
        return self.prompt.lock

    def document(self, reply: Reply, state: CallState | None = None) -> str:
        """The TwiML that gives the caller `reply` now (`state`: the call's, when just read)."""
        return self.reply_document(reply, state)

    def ready(self, turn: Turn | None, state: CallState | None = None) -> bool:
        """After any prompt that may not be cut (as `state` says, when just read), unless the call stopped being heard
        meanwhile or a newer turn took over while this one ran."""
        if not self.wait_for_protected_prompt(state):
            return False
        if turn is not None and not self.services.store.fenced(self.call_sid, turn.token):
            log.warning("call %s: a newer turn took over while this one ran; its answer is dropped", self.call_sid)
            return False
        return True

    def not_delivered(self, reply: Reply, outcome: UpdateResult) -> None:
        """An ended call stops being heard; otherwise the recognizer still follows the reply's hints."""
        if outcome is UpdateResult.CALL_ENDED:
            self.close()
        elif reply.hints:
            self.recognizer.set_hints(reply.hints)

    def reply_document(self, reply: Reply, state: CallState | None = None) -> str:
        """The TwiML that gives the caller `reply` by a call update: by reply_twiml when set, else on this stream."""
        if self.reply_twiml is not None:
            return self.reply_twiml(reply)
        return listening_reply(self.services, self.call_sid, reply, self.base_url, state)

    def wait_for_protected_prompt(self, state: CallState | None = None) -> bool:
        """Wait until a prompt that may not be interrupted is over; False when the call stopped being heard first."""
        wait = self.prompt.protected_for(state)
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
        elif kind == "keys" and event.get("digits"):  # pressed on another process's webhook: a turn here
            self._turns.submit(partial(self._keys, str(event["digits"])))
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
