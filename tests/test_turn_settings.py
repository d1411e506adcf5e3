"""The turn-taking settings: defaults, values, and every bad one named at once."""
import pytest

from gateway.config import Config, ConfigError

BASE = {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t"}


def test_defaults():
    config = Config.from_env(BASE)
    assert config.outbound_track is True and config.turn_max_wait_seconds == 2.0
    assert config.turn_detector == "words" and config.backchannel_words == () and config.echo_window_seconds == 2.0


def test_values():
    config = Config.from_env({**BASE, "OUTBOUND_TRACK": "off", "TURN_MAX_WAIT_SECONDS": "0",
                              "TURN_DETECTOR": "Smart-Turn", "BACKCHANNEL_WORDS": "perfect, sounds good,",
                              "ECHO_WINDOW_SECONDS": "3.5"})
    assert config.outbound_track is False and config.turn_max_wait_seconds == 0.0
    assert config.turn_detector == "smart-turn" and config.backchannel_words == ("perfect", "sounds good")
    assert config.echo_window_seconds == 3.5


def test_every_bad_value_is_named():
    with pytest.raises(ConfigError) as error:
        Config.from_env({**BASE, "TURN_MAX_WAIT_SECONDS": "-1", "TURN_DETECTOR": "livekit",
                         "ECHO_WINDOW_SECONDS": "soon"})
    message = str(error.value)
    assert "TURN_MAX_WAIT_SECONDS" in message and "TURN_DETECTOR" in message and "ECHO_WINDOW_SECONDS" in message
