"""One place decides what TwiML a call gets now: the stream's keep-alive, a <Gather> while recognition is down or in
Gather mode, and the apology when the call's state cannot be read."""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from ..twilio import twiml
from ..calls.store import CallState
from ..chatbots.reply import Reply
from ..config import Config

if TYPE_CHECKING:
    from ..services import Services

log = logging.getLogger(__name__)


def listening(config: Config, base_url: str) -> dict:
    """How the stream modes' keep-alive loop waits, as twiml.incoming_call/listen/reply options: a <Pause> inside a
    keys-only <Gather> posting to /dtmf. The Pause and the Gather's timeout add up to NO_INPUT_SECONDS when set (each
    /listen hit then ends one silent stretch), else to LISTEN_PAUSE_SECONDS (the call is just kept open)."""
    total = config.no_input_seconds or config.listen_pause_seconds
    timeout = min(config.dtmf_timeout, total)
    return {"pause_seconds": total - timeout, "dtmf_url": base_url + "/dtmf", "dtmf_timeout": timeout}


def call_config(config: Config, state: CallState | None) -> Config:
    """The configuration as this call hears it: in the language and voice its chatbot switched it to."""
    return config.for_call(state.language, state.voice) if state is not None else config


def stream_reply(config: Config, reply: Reply, base_url: str, stream: tuple[str, dict] | None = None) -> str:
    """The TwiML that speaks a reply in the stream modes and acts on it: keep listening, hang up, or transfer; with
    `stream` (security.stream_target) it starts the call's Media Stream first."""
    return twiml.reply(reply, base_url + "/listen", language=config.language, voice=config.voice, stream=stream,
                       **listening(config, base_url), **config.transfer_options(base_url + "/transfer"))


def gather_document(services: Services, call_sid: str, base_url: str, reply: Reply | None = None) -> str:
    """The call listening through a speech-and-keys <Gather> posting to /gather (Gather mode, or Twilio recognizing
    for a stream-mode call): saying `reply` inside it first, if any, or saying it and hanging up / transferring.
    In the call's language and voice; without hints of its own, the call's last ones guide Twilio's recognizer."""
    state = services.store.get(call_sid)
    config = call_config(services.config, state)
    reply = reply or Reply("")
    if not reply.hints:
        reply = replace(reply, hints=(state.hints if state else ()) or config.hints)
    return twiml.gather_reply(reply, base_url + "/gather", config.transfer_options(base_url + "/transfer"),
                              **config.gather_options())


def listening_reply(services: Services, call_sid: str, reply: Reply, base_url: str) -> str:
    """The TwiML answering a stream-mode call: <Gather> while recognition is down, else (back on) the stream."""
    state = services.store.get(call_sid)
    if state is not None and state.speech_fallback:
        if state.speech_down:
            return gather_document(services, call_sid, base_url, reply)
        _back_to_stream(services, call_sid)
    return stream_reply(call_config(services.config, state), reply, base_url)


def gather_silence(services: Services, call_sid: str, base_url: str) -> str | None:
    """A stream-mode call's <Gather> heard nothing: back to the stream if recognition is back, else listen again
    silently (as the stream would) unless NO_INPUT_SECONDS counts silences; None: Gather mode's reprompts apply."""
    state = services.store.get(call_sid)
    if state is None or not state.speech_fallback:
        return None
    config = services.config
    if not state.speech_down:
        _back_to_stream(services, call_sid)
        return twiml.listen(base_url + "/listen", **listening(config, base_url))
    return None if config.no_input_seconds else gather_document(services, call_sid, base_url)


def _back_to_stream(services: Services, call_sid: str) -> None:
    """Recognition is back: the call leaves <Gather>; stream transcripts of audio heard before now stay unanswered."""
    before = services.store.set_speech(call_sid, fallback=False)
    services.tell_stream(call_sid, {"type": "back_to_stream"})
    if before is not None and before.speech_fallback:
        log.info("call %s: speech recognition is back; the call listens through the Media Stream again", call_sid)


def apology_document(config: Config, base_url: str) -> str:
    """What a webhook answers when the call's state cannot be read (Redis unreachable): the apology, and the call
    keeps listening, so the next webhook finds the state again once the store is back."""
    reply = Reply(config.apology)
    if config.stt_provider == "twilio":
        return twiml.gather_reply(reply, base_url + "/gather", config.transfer_options(base_url + "/transfer"),
                                  **config.gather_options())
    return stream_reply(config, reply, base_url)
