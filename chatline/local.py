"""Running the Procfile's processes on this machine for `chatline serve` and `chatline demo`, and stopping them."""
from __future__ import annotations

import re
import socket
import sys
from pathlib import Path

from chatline.console import ChatlineError, signals_ignored, step
from chatline.procfile import ProcfileProcess

# Local mode: no Twilio account. The gateway and `chatline simulate` agree on these by default.
PLACEHOLDER_ACCOUNT_SID = "AC" + "0" * 32
PLACEHOLDER_AUTH_TOKEN = "chatline-local-auth-token"
DEFAULT_GATEWAY_PORT = 8000
DEFAULT_API_PORT = 8011  # `chatline simulate`'s REST API, where a local-mode gateway sends its call updates
BIN_DIR = str(Path(sys.executable).parent)  # this interpreter's venv, so `gunicorn` is the one installed with us
LOG_NAMES = {"web": "gateway", "chatbot": "chatbot"}
START_TIMEOUT = 30.0


def port_in_use(port: int) -> bool:
    """Tell whether something already holds the TCP port (gunicorn binds 0.0.0.0)."""
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def log_hint(text: str) -> str:
    """The most telling line of a log: the last exception message, else the last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        match = re.search(r"\b\w*(Error|Exception): (.+)$", line)
        if match:
            return match.group(0)
    return lines[-1] if lines else "(nothing logged)"


class LocalProcesses:
    """The processes one command started; leaving the block stops them all, whatever happened inside it."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self.started: list[tuple[str, ProcfileProcess]] = []

    def start(self, kind: str, label: str, env: dict[str, str], port: int | None = None,
              port_option: str = "--port") -> ProcfileProcess:
        """Start one Procfile process with progress output; a failure is one line naming its cause and log."""
        if port is not None and port_in_use(port):
            # Checked first: waiting for "something listens on the port" would otherwise be fooled by the squatter.
            raise ChatlineError(f"port {port} is already in use; stop what holds it or choose another with "
                                f"{port_option}")
        log_path = self.log_dir / f"{LOG_NAMES.get(kind, kind)}.log"
        process = ProcfileProcess(kind, env=env, port=port, log_path=log_path, bin_dir=BIN_DIR)
        self.started.append((label, process))  # before start(): a Ctrl-C while it boots must still stop it
        with step(f"starting {label}"):
            try:
                process.start(START_TIMEOUT)
            except (RuntimeError, TimeoutError, OSError) as exc:
                raise ChatlineError(f"{label} did not start: {exc}: {log_hint(process.logs())} "
                                    f"(log: {log_path})") from exc
        return process

    def check_alive(self) -> None:
        """Raise if one of the processes has exited on its own."""
        for label, process in self.started:
            if process.process is not None and process.process.poll() is not None:
                raise ChatlineError(f"{label} exited with code {process.process.returncode}: "
                                    f"{log_hint(process.logs())} (log: {process.log_path})")

    def stop_all(self) -> None:
        """Stop every started process (SIGTERM, then SIGKILL after 10 s); Ctrl-C cannot interrupt this."""
        running = [(label, p) for label, p in self.started if p.process is not None and p.process.poll() is None]
        with signals_ignored():
            try:
                if running:
                    with step("stopping " + " and ".join(label for label, _ in reversed(running))):
                        for _, process in reversed(running):
                            process.stop()
            finally:
                # Even when printing fails (a closed pipe): stop them all, and close the log files of processes
                # that died on their own.
                for _, process in self.started:
                    process.stop()
        self.started.clear()

    def __enter__(self) -> LocalProcesses:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()


def sample_first_hints(environ: dict[str, str]) -> str:
    """The sample script's phrases for a call's first utterance, as HINTS (what the chatbot's own hints do later)."""
    from chatbot_api import Dialogue, SessionStore, load_script
    from chatbot_api.config import DEFAULT_SCRIPT

    script_path = environ.get("CHATBOT_SCRIPT") or str(DEFAULT_SCRIPT)
    script = load_script(script_path)
    return ", ".join(Dialogue(script, SessionStore(60)).hints_for(script.start))
