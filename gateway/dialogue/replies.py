"""Which TwiML carries a reply to a call: pure functions of the configuration, the call's state and the reply."""
from __future__ import annotations

from dataclasses import replace

from ..calls.store import CallState
from ..chatbots.reply import Reply
from ..config import Config
from ..twilio import twiml
from .phone_answer import speech


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
    """The TwiML that plays a reply's audio, says it made fit for the phone (phone_answer.heard) and acts on it: keep
    listening, hang up, or transfer; with `stream` (security.stream_target) it starts the call's Media Stream first."""
    return twiml.reply(reply, base_url + "/listen", language=config.language, voice=config.voice, stream=stream,
                       speech=speech(reply, config), stream_track=config.stream_track, **listening(config, base_url),
                       **config.transfer_options(base_url + "/transfer"))


def gather_reply(config: Config, state: CallState | None, reply: Reply | None, base_url: str) -> str:
    """The call listening through a speech-and-keys <Gather> posting to /gather (Gather mode, or Twilio recognizing
    for a stream-mode call): saying `reply` inside it first, if any, or saying it and hanging up / transferring.
    In the call's language and voice, made fit for the phone; without hints of its own, the call's last ones guide
    Twilio's recognizer."""
    config = call_config(config, state)
    reply = reply or Reply("")
    if not reply.hints:
        reply = replace(reply, hints=(state.hints if state else ()) or config.hints)
    return twiml.gather_reply(reply, base_url + "/gather", config.transfer_options(base_url + "/transfer"),
                              speech=speech(reply, config), **config.gather_options())


def answer_twiml(config: Config, state: CallState | None, reply: Reply, base_url: str) -> tuple[str, bool]:
    """The TwiML answering a stream-mode call, and whether the call goes back from <Gather> to its stream with it:
    <Gather> while recognition is down, else the stream."""
    if state is not None and state.speech_fallback and state.speech_down:
        return gather_reply(config, state, reply, base_url), False
    back = state is not None and state.speech_fallback
    return stream_reply(call_config(config, state), reply, base_url), back


def silence_twiml(config: Config, state: CallState | None, base_url: str) -> tuple[str | None, bool]:
    """A stream-mode call's <Gather> heard nothing: (the TwiML, back to the stream?). Back to the stream when
    recognition is back, else listen again silently (as the stream would) unless NO_INPUT_SECONDS counts silences;
    None: not a stream-mode call on <Gather>, or silences are counted, so Gather mode's reprompts apply."""
    if state is None or not state.speech_fallback:
        return None, False
    if not state.speech_down:
        return twiml.listen(base_url + "/listen", **listening(config, base_url)), True
    return (None if config.no_input_seconds else gather_reply(config, state, None, base_url)), False


def apology_document(config: Config, base_url: str) -> str:
    """What a webhook answers when the call's state cannot be read (Redis unreachable): the apology, and the call
    keeps listening, so the next webhook finds the state again once the store is back."""
    reply = Reply(config.apology)
    if config.stt_provider == "twilio":
        return twiml.gather_reply(reply, base_url + "/gather", config.transfer_options(base_url + "/transfer"),
                                  **config.gather_options())
    return stream_reply(config, reply, base_url)
