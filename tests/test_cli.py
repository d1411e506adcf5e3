"""The `chatline` console script, run as a user would: demo, call, simulate, serve, --help and its errors."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import requests

from chatline.procfile import ProcfileProcess
from tests.ports import free_port

CHATLINE = str(Path(sys.executable).parent / "chatline")
BIN_DIR = str(Path(sys.executable).parent)
ACCOUNT_SID = "AC" + "5ca1ab1e" * 4
AUTH_TOKEN = "cli-test-auth-token"
GREETING = "Hello! You are talking to Chatline. How can I help?"
CLASSIC = ["bot said: " + GREETING, "caller said: hello", "bot said: Hi, how are you?", "caller said: good",
           "bot said: Glad to hear it! What can I do for you?", "caller said: goodbye",
           "bot said: Goodbye! Thanks for calling.", "hung up (by the bot)"]
# Settings a developer's shell may hold that would change what these tests run against.
_SETTINGS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_URL", "TWILIO_FROM_NUMBER", "PUBLIC_URL",
             "CHATBOT_URL", "CHATBOT_SCRIPT", "STT_PROVIDER", "SPEECH_EMULATOR_HOST", "GREETING", "LANGUAGE",
             "VOICE", "GOOGLE_APPLICATION_CREDENTIALS", "VALIDATE_SIGNATURES", "MONITOR_PASSWORD", "DATABASE_URL",
             "CALL_HISTORY", "REDIS_URL")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any Chatline settings, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if key not in _SETTINGS}
    env.update(extra)
    return env


def chatline(*args: str, env: dict[str, str] | None = None, timeout: float = 60,
             cwd=None) -> subprocess.CompletedProcess:
    """Run the installed console script and capture what it prints."""
    process = subprocess.Popen([CHATLINE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env if env is not None else clean_env(), cwd=cwd)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM, not subprocess.run's SIGKILL: chatline must get to stop the gunicorns it started.
        process.terminate()
        out, err = process.communicate(timeout=30)
        pytest.fail(f"chatline {' '.join(args)} did not finish within {timeout} s:\n{out}{err}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def dialogue(output: str) -> list[str]:
    """The conversation lines of `chatline simulate`/`demo` output, without their timings."""
    return [m.group(2) for m in re.finditer(r"^\[\s*(\d+\.\d+) s\] (.*)$", output, flags=re.M)]


def timings(output: str, prefix: str) -> list[float]:
    """The call times of the printed lines starting with `prefix`."""
    return [float(m.group(1)) for m in re.finditer(r"^\[\s*(\d+\.\d+) s\] (.*)$", output, flags=re.M)
            if m.group(2).startswith(prefix)]


def gunicorns_on(*ports: int) -> list[str]:
    """Command lines of gunicorn processes bound to any of `ports` (the Procfile binds 0.0.0.0:$PORT)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended while we looked
            continue
        if "gunicorn" in text and any(f"0.0.0.0:{port} " in text + " " for port in ports):
            found.append(text)
    return found


def no_gunicorns_left(*ports: int, within: float = 5.0) -> bool:
    """True once no gunicorn holds any of the ports (processes may take a moment to be reaped)."""
    deadline = time.monotonic() + within
    while gunicorns_on(*ports):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def demo_ports(output: str) -> list[int]:
    match = re.search(r"gateway on http://127\.0\.0\.1:(\d+), sample chatbot on http://127\.0\.0\.1:(\d+)", output)
    assert match, output
    return [int(match.group(1)), int(match.group(2))]


# ---- demo -----------------------------------------------------------------------------------------------------
def test_demo_holds_the_classic_dialogue_and_leaves_no_process():
    result = chatline("demo", "--speed", "3", "--timeout", "30", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert dialogue(result.stdout) == CLASSIC, result.stdout
    assert re.search(r"^starting the sample chatbot… ok \(\d+\.\d s\)$", result.stdout, flags=re.M)
    assert "demo passed" in result.stdout
    assert no_gunicorns_left(*demo_ports(result.stdout)), gunicorns_on(*demo_ports(result.stdout))


def test_demo_interrupted_with_ctrl_c_stops_everything():
    process = subprocess.Popen([CHATLINE, "demo", "--speed", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=clean_env())
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "caller said: hello" in line:
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    output = "".join(seen) + out
    assert process.returncode == 130, output + err
    assert err.strip() == "chatline: interrupted"
    assert "stopping the gateway (offline speech recognition) and the sample chatbot… ok" in output
    assert no_gunicorns_left(*demo_ports(output))


# ---- call -----------------------------------------------------------------------------------------------------
def test_call_creates_the_call_through_the_rest_api():
    from standins.twilio import TwilioStandIn

    # The callee's Url points nowhere that answers; only the REST request is under test.
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN, tunnel={"https://chatline.test": "http://127.0.0.1:9"}) as twilio:
        result = chatline("call", "+15551234567", "--from", "+15557654321", "--url", "https://chatline.test",
                          env=clean_env(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                                        TWILIO_API_URL=twilio.api_url))
        assert result.returncode == 0, result.stderr
        created = [r for r in twilio.rest_requests if r["method"] == "POST" and r["path"].endswith("/Calls.json")]
    assert len(created) == 1
    assert created[0]["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    form = created[0]["form"]
    assert (form["To"], form["From"]) == ("+15551234567", "+15557654321")
    assert (form["Url"], form["StatusCallback"]) == ("https://chatline.test/voice", "https://chatline.test/status")
    assert result.stdout.strip() == twilio.calls[0].sid


def test_call_without_settings_names_everything_missing_in_one_line():
    result = chatline("call", "+15551234567")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("chatline: error: ")
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER", "PUBLIC_URL"):
        assert name in result.stderr


# ---- simulate -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_gateway(tmp_path_factory):
    """The sample chatbot and the gateway (offline recognizer), whose call updates go to simulate's REST port."""
    logs = tmp_path_factory.mktemp("cli-logs")
    api_port = free_port()
    with ProcfileProcess("chatbot", env=clean_env(), port=free_port(), log_path=logs / "chatbot.log",
                         bin_dir=BIN_DIR) as chatbot:
        env = clean_env(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, STT_PROVIDER="sphinx",
                        TWILIO_API_URL=f"http://127.0.0.1:{api_port}", CHATBOT_URL=chatbot.url + "/message")
        with ProcfileProcess("web", env=env, port=free_port(), log_path=logs / "gateway.log",
                             bin_dir=BIN_DIR) as gateway:
            yield gateway, api_port


def simulate(local_gateway, *args: str, auth_token: str = AUTH_TOKEN, timeout: float = 60, cwd=None):
    gateway, api_port = local_gateway
    return chatline("simulate", "--url", gateway.url, "--api-port", str(api_port), "--speed", "3",
                    "--timeout", "30", "--auth-token", auth_token, *args,
                    env=clean_env(TWILIO_ACCOUNT_SID=ACCOUNT_SID), timeout=timeout, cwd=cwd)


def test_simulate_holds_the_classic_dialogue_from_the_bundled_recordings(local_gateway):
    result = simulate(local_gateway)
    assert result.returncode == 0, result.stdout + result.stderr + local_gateway[0].logs()
    assert dialogue(result.stdout) == CLASSIC, result.stdout


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng is not installed")
def test_simulate_speaks_text_and_records_the_call(local_gateway, tmp_path):
    record = tmp_path / "call.wav"
    result = simulate(local_gateway, "--say", "hello", "--say", "book a table", "--say", "goodbye",
                      "--record", str(record))
    assert result.returncode == 0, result.stdout + result.stderr + local_gateway[0].logs()
    assert dialogue(result.stdout) == [
        "bot said: " + GREETING, "caller said: hello", "bot said: Hi, how are you?", "caller said: book a table",
        "bot said: For how many people?", "caller said: goodbye", "bot said: Goodbye! Thanks for calling.",
        "hung up (by the bot)"], result.stdout
    with wave.open(str(record)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(float)
    duration = len(samples) / 8000
    hung_up = timings(result.stdout, "hung up")[0]
    assert hung_up - 0.5 <= duration <= hung_up + 3, (duration, hung_up)  # the last reply may outlast the hang-up

    def loudness(start: float, seconds: float = 0.5) -> float:
        window = samples[int(start * 8000):int((start + seconds) * 8000)]
        return float(np.sqrt(np.mean(window ** 2)))

    for start in timings(result.stdout, "bot said:"):
        assert loudness(start + 0.1) > 300, f"silent where the bot spoke at {start} s"


def test_simulate_with_the_wrong_auth_token_fails_in_one_line(local_gateway):
    result = simulate(local_gateway, "--auth-token", "not-the-gateway-token", timeout=30)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("chatline: error: the gateway refused the signed webhook")
    assert "403" in result.stderr


def test_simulate_without_a_gateway_says_so():
    result = chatline("simulate", "--url", f"http://127.0.0.1:{free_port()}", "--api-port", str(free_port()))
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "cannot reach the gateway" in result.stderr and "chatline serve" in result.stderr


# ---- serve + simulate: two terminals, no Twilio account ---------------------------------------------------------
def test_serve_in_local_mode_answers_simulate_and_stops_on_ctrl_c(tmp_path):
    port, api_port = free_port(), free_port()
    serve = subprocess.Popen([CHATLINE, "serve", "--port", str(port), "--quiet"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                             env=clean_env(STT_PROVIDER="sphinx", TWILIO_API_URL=f"http://127.0.0.1:{api_port}"))
    try:
        banner = []
        for line in serve.stdout:
            banner.append(line)
            if "Press Ctrl-C to stop" in line:
                break
        text = "".join(banner)
        assert f"http://127.0.0.1:{port}/voice" in text and f"http://127.0.0.1:{port}/status" in text, text
        assert "Local mode" in text and f"ngrok http {port}" in text
        result = chatline("simulate", "--url", f"http://127.0.0.1:{port}", "--api-port", str(api_port),
                          "--speed", "3", "--timeout", "30", cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert dialogue(result.stdout) == CLASSIC
        # The banner's monitor URL and password open the operator's view of that call, and the history it wrote in
        # the working directory is what `chatline calls` reads there.
        password = re.search(rf"monitor:  http://127\.0\.0\.1:{port}/monitor  \(user operator, password (\S+)\)",
                             text).group(1)
        calls = requests.get(f"http://127.0.0.1:{port}/monitor/api/calls", auth=("operator", password), timeout=5)
        assert [(c["status"], c["turns"]) for c in calls.json()["calls"]] == [("bot-hangup", 3)]
        deadline = time.monotonic() + 10  # the history is written in batches, half a second behind the calls
        while (listed := chatline("calls", "--json", cwd=tmp_path)).returncode and time.monotonic() < deadline:
            time.sleep(0.3)
        assert listed.returncode == 0, listed.stderr
        assert [c["call_sid"] for c in json.loads(listed.stdout)["calls"]] == [calls.json()["calls"][0]["call_sid"]]
    finally:
        serve.send_signal(signal.SIGINT)
        out, err = serve.communicate(timeout=30)
    assert serve.returncode == 0, out + err
    assert "stopping the gateway and the sample chatbot… ok" in out
    assert no_gunicorns_left(port)


# ---- help and errors --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command, options", [
    ([], ["serve", "call", "simulate", "demo", "calls"]),
    (["serve"], ["--port", "--chatbot-port", "--log-dir", "--quiet", "examples:"]),
    (["call"], ["NUMBER", "--from", "--url", "TWILIO_FROM_NUMBER", "examples:"]),
    (["simulate"], ["--url", "--public-url", "--wav", "--say", "--api-port", "--auth-token", "--speed",
                    "--timeout", "--record", "examples:"]),
    (["demo"], ["--speed", "--record", "--timeout", "--keep-monitor", "examples:"]),
    (["calls"], ["--json", "--csv", "--limit", "--search", "--database", "show", "DATABASE_URL", "examples:"]),
])
def test_help(command, options):
    result = chatline(*command, "--help")
    assert result.returncode == 0 and result.stderr == ""
    for option in options:
        assert option in result.stdout


def test_bad_option_is_one_line():
    result = chatline("demo", "--speed", "fast")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == "chatline: error: argument --speed: not a number: 'fast' (see `chatline demo --help`)\n"


# ---- audio conversion without sox ---------------------------------------------------------------------------------
def write_wav(path: Path, samples: np.ndarray, rate: int, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype("<i2").tobytes())
    return path


def test_wav_conversion_without_sox(tmp_path, monkeypatch):
    from chatline import sound
    from chatline.console import ChatlineError

    monkeypatch.setattr(sound, "have", lambda tool: False)
    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.int16)
    mulaw = sound.wav_to_mulaw(write_wav(tmp_path / "tone16k.wav", tone, 16000))
    assert len(mulaw) == 8000  # one second at 8 kHz
    back = sound.mulaw_decode(mulaw).astype(float)
    assert 5000 < np.sqrt(np.mean(back ** 2)) < 6500  # a 8000-peak sine has an RMS of about 5657
    with pytest.raises(ChatlineError, match="44100 Hz.*install sox"):
        sound.wav_to_mulaw(write_wav(tmp_path / "cd.wav", tone, 44100))
    with pytest.raises(ChatlineError, match="2 channel"):
        sound.wav_to_mulaw(write_wav(tmp_path / "stereo.wav", tone, 16000, channels=2))


def test_recording_places_both_sides_and_warns_when_the_bot_cannot_be_spoken(tmp_path, monkeypatch):
    from chatline import recording, sound

    hello = (Path(recording.__file__).parent / "audio" / "hello.ulaw").read_bytes()
    events = [(0.0, "say", "Hi"), (0.5, "say-interrupted", "Hi"), (1.0, "caller-speaks", "hello"),
              (2.0, "say", "Bye"), (3.0, "hangup", "<Hangup/>")]
    timeline = recording.timeline_from_events(events, [hello], speed=2.0)  # call time is twice the wall time
    assert timeline.duration == 6.0 and timeline.caller == [(2.0, hello)]
    assert timeline.bot == [(0.0, "Hi", 1.0), (4.0, "Bye", None)]
    monkeypatch.setattr(sound, "have", lambda tool: False)
    seconds, warnings = recording.write_call_wav(tmp_path / "call.wav", timeline)
    assert seconds == 6.0 and len(warnings) == 1 and "espeak-ng" in warnings[0]
    with wave.open(str(tmp_path / "call.wav")) as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(float)
    assert np.abs(samples[:16000]).max() == 0  # the bot's parts are silence without espeak-ng
    assert np.sqrt(np.mean(samples[16000:16000 + len(hello)] ** 2)) > 300  # the caller is heard from 2.0 s



def test_serve_refuses_a_chatbot_url_that_can_never_work_naming_the_variable(tmp_path):
    result = chatline("serve", "--port", str(free_port()), "--log-dir", str(tmp_path), "--quiet",
                      env=clean_env(CHATBOT_URL="not-a-url"), timeout=90)
    assert result.returncode != 0, result.stdout + result.stderr
    problem = [line for line in result.stderr.splitlines() if "Configuration problems" in line]
    assert problem and "CHATBOT_URL must be a https:// URL" in problem[0], result.stderr
