"""What TwiML a call gets now, read from its state: the stream's keep-alive, a <Gather> while recognition is down or
in Gather mode (the choice itself is replies.py's, pure); and the call's return to its stream once recognition is
back."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .replies import (answer_twiml, apology_document, call_config, gather_reply, listening, silence_twiml,
                      stream_reply)

if TYPE_CHECKING:
    from ..calls.store import CallState
    from ..chatbots.reply import Reply
    from ..services import Services

__all__ = ["apology_document", "call_config", "gather_document", "gather_silence", "listening", "listening_reply",
           "stream_reply"]

log = logging.getLogger(__name__)


def gather_document(services: Services, call_sid: str, base_url: str, reply: Reply | None = None) -> str:
    """The call listening through a speech-and-keys <Gather> (replies.gather_reply), in its language and voice."""
    return gather_reply(services.config, services.store.get(call_sid), reply, base_url)


def listening_reply(services: Services, call_sid: str, reply: Reply, base_url: str,
                    state: CallState | None = None) -> str:
    """The TwiML answering a stream-mode call: <Gather> while recognition is down, else (back on) the stream.
    `state`: the call's, when just read (else it is read here)."""
    document, back = answer_twiml(services.config, state or services.store.get(call_sid), reply, base_url)
    if back:
        _back_to_stream(services, call_sid)
    return document


def gather_silence(services: Services, call_sid: str, base_url: str) -> str | None:
    """A stream-mode call's <Gather> heard nothing (replies.silence_twiml); None: Gather mode's reprompts apply."""
    document, back = silence_twiml(services.config, services.store.get(call_sid), base_url)
    if back:
        _back_to_stream(services, call_sid)
    return document


def _back_to_stream(services: Services, call_sid: str) -> None:
    """Recognition is back: the call leaves <Gather>; stream transcripts of audio heard before now stay unanswered."""
    before = services.store.set_speech(call_sid, fallback=False)
    services.tell_stream(call_sid, {"type": "back_to_stream"})
    if before is not None and before.speech_fallback:
        log.info("call %s: speech recognition is back; the call listens through the Media Stream again", call_sid)
