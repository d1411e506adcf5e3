"""The dialogue script: what a chatbot owner writes in YAML, and its in-memory model.

A script is a small state machine. Every call starts in the start state; what the caller says
is matched against the phrases of the current state's intents and of the global intents; the
matched intent's reply is spoken, its action (if any) performed, and the call moves to its
`next` state. Example::

    start: main            # optional; default: the first state under `states`
    greeting: Hello! How can I help?   # optional: the answer to a call's first request ("input": "start")
    fallback: "Sorry, I didn't catch that. You can say hello or goodbye."

    global:                # intents understood in every state
      goodbye:
        say: [goodbye, bye, hang up]
        reply: Goodbye! Thanks for calling.
        action: hangup

    states:
      main:
        intents:
          hello:
            say: [hello, hi, hey]          # phrases and synonyms (one string is fine too)
            reply: Hi, how are you?
          book_table:
            say: [book a table]
            reply: For how many people?
            next: party_size
      party_size:
        fallback: Sorry, for how many people?   # optional, replaces the top-level one here
        intents:
          four:
            say: [four, "4", for four people]   # "4" also matches the phone key 4
            reply: Your table for four is booked.
            next: main
          operator:
            say: [operator, a person]
            reply: Putting you through.
            action: {type: transfer, to: "+15550001111"}

Intent keys:

- `say` (required): phrases. Matching ignores case and punctuation; a phrase matches when it
  is the whole message or appears in it as whole words ("i'd like to BOOK A TABLE, please").
  When several phrases match, the longest wins; on a tie the current state's intents win over
  global ones, then the one written first.
  A phrase of digits ("4") also matches the phone key pressed; it is never sent as a hint.
- `reply` (required): the text the caller hears. Any characters are fine; keep it short.
- `action` (optional): `hangup` (say the reply, then end the call) or
  `{type: transfer, to: "+15550001111"}` (say the reply, then dial that number).
- `next` (optional): the state to move to. Without it the call stays in the current state.
- `hints` (optional): the phrases the caller may say next, sent to the speech recognizer.
  Without it the hints are every spoken phrase of the next state plus the global ones, which
  is almost always what you want: the recognizer may only understand what is in the hints.
  After a hangup or transfer the default hints are empty: the caller has left.

`fallback` is either a reply string or `{reply: ..., hints: [...]}`; it is used when nothing
matches, and the call stays in its state. A state may set its own `fallback`.

Mistakes (a typo in a key, an unknown `next` state, a missing `reply`, an unknown action, the
same phrase in two intents of one state) stop the chatbot at start-up with a `ScriptError`
naming the file and line. The loader lives in `script_loader.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

HANGUP = "hangup"
TRANSFER = "transfer"


class ScriptError(Exception):
    """A script that cannot be used; the message names the file and, when known, the line."""

    def __init__(self, source: str, problem: str, line: int | None = None) -> None:
        where = f"{source}, line {line}" if line is not None else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.problem = problem
        self.line = line


@dataclass(frozen=True)
class Action:
    """Something the gateway does after speaking the reply: hang up or transfer the call."""

    type: str
    to: str | None = None

    def to_json(self) -> str | dict[str, str]:
        """The contract's form: "hangup" or {"type": "transfer", "to": "+1..."}."""
        if self.type == TRANSFER:
            return {"type": TRANSFER, "to": self.to or ""}
        return self.type

    @property
    def ends_conversation(self) -> bool:
        """True when the caller leaves the chatbot after this action."""
        return self.type in (HANGUP, TRANSFER)


@dataclass(frozen=True)
class Intent:
    """One thing the caller can say, and how the chatbot answers it."""

    name: str
    phrases: tuple[str, ...]
    reply: str
    action: Action | None = None
    hints: tuple[str, ...] | None = None
    next_state: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Fallback:
    """The answer when nothing the caller said matches."""

    reply: str
    hints: tuple[str, ...] | None = None


@dataclass(frozen=True)
class State:
    """A point in the dialogue: the intents understood there and an optional own fallback."""

    name: str
    intents: tuple[Intent, ...] = ()
    fallback: Fallback | None = None


@dataclass(frozen=True)
class Script:
    """A whole, validated dialogue script."""

    source: str
    start: str
    states: Mapping[str, State]
    global_intents: tuple[Intent, ...]
    fallback: Fallback
    greeting: str = ""  # what a new call hears when the gateway asks (CHATBOT_GREETING); "" leaves its GREETING
