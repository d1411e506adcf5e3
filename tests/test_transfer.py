"""The chatbot's transfer action: <Dial> with caller ID, timeout and an action URL; an unanswered dial returns to the bot."""
from __future__ import annotations

import json
import time

from tests.test_phone_dialogue import place, updates, wait_until

TRANSFER = json.dumps({"text": "Putting you through to a person.", "action": {"type": "transfer", "to": "+15550001111"}})
FAILED = "Sorry, nobody could take your call right now. Let's carry on."


def test_unanswered_transfer_brings_the_caller_back(twilio, chatbot, start_gateway):
    # Gather mode's transfer is tested in process (test_dialogue_webhooks.py): its TwiML is the webhooks' answers.
    start_gateway(TRANSFER_CALLER_ID="+15557654321", TRANSFER_TIMEOUT="20")
    chatbot.body = TRANSFER
    call = place(twilio, ["hello"])
    assert call.wait_for_say(FAILED, timeout=30), call.transcript()
    said = call.said()
    assert said[said.index(FAILED) - 1] == "Putting you through to a person."
    assert [d for _, kind, d in call.events if kind == "dial"] == ["+15550001111"]
    documents = updates(twilio, call)
    assert ('<Dial action="https://chatline.test/transfer" callerId="+15557654321" method="POST" timeout="20">'
            '<Number>+15550001111</Number></Dial>') in documents[0]
    # Back with the bot: the call goes on listening instead of ending.
    failed_at = next(t for t, kind, d in call.events if kind == "say" and d == FAILED)
    assert wait_until(lambda: any(t >= failed_at and kind in ("pause", "gather") for t, kind, _ in call.events), 10)
    time.sleep(1.0)
    assert call.status != "completed", call.transcript()
    call.hang_up()
    assert call.wait_ended(timeout=10)
