"""The sample chatbot's pure parts: script loading and its errors, matching, sessions, the engine."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

REPO_ROOT = Path(__file__).resolve().parents[1]

from chatbot_api import Dialogue, ScriptError, SessionStore, load_script, parse_script  # noqa: E402
from chatbot_api.config import DEFAULT_SCRIPT  # noqa: E402
from chatbot_api.matching import PhraseMatcher, is_keypad_only, normalize  # noqa: E402

VALID = """\
start: desk
fallback: Say again?
global:
  bye: {say: [bye], reply: Bye., action: hangup}
  agent:
    say: [agent, a person]
    reply: Putting you through.
    action: {type: transfer, to: "+15550001111"}
states:
  desk:
    intents:
      answer: {say: [yes, no, "1"], reply: Noted., next: quiet}
      menu: {say: menu, reply: Pick one., hints: [red, blue]}
      bye_here: {say: [bye], reply: See you!}
  quiet:
"""


def dialogue(text: str = VALID, ttl: float = 60) -> Dialogue:
    return Dialogue(parse_script(text, "test.yaml"), SessionStore(ttl))


def test_default_script_loads():
    script = load_script(DEFAULT_SCRIPT)
    assert script.start == "main" and set(script.states) == {"main", "party_size"}


def test_script_values_stay_text_and_defaults_apply():
    script = parse_script(VALID, "test.yaml")
    answer = script.states["desk"].intents[0]
    assert answer.phrases == ("yes", "no", "1") and answer.next_state == "quiet" and answer.line == 12
    assert script.states["desk"].intents[1].phrases == ("menu",)
    assert script.states["quiet"].intents == ()
    assert script.global_intents[1].action.to_json() == {"type": "transfer", "to": "+15550001111"}
    assert parse_script(VALID.replace("start: desk\n", ""), "t").start == "desk"  # first state


def test_engine_actions_hints_and_state_priority():
    bot = dialogue()
    assert bot.respond("s", "NO!").text == "Noted."
    assert bot.respond("s", "no").hints == ("bye", "agent", "a person")  # quiet: globals only, no "1"
    transfer = bot.respond("s", "a person please")
    assert transfer.to_json() == {"text": "Putting you through.", "action": {"type": "transfer", "to": "+15550001111"}, "hints": []}
    assert bot.sessions.get("s") is None  # a transfer ends the conversation
    assert bot.respond("s", "bye").text == "See you!"  # the state's intent beats the global one
    assert bot.respond("s", "menu").hints == ("red", "blue")  # explicit hints win
    assert bot.respond("t", "1").text == "Noted."  # keypad digit
    assert bot.respond("u", "what?").to_json() == {"text": "Say again?", "action": None, "hints": ["yes", "no", "menu", "bye", "agent", "a person"]}


def test_unknown_stored_state_restarts_at_the_start():
    bot = dialogue()
    bot.sessions.put("s", "deleted_state")
    assert bot.respond("s", "yes").text == "Noted."


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("states: [unclosed\n", 2, "invalid YAML"),
        ("fallback: x\nstates:\n  a:\n\tintents: {}\n", 4, "invalid YAML"),
        ("", None, "empty"),
        ("- a\n- b\n", 1, "must be a mapping"),
        ("fallback: x\nstates: {a: }\n---\nmore: 1\n", 3, "invalid YAML"),
        ("fallback: x\n", 1, "'states:'"),
        ("states: {a: }\n", 1, "'fallback:'"),
        ("fallback: x\nstates: {}\n", 2, "at least one state"),
        ("fallback: x\nstart: b\nstates: {a: }\n", 2, "unknown start state 'b'"),
        ("fallback: x\nstates:\n  a:\n    intents:\n      i: {say: [hi], reply: ok, next: nowhere}\n", 5, "unknown state 'nowhere'"),
        ("fallback: x\nstates:\n  a:\n    intents:\n      i:\n        say: [hi]\n", 5, "needs 'reply:'"),
        ("fallback: x\nstates:\n  a:\n    intents:\n      i:\n        reply: ok\n", 5, "needs 'say:'"),
        ("fallback: x\nstates:\n  a:\n    intents:\n      i:\n        say: hi\n        reply:\n", 7, "must not be empty"),
        ("fallback: x\nstates:\n  a:\n    intents:\n      i:\n        say: hi\n        reply: [a, b]\n", 7, "single text value"),
        ("fallback: x\nstates:\n  a:\n    intents:\n      i:\n        say: {x: 1}\n        reply: ok\n", 6, "single text value"),
        ("fallback: x\nstates:\n  a:\n    intents:\n      i:\n        say: ['?!']\n        reply: ok\n", 6, "no letters or digits"),
        ("fallback: x\nstates:\n  a:\n    intents:\n      i:\n        say: hi\n        repy: ok\n", 7, "unknown key 'repy'"),
        ("fallback: x\nstates:\n  a:\n    intents:\n      i: {say: hi, reply: ok, action: explode}\n", 5, "unknown action 'explode'"),
        ("fallback: x\nstates:\n  a:\n    intents:\n      i:\n        say: hi\n        reply: ok\n        action:\n          type: dance\n", 9, "unknown action 'dance'"),
        ("fallback: x\nstates:\n  a:\n    intents:\n      i: {say: hi, reply: ok, action: transfer}\n", 5, "needs a number"),
        ("fallback: x\nstates:\n  a:\n    intents:\n      i: {say: hi, reply: ok, action: {type: transfer, to: '555'}}\n", 5, "+15550001111"),
        ("fallback: x\nstates:\n  a:\n    intents:\n      i: {say: hi, reply: ok, hints: yes}\n", 5, "must be a list"),
        ("fallback: x\nstates:\n  a:\n    intents:\n      i: {say: hi, reply: ok}\n      j: {say: 'Hi!', reply: no}\n", 6, "already used by intent 'i'"),
        ("fallback: x\nstates:\n  a:\n  a:\n", 4, "duplicate key 'a'"),
        ("fallback: {hints: [a]}\nstates: {a: }\n", 1, "needs 'reply:'"),
    ],
)
def test_broken_scripts_name_file_and_line(tmp_path, text, line, fragment):
    path = tmp_path / "owner.yaml"
    path.write_text(text)
    with pytest.raises(ScriptError) as caught:
        load_script(path)
    error = caught.value
    assert error.line == line and fragment in error.problem
    where = f"{path}, line {line}: " if line else f"{path}: "
    assert str(error).startswith(where)


@pytest.mark.parametrize(
    "text, expected",
    [("Hello, THERE!", "hello there"), ("  what's   up?? ", "whats up"), ("Good-bye", "good bye"),
     ("I\u2019m fine", "im fine"), ("4#", "4 #"), ("...", ""), ("Ça va", "ça va")],
)
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_phrase_matcher_prefers_longest_whole_word_match():
    matcher = PhraseMatcher([("good", "good"), ("not good", "bad"), ("hi", "hi"), ("good bye", "bye")])
    assert matcher.match("I'm NOT good.") == "bad"
    assert matcher.match("good-bye then") == "bye"
    assert matcher.match("goodness") is None and matcher.match("this") is None and matcher.match("") is None
    assert is_keypad_only("42#") and not is_keypad_only("for 4")


def test_session_store_expiry_refresh_forget_and_sweep():
    now = [0.0]
    store = SessionStore(10, clock=lambda: now[0], sweep_interval=5)
    store.put("a", "x")
    now[0] = 9.9
    assert store.get("a") == "x"
    store.put("a", "y")  # activity renews the TTL
    store.put("b", "z")
    now[0] = 19.8
    assert store.get("a") == "y"
    now[0] = 20
    assert store.get("a") is None
    store.put("c", "w")
    store.forget("c")
    store.forget("never-seen")
    now[0] = 40
    store.put("d", "v")  # a put past the sweep interval drops the abandoned "b"
    assert len(store) == 1 and store.sweep() == 0
    with pytest.raises(ValueError):
        SessionStore(0)


def test_session_store_is_thread_safe():
    store = SessionStore(60, sweep_interval=0)  # sweep on every call: the worst case for races

    def worker(n: int) -> None:
        for i in range(300):
            store.put(f"{n}-{i}", "s")
            assert store.get(f"{n}-{i}") == "s"
            store.forget(f"{n}-{i - 1}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(worker, n) for n in range(8)]:
            future.result()  # re-raises a failure from inside a thread
    assert len(store) == 8


_DEFAULT_BOT = Dialogue(load_script(DEFAULT_SCRIPT), SessionStore(60))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=40), min_size=1, max_size=5))
def test_any_text_gets_a_well_formed_reply(messages):
    for message in messages:
        reply = _DEFAULT_BOT.respond("prop", message)
        assert reply.text and isinstance(reply.hints, tuple)
        assert normalize(normalize(message)) == normalize(message)
