"""Pure parts of limits, logs and shutdown: the rate limiter, the handoff state, redaction, config, /voice in a drain."""
import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway import create_app
from gateway.config import Config, ConfigError
from gateway.ops.limits import MessageRate, stream_capacity
from gateway.ops.redact import RedactingFormatter, mask_number
from gateway.web.resume import MAX_URL_CHARS, Handoff, pack, resume_url, unpack

SID = "AC" + "0" * 32
BASE = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "a-secret-auth-token", "CALL_HISTORY": "off"}


ACCEPT, DROP, FLOOD = (1, False), (0, False), (0, True)  # admit_many(1): one message taken, dropped, a flood


def test_rate_limiter_allows_bursts_drops_excess_and_reports_a_flood(caplog):
    now = [0.0]
    rate = MessageRate(50, clock=lambda: now[0])
    assert all(rate.admit_many(1) == ACCEPT for _ in range(100))  # two seconds' worth at once: a burst
    assert rate.admit_many(1) == DROP
    now[0] += 1.0
    assert sum(rate.admit_many(1) == ACCEPT for _ in range(60)) == 50  # refilled at 50 a second
    verdicts = [rate.admit_many(1) for _ in range(300)]
    assert verdicts.index(FLOOD) == 250 - 11  # 5 s worth (250) dropped in the window: 11 so far, then these
    assert set(verdicts[:239]) == {DROP} and set(verdicts[239:]) == {FLOOD}
    assert caplog.text.count("Media Stream over MAX_STREAM_MESSAGES_PER_SECOND") == 1  # not one line per message
    assert caplog.text.count("Media Stream flood") == 1


def test_a_read_over_the_rate_keeps_its_first_messages_and_a_flood_is_told_once(caplog):
    now = [0.0]
    rate = MessageRate(50, clock=lambda: now[0], tracks=2)  # both tracks: 100 a second, a 200-message burst
    assert rate.admit_many(150) == (150, False)
    assert rate.admit_many(80) == (50, False)  # the burst's last 50; 30 dropped
    now[0] += 0.1
    assert rate.admit_many(10) == (10, False)  # a read at Twilio's pace after it: taken whole
    taken, flood = rate.admit_many(1000)
    assert (taken, flood) == (0, True)  # 1030 dropped in the window: over 5 s worth (500)
    assert rate.admit_many(10) == (0, True)
    assert caplog.text.count("Media Stream over MAX_STREAM_MESSAGES_PER_SECOND") == 1
    assert caplog.text.count("Media Stream flood") == 1


def test_rate_limiter_at_twilio_pace_never_drops():
    now = [0.0]
    rate = MessageRate(50, clock=lambda: now[0])
    for _ in range(50 * 600):  # ten minutes at 50 a second
        now[0] += 0.02
        assert rate.admit_many(1) == ACCEPT


def test_handoff_state_round_trips_and_fits_in_a_call_update():
    handoff = Handoff("Fish & chips < 'pie'", "transfer", "+15550001111", ("good", "bad"), "Say good or bad.", 1.7e9)
    assert unpack(pack(handoff)) == handoff and unpack("") == Handoff()
    with pytest.raises(ValueError):
        unpack("not-a-state")
    huge = Handoff("word " * 400, hints=tuple(f"phrase number {i}" for i in range(500)), reprompt="x" * 2000)
    url = resume_url("https://gw.example", huge)
    assert len(url) <= MAX_URL_CHARS and unpack(parse_qs(urlsplit(url).query)["state"][0]).say.startswith("word word")


def test_numbers_are_masked_and_secrets_never_printed():
    assert mask_number("+15551230001") == "***0001" and mask_number("") == "unknown" and mask_number("266") == "***"
    formatter = RedactingFormatter(logging.Formatter("%(message)s"), ["a-secret-auth-token"])
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "url https://AC1:%s@api", ("a-secret-auth-token",), None)
    assert formatter.format(record) == "url https://AC1:[redacted]@api"
    assert "a-secret-auth-token" not in repr(Config.from_env(BASE))


def test_limit_settings_are_validated():
    config = Config.from_env({**BASE, "GATEWAY_THREADS": "16", "MAX_CALL_SECONDS": "0", "LOG_TRANSCRIPTS": "true"})
    assert (config.max_concurrent_streams, config.max_call_seconds, config.log_transcripts) == (12, 0, True)
    with pytest.raises(ConfigError) as error:
        Config.from_env({**BASE, "GATEWAY_THREADS": "8", "MAX_CONCURRENT_STREAMS": "8",
                         "MAX_STREAM_MESSAGES_PER_SECOND": "10", "MAX_CALL_SECONDS": "-1", "LOG_TRANSCRIPTS": "ja"})
    for name in ("MAX_CONCURRENT_STREAMS", "MAX_STREAM_MESSAGES_PER_SECOND", "MAX_CALL_SECONDS", "LOG_TRANSCRIPTS"):
        assert name in str(error.value)


def _app():
    config = Config.from_env({**BASE, "STT_PROVIDER": "sphinx", "VALIDATE_SIGNATURES": "false",
                              "PUBLIC_URL": "https://gw.example", "HINTS": "hello, book a table"})
    return create_app(config)


def test_a_call_coming_in_during_a_drain_is_greeted_by_the_next_process():
    draining = _app()
    draining.extensions["chatline"].drain.begin()
    answer = draining.test_client().post("/voice", data={"CallSid": "CA1", "From": "+15551230001"}).get_data(True)
    assert '<Pause length="1" /><Redirect method="POST">https://gw.example/resume?state=' in answer
    assert "<Stream" not in answer and draining.extensions["chatline"].store.get("CA1") is None
    url = answer.split('<Redirect method="POST">')[1].split("</Redirect>")[0].replace("&amp;", "&")
    next_process = _app()
    resumed = next_process.test_client().post(url[len("https://gw.example"):],
                                              data={"CallSid": "CA1", "From": "+15551230001"}).get_data(True)
    assert '<Start><Stream track="both_tracks" url="wss://gw.example/stream">' in resumed  # OUTBOUND_TRACK on
    assert "Hello! You are talking to Chatline. How can I help?</Say>" in resumed
    assert next_process.extensions["chatline"].store.get("CA1").hints == ("hello", "book a table")


def test_a_newline_from_a_caller_cannot_forge_a_log_line():
    formatter = RedactingFormatter(logging.Formatter("%(levelname)s %(message)s"), [])
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "odd From %s", ("+1\nERROR forged line",), None)
    assert formatter.format(record) == "WARNING odd From +1\\nERROR forged line"
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed\r\nagain", (), sys.exc_info())
    text = formatter.format(failed)
    assert text.startswith("ERROR failed\\r\\nagain\nTraceback") and text.endswith("ValueError: boom")


def test_the_start_up_log_says_how_many_calls_stream_and_why():
    assert stream_capacity(Config.from_env(BASE)) == (
        "250 concurrent streams (the measured limit of one process for answers within 100 ms: each live stream holds "
        "one of the 400 gunicorn threads for its whole call, the other 150 serve webhooks; calls beyond are answered "
        "in Gather mode)")
    # More threads do not make a process faster: the measured limit stays; fewer threads bound it.
    assert Config.from_env({**BASE, "GATEWAY_THREADS": "1000"}).max_concurrent_streams == 250
    assert stream_capacity(Config.from_env({**BASE, "GATEWAY_THREADS": "96"})).startswith(
        "72 concurrent streams (three quarters of GATEWAY_THREADS=96:")
    assert stream_capacity(Config.from_env({**BASE, "MAX_CONCURRENT_STREAMS": "20"})).startswith(
        "20 concurrent streams (MAX_CONCURRENT_STREAMS=20: each live stream holds one of the 400 gunicorn threads")
