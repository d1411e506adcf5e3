"""Start the Procfile's processes exactly as a Heroku-style host would: `bash -c` with $PORT set."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout, when running from one (else site-packages)
# The repository's Procfile, line for line (tests/test_packaging.py checks they agree): an installed package has no
# Procfile beside it, and `chatline serve` and `chatline demo` must run the very commands a Heroku-style host does.
PROCESSES = {
    "web": "gunicorn -c python:gateway.gunicorn_conf --worker-class gthread --threads ${GATEWAY_THREADS:-400} "
           "--timeout 120 --graceful-timeout 25 --bind 0.0.0.0:$PORT 'gateway:create_app()'",
    "chatbot": "gunicorn --worker-class gthread --workers ${CHATBOT_WORKERS:-1} --threads ${CHATBOT_THREADS:-16} "
               "--bind 0.0.0.0:$PORT 'chatbot_api:create_app()'",
}


def read_procfile(path: Path) -> dict[str, str]:
    """Map process type to its command line."""
    processes = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    return processes


def working_directory() -> Path:
    """Where the processes run: the checkout when running from one (as before), else the current directory (the
    user's, with their .env), so an installed `chatline` works from anywhere."""
    return ROOT if (ROOT / "Procfile").is_file() and (ROOT / "gateway").is_dir() else Path.cwd()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until(ready, process: subprocess.Popen, timeout: float, pause: float, waiting_for: str) -> None:
    """Poll `ready()` until it is true; fail early if the process died, or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before {waiting_for}")
        try:
            if ready():
                return
        except OSError:  # refused, reset, or an HTTP error while the worker starts
            pass
        time.sleep(pause)
    raise TimeoutError(f"not {waiting_for} within {timeout:g} s")


def wait_for_health(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Wait until `url` answers 200: gunicorn listens before its worker has built the app, and a call placed in
    between waits in the listen backlog while the caller already speaks (those first words are lost, as on a phone
    line whose stream opens late)."""
    def answers() -> bool:
        with urllib.request.urlopen(url, timeout=1.0) as answer:
            return answer.status == 200

    _wait_until(answers, process, timeout, 0.05, f"{url} answered 200")


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Wait until something accepts connections on the port; fail early if the process died."""
    def listens() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True

    _wait_until(listens, process, timeout, 0.1, f"listening on port {port}")


class ProcfileProcess:
    """One Procfile process type, run with `bash -c` (in the checkout, else the current directory), bound to $PORT."""

    def __init__(self, kind: str, env: dict[str, str] | None = None, port: int | None = None,
                 log_path: Path | None = None, bin_dir: str | None = None):
        self.kind = kind
        self.port = port or free_port()
        self.command = PROCESSES[kind]
        self.env = {**os.environ, **(env or {}), "PORT": str(self.port)}
        if bin_dir:  # the venv's bin first, so `gunicorn` is this interpreter's
            self.env["PATH"] = bin_dir + os.pathsep + self.env.get("PATH", "")
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._log_file = None

    @property
    def url(self) -> str:
        """The local base URL of the process."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "ProcfileProcess":
        """Start the process and wait until it listens."""
        self._log_file = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(["bash", "-c", "exec " + self.command], cwd=working_directory(), env=self.env,
                                        stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port(self.port, self.process, timeout)
            if self.kind == "web":  # the gateway's liveness check answers once a worker serves requests
                wait_for_health(self.url + "/healthz", self.process, timeout)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the process group (gunicorn shuts down gracefully), SIGKILL if it lingers."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log_file not in (None, subprocess.DEVNULL):
            self._log_file.close()
        return self.process.returncode

    def logs(self) -> str:
        """What the process has logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def __enter__(self) -> "ProcfileProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

