"""The scripted-dialogue engine: turns (session, message) into a reply using a Script and a SessionStore."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .matching import PhraseMatcher, is_keypad_only, normalize
from .script import Action, Intent, Script, State
from .sessions import SessionStore


@dataclass(frozen=True)
class Reply:
    """What the chatbot answers, plus what happened (for logging and tests)."""

    text: str
    action: Action | None
    hints: tuple[str, ...]
    intent: str | None  # the matched intent's name; None when the fallback answered
    state: str  # the session's state after this reply

    def to_json(self) -> dict[str, Any]:
        """The contract's answer body: {"text", "action", "hints"}."""
        return {
            "text": self.text,
            "action": self.action.to_json() if self.action else None,
            "hints": list(self.hints),
        }


class Dialogue:
    """Answers callers according to one script; safe to share between threads."""

    def __init__(self, script: Script, sessions: SessionStore) -> None:
        self.script = script
        self.sessions = sessions
        # Everything derivable from the (immutable) script is computed once, not per message.
        self._matchers = {name: self._build_matcher(state) for name, state in script.states.items()}
        self._hints = {name: self._spoken_phrases(state) for name, state in script.states.items()}

    def respond(self, session_id: str, message: str) -> Reply:
        """Match `message` in the session's current state, advance the state and build the reply."""
        state = self._current_state(session_id)
        intent = self._matchers[state.name].match(message)
        if intent is None:
            return self._fallback(session_id, state)
        next_state = intent.next_state or state.name
        leaving = intent.action is not None and intent.action.ends_conversation
        if leaving:
            self.sessions.forget(session_id)  # the call ends here: nothing left to remember
        else:
            self.sessions.put(session_id, next_state)
        default_hints = () if leaving else self._hints[next_state]
        hints = intent.hints if intent.hints is not None else default_hints
        return Reply(intent.reply, intent.action, hints, intent.name, next_state)

    def greet(self, session_id: str) -> Reply:
        """A new call (the gateway's first request, "input": "start"): start afresh and say the script's greeting."""
        self.sessions.put(session_id, self.script.start)
        start = self.script.start
        return Reply(self.script.greeting, None, self._hints[start], "greeting", start)

    def hints_for(self, state_name: str) -> tuple[str, ...]:
        """The spoken phrases understood in a state (its own intents, then the global ones)."""
        return self._hints[state_name]

    def _current_state(self, session_id: str) -> State:
        name = self.sessions.get(session_id)
        # A state name the script no longer knows (a store that outlived a script edit) restarts.
        if name is None or name not in self.script.states:
            name = self.script.start
        return self.script.states[name]

    def _fallback(self, session_id: str, state: State) -> Reply:
        fallback = state.fallback or self.script.fallback
        self.sessions.put(session_id, state.name)  # keeps the session alive while the caller retries
        hints = fallback.hints if fallback.hints is not None else self._hints[state.name]
        return Reply(fallback.reply, None, hints, None, state.name)

    def _intents_in(self, state: State) -> tuple[Intent, ...]:
        # State intents come first so they win ties against a global intent with the same phrase.
        return state.intents + self.script.global_intents

    def _build_matcher(self, state: State) -> PhraseMatcher[Intent]:
        return PhraseMatcher((phrase, intent) for intent in self._intents_in(state) for phrase in intent.phrases)

    def _spoken_phrases(self, state: State) -> tuple[str, ...]:
        # Keypad-only phrases ("1") are left out: they are pressed, not said, and a digit in a
        # speech grammar only confuses recognizers. Duplicates are dropped after normalizing.
        seen: set[str] = set()
        phrases = []
        for intent in self._intents_in(state):
            for phrase in intent.phrases:
                key = normalize(phrase)
                if key not in seen and not is_keypad_only(phrase):
                    seen.add(key)
                    phrases.append(phrase)
        return tuple(phrases)
