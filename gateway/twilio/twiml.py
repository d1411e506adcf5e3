"""TwiML documents the gateway answers with, built by pure functions on the twilio SDK's VoiceResponse."""
from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Mapping, Sequence

from twilio.twiml.voice_response import Start, VoiceResponse

from ..chatbots.reply import Reply, xml_safe


def _say(response, text: str, language: str, voice: str | None) -> None:
    """Append a <Say>; the SDK escapes &, <, > and quotes so the caller hears the text as written."""
    if text:
        attrs = {"voice": voice} if voice else {}
        response.say(text, language=language, **attrs)


def _keys(response: VoiceResponse, dtmf_url: str | None, dtmf_timeout: int):
    """Where the keep-alive <Say>/<Pause> go: a keys-only <Gather> posting the caller's keys to `dtmf_url` (one-way
    Media Streams carry no DTMF; the stream goes on hearing speech meanwhile), or the response itself without a URL.
    `#` ends a multi-digit entry; after `dtmf_timeout` seconds without a key Twilio goes on to the <Redirect>."""
    if not dtmf_url:
        return response
    return response.gather(input="dtmf", action=dtmf_url, method="POST", finish_on_key="#", timeout=dtmf_timeout)


def _keep_listening(response: VoiceResponse, listen_url: str, pause_seconds: int, within=None) -> None:
    """Keep the call open while the stream listens (a call whose TwiML runs out hangs up): a <Pause> (in the keys
    <Gather> `within`, if any; none for 0 s, the Gather's timeout then waits alone), then back to /listen."""
    if pause_seconds > 0:
        (within if within is not None else response).pause(length=pause_seconds)
    response.redirect(listen_url, method="POST")


STREAM_TRACKS = ("inbound_track", "both_tracks")  # both_tracks adds the outbound track: what the caller hears


def _start_stream(response: VoiceResponse, stream_url: str, parameters: Mapping[str, str],
                  track: str = "inbound_track") -> None:
    """Append the one-way <Start><Stream> of the caller's audio (and, with both_tracks, of what the caller hears),
    with the call's <Parameter>s."""
    if track not in STREAM_TRACKS:
        raise ValueError(f"stream track {track!r} is not one of {STREAM_TRACKS}")
    start = Start()
    stream = start.stream(url=stream_url, track=track)
    for name, value in parameters.items():  # they carry webhook fields (From): control characters would break the XML
        stream.parameter(name=name, value=xml_safe(value))
    response.append(start)


def incoming_call(stream_url: str, listen_url: str, greeting: str, parameters: Mapping[str, str], *,
                  language: str = "en-US", voice: str | None = None, pause_seconds: int = 30,
                  dtmf_url: str | None = None, dtmf_timeout: int = 5, stream_track: str = "inbound_track") -> str:
    """Answer a new call: start the one-way Media Stream, greet the caller, keep listening (and taking keys)."""
    response = VoiceResponse()
    _start_stream(response, stream_url, parameters, stream_track)
    prompt = _keys(response, dtmf_url, dtmf_timeout)
    _say(prompt, greeting, language, voice)
    _keep_listening(response, listen_url, pause_seconds, prompt)
    return str(response)


def listen(listen_url: str, *, pause_seconds: int = 30, dtmf_url: str | None = None, dtmf_timeout: int = 5) -> str:
    """Go on listening (and taking keys): the keep-alive loop the call sits in between turns."""
    response = VoiceResponse()
    _keep_listening(response, listen_url, pause_seconds, _keys(response, dtmf_url, dtmf_timeout))
    return str(response)


MAX_UPDATE_CHARS = 4000  # Twilio refuses inline TwiML longer than this in a call update (error 32018)


def reply(answer: Reply, listen_url: str, *, language: str = "en-US", voice: str | None = None,
          pause_seconds: int = 30, transfer_url: str | None = None, caller_id: str | None = None,
          dial_timeout: int | None = None, dtmf_url: str | None = None, dtmf_timeout: int = 5,
          stream: tuple[str, Mapping[str, str]] | None = None, stream_track: str = "inbound_track") -> str:
    """Speak the chatbot's answer, then act on it; the text is shortened if the document would be too long for Twilio.
    With `stream` (URL, parameters) the document first starts a Media Stream (a call moved here from another process)."""
    build = partial(_reply, listen_url=listen_url, language=language, voice=voice, pause_seconds=pause_seconds,
                    transfer_url=transfer_url, caller_id=caller_id, dial_timeout=dial_timeout, dtmf_url=dtmf_url,
                    dtmf_timeout=dtmf_timeout, stream=stream, stream_track=stream_track)
    document = build(answer)
    while len(document) > MAX_UPDATE_CHARS and answer.text:
        answer = replace(answer, text=answer.text[: len(answer.text) * 4 // 5].rstrip())
        document = build(answer)
    return document


def _reply(answer: Reply, listen_url: str, language: str, voice: str | None, pause_seconds: int,
           transfer_url: str | None = None, caller_id: str | None = None, dial_timeout: int | None = None, *,
           dtmf_url: str | None = None, dtmf_timeout: int = 5, stream: tuple | None = None,
           stream_track: str = "inbound_track") -> str:
    """Build the reply document as is."""
    response = VoiceResponse()
    if stream is not None:
        _start_stream(response, *stream, stream_track)
    listening = answer.action_type not in ("hangup", "transfer")
    prompt = _keys(response, dtmf_url, dtmf_timeout) if listening else response  # a key may cut the answer short
    _say(prompt, answer.text, language, voice)
    if answer.action_type == "hangup":
        response.hangup()
    elif answer.action_type == "transfer":
        dial = response.dial(action=transfer_url, method="POST" if transfer_url else None,
                             caller_id=caller_id, timeout=dial_timeout)
        dial.number(answer.transfer_to)
    else:
        _keep_listening(response, listen_url, pause_seconds, prompt)
    return str(response)


def gather(text: str, action_url: str, hints: Sequence[str] = (), *, language: str = "en-US",
           voice: str | None = None, speech_timeout: str = "auto", timeout: int = 5,
           speech_model: str | None = None, profanity_filter: bool = True, barge_in: bool = True) -> str:
    """Say `text` inside a speech-and-keys <Gather> whose result (or silence) comes back to `action_url`; the caller's
    speech stops the <Say> unless `barge_in` is off."""
    response = VoiceResponse()
    options = {"speech_model": speech_model} if speech_model else {}
    if not barge_in:
        options["barge_in"] = False
    prompt = response.gather(
        input="speech dtmf", action=action_url, method="POST", language=language, speech_timeout=speech_timeout,
        timeout=timeout, hints=", ".join(hints) if hints else None, profanity_filter=profanity_filter,
        action_on_empty_result=True, **options)
    _say(prompt, text, language, voice)
    return str(response)


def gather_reply(answer: Reply, action_url: str, transfer: Mapping | None = None, **gather_options) -> str:
    """In Gather mode: speak the answer and listen again, or speak it and hang up / transfer."""
    if answer.action_type is None:
        barge_in = gather_options.pop("barge_in", True) and answer.barge_in
        return gather(answer.text, action_url, answer.hints, barge_in=barge_in, **gather_options)
    gather_options.pop("barge_in", None)
    return reply(answer, action_url, language=gather_options.get("language", "en-US"), voice=gather_options.get("voice"),
                 **(transfer or {}))


def first_sentence(text: str, continue_url: str, *, language: str = "en-US", voice: str | None = None) -> str:
    """Say the first sentence of an answer still being written, then fetch the rest from `continue_url`."""
    response = VoiceResponse()
    _say(response, text, language, voice)
    response.redirect(continue_url, method="POST")
    return str(response)


def say_and_hang_up(text: str, *, language: str = "en-US", voice: str | None = None) -> str:
    """Speak a last sentence and end the call (used where the gateway itself cannot go on)."""
    response = VoiceResponse()
    _say(response, text, language, voice)
    response.hangup()
    return str(response)


def handoff(redirect_url: str, message: str = "", *, pause_seconds: int = 0, language: str = "en-US",
            voice: str | None = None) -> str:
    """Move the call on to `redirect_url` (another process picks it up), after an optional pause and message."""
    response = VoiceResponse()
    if pause_seconds > 0:
        response.pause(length=pause_seconds)
    _say(response, message, language, voice)
    response.redirect(redirect_url, method="POST")
    return str(response)
