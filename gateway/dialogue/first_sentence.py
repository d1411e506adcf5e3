"""The first sentence first: an answer still being written is said a sentence ahead, the rest at /continue.

The turn updates the call with the answer's first complete sentence and a <Redirect> to /continue; the rest is
written meanwhile, and Twilio fetches it once the sentence has been said. A barge-in replaces the document, so the
<Redirect> is never reached and the rest is never said (the history is cut to what was heard, as for any prompt).
The rest waits in this process. A /continue that reaches another one (several processes, no sticky routing) keeps
the call listening there; if nobody here claimed the rest soon after the sentence should have ended, this process
updates the call with it.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from ..twilio import twiml
from ..chatbots.reply import Reply
from ..twilio.rest import UpdateResult
from .continuations import Continuation
from .phone_answer import speech

if TYPE_CHECKING:
    from ..services import Services
    from .line import StreamCall

log = logging.getLogger(__name__)

# After the first sentence's estimated end, how long /continue may take to reach this process before the rest is sent
# as a call update instead (Twilio fetches a <Redirect> within a few hundred milliseconds).
UNCLAIMED_SECONDS = 1.0


class EarlySentence:
    """One turn's side: say the first sentence the chatbot hands over, then leave the rest for /continue."""

    def __init__(self, conversation: StreamCall, services: Services, heard_at: float):
        self.conversation, self.services = conversation, services
        self.heard_at = heard_at
        self.sentence: str | None = None
        self.continuation: Continuation | None = None
        self.prompt = 0  # the PromptClock number of the first sentence: still current unless something replaced it

    def say(self, sentence: str) -> bool:
        """Update the call with `sentence` and a <Redirect> to /continue; True when the caller is hearing it. Not
        while the call's answers go another way (a hand-over, <Gather> listening), nor during a hangup or transfer."""
        conversation, services = self.conversation, self.services
        call_sid = conversation.call_sid
        state = services.store.get(call_sid)
        if (conversation.reply_twiml is not None or conversation.held or conversation.closed or state is None
                or state.ended or state.speech_fallback):
            return False
        config = services.config.for_call(state.language, state.voice)
        continuation = services.continuations.open(call_sid)
        document = twiml.first_sentence(sentence, f"{conversation.base_url}/continue?answer={continuation.token}",
                                        language=config.language, voice=config.voice,
                                        speech=speech(Reply(sentence), config))
        if not conversation.wait_for_protected_prompt():
            services.continuations.discard(call_sid, continuation)
            return False
        # The caller is about to hear the start of the answer: were this process to die now, the one taking the
        # call over must not answer the same words again (the rest is lost with this process).
        services.store.answering(call_sid, "")
        with conversation.prompt.lock:
            outcome = services.updater.update(call_sid, document)
            conversation.prompt.next_prompt()
        if outcome is not UpdateResult.SENT:
            services.continuations.discard(call_sid, continuation)
            return False  # the whole answer goes the usual way (a call that ended drops it there)
        self.prompt = conversation.speaking(sentence)
        self.sentence, self.continuation = sentence, continuation
        log.info("call %s: first sentence (%d characters) sent %.0f ms after the caller's words; the rest follows",
                 call_sid, len(sentence), (time.monotonic() - self.heard_at) * 1000)
        return True

    def drop(self) -> None:
        """The call ended while the answer was written: nobody will ask for the rest."""
        if self.continuation is not None:
            self.services.continuations.discard(self.conversation.call_sid, self.continuation)

    def rest(self, reply: Reply) -> bool:
        """Hand /continue the rest of the finished `reply` (an apology if it failed midway); False when no first
        sentence was said, and the reply goes out whole."""
        if self.sentence is None or self.continuation is None:
            return False
        text = reply.text[len(self.sentence):].strip() if reply.text.startswith(self.sentence) else reply.text
        rest = replace(reply, text=text)
        self.continuation.finish(rest)
        if self.conversation.closed:
            self.services.continuations.discard(self.conversation.call_sid, self.continuation)
        else:
            self._unclaimed(rest)
        return True

    def _unclaimed(self, rest: Reply) -> None:
        """Wait for /continue to take the rest (or a barge-in to drop it); untaken soon after the sentence's end (it
        reached another process), send the rest as a call update, unless something else replaced the sentence."""
        conversation, services = self.conversation, self.services
        call_sid, continuation = conversation.call_sid, self.continuation
        wait = conversation.prompt.speaking_for() + UNCLAIMED_SECONDS
        while not continuation.settled.wait(wait):
            more = conversation.prompt.speaking_for()  # the outbound track keeps a sentence still heard open
            if more <= 0:
                break
            wait = more + UNCLAIMED_SECONDS
        else:
            return
        if services.continuations.take(call_sid, continuation.token) is None:
            return
        with conversation.prompt.lock:
            if not conversation.prompt.plays_on(self.prompt) or conversation.held or conversation.closed:
                return
            outcome = services.updater.update(call_sid, conversation.reply_document(rest))
            conversation.prompt.next_prompt()
        log.warning("call %s: /continue did not reach this process within %.1f s of the first sentence's end; the "
                    "rest went as a call update (%s)", call_sid, UNCLAIMED_SECONDS, outcome.value)
        if outcome is UpdateResult.SENT:
            conversation.answered(rest)
        elif outcome is UpdateResult.CALL_ENDED:
            services.store.end(call_sid)
            conversation.close()
