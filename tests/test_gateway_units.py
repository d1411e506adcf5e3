"""Pure parts of the gateway: configuration, call state, and the chatbot's answers."""
import pytest

from gateway.calls.store import InMemoryCallStore
from gateway.chatbots.reply import MAX_TEXT_CHARS, ChatbotError, Reply, parse_reply
from gateway.config import Config, ConfigError

SID = "AC" + "0" * 32


def test_config_names_every_missing_variable_at_once():
    with pytest.raises(ConfigError) as error:
        Config.from_env({"STT_PROVIDER": "watson", "CHATBOT_TIMEOUT": "-1"})
    message = str(error.value)
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "STT_PROVIDER", "CHATBOT_TIMEOUT"):
        assert name in message


def test_config_defaults_and_provider_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no gcloud credentials in this home
    config = Config.from_env({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "t"})
    assert (config.stt_provider, config.language, config.twilio_api_url) == ("sphinx", "en-US", "https://api.twilio.com")
    assert config.chatbot_url == "http://127.0.0.1:5001/message" and config.validate_signatures
    creds = tmp_path / "key.json"
    creds.write_text("{}")
    config = Config.from_env({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "t", "GOOGLE_APPLICATION_CREDENTIALS": str(creds),
                              "PUBLIC_URL": "https://gw.example/"})
    assert config.stt_provider == "google" and config.public_url == "https://gw.example"
    assert "credentials" in config.stt_provider_reason


def test_call_store_lifecycle():
    now = [0.0]
    store = InMemoryCallStore(forget_after_seconds=60, clock=lambda: now[0])
    store.open("CA1", caller="+1555")
    assert store.open("CA1", caller="other").caller == "+1555"  # a retried webhook keeps the first state
    assert store.record_turn("CA1", ("good", "bad")).turns == 1
    assert store.end("CA1").ended is False and store.get("CA1").ended is True
    assert store.record_turn("CA1", ("x",)).hints == ("good", "bad")  # no turns after the end
    assert store.end("unknown") is None
    now[0] = 61.0
    store.open("CA2")
    assert store.get("CA1") is None and len(store) == 1


def test_parse_reply_contract_shapes():
    assert parse_reply({"text": "Hi", "action": None, "hints": ["good", "bad"]}) == Reply("Hi", None, None, ("good", "bad"))
    assert parse_reply({"text": "Bye", "action": "hangup"}).action_type == "hangup"
    assert parse_reply({"text": "Bye", "action": {"type": "hangup"}}).action_type == "hangup"
    transfer = parse_reply({"text": "Wait", "action": {"type": "transfer", "to": "+15550001111"}})
    assert (transfer.action_type, transfer.transfer_to) == ("transfer", "+15550001111")


def test_parse_reply_ignores_unknown_actions_and_bad_hints(caplog):
    reply = parse_reply({"text": "Hi", "action": {"type": "launch-rockets"}, "hints": "good"})
    assert reply == Reply("Hi")
    assert "unknown or malformed action" in caplog.text
    assert parse_reply({"text": "Hi", "hints": ["ok", 3, None, " "]}).hints == ("ok",)
    assert len(parse_reply({"text": "x" * 10_000}).text) == MAX_TEXT_CHARS


@pytest.mark.parametrize("body", [None, [], "text", {"text": 5}, {"reply": "hi"}, {"text": None}])
def test_parse_reply_rejects_what_cannot_be_spoken(body):
    with pytest.raises(ChatbotError):
        parse_reply(body)


def test_parse_reply_makes_text_safe_for_xml_and_checks_transfer_numbers():
    reply = parse_reply({"text": "ok\u000b\u001b done\ud800", "hints": ["a\u0000b"]})
    assert reply.text == "ok done" and reply.hints == ("ab",)
    assert parse_reply({"text": "x", "action": {"type": "transfer", "to": "+1" + "5" * 5000}}).action_type is None
    assert parse_reply({"text": "x", "action": {"type": "transfer", "to": "sip:desk@example.com"}}).action_type == "transfer"


def test_config_keys_and_silence():
    base = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "t", "STT_PROVIDER": "google"}
    config = Config.from_env(base)
    assert (config.dtmf_timeout, config.no_input_seconds, config.no_input_max_reprompts) == (5, 8, 2)
    assert config.no_input_prompt == "Are you still there?"
    assert config.no_input_goodbye == "I haven't heard anything, so I'll hang up now. Goodbye!"
    assert config.gather_options()["timeout"] == 8  # the silence clock in Gather mode too
    off = Config.from_env({**base, "NO_INPUT_SECONDS": "0"})
    assert off.gather_options()["timeout"] == off.gather_timeout  # off: GATHER_TIMEOUT is the silence clock
    config = Config.from_env({**base, "NO_INPUT_SECONDS": "8", "NO_INPUT_MAX_REPROMPTS": "0", "DTMF_TIMEOUT": "3",
                              "NO_INPUT_PROMPT": "Hello?", "NO_INPUT_GOODBYE": "Bye."})
    assert (config.no_input_seconds, config.no_input_max_reprompts, config.dtmf_timeout) == (8, 0, 3)
    assert (config.no_input_prompt, config.no_input_goodbye, config.gather_options()["timeout"]) == ("Hello?", "Bye.", 8)
    with pytest.raises(ConfigError) as error:
        Config.from_env({**base, "NO_INPUT_SECONDS": "-1", "NO_INPUT_MAX_REPROMPTS": "two", "DTMF_TIMEOUT": "0"})
    for name in ("NO_INPUT_SECONDS", "NO_INPUT_MAX_REPROMPTS", "DTMF_TIMEOUT"):
        assert name in str(error.value)


def test_keep_alive_timing_adds_up_to_the_no_input_silence():
    from gateway.dialogue.answers import listening

    base = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "t", "STT_PROVIDER": "google"}
    off = Config.from_env({**base, "NO_INPUT_SECONDS": "0"})
    assert listening(off, "https://gw") == {"pause_seconds": 25, "dtmf_url": "https://gw/dtmf",
                                            "dtmf_timeout": 5}  # off: still a 30 s keep-alive cycle
    assert listening(Config.from_env(base), "https://gw")["pause_seconds"] == 3  # the default 8 s: 3 + 5
    assert listening(Config.from_env({**base, "NO_INPUT_SECONDS": "3"}), "https://gw") == {
        "pause_seconds": 0, "dtmf_url": "https://gw/dtmf", "dtmf_timeout": 3}


def test_call_store_counts_reprompts_until_the_caller_is_heard():
    now = [0.0]
    store = InMemoryCallStore(clock=lambda: now[0])
    store.open("CA1")
    assert [store.reprompted("CA1", quiet_for=5) for _ in range(3)] == [1, 2, 3]  # never heard: always quiet
    now[0] = 10.0
    assert store.heard("CA1").reprompts == 0
    now[0] = 12.0
    assert store.reprompted("CA1", quiet_for=5) == 0  # heard 2 s ago: the caller's turn is on its way
    now[0] = 15.0
    assert store.reprompted("CA1", quiet_for=5) == 1
    assert store.record_turn("CA1", ("x",), "Say a number.").reprompt == "Say a number."
    assert store.record_turn("CA1", ("x",)).reprompt == ""  # the last reply decides
    store.end("CA1")
    assert store.reprompted("CA1") == 0 and store.reprompted("unknown") == 0 and store.heard("unknown") is None


def test_parse_reply_reads_the_optional_reprompt(caplog):
    assert parse_reply({"text": "Hi", "reprompt": " Say hello or press 1. "}).reprompt == "Say hello or press 1."
    assert parse_reply({"text": "Hi"}).reprompt == "" and parse_reply({"text": "Hi", "reprompt": None}).reprompt == ""
    assert parse_reply({"text": "Hi", "reprompt": ["no"]}).reprompt == "" and "'reprompt' is not a string" in caplog.text


def test_parse_reply_reads_language_voice_and_barge_in(caplog):
    reply = parse_reply({"text": "Hola", "language": "es-ES", "voice": "Polly.Lucia", "barge_in": False})
    assert (reply.language, reply.voice, reply.barge_in) == ("es-ES", "Polly.Lucia", False)
    assert (parse_reply({"text": "Hi"}).language, parse_reply({"text": "Hi"}).barge_in) == (None, True)
    odd = parse_reply({"text": "Hi", "language": "<en>", "voice": ["x"], "barge_in": "no"})
    assert (odd.language, odd.voice, odd.barge_in) == (None, None, True)
    assert "'language' is not a valid name" in caplog.text and "'barge_in' is not true or false" in caplog.text


def test_a_call_speaks_the_language_its_chatbot_chose():
    config = Config(twilio_account_sid=SID, twilio_auth_token="t", voice="Polly.Joanna")
    assert config.for_call() is config
    assert (config.for_call("es-ES").language, config.for_call("es-ES").voice) == ("es-ES", None)  # Joanna speaks English
    assert config.for_call("es-ES", "Polly.Lucia").voice == "Polly.Lucia"
    assert (config.for_call("", "Polly.Matthew").language, config.for_call("", "Polly.Matthew").voice) == (
        "en-US", "Polly.Matthew")
    assert config.for_call("en-US").voice == "Polly.Joanna"  # back to LANGUAGE: VOICE again
    store = InMemoryCallStore()
    store.open("CA1")
    assert (store.speak_as("CA1", "es-ES", "").language, store.get("CA1").voice) == ("es-ES", "")
    assert store.speak_as("CA-unknown", "es-ES", "") is None


def test_config_barge_in_and_greeting_settings():
    config = Config.from_env({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "t"})
    assert (config.barge_in, config.chatbot_greeting, config.say_chars_per_second) == (True, False, 13.0)
    config = Config.from_env({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "t", "BARGE_IN": "off",
                              "CHATBOT_GREETING": "true", "SAY_CHARACTERS_PER_SECOND": "15.5"})
    assert (config.barge_in, config.chatbot_greeting, config.say_chars_per_second) == (False, True, 15.5)
    with pytest.raises(ConfigError, match="SAY_CHARACTERS_PER_SECOND"):
        Config.from_env({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "t", "SAY_CHARACTERS_PER_SECOND": "0"})


def test_call_store_forgets_calls_never_heard_to_end(caplog):
    now = [0.0]
    store = InMemoryCallStore(clock=lambda: now[0], forget_open_after_seconds=3600)
    store.open("CA-lost")
    now[0] = 1800.0
    store.open("CA-live")
    now[0] = 3700.0
    store.open("CA-new")  # the once-a-minute sweep runs here
    assert store.get("CA-lost") is None and store.get("CA-live") is not None and len(store) == 2
    assert "CA-lost never ended" in caplog.text


def test_gateway_workers_follow_web_concurrency_only_with_redis():
    from gateway.config import gateway_workers

    assert gateway_workers({}) == 1 and gateway_workers({"WEB_CONCURRENCY": "4"}) == 1  # one process holds the calls
    assert gateway_workers({"WEB_CONCURRENCY": "4", "REDIS_URL": "redis://h:6379"}) == 4
    assert gateway_workers({"WEB_CONCURRENCY": "4", "REDIS_URL": "redis://h", "GATEWAY_WORKERS": "2"}) == 2
    assert gateway_workers({"REDIS_URL": "redis://h"}) == 1
    with pytest.raises(ConfigError, match="GATEWAY_WORKERS"):
        gateway_workers({"GATEWAY_WORKERS": "0"})


def test_config_refuses_urls_of_a_scheme_that_can_never_work_all_at_once():
    with pytest.raises(ConfigError) as refused:
        Config.from_env({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "t", "CHATBOT_URL": "ws://bot/x",
                         "DATABASE_URL": "mysql-ish://u:hidden@db/x", "REDIS_URL": "http://u:hidden@cache:6379"})
    message = str(refused.value)
    for problem in ("CHATBOT_URL must be a https:// URL", "DATABASE_URL must be a sqlite:/// or postgres://",
                    "REDIS_URL must start with redis:// or rediss://"):
        assert problem in message, message
    assert "hidden" not in message  # the database's and Redis's passwords never reach the log
    for fine in ({"CHATBOT_URL": "https://bot.example/message", "DATABASE_URL": "postgres://u:p@db/x",
                  "REDIS_URL": "rediss://:p@cache:6380"},
                 {"DATABASE_URL": "sqlite:///history.db", "REDIS_URL": "redis://cache"},
                 {"DATABASE_URL": "postgresql+psycopg://u@db/x"}):
        Config.from_env({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "t", **fine})
def test_a_stream_token_that_is_odd_is_refused_not_an_error():
    from gateway.twilio.security import stream_token, stream_token_is_valid

    good = stream_token("secret", "CA1")
    assert stream_token_is_valid("secret", "CA1", good)
    for odd in ("", None, "¡" * 32, "\ud800", {"¡": None}, good.upper() + "x"):
        assert not stream_token_is_valid("secret", "CA1", odd)
