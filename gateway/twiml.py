"""TwiML documents the gateway answers with, built by pure functions on the twilio SDK's VoiceResponse."""
from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Sequence

from twilio.twiml.voice_response import Start, VoiceResponse

from .chatbot import Reply


def _say(response, text: str, language: str, voice: str | None) -> None:
    """Append a <Say>; the SDK escapes &, <, > and quotes so the caller hears the text as written."""
    if text:
        attrs = {"voice": voice} if voice else {}
        response.say(text, language=language, **attrs)


def _keep_listening(response: VoiceResponse, listen_url: str, pause_seconds: int) -> None:
    """Keep the call open while the stream listens: a call whose TwiML runs out hangs up."""
    response.pause(length=pause_seconds)
    response.redirect(listen_url, method="POST")


def incoming_call(stream_url: str, listen_url: str, greeting: str, parameters: Mapping[str, str], *,
                  language: str = "en-US", voice: str | None = None, pause_seconds: int = 30) -> str:
    """Answer a new call: start the one-way Media Stream, greet the caller, keep listening."""
    response = VoiceResponse()
    start = Start()
    stream = start.stream(url=stream_url, track="inbound_track")
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(start)
    _say(response, greeting, language, voice)
    _keep_listening(response, listen_url, pause_seconds)
    return str(response)


def listen(listen_url: str, *, pause_seconds: int = 30) -> str:
    """Go on listening: the keep-alive loop the call sits in between turns."""
    response = VoiceResponse()
    _keep_listening(response, listen_url, pause_seconds)
    return str(response)


MAX_UPDATE_CHARS = 4000  # Twilio refuses inline TwiML longer than this in a call update (error 32018)


def reply(answer: Reply, listen_url: str, *, language: str = "en-US", voice: str | None = None,
          pause_seconds: int = 30, transfer_url: str | None = None, caller_id: str | None = None,
          dial_timeout: int | None = None) -> str:
    """Speak the chatbot's answer, then act on it; the text is shortened if the document would be too long for Twilio."""
    dial = (transfer_url, caller_id, dial_timeout)
    document = _reply(answer, listen_url, language, voice, pause_seconds, *dial)
    while len(document) > MAX_UPDATE_CHARS and answer.text:
        answer = replace(answer, text=answer.text[: len(answer.text) * 4 // 5].rstrip())
        document = _reply(answer, listen_url, language, voice, pause_seconds, *dial)
    return document


def _reply(answer: Reply, listen_url: str, language: str, voice: str | None, pause_seconds: int,
           transfer_url: str | None = None, caller_id: str | None = None, dial_timeout: int | None = None) -> str:
    """Build the reply document as is."""
    response = VoiceResponse()
    _say(response, answer.text, language, voice)
    if answer.action_type == "hangup":
        response.hangup()
    elif answer.action_type == "transfer":
        dial = response.dial(action=transfer_url, method="POST" if transfer_url else None,
                             caller_id=caller_id, timeout=dial_timeout)
        dial.number(answer.transfer_to)
    else:
        _keep_listening(response, listen_url, pause_seconds)
    return str(response)


def gather(text: str, action_url: str, hints: Sequence[str] = (), *, language: str = "en-US",
           voice: str | None = None, speech_timeout: str = "auto", timeout: int = 5,
           speech_model: str | None = None, profanity_filter: bool = True) -> str:
    """Say `text` inside a speech-and-keys <Gather> whose result (or silence) comes back to `action_url`."""
    response = VoiceResponse()
    options = {"speech_model": speech_model} if speech_model else {}
    prompt = response.gather(
        input="speech dtmf", action=action_url, method="POST", language=language, speech_timeout=speech_timeout,
        timeout=timeout, hints=", ".join(hints) if hints else None, profanity_filter=profanity_filter,
        action_on_empty_result=True, **options)
    _say(prompt, text, language, voice)
    return str(response)


def gather_reply(answer: Reply, action_url: str, transfer: Mapping | None = None, **gather_options) -> str:
    """In Gather mode: speak the answer and listen again, or speak it and hang up / transfer."""
    if answer.action_type is None:
        return gather(answer.text, action_url, answer.hints, **gather_options)
    return reply(answer, action_url, language=gather_options.get("language", "en-US"), voice=gather_options.get("voice"),
                 **(transfer or {}))


def say_and_hang_up(text: str, *, language: str = "en-US", voice: str | None = None) -> str:
    """Speak a last sentence and end the call (used where the gateway itself cannot go on)."""
    response = VoiceResponse()
    _say(response, text, language, voice)
    response.hangup()
    return str(response)
