"""What a ConversationRelay bot says with no prompt pending (a greeting after `setup`, its own idle reprompt, the
sentences after a prompt's first, a play, tones, a language switch, its `end`), given to the call by the one turn
path: recorded, then delivered by a call update through the call's stream conversation (its Line).

An update replaces what the caller hears, so a push never goes out while something is still being said: it waits
behind it and everything that waited goes out together (`relay_protocol.merged`) once it is over. What waited behind
a prompt the caller cut short (barge-in) is dropped, as ConversationRelay drops a bot's unsaid text.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from ..chatbots import CallSessions
from ..chatbots.relay_protocol import Play, RelayReply, SendDigits, merged
from .turn import Answer, Heard, deliver, record

if TYPE_CHECKING:
    from ..calls.live_calls import LiveCalls
    from ..calls.store import CallState
    from ..services import Services
    from .conversation import Conversation

log = logging.getLogger(__name__)

POLL_SECONDS = 0.05  # how often a waiting push looks whether the caller is still hearing something (or cut it)
# A recording's length is unknown without fetching it; tones take about this long a key. A push waits this long
# after a <Play> went out, so that the next words do not cut it (loop="0" plays until anything else is said).
PLAY_SECONDS = 2.0
DIGIT_SECONDS = 0.3


class RelayPushes:
    """Takes each pushed RelayReply in the process holding the call's stream, queued per call in arrival order."""

    def __init__(self, live: LiveCalls):
        self._live = live
        self._lock = threading.Lock()
        # (the prompt it arrived under, whether the caller had cut that prompt already, the reply)
        self._queues: dict[str, list[tuple[int, bool, RelayReply]]] = {}
        self._busy_until: dict[str, float] = {}  # a play or tones sent by a push go on until about then
        self._running: set[str] = set()

    def pushed(self, call_sid: str, reply: RelayReply) -> None:
        """The bot said `reply` with no prompt pending (the chatbot's push thread): queue it for the call."""
        conversation = self._live.get(call_sid)
        if conversation is None or conversation.closed:
            log.warning("call %s: the bot said %d characters unprompted, but this process holds no stream of the "
                        "call to say them on; not said", call_sid, len(reply.text))
            return
        state = conversation.services.store.get(call_sid)
        with self._lock:
            self._queues.setdefault(call_sid, []).append(
                (state.prompt if state is not None else 0, state is not None and state.prompt_cut, reply))
            if call_sid in self._running:
                return
            self._running.add(call_sid)
        conversation.services.executor.submit(self._say_queued, conversation)

    def _say_queued(self, conversation: Conversation) -> None:
        """The executor's boundary: deliver the call's queue, a batch each time the caller stops hearing something."""
        call_sid = conversation.call_sid
        try:
            while self._next_batch(conversation):
                pass
        except Exception:
            log.exception("call %s: saying what the bot said unprompted failed", call_sid)
        finally:
            with self._lock:
                self._running.discard(call_sid)
                queue = self._queues.get(call_sid)
                again = bool(queue) and not conversation.closed
                if again:
                    self._running.add(call_sid)
                else:
                    self._queues.pop(call_sid, None)
                    self._busy_until.pop(call_sid, None)
            if again:  # a push came in as this task was finishing
                conversation.services.executor.submit(self._say_queued, conversation)

    def _next_batch(self, conversation: Conversation) -> bool:
        """Wait until nothing is being said, then deliver what waited (under the call's turn lock, so a turn's first
        sentence goes out before the rest of its answer); False once the queue is empty or the call is gone."""
        services, call_sid = conversation.services, conversation.call_sid
        if not self._still_wanted(conversation, services.store.get(call_sid), locked=False):
            return False
        if self._wait_seconds(conversation) > 0:
            time.sleep(POLL_SECONDS)
            return True
        with services.turn(call_sid) as turn:
            if not self._still_wanted(conversation, services.store.get(call_sid), locked=True):
                return False
            if self._wait_seconds(conversation) > 0:  # a turn's answer went out while this waited for the lock
                return True
            with self._lock:
                batch = [reply for _, _, reply in self._queues.get(call_sid, [])]
                self._queues[call_sid] = []
            if batch:
                self._deliver(services, conversation, turn, merged(batch))
        return True

    def _still_wanted(self, conversation: Conversation, state: CallState | None, locked: bool) -> bool:
        """Drop what waited behind a prompt the caller cut short, and everything on a call that is over or held;
        True while something is left to say. What came in after the cut is either the rest of the cut answer or
        the start of the answer to the interrupting words: only under the turn lock (no turn half done) does a
        prompt still cut tell that no new answer went out since."""
        call_sid = conversation.call_sid
        gone = conversation.closed or state is None or state.ended or state.held
        with self._lock:
            queue = self._queues.get(call_sid, [])
            kept = [] if gone else [_behind(state, p, late) + (r,) for p, late, r in queue
                                    if not _cut_short(state, p, late, locked)
                                    or r.ended]  # the bot's end still hangs up or hands the call on
            if len(kept) < len(queue):
                log.info("call %s: %d of the bot's unprompted replies not said (%s)", call_sid,
                         len(queue) - len(kept), "the call is over" if gone else "the caller cut the bot short")
            self._queues[call_sid] = kept
            return bool(kept)

    def _wait_seconds(self, conversation: Conversation) -> float:
        """How long the caller goes on hearing what was sent last (a <Say>'s estimate, or a push's play or tones)."""
        busy = self._busy_until.get(conversation.call_sid, 0.0) - time.monotonic()
        return max(busy, conversation.prompt.speaking_for())

    def _deliver(self, services: Services, conversation: Conversation, turn, reply: RelayReply) -> None:
        """Record the reply and give it to the caller (turn.deliver); a language switch alone is applied silently."""
        call_sid = conversation.call_sid
        heard = Heard(call_sid, "", "speech", conversation.caller)
        state = record(services, call_sid, reply)
        if not reply.parts and not reply.ended:
            if reply.listen_language:
                services.tell_stream(call_sid, {"type": "answered", "hints": [], "language": reply.listen_language})
            return
        if deliver(services, heard, Answer(reply, None, state, 0.0), conversation, turn):
            playing = sum(PLAY_SECONDS * max(part.loop, 1) if isinstance(part, Play) else
                          DIGIT_SECONDS * len(part.digits) if isinstance(part, SendDigits) else 0.0
                          for part in reply.parts)
            if playing:
                with self._lock:
                    self._busy_until[call_sid] = time.monotonic() + conversation.prompt.speaking_for() + playing


def _cut_short(state: CallState, prompt: int, late: bool, locked: bool) -> bool:
    """Whether a push that came in under `prompt` (after its cut when `late`) belongs to what the caller cut short:
    it waited behind the prompt now cut, or behind one before it (the cut one was the answer it continues)."""
    if not state.prompt_cut:
        return False
    return prompt < state.prompt or (prompt == state.prompt and (locked or not late))


def _behind(state: CallState, prompt: int, late: bool) -> tuple[int, bool]:
    """A push waits behind what the caller hears now, once it plays uncut (a turn's first sentence that went out
    after it came in: it is that answer's rest)."""
    return (state.prompt, False) if not state.prompt_cut and prompt < state.prompt else (prompt, late)


def stream_started(services: Services, call_sid: str, state: CallState) -> None:
    """This process now holds the call's stream: a chatbot with a connection per call opens it here (a `setup`;
    after a crash or a handoff, a new connection for the same session)."""
    chatbot = services.chatbot
    if isinstance(chatbot, CallSessions):
        chatbot.open(call_sid, caller=state.caller, called=state.called)


def stream_gone(services: Services, call_sid: str) -> None:
    """This process no longer holds the call's stream (the call ended, or its stream moved): close its connection,
    unless a newer stream of the call started here meanwhile (it holds the connection now)."""
    chatbot = services.chatbot
    if isinstance(chatbot, CallSessions) and services.live.get(call_sid) is None:
        chatbot.end_call(call_sid)
