"""TwiML documents the gateway answers with, built by pure functions on the twilio SDK's VoiceResponse."""
from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Mapping, Sequence
from xml.etree import ElementTree

from twilio.twiml.voice_response import Start, VoiceResponse

from ..chatbots.relay_protocol import Play, RelayReply, Say, SendDigits
from ..chatbots.reply import Reply, xml_safe
from ..phone.speech import Part, Pause, SayAs

Speech = Sequence[Part]  # what the phone-text layer made of a text: words, and for SSML voices <break>, <say-as>


def _say(response, text: str, language: str, voice: str | None, speech: Speech | None = None) -> None:
    """Append a <Say> of `text`, or of `speech` when given (its pauses and say-as runs as Twilio's SSML tags); the
    SDK escapes &, <, > and quotes so the caller hears the text as written."""
    attrs = {"voice": voice} if voice else {}
    if speech is None:
        if text:
            response.say(text, language=language, **attrs)
        return
    if not speech:
        return
    say = response.say(language=language, **attrs)
    for part in speech:
        if isinstance(part, Pause):
            say.break_(time=part.time)
        elif isinstance(part, SayAs):
            say.say_as(part.text, interpret_as=part.interpret_as)
        elif part:
            say.append(part)  # words between tags: the SDK writes them as the text (or tail) around the tags


def _play(response, audio: str | None) -> None:
    """Append the chatbot's recording (an https:// URL, checked when the answer was parsed) before its words."""
    if audio:
        response.play(audio)


def _shorter(speech: Speech) -> list[Part]:
    """`speech` shortened for a call update: its last part dropped, or its one string cut by a fifth."""
    if len(speech) > 1:
        return list(speech[:-1])
    only = speech[0] if speech else ""
    return [only[: len(only) * 4 // 5].rstrip()] if isinstance(only, str) and len(only) > 1 else []


def _parts(response, answer: Reply, language: str, voice: str | None, speech: Speech | None = None) -> None:
    """Say the answer: its text (as `speech` when given), or a ConversationRelay bot's parts in order (sentences,
    <Play loop>, <Play digits>). A sentence in another language than the call's is said in that language's voice."""
    if not isinstance(answer, RelayReply) or not answer.parts:
        _say(response, answer.text, language, voice, speech)
        return
    for part in answer.parts:
        if isinstance(part, Say):
            other = part.language and part.language != language
            _say(response, part.text, part.language if other else language, None if other else voice)
        elif isinstance(part, Play):
            response.play(part.source, loop=part.loop)
        elif isinstance(part, SendDigits):
            response.play(digits=part.digits)


def _then(document: str, twiml: str) -> str:
    """`document` followed by the verbs of another TwiML document (a ConversationRelay handoff's answer)."""
    verbs = "".join(ElementTree.tostring(verb, encoding="unicode") for verb in ElementTree.fromstring(twiml))
    if document.endswith("<Response />"):  # nothing said before: the SDK closes an empty <Response/> at once
        return document[:-len("<Response />")] + "<Response>" + verbs + "</Response>"
    return document[:-len("</Response>")] + verbs + "</Response>"


def one_key(options: Sequence) -> int | None:
    """<Gather numDigits>: 1 while an answer's options (at most nine, keys 1 to 9) hold, so a key chooses at once;
    None otherwise (a multi-digit entry ends with `#` or the timeout)."""
    return 1 if options and len(options) <= 9 else None


def _keys(response: VoiceResponse, dtmf_url: str | None, dtmf_timeout: int, num_digits: int | None = None):
    """Where the keep-alive <Say>/<Pause> go: a keys-only <Gather> posting the caller's keys to `dtmf_url` (one-way
    Media Streams carry no DTMF; the stream goes on hearing speech meanwhile), or the response itself without a URL.
    `#` ends a multi-digit entry (`num_digits` keys end it at once); after `dtmf_timeout` seconds without a key
    Twilio goes on to the <Redirect>."""
    if not dtmf_url:
        return response
    return response.gather(input="dtmf", action=dtmf_url, method="POST", finish_on_key="#", timeout=dtmf_timeout,
                           num_digits=num_digits)


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
                  dtmf_url: str | None = None, dtmf_timeout: int = 5, speech: Speech | None = None,
                  audio: str | None = None, stream_track: str = "inbound_track", num_digits: int | None = None) -> str:
    """Answer a new call: start the one-way Media Stream, greet the caller (`audio` played first; `speech`, the
    phone-text layer's parts, instead of `greeting` when given), keep listening (and taking keys)."""
    response = VoiceResponse()
    _start_stream(response, stream_url, parameters, stream_track)
    prompt = _keys(response, dtmf_url, dtmf_timeout, num_digits)
    _play(prompt, audio)
    _say(prompt, greeting, language, voice, speech)
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
          stream: tuple[str, Mapping[str, str]] | None = None, speech: Speech | None = None,
          stream_track: str = "inbound_track") -> str:
    """Play the chatbot's `audio`, speak its answer (as `speech`, the phone-text layer's parts, when given), then act
    on it; the words are shortened if the document would be too long for Twilio. With `stream` (URL, parameters) the
    document first starts a Media Stream (a call moved here from another process)."""
    build = partial(_reply, listen_url=listen_url, language=language, voice=voice, pause_seconds=pause_seconds,
                    transfer_url=transfer_url, caller_id=caller_id, dial_timeout=dial_timeout, dtmf_url=dtmf_url,
                    dtmf_timeout=dtmf_timeout, stream=stream, stream_track=stream_track)
    document = build(answer, speech=speech)
    while len(document) > MAX_UPDATE_CHARS and (speech if speech is not None else answer.text):
        if speech is not None:
            speech = _shorter(speech)
        else:
            answer = replace(answer, text=answer.text[: len(answer.text) * 4 // 5].rstrip())
        document = build(answer, speech=speech)
    return document


def _reply(answer: Reply, listen_url: str, language: str, voice: str | None, pause_seconds: int,
           transfer_url: str | None = None, caller_id: str | None = None, dial_timeout: int | None = None, *,
           dtmf_url: str | None = None, dtmf_timeout: int = 5, stream: tuple | None = None,
           speech: Speech | None = None, stream_track: str = "inbound_track") -> str:
    """Build the reply document as is."""
    response = VoiceResponse()
    if stream is not None:
        _start_stream(response, *stream, stream_track)
    handoff = answer.handoff_twiml if isinstance(answer, RelayReply) else None
    listening = answer.action_type not in ("hangup", "transfer") and handoff is None
    # A key may cut the answer short; while its options hold, one key is a choice.
    prompt = _keys(response, dtmf_url, dtmf_timeout, one_key(answer.options)) if listening else response
    _play(prompt, answer.audio)
    _parts(prompt, answer, language, voice, speech)
    if handoff is not None:
        return _then(str(response), handoff)  # the TwiML the handoff URL answered runs once the bot's words are said
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
           speech_model: str | None = None, profanity_filter: bool = True, barge_in: bool = True,
           speech: Speech | None = None, audio: str | None = None, num_digits: int | None = None) -> str:
    """Play `audio` and say `text` (or `speech`, the phone-text layer's parts) inside a speech-and-keys <Gather> whose
    result (or silence) comes back to `action_url`; the caller's speech stops the <Say> unless `barge_in` is off;
    `num_digits` keys end it at once."""
    response = VoiceResponse()
    options = {"speech_model": speech_model} if speech_model else {}
    if num_digits:
        options["num_digits"] = num_digits
    if not barge_in:
        options["barge_in"] = False
    prompt = response.gather(
        input="speech dtmf", action=action_url, method="POST", language=language, speech_timeout=speech_timeout,
        timeout=timeout, hints=", ".join(hints) if hints else None, profanity_filter=profanity_filter,
        action_on_empty_result=True, **options)
    _play(prompt, audio)
    _say(prompt, text, language, voice, speech)
    return str(response)


def gather_reply(answer: Reply, action_url: str, transfer: Mapping | None = None, *, speech: Speech | None = None,
                 **gather_options) -> str:
    """In Gather mode: play and speak the answer (as `speech` when given) and listen again, or speak it and hang up /
    transfer."""
    if answer.action_type is None:
        barge_in = gather_options.pop("barge_in", True) and answer.barge_in
        return gather(answer.text, action_url, answer.hints, barge_in=barge_in, speech=speech, audio=answer.audio,
                      num_digits=one_key(answer.options), **gather_options)
    gather_options.pop("barge_in", None)
    return reply(answer, action_url, language=gather_options.get("language", "en-US"), voice=gather_options.get("voice"),
                 speech=speech, **(transfer or {}))


def first_sentence(text: str, continue_url: str, *, language: str = "en-US", voice: str | None = None,
                   speech: Speech | None = None) -> str:
    """Say the first sentence of an answer still being written (as `speech` when given), then fetch the rest from
    `continue_url`."""
    response = VoiceResponse()
    _say(response, text, language, voice, speech)
    response.redirect(continue_url, method="POST")
    return str(response)


def say_and_hang_up(text: str, *, language: str = "en-US", voice: str | None = None,
                    speech: Speech | None = None) -> str:
    """Speak a last sentence (as `speech` when given) and end the call (where the gateway itself cannot go on)."""
    response = VoiceResponse()
    _say(response, text, language, voice, speech)
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
