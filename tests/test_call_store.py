"""The CallStore contract, run against both stores: this process's, and Redis (a real redis-server)."""
from __future__ import annotations

import threading
import time

import pytest

from gateway.calls.store import CallState, InMemoryCallStore, protected_seconds
from gateway.calls.coordination import LocalSignals, LocalTurnLocks


class Clock:
    """A clock the test moves by hand (wall-clock seconds, like the stores')."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def kind(request):
    return request.param


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(kind, clock, request):
    if kind == "memory":
        return InMemoryCallStore(clock=clock)
    from gateway.calls.redis_store import RedisCallStore, connect

    return RedisCallStore(connect(request.getfixturevalue("redis_server").url), clock=clock)


def test_open_is_idempotent_and_end_is_remembered(store, clock):
    first = store.open("CA1", caller="+1555", called="+1666")
    assert (first.caller, first.called, first.started_at) == ("+1555", "+1666", clock.now)
    clock.now += 5
    assert store.open("CA1", caller="other").caller == "+1555"  # a retried webhook keeps the first state
    assert store.get("CA1").started_at == first.started_at
    assert store.record_turn("CA1", ("good", "bad"), "Say good or bad.").turns == 1
    assert store.end("CA1").ended is False and store.get("CA1").ended is True
    assert store.record_turn("CA1", ("x",)).hints == ("good", "bad")  # no turns after the end
    assert store.end("unknown") is None and store.get("unknown") is None


def test_reprompts_are_counted_until_the_caller_is_heard(store, clock):
    store.open("CA1")
    assert [store.reprompted("CA1", quiet_for=5) for _ in range(3)] == [1, 2, 3]
    clock.now += 10
    assert store.heard("CA1").reprompts == 0
    clock.now += 2
    assert store.reprompted("CA1", quiet_for=5) == 0  # heard 2 s ago: the caller's turn is on its way
    clock.now += 3
    assert store.reprompted("CA1", quiet_for=5) == 1
    store.end("CA1")
    assert store.reprompted("CA1") == 0 and store.reprompted("unknown") == 0 and store.heard("unknown") is None


def test_language_speech_flags_and_hold(store):
    store.open("CA1")
    assert store.speak_as("CA1", "es-ES", "Polly.Lucia").language == "es-ES"
    assert store.set_speech("CA1", down=True, fallback=True).speech_fallback is False  # the state before
    assert (store.get("CA1").speech_down, store.get("CA1").speech_fallback) == (True, True)
    store.set_speech("CA1", down=False)
    assert (store.get("CA1").speech_down, store.get("CA1").speech_fallback) == (False, True)
    assert store.hold("CA1").held is True and store.hold("CA1", False).held is False
    assert store.speak_as("unknown", "es-ES", "") is None


def test_a_prompt_is_cut_once_and_only_while_it_plays(store, clock):
    store.open("CA1")
    assert store.barge_in("CA1") is None  # nothing being said
    prompt = store.speaking("CA1", 2.0, may_cut=True).prompt
    assert store.barge_in("CA1") == prompt and store.barge_in("CA1") is None  # once per prompt
    assert store.speaking("CA1", 2.0, may_cut=True).prompt == prompt + 1
    store.hold("CA1")
    assert store.barge_in("CA1") is None  # a goodbye or transfer under way is never cut
    store.hold("CA1", False)
    assert store.prompt_stopped("CA1", prompt).prompt_until > clock.now  # an old prompt: nothing changes
    clock.now += 3
    assert store.barge_in("CA1") is None  # over already
    store.speaking("CA1", 2.0, may_cut=False)
    assert store.barge_in("CA1") is None and 2.0 < protected_seconds(store.get("CA1"), store.now(), 0.25) <= 2.25


def test_the_deadline_is_claimed_once_and_stale_turns_are_fenced(store):
    store.open("CA1")
    assert store.claim_deadline("CA1") is True and store.claim_deadline("CA1") is False
    assert store.fenced("CA1", 2) and store.fenced("CA1", 3)
    assert not store.fenced("CA1", 2)  # turn 3 acted since: turn 2's holder lost its lock
    assert store.claim_deadline("unknown") is False


def test_stream_ownership_and_broken_streams(store):
    store.open("CA1")
    store.stream_started("CA1", "web.1")
    assert store.get("CA1").stream_owner == "web.1"
    store.stream_gone("CA1", "web.2", broken=True)  # not its stream: nothing changes
    assert store.get("CA1").stream_owner == "web.1" and not store.take_broken("CA1")
    store.stream_gone("CA1", "web.1", broken=True)
    assert store.take_broken("CA1") is True and store.take_broken("CA1") is False  # asked once
    store.stream_started("CA1", "web.2")
    assert store.end("CA1").stream_owner == "web.2" and store.get("CA1").stream_owner == ""


def test_every_change_from_many_threads_counts(store):
    """Concurrent changes of one call from many clients: none is lost (each is one atomic operation)."""
    store.open("CA1")

    def work():
        for _ in range(40):
            store.reprompted("CA1")
            store.record_turn("CA1", ("x",))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state = store.get("CA1")
    assert (state.reprompts, state.turns) == (240, 240)


def test_state_round_trips_through_json_and_ignores_unknown_keys():
    state = CallState("CA1", hints=("a", "b"), last_heard=3.5, stream_owner="x")
    assert CallState.from_dict({**state.to_dict(), "from_a_newer_version": 1}) == state


@pytest.fixture
def locks(kind, request):
    if kind == "memory":
        return LocalTurnLocks()
    from gateway.calls.redis_coordination import RedisTurnLocks
    from gateway.calls.redis_store import connect

    return RedisTurnLocks(connect(request.getfixturevalue("redis_server").url), expiry_seconds=5)


def test_one_turn_per_call_at_a_time(locks):
    first = locks.acquire("CA1", timeout=1)
    assert first is not None and locks.acquire("CA1", timeout=0.2) is None  # the call's turn is taken
    other = locks.acquire("CA2", timeout=0.2)  # another call is not held up
    assert other is not None
    first.release()
    second = locks.acquire("CA1", timeout=1)
    assert second is not None and second.token > first.token
    second.release()
    other.release()


def test_a_redis_turn_lock_of_a_dead_holder_expires_and_its_answer_is_fenced(redis_server):
    from gateway.calls.redis_coordination import RedisTurnLocks
    from gateway.calls.redis_store import RedisCallStore, connect

    client = connect(redis_server.url)
    store, locks = RedisCallStore(client), RedisTurnLocks(client, expiry_seconds=0.5)
    store.open("CA1")
    dead = locks.acquire("CA1", timeout=1)  # its process stops here without releasing
    taken = locks.acquire("CA1", timeout=3)
    assert taken is not None and store.fenced("CA1", taken.token)
    assert not store.fenced("CA1", dead.token)  # a stalled holder coming back must not answer
    dead.release()  # an expired lock's release is logged, not raised
    taken.release()


def test_events_reach_every_subscriber(kind, request):
    got: list[tuple[str, dict]] = []
    arrived = threading.Event()

    def handler(call_sid, event):
        got.append((call_sid, event))
        arrived.set()

    if kind == "memory":
        events = LocalSignals()
        events.subscribe(handler)
    else:
        from gateway.calls.redis_coordination import RedisSignals
        from gateway.calls.redis_store import connect

        url = request.getfixturevalue("redis_server").url
        events, listener = RedisSignals(connect(url)), RedisSignals(connect(url))  # two processes' clients
        listener.subscribe(handler)
        for _ in range(50):  # the subscription is live once a message gets through
            events.publish("CA0", {"type": "ping"})
            if arrived.wait(0.1):
                break
    events.publish("CA1", {"type": "answered", "hints": ["a"]})
    deadline = time.monotonic() + 5
    while not any(sid == "CA1" for sid, _ in got) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ("CA1", {"type": "answered", "hints": ["a"]}) in got
    if kind != "memory":  # its gateway stops: the listening thread ends with it, and logs no reconnects later
        listener.close()
        assert not listener._thread.is_alive()


def test_chat_history_is_kept_per_call_trimmed_and_cut_to_what_was_heard(store):
    store.open("CA1")
    store.add_history("CA1", [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "Hi. How?"}], 3)
    store.add_history("CA1", [{"role": "user", "content": "book"}], 3)
    assert [m["content"] for m in store.history("CA1")] == ["hello", "Hi. How?", "book"]
    store.add_history("CA1", [{"role": "assistant", "content": "For how many? Say a number."}], 3)
    assert [m["content"] for m in store.history("CA1")] == ["Hi. How?", "book", "For how many? Say a number."]
    assert store.cut_reply("CA1", "For how many? Say a number.", "For how many?")
    assert store.history("CA1")[-1] == {"role": "assistant", "content": "For how many?"}
    assert not store.cut_reply("CA1", "never said", "")
    store.add_history("unknown", [{"role": "user", "content": "x"}], 3)  # no call, no history
    assert store.history("unknown") == []


def test_options_hold_until_the_next_answer_and_survive_the_store(store):
    store.open("CA1")
    options = (("Book a table", "/book"), ("Hours", "/hours"))
    assert store.answer("CA1", ("Book a table", "Hours"), options=options).options == options
    assert store.get("CA1").options == options  # read back from Redis's JSON as tuples
    assert store.answer("CA1", ()).options == ()  # an answer without options ends them


def test_a_sentence_owed_to_the_caller_is_kept_until_a_prompt_said_it(store):
    store.open("CA1")
    store.owe("CA1", "I couldn't send you the link by text message.")
    assert store.said("CA1", 2.0, True, "Hi.").owed  # a prompt that did not say it leaves it owed
    store.owe("CA1", "I couldn't send you the links by text message.")  # a newer one replaces it...
    assert store.said("CA1", 2.0, True, "Hi.", owed="I couldn't send you the link by text message.").owed
    assert store.said("CA1", 2.0, True, "Hi.", owed="I couldn't send you the links by text message.").owed == ""


def test_text_messages_are_counted_up_to_the_most_allowed_by_any_process(store):
    store.open("CA1")
    assert [store.claim_text_message("CA1", 2) for _ in range(3)] == [True, True, False]
    assert store.get("CA1").texts_sent == 2
    assert not store.claim_text_message("unknown", 2)
    store.end("CA1")
    store.open("CA2")
    assert not store.claim_text_message("CA1", 5)  # an ended call gets no message
def test_an_answer_is_recorded_and_its_words_let_go_in_one_change(store):
    store.open("CA1")
    store.answering("CA1", "hello")
    assert store.get("CA1").unanswered == "hello"  # a process dying now leaves the words for the takeover
    after = store.answer("CA1", ("good", "bad"), "Good or bad?", "es-ES", "")
    assert (after.turns, after.hints, after.reprompt, after.language, after.unanswered) == (
        1, ("good", "bad"), "Good or bad?", "es-ES", "")  # ...and once the answer goes out, nothing is left to redo
    again = store.answer("CA1", (), "")
    assert (again.turns, again.hints, again.reprompt, again.language) == (2, ("good", "bad"), "", "es-ES")
    said = store.said("CA1", 2.0, True, "Bye", hold=True)
    assert (said.prompt, said.prompt_text, said.prompt_may_cut, said.held) == (1, "Bye", True, True)
    assert store.said("CA1", 1.0, False).held  # saying more keeps the hold
    assert store.answer("CA-unknown", (), "") is None


def test_two_processes_changing_one_call_through_redis_lose_nothing(redis_server, clock):
    """Each process changes the call from the value it last saw; one that is stale learns the current value and
    applies its change to that, so both processes' changes count, and a call gone elsewhere is gone here too."""
    from gateway.calls.redis_store import RedisCallStore, connect

    one, two = (RedisCallStore(connect(redis_server.url), clock=clock) for _ in range(2))
    one.open("CA1")
    assert two.record_turn("CA1", ("a",)).turns == 1
    assert one.record_turn("CA1", ("b",)).turns == 2  # `one` last saw 0 turns: it is told of the 1 and adds its own
    assert two.heard("CA1").turns == 2 and two.get("CA1").last_heard == clock.now
    ttl = connect(redis_server.url).ttl("chatline:call:CA1")
    assert 0 < ttl <= 6 * 3600  # a change keeps the call's expiry
    assert one.end("CA1").ended is False
    assert two.record_turn("CA1", ("c",)).turns == 2  # `two` saw it open: it learns it ended and leaves it alone
    assert connect(redis_server.url).ttl("chatline:call:CA1") <= 600  # remembered only a while for late events
    connect(redis_server.url).delete("chatline:call:CA1")  # expired
    assert two.heard("CA1") is None and two.get("CA1") is None


def test_a_redis_turn_is_freed_only_by_its_holder(redis_server):
    """A turn whose lock expired and was taken by another does not free the newer holder's lock on release."""
    from gateway.calls.redis_coordination import RedisTurnLocks
    from gateway.calls.redis_store import connect

    locks = RedisTurnLocks(connect(redis_server.url), expiry_seconds=0.3, owner="web.1")
    stalled = locks.acquire("CA1", timeout=1)
    time.sleep(0.4)
    taken = locks.acquire("CA1", timeout=1)
    assert taken is not None and taken.token == stalled.token + 1
    stalled.release()  # too late: logged, and the newer turn still holds the call
    assert locks.acquire("CA1", timeout=0.1) is None
    taken.release()
    assert locks.acquire("CA1", timeout=0.1) is not None
