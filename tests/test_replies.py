"""Which TwiML carries a reply to a call (gateway/dialogue/replies.py), checked as exact XML from config and state."""
from dataclasses import replace

from gateway.calls.store import CallState
from gateway.chatbots.reply import Reply
from gateway.config import Config
from gateway.dialogue import replies

HEAD = '<?xml version="1.0" encoding="UTF-8"?>'
BASE = "https://gw.example"
CONFIG = Config(twilio_account_sid="AC" + "0" * 32, twilio_auth_token="t")  # NO_INPUT_SECONDS 8, DTMF_TIMEOUT 5
KEYS = '<Gather action="https://gw.example/dtmf" finishOnKey="#" input="dtmf" method="POST" timeout="5">'
BACK = '<Redirect method="POST">https://gw.example/listen</Redirect></Response>'
CALL = CallState("CA1")
ON_GATHER = replace(CALL, hints=("yes", "no"), speech_fallback=True, speech_down=True)


def test_a_stream_call_hears_its_answer_in_the_keep_alive_and_stays_on_its_stream():
    assert replies.answer_twiml(CONFIG, CALL, Reply("Hi."), BASE) == (
        HEAD + "<Response>" + KEYS + '<Say language="en-US">Hi.</Say><Pause length="3" /></Gather>' + BACK, False)


def test_a_goodbye_takes_no_keys_and_hangs_up():
    assert replies.answer_twiml(CONFIG, CALL, Reply("Bye.", "hangup"), BASE) == (
        HEAD + '<Response><Say language="en-US">Bye.</Say><Hangup /></Response>', False)


def test_while_recognition_is_down_the_answer_is_said_in_a_gather_in_the_calls_language_with_its_last_hints():
    document, back = replies.answer_twiml(CONFIG, replace(ON_GATHER, language="es-ES"), Reply("Hola."), BASE)
    assert (document, back) == (
        HEAD + '<Response><Gather action="https://gw.example/gather" actionOnEmptyResult="true" hints="yes, no" '
        'input="speech dtmf" language="es-ES" method="POST" profanityFilter="true" speechTimeout="auto" timeout="8">'
        '<Say language="es-ES">Hola.</Say></Gather></Response>', False)


def test_once_recognition_is_back_the_answer_returns_the_call_to_its_stream():
    state = replace(ON_GATHER, speech_down=False)
    assert replies.answer_twiml(CONFIG, state, Reply("Back."), BASE) == (
        HEAD + "<Response>" + KEYS + '<Say language="en-US">Back.</Say><Pause length="3" /></Gather>' + BACK, True)


def test_silence_on_a_gather_listens_again_on_the_stream_once_recognition_is_back():
    assert replies.silence_twiml(CONFIG, replace(ON_GATHER, speech_down=False), BASE) == (
        HEAD + "<Response>" + KEYS + '<Pause length="3" /></Gather>' + BACK, True)


def test_silence_is_gather_modes_to_reprompt_unless_a_stream_call_waits_out_an_outage_uncounted():
    assert replies.silence_twiml(CONFIG, CALL, BASE) == (None, False)  # Gather mode, or no outage: reprompts apply
    assert replies.silence_twiml(CONFIG, ON_GATHER, BASE) == (None, False)  # NO_INPUT_SECONDS counts this silence
    uncounted = replace(CONFIG, no_input_seconds=0)
    document, back = replies.silence_twiml(uncounted, ON_GATHER, BASE)
    assert not back and document.startswith(HEAD + '<Response><Gather action="https://gw.example/gather"')
    assert "<Say" not in document  # listens again, saying nothing


def test_the_apology_keeps_the_call_listening_in_its_mode():
    assert replies.apology_document(CONFIG, BASE).startswith(HEAD + "<Response>" + KEYS + '<Say language="en-US">')
    gather_mode = replace(CONFIG, stt_provider="twilio")
    assert '<Gather action="https://gw.example/gather"' in replies.apology_document(gather_mode, BASE)
