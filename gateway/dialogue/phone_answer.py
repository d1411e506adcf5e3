"""One place where a chatbot's answer becomes what the caller hears: its text made fit for the phone, its links
offered by text message, its options' menu after it; and where a key or words become the chatbot's next message."""
from __future__ import annotations

from dataclasses import replace
from typing import Protocol, Sequence

from ..chatbots.relay_protocol import RelayReply
from ..chatbots.reply import Reply
from ..config import Config
from ..phone import Spoken, choose, link_note, menu, render, speaks_ssml
from ..phone.speech import merge


class LinkSender(Protocol):
    """What sends an answer's links (gateway.twilio.messages.MessageSender)."""

    def offer(self, call_sid: str, to: str, from_: str, links: Sequence[str], language: str = "en-US") -> bool:
        ...

    def forget(self, call_sid: str) -> None:
        ...

    def close(self) -> None:
        ...


def _spoken_as_is(reply: Reply) -> bool:
    """A ConversationRelay bot's answer in parts (sentences, plays, digits) is said part by part, as it was sent."""
    return isinstance(reply, RelayReply) and bool(reply.parts)


def offer_links(reply: Reply, config: Config, *, call_sid: str, caller: str, called: str,
                sender: LinkSender | None) -> Reply:
    """Send `reply`'s links (URLs, email addresses, images) to the caller by one text message, from `called` to
    `caller`, once per answer (the turn path calls this, never the TwiML); the reply marked with whether they went
    (queued: a Messages API that is slow or down costs only the message, never the turn)."""
    if _spoken_as_is(reply) or not reply.text:
        return reply
    language = reply.language or config.language
    links = render(reply.text, language).links
    if not links:
        return reply
    sent = bool(config.sms_links and sender is not None and sender.offer(call_sid, caller, called, links, language))
    return replace(reply, links_sent=sent)


def heard(reply: Reply, config: Config) -> Spoken:
    """What the caller hears of `reply` with the call's `config` (its language and voice), with no I/O: the sentence
    the caller is owed first (`reply.preface`), the text rendered (SSML for Polly and Google voices), then, when it
    had links, whether they went by text message (`reply.links_sent`), then the options' menu. `reply.text` stays
    as it was (the monitor and every history keep it)."""
    language = reply.language or config.language
    voice = reply.voice or config.voice
    spoken = render(reply.text, language, speaks_ssml(voice), voice=voice)
    if spoken.links or reply.links_sent:  # the rest of an answer whose first sentence had the link: still told
        spoken = spoken.then(link_note(language, reply.links_sent, max(len(spoken.links), 1)))
    if reply.options:
        spoken = spoken.then(menu(reply.options, language, template=config.options_menu,
                                  template_more=config.options_menu_more))
    if reply.preface:
        spoken = replace(spoken, parts=merge((reply.preface, " ", *spoken.parts)))
    return spoken


def speech(reply: Reply, config: Config) -> tuple | None:
    """The parts the TwiML says for `reply` (twiml's `speech=`); None where it says the reply as it is."""
    return None if _spoken_as_is(reply) else heard(reply, config).parts


def next_message(options: Sequence[tuple[str, str]], *, key: str | None = None,
                 words: str | None = None) -> tuple[str, str]:
    """The chatbot's next (message, input) for the caller's keys or words while the last answer's `options` hold:
    the chosen option's payload as "option"; else the keys as "dtmf" or the words as "speech", as without options."""
    chosen = choose(options, key=key, words=words) if options else None
    if chosen is not None:
        return chosen[1], "option"
    return (key, "dtmf") if key is not None else (words or "", "speech")
