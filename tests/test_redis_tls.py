"""Scaling out on TLS Redis as Heroku serves it (rediss://, a self-signed certificate, a password): call state, turn
locks, signals, the monitor bus across two gateway processes, and the sample bot's sessions across two workers."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from chatline.procfile import ProcfileProcess, free_port, wait_for_port
from tests.conftest import BIN_DIR, PUBLIC_URL
from tests.test_keys_and_silence import FALLBACK
from tests.test_monitor import AUTH, PASSWORD, live_call
from tests.test_phone_dialogue import GREETING, place, wait_until

REDIS_PASSWORD = "heroku-style-Pa55word"


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A key and a self-signed certificate for 127.0.0.1, made with the openssl CLI (as Heroku's are self-signed)."""
    key, cert = folder / "redis.key", folder / "redis.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=chatline-test-redis", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return key, cert


@pytest.fixture
def tls_redis():
    """redis-server listening on TLS only (no plain port), with a password; yields its rediss:// URL."""
    if shutil.which("redis-server") is None or shutil.which("openssl") is None:
        pytest.skip("redis-server and openssl are needed (apt-get install redis-server openssl; CI has them)")
    folder = Path(tempfile.mkdtemp(prefix="chatline-redis-tls-"))
    key, cert = self_signed_certificate(folder)
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--tls-cert-file", str(cert),
         "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
         "--requirepass", REDIS_PASSWORD, "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=open(folder / "redis.log", "wb"), stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, 10)
        yield f"rediss://:{REDIS_PASSWORD}@127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_gateways_and_two_bot_workers_share_every_call_through_tls_redis(twilio, chatbot, start_gateway,
                                                                             tls_redis, tmp_path):
    import redis

    with pytest.raises(redis.ConnectionError):  # TLS only: nothing answers in plain text
        redis.Redis.from_url(tls_redis.replace("rediss://", "redis://"), socket_timeout=2).ping()
    bot = ProcfileProcess("chatbot", env={"REDIS_URL": tls_redis, "CHATBOT_WORKERS": "2"},
                          log_path=tmp_path / "bot.log", bin_dir=BIN_DIR).start()
    try:
        settings = {"REDIS_URL": tls_redis, "NO_INPUT_SECONDS": "0", "MONITOR_PASSWORD": PASSWORD,
                    "CALL_HISTORY": "off", "CHATBOT_URL": bot.url + "/message"}
        watching = start_gateway(**settings, PUBLIC_URL="https://watcher.chatline.test")
        gateways = [start_gateway(**settings) for _ in range(2)]
        twilio.tunnel[PUBLIC_URL] = [gateway.url for gateway in gateways]  # each webhook and stream to either
        time.sleep(0.5)  # the watcher listening on the monitor's channel
        call = place(twilio, [("dtmf", "1"), "book_table", ("dtmf", "2#"), "goodbye"])
        assert wait_until(lambda: live_call(watching, call.sid), 15), "the monitor bus did not carry the call"
        assert call.wait_ended(timeout=60), call.transcript()
        # The dialogue went on across both gateways and both bot workers: its state is in Redis, over TLS.
        assert call.said() == [GREETING, FALLBACK, "For how many people?", "Your table for two is booked.",
                               "Goodbye! Thanks for calling."], call.transcript()
        assert all(call.sid in gateway.logs() for gateway in gateways)
        ended = wait_until(lambda: (c := live_call(watching, call.sid)) and c["status"] != "live" and c, 10)
        assert ended and ended["status"] == "bot-hangup", ended
        detail = requests.get(f"{watching.url}/monitor/api/calls/{call.sid}", auth=AUTH, timeout=5).json()
        assert [e.get("text", "").replace(" ", "") for e in detail["events"] if e["type"] == "caller"][-1] == "goodbye"
        for process in (watching, *gateways):
            assert "Traceback" not in process.logs() and "CERTIFICATE_VERIFY_FAILED" not in process.logs()
            assert REDIS_PASSWORD not in process.logs()
        assert "Traceback" not in bot.logs()
    finally:
        bot.stop()


def test_the_signals_listener_stops_with_its_gateway(tls_redis, caplog):
    from gateway import create_app
    from gateway.config import Config
    from gateway.ops.shutdown import close_app

    config = Config.from_env({"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t", "REDIS_URL": tls_redis,
                              "STT_PROVIDER": "twilio", "CALL_HISTORY": "off"})
    app = create_app(config)
    listener = app.extensions["chatline"].signals._thread
    assert listener is not None and listener.is_alive()
    close_app(app, timeout=2)
    assert not listener.is_alive()
