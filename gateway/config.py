"""Gateway configuration, read from the environment (and a local .env file) once at start-up."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import Mapping

STT_PROVIDERS = ("google", "sphinx", "twilio", "deepgram", "assemblyai")
# The websocket recognizers: their key variable, endpoint variable and default endpoint (contract section 6).
KEYED_PROVIDERS = {
    "deepgram": ("DEEPGRAM_API_KEY", "DEEPGRAM_URL", "wss://api.deepgram.com/v1/listen"),
    "assemblyai": ("ASSEMBLYAI_API_KEY", "ASSEMBLYAI_URL", "wss://streaming.assemblyai.com/v3/ws"),
}
CHATBOT_PROTOCOLS = ("chatline", "rasa", "openai", "conversationrelay")
# The URL schemes each setting can work with; any other is refused at start-up rather than failing every call.
CHATBOT_URL_SCHEMES = {"conversationrelay": ("wss://", "ws://")}  # every other protocol speaks HTTP
DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql")  # SQLAlchemy dialects, with or without a +driver
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class ConfigError(ValueError):
    """Raised at start-up when the configuration cannot work; names every problem at once."""


def _google_credentials_found(env: Mapping[str, str]) -> bool:
    """Tell whether Google credentials (or an emulator) are configured, without touching the network."""
    if env.get("SPEECH_EMULATOR_HOST"):
        return True
    path = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if path and os.path.exists(path):
        return True
    gcloud_default = os.path.expanduser("~/.config/gcloud/application_default_credentials.json")
    return os.path.exists(gcloud_default)


def _keyed_recognizers(env: Mapping[str, str], provider: str, problems: list[str]) -> dict:
    """Deepgram's and AssemblyAI's keys and endpoints; the chosen one must have its key and a ws(s):// URL."""
    settings = {"deepgram_model": (env.get("DEEPGRAM_MODEL") or "").strip() or Config.deepgram_model}
    for name, (key_variable, url_variable, default_url) in KEYED_PROVIDERS.items():
        key = (env.get(key_variable) or "").strip()
        url = (env.get(url_variable) or "").strip().rstrip("/") or default_url
        if provider == name and not key:
            problems.append(f"{key_variable} is required with STT_PROVIDER={name}")
        if not url.startswith(("wss://", "ws://")):
            problems.append(f"{url_variable} must start with wss:// (or ws:// for a local stand-in) (got {url!r})")
        settings[f"{name}_api_key"], settings[f"{name}_url"] = key or None, url
    return settings


def _fraction(value: str | None, problems: list[str]) -> float:
    """Read a number from 0 to 1 (a confidence threshold); a bad one is reported with the others."""
    try:
        number = float(value) if value and value.strip() else 0.0
    except ValueError:
        number = -1.0
    if 0.0 <= number <= 1.0:
        return number
    problems.append(f"GATHER_MIN_CONFIDENCE must be a number from 0 to 1 (got {value!r})")
    return 0.0


def _whole(env: Mapping[str, str], name: str, default: int, least: int, problems: list[str]) -> int:
    """Read a whole number of at least `least`; a bad one is reported with the others."""
    raw = (env.get(name) or "").strip()
    try:
        number = int(raw) if raw else default
        if number < least:
            raise ValueError
        return number
    except ValueError:
        problems.append(f"{name} must be a whole number of at least {least} (got {raw!r})")
        return default


def _opt_in(env: Mapping[str, str], name: str, problems: list[str]) -> bool:
    """Read an off-by-default switch strictly: a typo must not turn on something private like transcripts."""
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    problems.append(f"{name} must be true or false (got {raw!r})")
    return False


# The most calls one process streams while the caller still hears each answer within 100 ms (p99, final transcript
# to call update) on a 2-core machine with both tracks: bench_calls, three runs (README, Performance; 300 calls went
# over in one run of three). More threads alone do not make a process faster, so they never raise the default.
MEASURED_STREAMS = 250


def default_streams(threads: int) -> int:
    """MAX_CONCURRENT_STREAMS unless set: the measured limit, or three quarters of GATEWAY_THREADS if that is less."""
    return max(1, min(MEASURED_STREAMS, threads * 3 // 4))


def _limits(env: Mapping[str, str], cls, problems: list[str]) -> dict:
    """The limits and log settings; MAX_CONCURRENT_STREAMS leaves a quarter of GATEWAY_THREADS for the webhooks."""
    threads = _whole(env, "GATEWAY_THREADS", cls.gateway_threads, 2, problems)  # the Procfile's --threads fallback
    streams = _whole(env, "MAX_CONCURRENT_STREAMS", default_streams(threads), 1, problems)
    if streams >= threads:  # every thread held by a stream: /voice and /listen would wait forever
        problems.append(f"MAX_CONCURRENT_STREAMS ({streams}) must be below GATEWAY_THREADS ({threads}): "
                        "webhooks need threads too")
    return {
        # Twilio sends 50 media messages a second: a lower limit would drop ordinary audio.
        "max_stream_messages_per_second": _whole(env, "MAX_STREAM_MESSAGES_PER_SECOND",
                                                 cls.max_stream_messages_per_second, 50, problems),
        "gateway_threads": threads,
        "max_concurrent_streams": streams,
        "max_call_seconds": _whole(env, "MAX_CALL_SECONDS", cls.max_call_seconds, 0, problems),
        "max_call_goodbye": env.get("MAX_CALL_GOODBYE") or cls.max_call_goodbye,
        "log_transcripts": _opt_in(env, "LOG_TRANSCRIPTS", problems),
        "drain_message": env.get("DRAIN_MESSAGE", cls.drain_message).strip(),
    }


TURN_DETECTORS = ("words", "smart-turn")


def _seconds(env: Mapping[str, str], name: str, default: float, problems: list[str]) -> float:
    """Read a number of seconds, 0 or more; a bad one is reported with the others."""
    raw = (env.get(name) or "").strip()
    try:
        number = float(raw) if raw else default
        if not 0 <= number < float("inf"):
            raise ValueError
        return number
    except ValueError:
        problems.append(f"{name} must be a number of seconds, 0 or more (got {raw!r})")
        return default


def _turn_taking(env: Mapping[str, str], cls, problems: list[str]) -> dict:
    """Turn-taking: the outbound track, when a turn is over, what does not stop a prompt (gateway/dialogue/)."""
    turn_detector = (env.get("TURN_DETECTOR") or cls.turn_detector).strip().lower()
    if turn_detector not in TURN_DETECTORS:
        problems.append(f"TURN_DETECTOR must be one of {', '.join(TURN_DETECTORS)} (got {turn_detector!r})")
    return {
        "outbound_track": _flag(env.get("OUTBOUND_TRACK"), cls.outbound_track),
        "turn_max_wait_seconds": _seconds(env, "TURN_MAX_WAIT_SECONDS", cls.turn_max_wait_seconds, problems),
        "turn_detector": turn_detector,
        "backchannel_words": tuple(w.strip() for w in env.get("BACKCHANNEL_WORDS", "").split(",") if w.strip()),
        "echo_window_seconds": _seconds(env, "ECHO_WINDOW_SECONDS", cls.echo_window_seconds, problems),
    }


CALL_HISTORY_MODES = ("full", "metadata", "off")


def _monitor(env: Mapping[str, str], problems: list[str]) -> dict:
    """The operator monitor and the call history (gateway/monitor/): who may look, where history lives, how long."""
    history = (env.get("CALL_HISTORY") or "full").strip().lower()
    if history not in CALL_HISTORY_MODES:
        problems.append(f"CALL_HISTORY must be one of {', '.join(CALL_HISTORY_MODES)} (got {history!r})")
        history = "off"
    database_url = (env.get("DATABASE_URL") or "").strip() or "sqlite:///chatline-history.db"
    if database_url.split("://", 1)[0].split("+", 1)[0].lower() not in DATABASE_SCHEMES or "://" not in database_url:
        problems.append(f"DATABASE_URL must be a sqlite:/// or postgres:// URL (got one starting "
                        f"{database_url.split('://', 1)[0][:20]!r})")  # never the rest: it may hold a password
    redis_url = (env.get("REDIS_URL") or "").strip() or None
    if redis_url and not redis_url.lower().startswith(REDIS_SCHEMES):
        problems.append(f"REDIS_URL must start with redis:// or rediss:// (got one starting "
                        f"{redis_url.split('://', 1)[0][:20]!r})")
    return {"monitor_password": env.get("MONITOR_PASSWORD") or None, "database_url": database_url,
            "call_history": history, "call_history_days": _whole(env, "CALL_HISTORY_DAYS", 30, 0, problems),
            "redis_url": redis_url,
            "workers": _whole(env, "GATEWAY_WORKERS", 1, 1, problems),
            "log_level": (env.get("LOG_LEVEL") or "INFO").strip().upper()}


def gateway_workers(env: Mapping[str, str]) -> int:
    """GATEWAY_WORKERS, else WEB_CONCURRENCY when REDIS_URL is set (the store every worker shares), else 1: without
    Redis a call's state lives in one process, and a second worker would get webhooks of calls it never saw."""
    problems: list[str] = []
    default = _whole(env, "WEB_CONCURRENCY", 1, 1, problems) if (env.get("REDIS_URL") or "").strip() else 1
    workers = _whole(env, "GATEWAY_WORKERS", default, 1, problems)
    if problems:
        raise ConfigError("Configuration problems: " + "; ".join(problems))
    return workers


def _chatbot(env: Mapping[str, str], cls, problems: list[str]) -> dict:
    """What the chatbot at CHATBOT_URL speaks (CHATBOT_PROTOCOL) and the settings of the protocol chosen."""
    protocol = (env.get("CHATBOT_PROTOCOL") or cls.chatbot_protocol).strip().lower()
    if protocol not in CHATBOT_PROTOCOLS:
        problems.append(f"CHATBOT_PROTOCOL must be one of {', '.join(CHATBOT_PROTOCOLS)} (got {protocol!r})")
    raw_temperature = (env.get("CHATBOT_TEMPERATURE") or "").strip()
    temperature = None
    if raw_temperature:
        try:
            temperature = float(raw_temperature)
            if not 0.0 <= temperature <= 2.0:
                raise ValueError
        except ValueError:
            problems.append(f"CHATBOT_TEMPERATURE must be a number from 0 to 2 (got {raw_temperature!r})")
            temperature = None
    if protocol == "openai" and not (env.get("CHATBOT_URL") or "").strip():
        problems.append("CHATBOT_URL is required with CHATBOT_PROTOCOL=openai (the base URL, e.g. "
                        "https://api.openai.com/v1)")
    url = (env.get("CHATBOT_URL") or "").strip()
    schemes = CHATBOT_URL_SCHEMES.get(protocol, ("https://", "http://"))
    if url and not (url.lower().startswith(schemes) and len(url) > len(url.split("://", 1)[0]) + 3):
        problems.append(f"CHATBOT_URL must be a {schemes[0]} URL ({schemes[1]} for a local chatbot) with "
                        f"CHATBOT_PROTOCOL={protocol} (got {url!r})")
    if protocol == "openai" and not (env.get("CHATBOT_MODEL") or "").strip():
        problems.append("CHATBOT_MODEL is required with CHATBOT_PROTOCOL=openai")
    return {
        **_relay(env, protocol, problems),
        "chatbot_protocol": protocol,
        "chatbot_model": (env.get("CHATBOT_MODEL") or "").strip(),
        "chatbot_prompt": env.get("CHATBOT_PROMPT") or cls.chatbot_prompt,
        "chatbot_api_key": (env.get("CHATBOT_API_KEY") or "").strip(),
        "chatbot_temperature": temperature,
        "chatbot_history_turns": _whole(env, "CHATBOT_HISTORY_TURNS", cls.chatbot_history_turns, 1, problems),
        "chatbot_stream": _flag(env.get("CHATBOT_STREAM"), True),
        "chatbot_greeting_message": env.get("CHATBOT_GREETING_MESSAGE") or cls.chatbot_greeting_message,
    }


def _relay(env: Mapping[str, str], protocol: str, problems: list[str]) -> dict:
    """ConversationRelay's settings: a ws(s):// CHATBOT_URL, CHATBOT_PARAMETERS (a JSON object, the `setup`
    message's customParameters) and CHATBOT_HANDOFF_URL (the `<Connect action>` the bot's `end` is posted to)."""
    if protocol == "conversationrelay" and not (env.get("CHATBOT_URL") or "").strip():
        problems.append("CHATBOT_URL is required with CHATBOT_PROTOCOL=conversationrelay (the bot's websocket, "
                        "wss://...)")
    raw = (env.get("CHATBOT_PARAMETERS") or "").strip()
    parameters: dict = {}
    if raw:
        try:
            parameters = json.loads(raw)
        except ValueError:
            parameters = None
        if not isinstance(parameters, dict):
            problems.append(f"CHATBOT_PARAMETERS must be a JSON object such as {{\"tier\": \"gold\"}} "
                            f"(got {raw[:80]!r})")
            parameters = {}
    handoff = (env.get("CHATBOT_HANDOFF_URL") or "").strip() or None
    if handoff and not handoff.startswith(("https://", "http://")):
        problems.append(f"CHATBOT_HANDOFF_URL must start with https:// (got {handoff!r})")
    return {"chatbot_parameters": parameters, "chatbot_handoff_url": handoff}
def _phone_text(env: Mapping[str, str], cls, problems: list[str]) -> dict:
    """Links sent by text message (contract section 8) and the wording of an answer's spoken options menu."""
    templates = {}
    for name, fields in (("OPTIONS_MENU", ("titles", "keys")), ("OPTIONS_MENU_MORE", ("titles", "keys", "more"))):
        template = (env.get(name) or "").strip()
        try:
            template.format(**{key: "x" for key in fields})
        except (KeyError, IndexError, ValueError):
            problems.append(f"{name} may only use {', '.join('{' + f + '}' for f in fields)} (got {template!r})")
            template = ""
        templates[name.lower()] = template
    return {"sms_links": _flag(env.get("SMS_LINKS"), cls.sms_links),
            "sms_max_per_call": _whole(env, "SMS_MAX_PER_CALL", cls.sms_max_per_call, 0, problems), **templates}


def _flag(value: str | None, default: bool) -> bool:
    """Read a yes/no variable; anything but an explicit no keeps the default on."""
    if value is None or not value.strip():
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True)
class Config:
    """Everything the gateway needs; build it with `Config.from_env()`."""

    twilio_account_sid: str
    twilio_auth_token: str = field(repr=False)  # never in a repr, so never in a log line or a traceback
    chatbot_url: str = "http://127.0.0.1:5001/message"
    public_url: str | None = None
    stt_provider: str = "sphinx"
    stt_provider_reason: str = "set explicitly"
    speech_emulator_host: str | None = None
    # STT_PROVIDER=deepgram / assemblyai (gateway/recognizers/deepgram.py, assemblyai.py).
    deepgram_api_key: str | None = field(default=None, repr=False)
    deepgram_url: str = "wss://api.deepgram.com/v1/listen"
    deepgram_model: str = "nova-2-phonecall"
    assemblyai_api_key: str | None = field(default=None, repr=False)
    assemblyai_url: str = "wss://streaming.assemblyai.com/v3/ws"
    twilio_api_url: str = "https://api.twilio.com"
    language: str = "en-US"
    validate_signatures: bool = True
    greeting: str = "Hello! You are talking to Chatline. How can I help?"
    apology: str = "Sorry, I'm having trouble right now. Please try again in a moment."
    chatbot_timeout: float = 5.0
    listen_pause_seconds: int = 30
    voice: str | None = None
    max_frame_bytes: int = 64 * 1024
    gather_speech_timeout: str = "auto"
    gather_timeout: int = 5
    gather_speech_model: str | None = None
    gather_profanity_filter: bool = True
    hints: tuple[str, ...] = ()
    transfer_caller_id: str | None = None
    transfer_timeout: int = 30
    transfer_failed_message: str = "Sorry, nobody could take your call right now. Let's carry on."
    gather_min_confidence: float = 0.0
    # Keys and silence. DTMF_TIMEOUT: seconds the keep-alive <Gather input="dtmf"> waits for a (next) key.
    # NO_INPUT_SECONDS: seconds of caller silence before a reprompt (0: never), and after NO_INPUT_MAX_REPROMPTS
    # reprompts in a row, NO_INPUT_GOODBYE and a hang-up.
    dtmf_timeout: int = 5
    no_input_seconds: int = 8  # counted from the end of a prompt: a little past Twilio's 5 s, short of Jambonz's 15
    no_input_max_reprompts: int = 2
    no_input_prompt: str = "Are you still there?"
    no_input_goodbye: str = "I haven't heard anything, so I'll hang up now. Goodbye!"
    # BARGE_IN: the caller's speech stops the bot's <Say> (a chatbot's "barge_in": false protects one text).
    # CHATBOT_GREETING: the greeting is the chatbot's answer to a first request with "input": "start".
    barge_in: bool = True
    chatbot_greeting: bool = False
    say_chars_per_second: float = 13.0  # how fast the voice speaks, to know when a <Say> is over (barge-in)
    # Turn-taking. OUTBOUND_TRACK: the stream also carries what the caller hears (both_tracks), so a prompt's end is
    # measured; TURN_MAX_WAIT_SECONDS: how long an unfinished sentence waits for more words (0: every final is a
    # turn), decided by TURN_DETECTOR; BACKCHANNEL_WORDS: acknowledgements, besides the language's own, that do not
    # stop a prompt; ECHO_WINDOW_SECONDS: how much of the prompt before the caller's speech its echo may repeat.
    outbound_track: bool = True
    turn_max_wait_seconds: float = 2.0
    turn_detector: str = "words"
    backchannel_words: tuple[str, ...] = ()
    echo_window_seconds: float = 2.0
    # Limits and logs: see gateway/ops/limits.py. MAX_CALL_SECONDS 0 means no limit.
    max_stream_messages_per_second: int = 200
    # GATEWAY_THREADS: gunicorn's threads (the Procfile passes the same fallback). A stream holds one for its whole
    # call, so 400 threads give the 250 streams below and leave 150 for webhooks; idle threads are never started
    # (gunicorn's pool grows on demand).
    gateway_threads: int = 400
    max_concurrent_streams: int = MEASURED_STREAMS
    max_call_seconds: int = 3600
    max_call_goodbye: str = "We have reached the time limit for this call. Thank you for calling, goodbye!"
    log_transcripts: bool = False
    # Graceful shutdown: what a live call hears while it moves to the next process.
    drain_message: str = "One moment, please."
    # SPEECH_OUTAGE_SECONDS: how long Google streams may keep failing before the call listens through <Gather>.
    speech_outage_seconds: float = 5.0
    # The operator monitor and call history: see gateway/monitor/. No MONITOR_PASSWORD: no /monitor at all.
    monitor_password: str | None = field(default=None, repr=False)
    database_url: str = field(default="sqlite:///chatline-history.db", repr=False)  # may hold a password
    call_history: str = "full"
    call_history_days: int = 30
    redis_url: str | None = field(default=None, repr=False)
    workers: int = 1  # GATEWAY_WORKERS as set (gunicorn_conf.gateway_workers picks the number gunicorn runs)
    log_level: str = "INFO"  # LOG_LEVEL, when no logging was configured before the gateway starts
    # CHATBOT_PROTOCOL and its settings: see gateway/chatbots/. The API key never shows in a repr.
    chatbot_protocol: str = "chatline"
    chatbot_model: str = ""
    chatbot_prompt: str = ("You are a helpful assistant on a phone call. Answer in a few short spoken sentences, "
                           "without lists or markup. Call end_call when the caller says goodbye.")
    chatbot_api_key: str = field(default="", repr=False)
    chatbot_temperature: float | None = None
    chatbot_history_turns: int = 20
    chatbot_stream: bool = True  # openai: say the first sentence while the model writes the rest
    chatbot_greeting_message: str = "/greet"  # rasa: the message whose answer is the greeting (CHATBOT_GREETING)
    # conversationrelay: the `setup` message's customParameters, and where the bot's `end` is posted.
    chatbot_parameters: Mapping[str, object] = field(default_factory=dict)
    chatbot_handoff_url: str | None = None
    # Links, emails and images in answers go to the caller by SMS (gateway/twilio/messages.py), at most this many a
    # call. OPTIONS_MENU / OPTIONS_MENU_MORE: the options' menu wording ({titles}, {keys}, {more}); empty: built in.
    sms_links: bool = True
    sms_max_per_call: int = 3
    options_menu: str = ""
    options_menu_more: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    def for_call(self, language: str = "", voice: str = "") -> "Config":
        """This configuration as one call hears it, once its chatbot switched it to another language or voice. A
        switch of language without a voice drops VOICE: a voice speaks one language, Twilio picks one for the new."""
        if not language and not voice:
            return self
        language = language or self.language
        return replace(self, language=language, voice=voice or (self.voice if language == self.language else None))

    @property
    def stream_track(self) -> str:
        """The <Stream> track: both (the caller, and what the caller hears) with OUTBOUND_TRACK, else the caller's."""
        return "both_tracks" if self.outbound_track else "inbound_track"

    def transfer_options(self, transfer_url: str) -> dict:
        """The <Dial> settings for a chatbot's transfer action; the outcome comes back to `transfer_url`."""
        return {"transfer_url": transfer_url, "caller_id": self.transfer_caller_id, "dial_timeout": self.transfer_timeout}

    def gather_options(self) -> dict:
        """The <Gather> settings for Gather mode (STT_PROVIDER=twilio)."""
        return {"language": self.language, "voice": self.voice, "speech_timeout": self.gather_speech_timeout,
                "timeout": self.no_input_seconds or self.gather_timeout, "speech_model": self.gather_speech_model,
                "profanity_filter": self.gather_profanity_filter, "barge_in": self.barge_in}

    @classmethod
    def load(cls) -> "Config":
        """The configuration of a running gateway: the environment, with a `.env` file of the directory it runs in
        (installed or in a checkout) filling in what the environment does not set."""
        from dotenv import find_dotenv, load_dotenv

        load_dotenv(find_dotenv(usecwd=True))
        return cls.from_env()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Config":
        """Read the configuration from `env` (default: os.environ), raising ConfigError naming every missing or bad variable."""
        env = dict(os.environ if env is None else env)
        problems = [f"{name} is required" for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not env.get(name)]
        provider = env.get("STT_PROVIDER", "").strip().lower()
        if provider:
            reason = "STT_PROVIDER is set"
            if provider not in STT_PROVIDERS:
                problems.append(f"STT_PROVIDER must be one of {', '.join(STT_PROVIDERS)} (got {provider!r})")
        elif _google_credentials_found(env):
            provider, reason = "google", "Google credentials were found"
        else:
            provider, reason = "sphinx", "no Google credentials were found, so the offline recognizer is used"
        public_url = (env.get("PUBLIC_URL") or "").rstrip("/") or None
        if public_url and not public_url.startswith(("https://", "http://")):
            problems.append(f"PUBLIC_URL must start with https:// (got {public_url!r})")
        numbers = {}
        for name, default in (("CHATBOT_TIMEOUT", cls.chatbot_timeout), ("LISTEN_PAUSE_SECONDS", cls.listen_pause_seconds),
                              ("MAX_FRAME_BYTES", cls.max_frame_bytes),
                              ("SAY_CHARACTERS_PER_SECOND", cls.say_chars_per_second),
                              ("GATHER_TIMEOUT", cls.gather_timeout), ("TRANSFER_TIMEOUT", cls.transfer_timeout),
                              ("SPEECH_OUTAGE_SECONDS", cls.speech_outage_seconds)):
            try:
                numbers[name] = type(default)(env.get(name, default))
                if numbers[name] <= 0:
                    raise ValueError
            except ValueError:
                problems.append(f"{name} must be a positive number (got {env.get(name)!r})")
        min_confidence = _fraction(env.get("GATHER_MIN_CONFIDENCE"), problems)
        keys_and_silence = {"no_input_prompt": env.get("NO_INPUT_PROMPT") or cls.no_input_prompt,
                            "no_input_goodbye": env.get("NO_INPUT_GOODBYE") or cls.no_input_goodbye}
        for name, least in (("DTMF_TIMEOUT", 1), ("NO_INPUT_SECONDS", 0), ("NO_INPUT_MAX_REPROMPTS", 0)):
            raw = (env.get(name) or "").strip()
            try:
                keys_and_silence[name.lower()] = int(raw) if raw else getattr(cls, name.lower())
                if keys_and_silence[name.lower()] < least:
                    raise ValueError
            except ValueError:
                problems.append(f"{name} must be a whole number of at least {least} (got {raw!r})")
        limits = _limits(env, cls, problems)
        turn_taking = _turn_taking(env, cls, problems)
        monitor = _monitor(env, problems)
        recognizers = _keyed_recognizers(env, provider, problems)
        chatbot = _chatbot(env, cls, problems)
        phone_text = _phone_text(env, cls, problems)
        if problems:
            raise ConfigError("Configuration problems: " + "; ".join(problems))
        return cls(
            twilio_account_sid=env["TWILIO_ACCOUNT_SID"],
            twilio_auth_token=env["TWILIO_AUTH_TOKEN"],
            chatbot_url=env.get("CHATBOT_URL") or cls.chatbot_url,
            public_url=public_url,
            stt_provider=provider,
            stt_provider_reason=reason,
            speech_emulator_host=env.get("SPEECH_EMULATOR_HOST") or None,
            twilio_api_url=(env.get("TWILIO_API_URL") or cls.twilio_api_url).rstrip("/"),
            language=env.get("LANGUAGE") or cls.language,
            validate_signatures=_flag(env.get("VALIDATE_SIGNATURES"), True),
            greeting=env.get("GREETING", cls.greeting),
            chatbot_timeout=numbers["CHATBOT_TIMEOUT"],
            listen_pause_seconds=numbers["LISTEN_PAUSE_SECONDS"],
            voice=env.get("VOICE") or None,
            max_frame_bytes=numbers["MAX_FRAME_BYTES"],
            gather_speech_timeout=env.get("GATHER_SPEECH_TIMEOUT") or cls.gather_speech_timeout,
            gather_timeout=numbers["GATHER_TIMEOUT"],
            gather_speech_model=env.get("GATHER_SPEECH_MODEL") or None,
            gather_profanity_filter=_flag(env.get("GATHER_PROFANITY_FILTER"), True),
            hints=tuple(h.strip() for h in env.get("HINTS", "").split(",") if h.strip()),
            transfer_caller_id=env.get("TRANSFER_CALLER_ID") or None,
            transfer_timeout=numbers["TRANSFER_TIMEOUT"],
            transfer_failed_message=env.get("TRANSFER_FAILED_MESSAGE") or cls.transfer_failed_message,
            gather_min_confidence=min_confidence,
            barge_in=_flag(env.get("BARGE_IN"), True),
            say_chars_per_second=numbers["SAY_CHARACTERS_PER_SECOND"],
            chatbot_greeting=_flag(env.get("CHATBOT_GREETING"), False),
            speech_outage_seconds=numbers["SPEECH_OUTAGE_SECONDS"],
            **keys_and_silence,
            **limits,
            **turn_taking,
            **monitor,
            **recognizers,
            **chatbot,
            **phone_text,
        )

    def other_recognizers(self) -> list[str]:
        """The websocket recognizers whose keys are set besides the one in use, for the start-up line."""
        return [f"{name} ({key_variable} found)" for name, (key_variable, _, _) in KEYED_PROVIDERS.items()
                if name != self.stt_provider and getattr(self, f"{name}_api_key")]
