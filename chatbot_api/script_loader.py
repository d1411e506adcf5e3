"""Read a YAML dialogue script (format: see `script.py`) into a `Script`, naming the line of any mistake."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NoReturn

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .matching import normalize
from .script import HANGUP, TRANSFER, Action, Fallback, Intent, Script, ScriptError, State

_NULL_TAG = "tag:yaml.org,2002:null"
_E164_NUMBER = re.compile(r"^\+[1-9]\d{1,14}$")
_SCRIPT_KEYS = ("start", "greeting", "fallback", "global", "states")
_STATE_KEYS = ("intents", "fallback")
_INTENT_KEYS = ("say", "reply", "action", "next", "hints")
_FALLBACK_KEYS = ("reply", "hints")
_ACTION_KEYS = ("type", "to")
_ACTION_HELP = 'expected hangup or {type: transfer, to: "+15550001111"}'


def load_script(path: str | os.PathLike[str]) -> Script:
    """Read and validate the script file at `path`; raise ScriptError on any problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ScriptError(source, f"cannot read the script: {error}") from error
    return parse_script(text, source)


def parse_script(text: str, source: str = "<script>") -> Script:
    """Validate YAML `text` as a script; `source` names it in error messages."""
    try:
        # Composing (rather than loading) keeps every node's line number, and leaves scalars
        # as written: `say: [yes, no, 1]` stays text instead of becoming booleans and ints.
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        # PyYAML splits its message: "expected a single document" (context), "but found another" (problem).
        problem = ", ".join(part for part in (error.context, error.problem) if part)
        raise ScriptError(source, f"invalid YAML: {problem}", line) from error
    except yaml.YAMLError as error:
        raise ScriptError(source, f"invalid YAML: {error}") from error
    if root is None:
        raise ScriptError(source, "the script is empty")
    return _ScriptReader(source).read(root)


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


class _ScriptReader:
    """Walks the YAML node tree once, building the model and failing at the first mistake."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.next_references: list[tuple[str, Node]] = []  # checked once all states are known

    def fail(self, node: Node, problem: str) -> NoReturn:
        raise ScriptError(self.source, problem, node.start_mark.line + 1)

    def read(self, root: Node) -> Script:
        items = self.mapping(root, "the script", _SCRIPT_KEYS)
        if "states" not in items:
            self.fail(root, "the script needs a 'states:' section")
        if "fallback" not in items:
            self.fail(root, "the script needs a 'fallback:' reply for when nothing matches")
        states = self.states(items["states"][1])
        global_intents = self.intents(items["global"][1], "global") if "global" in items else ()
        fallback = self.fallback(items["fallback"][1], "the top-level fallback")
        start = next(iter(states))
        if "start" in items:
            start = self.text(items["start"][1], "start")
            if start not in states:
                self.fail(items["start"][1], f"unknown start state '{start}'; states are: {', '.join(states)}")
        for name, node in self.next_references:
            if name not in states:
                self.fail(node, f"unknown state '{name}' in next:; states are: {', '.join(states)}")
        greeting = self.text(items["greeting"][1], "greeting") if "greeting" in items else ""
        return Script(self.source, start, states, global_intents, fallback, greeting)

    def mapping(self, node: Node, what: str, allowed: tuple[str, ...] | None = None) -> dict[str, tuple[Node, Node]]:
        """The items of a mapping node by key, rejecting duplicate and (if `allowed`) unknown keys."""
        if not isinstance(node, MappingNode):
            self.fail(node, f"{what} must be a mapping of 'key: value' lines")
        items: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = self.text(key_node, f"a key in {what}")
            if key in items:
                self.fail(key_node, f"duplicate key '{key}' in {what}")
            if allowed is not None and key not in allowed:
                self.fail(key_node, f"unknown key '{key}' in {what}; expected one of: {', '.join(allowed)}")
            items[key] = (key_node, value_node)
        return items

    def text(self, node: Node, what: str) -> str:
        """A non-empty text value; YAML types are ignored so `1`, `yes` and `+1555...` stay text."""
        if not isinstance(node, ScalarNode):
            self.fail(node, f"{what} must be a single text value")
        value = "" if _is_null(node) else node.value.strip()
        if not value:
            self.fail(node, f"{what} must not be empty")
        return value

    def texts(self, node: Node, what: str) -> list[tuple[str, Node]]:
        """A list of texts (a single text counts as a list of one), each with its node."""
        items = node.value if isinstance(node, SequenceNode) else [node]
        return [(self.text(item, f"each entry of {what}"), item) for item in items]

    def states(self, node: Node) -> dict[str, State]:
        states: dict[str, State] = {}
        for name, (key_node, value_node) in self.mapping(node, "states").items():
            states[name] = self.state(name, value_node)
        if not states:
            self.fail(node, "'states:' must define at least one state")
        return states

    def state(self, name: str, node: Node) -> State:
        if _is_null(node):  # a state with nothing but the global intents
            return State(name)
        items = self.mapping(node, f"state '{name}'", _STATE_KEYS)
        intents = self.intents(items["intents"][1], f"state '{name}'") if "intents" in items else ()
        fallback = self.fallback(items["fallback"][1], f"the fallback of state '{name}'") if "fallback" in items else None
        return State(name, intents, fallback)

    def intents(self, node: Node, where: str) -> tuple[Intent, ...]:
        if _is_null(node):
            return ()
        intents = []
        owner_of_phrase: dict[str, str] = {}
        for name, (key_node, value_node) in self.mapping(node, f"the intents of {where}").items():
            intent, phrase_nodes = self.intent(name, key_node, value_node)
            for phrase, phrase_node in phrase_nodes:
                owner = owner_of_phrase.setdefault(normalize(phrase), name)
                if owner != name:
                    # Two intents of one state sharing a phrase means one of them can never win.
                    self.fail(phrase_node, f"phrase '{phrase}' of intent '{name}' is already used by intent '{owner}' in {where}")
            intents.append(intent)
        return tuple(intents)

    def intent(self, name: str, key_node: Node, node: Node) -> tuple[Intent, list[tuple[str, Node]]]:
        """The intent, plus its phrases with their nodes so the caller can report clashes by line."""
        what = f"intent '{name}'"
        items = self.mapping(node, what, _INTENT_KEYS)
        for required in ("say", "reply"):
            if required not in items:
                self.fail(key_node, f"{what} needs '{required}:'")
        phrases = self.texts(items["say"][1], f"say: of {what}")
        if not phrases:
            self.fail(items["say"][1], f"say: of {what} needs at least one phrase")
        for phrase, phrase_node in phrases:
            if not normalize(phrase):
                self.fail(phrase_node, f"phrase '{phrase}' of {what} has no letters or digits")
        next_state = None
        if "next" in items and not _is_null(items["next"][1]):
            next_state = self.text(items["next"][1], f"next: of {what}")
            self.next_references.append((next_state, items["next"][1]))
        intent = Intent(
            name=name,
            phrases=tuple(phrase for phrase, _ in phrases),
            reply=self.text(items["reply"][1], f"reply: of {what}"),
            action=self.action(items["action"][1], what) if "action" in items else None,
            hints=self.hints(items["hints"][1], what) if "hints" in items else None,
            next_state=next_state,
            line=key_node.start_mark.line + 1,
        )
        return intent, phrases

    def hints(self, node: Node, what: str) -> tuple[str, ...] | None:
        if _is_null(node):
            return None
        if not isinstance(node, SequenceNode):
            self.fail(node, f"hints: of {what} must be a list of phrases, like [yes, no]")
        return tuple(text for text, _ in self.texts(node, f"hints: of {what}"))

    def action(self, node: Node, what: str) -> Action | None:
        if _is_null(node):
            return None
        if isinstance(node, ScalarNode):
            kind = self.text(node, f"action: of {what}")
            if kind == HANGUP:
                return Action(HANGUP)
            if kind == TRANSFER:
                self.fail(node, f"a transfer action of {what} needs a number; {_ACTION_HELP}")
            self.fail(node, f"unknown action '{kind}' in {what}; {_ACTION_HELP}")
        items = self.mapping(node, f"action: of {what}", _ACTION_KEYS)
        if "type" not in items:
            self.fail(node, f"action: of {what} needs 'type:'; {_ACTION_HELP}")
        kind = self.text(items["type"][1], f"type: of the action of {what}")
        if kind == HANGUP:
            if "to" in items:
                self.fail(items["to"][0], f"a hangup action of {what} takes no 'to:'")
            return Action(HANGUP)
        if kind != TRANSFER:
            self.fail(items["type"][1], f"unknown action '{kind}' in {what}; {_ACTION_HELP}")
        if "to" not in items:
            self.fail(node, f"a transfer action of {what} needs a number; {_ACTION_HELP}")
        number = self.text(items["to"][1], f"to: of the action of {what}")
        if not _E164_NUMBER.match(number):
            self.fail(items["to"][1], f"transfer number '{number}' of {what} must look like +15550001111")
        return Action(TRANSFER, number)

    def fallback(self, node: Node, what: str) -> Fallback:
        if isinstance(node, ScalarNode):
            return Fallback(self.text(node, what))
        items = self.mapping(node, what, _FALLBACK_KEYS)
        if "reply" not in items:
            self.fail(node, f"{what} needs 'reply:'")
        hints = self.hints(items["hints"][1], what) if "hints" in items else None
        return Fallback(self.text(items["reply"][1], f"reply: of {what}"), hints)
