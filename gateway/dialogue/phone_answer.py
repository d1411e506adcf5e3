"""One place where a chatbot's answer becomes what the caller hears: its text made fit for the phone, its links
offered by text message, its options' menu after it; and where a key or words become the chatbot's next message."""
from __future__ import annotations

from typing import Protocol, Sequence

from ..chatbots.reply import Reply
from ..config import Config
from ..phone import Spoken, choose, link_note, menu, render, speaks_ssml


class LinkSender(Protocol):
    """What sends an answer's links (gateway.twilio.messages.MessageSender)."""

    def offer(self, call_sid: str, to: str, from_: str, links: Sequence[str], language: str = "en-US") -> bool:
        ...


def heard(reply: Reply, config: Config, *, call_sid: str = "", caller: str = "", called: str = "",
          sender: LinkSender | None = None) -> Spoken:
    """What the caller hears of `reply` with the call's `config` (its language and voice): the text rendered (SSML
    for Polly and Google voices), then, when it had links, whether they were sent by SMS (`sender`, from `called`
    to `caller`; SMS_LINKS off or no sender: not sent), then the options' menu. `reply.text` stays as it was."""
    language = reply.language or config.language
    voice = reply.voice or config.voice
    spoken = render(reply.text, language, speaks_ssml(voice), voice=voice)
    if spoken.links:
        sent = bool(config.sms_links and sender is not None and
                    sender.offer(call_sid, caller, called, spoken.links, language))
        spoken = spoken.then(link_note(language, sent, len(spoken.links)))
    if reply.options:
        spoken = spoken.then(menu(reply.options, language, template=config.options_menu,
                                  template_more=config.options_menu_more))
    return spoken


def next_message(options: Sequence[tuple[str, str]], *, key: str | None = None,
                 words: str | None = None) -> tuple[str, str]:
    """The chatbot's next (message, input) for the caller's keys or words while the last answer's `options` hold:
    the chosen option's payload as "option"; else the keys as "dtmf" or the words as "speech", as without options."""
    chosen = choose(options, key=key, words=words) if options else None
    if chosen is not None:
        return chosen[1], "option"
    return (key, "dtmf") if key is not None else (words or "", "speech")
