"""Stream modes while speech recognition is down: the call listens through <Gather> (Twilio recognizes), then returns.

The recognizer reports an outage once its streams have failed for SPEECH_OUTAGE_SECONDS; the call is then updated to a
speech-and-keys <Gather> posting to /gather, while the Media Stream (which runs until the call ends) keeps feeding the
recognizer, which keeps retrying. Once it reports recognition back, the next TwiML the gateway hands the call (the
answer to a <Gather> result, usually) is the stream-mode one again. Only one source answers at a time: while the call
is on <Gather>, and for audio the <Gather> already heard, stream transcripts are dropped.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from .answers import gather_document
from ..audio import SAMPLE_RATE
from ..recognizers import Transcript
from ..twilio.rest import UpdateResult

if TYPE_CHECKING:
    from ..services import Services
    from .line import StreamCall

log = logging.getLogger(__name__)

MAX_PROMPT_WAIT_SECONDS = 30.0  # a prompt's estimated length is bounded; the switch to <Gather> waits no longer


class OutageFallback:
    """One call's side of an outage: switch the call to <Gather>, and keep the stream from answering meanwhile."""

    def __init__(self, conversation: StreamCall, services: Services):
        self.conversation, self.services = conversation, services
        self._audio_bytes = 0  # audio fed to the recognizer so far: the timeline of Transcript.end_seconds
        self._answer_from = 0.0  # stream transcripts ending before this (seconds) were for the <Gather> to answer
        # A new stream (a reconnect) has a fresh recognizer, healthy until it says otherwise: were the call still on
        # <Gather>, it returns at its next answer rather than waiting for a recovery this recognizer never reports.
        services.store.set_speech(conversation.call_sid, down=False)

    def heard_audio(self, size: int) -> None:
        """Count audio fed to the recognizer (the websocket thread)."""
        self._audio_bytes += size

    def answer_from_now(self) -> None:
        """The call is back on the stream: words already said were the <Gather>'s to answer."""
        self._answer_from = self._audio_bytes / SAMPLE_RATE

    def stream_may_answer(self, transcript: Transcript) -> bool:
        """Whether a final stream transcript gets a turn: not while the call is on <Gather>, nor for audio it heard."""
        call_sid = self.conversation.call_sid
        state = self.services.store.get(call_sid)
        if state is not None and state.speech_fallback:
            log.info("call %s listens through <Gather> for now; the stream's %d characters are left to it",
                     call_sid, len(transcript.text))
            return False
        if transcript.end_seconds is not None and transcript.end_seconds < self._answer_from:
            log.info("call %s: the stream's %d characters were heard by <Gather> already; not answered twice",
                     call_sid, len(transcript.text))
            return False
        return True

    def health_changed(self, ok: bool) -> None:
        """The recognizer's report (any thread): handled on the turn executor, in order with the call's turns."""
        self.services.executor.submit(self._safe_change, ok)

    def _safe_change(self, ok: bool) -> None:
        """The executor's boundary: a failure here is logged, and the call goes on as it was."""
        try:
            self._recognition_back() if ok else self._recognition_down()
        except Exception:
            log.exception("call %s: handling a speech recognition %s failed", self.conversation.call_sid,
                          "recovery" if ok else "outage")

    def _recognition_back(self) -> None:
        """Mark recognition back; the call leaves <Gather> with the next TwiML the gateway hands it."""
        conversation = self.conversation
        before = self.services.store.set_speech(conversation.call_sid, down=False)
        if before is not None and before.speech_fallback:
            log.info("call %s: speech recognition is back; the call returns to the stream at its next answer",
                     conversation.call_sid)
            self.services.events.action(conversation.call_sid, "speech-back")

    def _recognition_down(self) -> None:
        """Switch the live call to <Gather> (once), unless a transfer or the goodbye is playing."""
        conversation, services = self.conversation, self.services
        call_sid = conversation.call_sid
        with services.turn(call_sid):  # a turn in flight goes first; its answer then comes as <Gather> too
            before = services.store.set_speech(call_sid, down=True, fallback=True)
            if before is None or before.ended or before.speech_fallback:
                return
            log.warning("call %s: speech recognition down for over %g s; Twilio's <Gather> listens until it is back",
                        call_sid, services.config.speech_outage_seconds)
            services.events.action(call_sid, "speech-outage")
            if before.held:  # updating now would cut it short; its outcome is answered with <Gather>
                log.info("call %s is being transferred or hung up; the call is not updated now", call_sid)
                return
            # The prompt being said (the greeting, when a wrong key fails the very first stream) plays to its end.
            time.sleep(min(MAX_PROMPT_WAIT_SECONDS, conversation.prompt.speaking_for()))
            outcome = services.updater.update(call_sid, gather_document(services, call_sid, conversation.base_url))
            if outcome is UpdateResult.CALL_ENDED:
                services.store.end(call_sid)
                conversation.close()
            elif outcome is UpdateResult.FAILED:
                services.store.set_speech(call_sid, fallback=False)
                log.error("call %s: could not switch to <Gather>; it stays on the stream, which keeps retrying",
                          call_sid)
