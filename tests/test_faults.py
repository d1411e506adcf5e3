"""Faults outside the gateway (issue #5, part 3): Twilio's REST API throttling or failing, the chatbot down."""
from __future__ import annotations

import logging

from gateway.twilio.rest import CallUpdater, UpdateResult
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.test_phone_dialogue import APOLOGY, place, updates, wait_until

HOLD = '<?xml version="1.0" encoding="UTF-8"?><Response><Pause length="60"/></Response>'
HELLO = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>hello again</Say><Pause length="60"/></Response>'


def live_call(twilio):
    """A call in progress on the Twilio stand-in, sitting in a long <Pause>."""
    created = twilio.client().calls.create(to="+15550001111", from_="+15557654321", twiml=HOLD)
    call = twilio.get_call(created.sid)
    assert call.wait_for_event("pause", 5), call.transcript()
    return call


def attempts(twilio, call):
    """(time, HTTP status) of every update the call's REST resource received."""
    return [(r["time"], r["status"]) for r in twilio.rest_requests if call.sid in r["path"] and r["method"] == "POST"]


def test_update_retries_429_and_5xx_with_growing_backoff(twilio, caplog):
    call = live_call(twilio)
    updater = CallUpdater(ACCOUNT_SID, AUTH_TOKEN, twilio.api_url, retries=2, backoff=0.2)
    twilio.fail_next_updates(status=429, count=1)
    twilio.fail_next_updates(status=503, count=1)
    with caplog.at_level(logging.WARNING, logger="gateway.twilio.rest"):
        assert updater.update(call.sid, HELLO) is UpdateResult.SENT
    tried = attempts(twilio, call)
    assert [status for _, status in tried] == [429, 503, 200]
    gaps = [later - earlier for (earlier, _), (later, _) in zip(tried, tried[1:])]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # backoff doubles
    assert call.wait_for_say("hello again", 5), call.transcript()
    retries = [r.levelname for r in caplog.records if r.name == "gateway.twilio.rest"]
    assert retries == ["WARNING", "WARNING"]  # two retries, no give-up


def test_update_gives_up_after_the_last_retry_and_says_so(twilio, caplog):
    call = live_call(twilio)
    updater = CallUpdater(ACCOUNT_SID, AUTH_TOKEN, twilio.api_url, retries=2, backoff=0.05)
    twilio.fail_next_updates(status=500, count=3)
    with caplog.at_level(logging.WARNING, logger="gateway.twilio.rest"):
        assert updater.update(call.sid, HELLO) is UpdateResult.FAILED
    assert [status for _, status in attempts(twilio, call)] == [500, 500, 500]  # bounded: 1 try + 2 retries
    give_up = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(give_up) == 1 and call.sid in give_up[0].getMessage() and "HTTP 500" in give_up[0].getMessage()
    assert call.status == "in-progress" and call.said() == []  # the call keeps doing what it did: no hang-up
    assert updater.update(call.sid, HELLO) is UpdateResult.SENT


def test_reply_that_twilio_refuses_is_logged_and_the_call_goes_on(twilio, speech, chatbot, gateway):
    twilio.fail_next_updates(status=503, count=3)  # every attempt for the first reply fails
    from standins.twilio import Caller

    # Timed turns: once the greeting is over (so no barge-in update takes a failure), the caller waits a while for
    # an answer that never comes, then speaks again.
    call = place(twilio, Caller.at_times([(4.5, "hello"), (11.5, "goodbye")]))
    assert call.wait_ended(timeout=60), call.transcript()
    logs = gateway.logs()
    assert f"update of call {call.sid} failed: HTTP 503" in logs and "Traceback" not in logs
    # The lost reply left the call listening on its keep-alive loop; the next turn is answered.
    assert call.said()[-1] == "Goodbye! Thanks for calling." and "Hi, how are you?" not in call.said()
    assert chatbot.messages()[0] == "hello" and [r["status"] for r in twilio.rest_requests
                                                 if call.sid in r["path"]][:3] == [503, 503, 503]


def test_chatbot_down_apologizes_now_and_answers_the_next_turn(twilio, speech, chatbot, gateway):
    chatbot.status, chatbot.body = 503, "{}"
    call = place(twilio, ["hello", "hello", "goodbye"])
    assert call.wait_for_say(APOLOGY, timeout=30), call.transcript()
    chatbot.status, chatbot.body = 200, None  # the chatbot is back before the caller speaks again
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said()[1:] == [APOLOGY, "Hi, how are you?", "Goodbye! Thanks for calling."], call.transcript()
    # Each turn tried the chatbot afresh ("good bye" is a hint too).
    assert [m.replace(" ", "") for m in chatbot.messages()] == ["hello", "hello", "goodbye"]
    assert wait_until(lambda: "chatbot failed for call" in gateway.logs(), 5)
    assert len(updates(twilio, call)) == 3
