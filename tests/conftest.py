"""Shared fixtures: the real processes from the Procfile, and the Twilio and Speech-to-Text stand-ins."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from chatline.procfile import ProcfileProcess
from tests.chatbot_spy import ChatbotSpy
from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = str(Path(sys.executable).parent)  # this venv's gunicorn
ACCOUNT_SID = "AC" + "c0ffee" * 5 + "00"
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC_URL = "https://chatline.test"
SPEED = 4.0
# What callers of the sample bot say first; the chatbot's own hints take over after its first answer.
FIRST_HINTS = "hello, hi, how are you, book a table, i would like to book a table, what can you do, help, special characters, goodbye"  # stream audio and play TwiML four times faster than real time where timing is not under test


@pytest.fixture(scope="session")
def chatbot_process(tmp_path_factory):
    """The sample chatbot, as the Procfile's `chatbot:` process under gunicorn."""
    process = ProcfileProcess("chatbot", port=free_port(), log_path=tmp_path_factory.mktemp("logs") / "chatbot.log",
                              bin_dir=BIN_DIR)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def chatbot(chatbot_process):
    """A recording endpoint in front of the sample chatbot, so tests see exactly what reached it."""
    with ChatbotSpy(upstream=chatbot_process.url + "/message") as spy:
        yield spy


@pytest.fixture
def redis_server(tmp_path_factory):
    """A real redis-server on a free port, its append-only file in a temp dir (restartable: see RedisServer)."""
    from tests.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def speech():
    """The Speech-to-Text v1 stand-in over real gRPC."""
    from standins.speech import SpeechStandIn

    with SpeechStandIn() as standin:
        yield standin


@pytest.fixture
def deepgram():
    """The Deepgram live streaming stand-in (ws://, its real messages)."""
    from standins.deepgram import DeepgramStandIn

    with DeepgramStandIn() as standin:
        yield standin


@pytest.fixture
def assemblyai():
    """The AssemblyAI v3 streaming stand-in (ws://, its real messages)."""
    from standins.assemblyai import AssemblyAIStandIn

    with AssemblyAIStandIn(speed=SPEED) as standin:  # its real-time rule at the speed calls are played
        yield standin


def ears(request, provider: str):
    """The stand-in that hears calls for this STT_PROVIDER (the fixture of that name; Google's is `speech`)."""
    return request.getfixturevalue("speech" if provider == "google" else provider)


@pytest.fixture
def twilio():
    """The Twilio stand-in: REST API, TwiML runner, signed webhooks and Media Streams."""
    from standins.twilio import TwilioStandIn

    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN, speed=SPEED) as standin:
        yield standin


def gateway_env(twilio, chatbot, folder, **overrides: str) -> dict[str, str]:
    """The gateway's test settings (overridable): the Twilio stand-in's REST API, the chatbot spy, Google's stand-in."""
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_URL": PUBLIC_URL,
        "CHATBOT_URL": chatbot.url, "TWILIO_API_URL": twilio.api_url, "STT_PROVIDER": "google",
        "CHATBOT_TIMEOUT": "3", "GATEWAY_THREADS": "16", "HINTS": FIRST_HINTS,
        # The stand-in's voice (SAY_SECONDS_PER_CHAR) at its speed, so barge-in knows when a <Say> is over.
        "SAY_CHARACTERS_PER_SECOND": str(round(SPEED / 0.06, 1)),
        "DATABASE_URL": f"sqlite:///{folder}/history.db",  # the call history stays in the test's folder
    }
    env.update(overrides)
    return env


@pytest.fixture
def start_gateway(tmp_path, twilio, chatbot, request):
    """Start the Procfile's `web:` process with test settings (overridable); the tunnel routes PUBLIC_URL to it."""
    started: list[ProcfileProcess] = []

    def start(**overrides: str) -> ProcfileProcess:
        env = gateway_env(twilio, chatbot, tmp_path, **overrides)
        if env["STT_PROVIDER"] == "google" and "SPEECH_EMULATOR_HOST" not in overrides:
            env["SPEECH_EMULATOR_HOST"] = request.getfixturevalue("speech").address
        if env["STT_PROVIDER"] in ("deepgram", "assemblyai"):
            standin, prefix = request.getfixturevalue(env["STT_PROVIDER"]), env["STT_PROVIDER"].upper()
            env.setdefault(f"{prefix}_URL", standin.url)
            env.setdefault(f"{prefix}_API_KEY", standin.api_key)
        process = ProcfileProcess("web", env=env, port=free_port(), log_path=tmp_path / f"gateway{len(started)}.log",
                                  bin_dir=BIN_DIR)
        started.append(process.start())
        twilio.tunnel[env["PUBLIC_URL"]] = process.url
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def gateway(start_gateway):
    """The gateway with the default test settings: Google recognition through the stand-in."""
    return start_gateway()


def pytest_sessionfinish(session):
    """Under pytest-xdist, a worker hands its reliability figures to the controller, which prints the summary."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        from tests.figures import export

        output["figures"] = export()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """The controller collects a finished worker's figures (the hook exists only with pytest-xdist)."""
    from tests.figures import merge

    merge(getattr(node, "workeroutput", {}).get("figures", {}))


def pytest_terminal_summary(terminalreporter):
    """Print how many cases each fuzz target tried, and the leak test's figures, even under -q."""
    from tests.figures import summary

    lines = summary()
    if lines:
        terminalreporter.write_sep("-", "reliability figures")
        for line in lines:
            terminalreporter.write_line(line)
