"""`chatline serve`: the gateway and the sample chatbot for local development, until Ctrl-C."""
from __future__ import annotations

import os
import secrets
import tempfile
import time
from pathlib import Path

from chatline.console import ChatlineError, say, terminate_as_interrupt
from chatline.local import (DEFAULT_API_PORT, PLACEHOLDER_ACCOUNT_SID, PLACEHOLDER_AUTH_TOKEN, LocalProcesses,
                            port_in_use, sample_first_hints)


def gateway_settings(environ: dict[str, str]) -> tuple[dict[str, str], bool]:
    """The gateway's extra environment, and whether it runs in local mode (no Twilio account)."""
    sid, token = environ.get("TWILIO_ACCOUNT_SID"), environ.get("TWILIO_AUTH_TOKEN")
    if bool(sid) != bool(token):
        missing = "TWILIO_AUTH_TOKEN" if sid else "TWILIO_ACCOUNT_SID"
        raise ChatlineError(f"{missing} is not set: set both TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, "
                            "or neither for local mode", 2)
    if sid:
        return {}, False
    return {"TWILIO_ACCOUNT_SID": PLACEHOLDER_ACCOUNT_SID, "TWILIO_AUTH_TOKEN": PLACEHOLDER_AUTH_TOKEN,
            "TWILIO_API_URL": environ.get("TWILIO_API_URL") or f"http://127.0.0.1:{DEFAULT_API_PORT}"}, True


def _banner(port: int, chatbot_url: str, own_bot: bool, local_mode: bool, env: dict[str, str],
            logs: list[Path], streaming: bool) -> None:
    """Tell the developer where everything is and what to do next."""
    public = (os.environ.get("PUBLIC_URL") or "").rstrip("/")
    base = public or f"http://127.0.0.1:{port}"
    say(f"\ngateway:  http://127.0.0.1:{port}")
    say(f"chatbot:  {chatbot_url}" + ("  (your CHATBOT_URL)" if own_bot else "  (the sample chatbot)"))
    say(monitor_line(f"http://127.0.0.1:{port}", env))
    say("\nIn the Twilio console, on your number's Voice configuration:")
    say(f"  A call comes in      Webhook, HTTP POST  {base}/voice")
    say(f"  Call status changes  HTTP POST           {base}/status")
    if not public:
        say(f"Twilio needs a public https URL: run `ngrok http {port}`, set PUBLIC_URL to the https://… address "
            "it prints, and restart `chatline serve`.")
    if local_mode:
        say(f"\nLocal mode: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set, so the gateway uses placeholder "
            f"credentials and sends its call updates to {env['TWILIO_API_URL']}, where `chatline simulate` "
            "listens. No Twilio account needed; in another terminal run:")
        say(f"  chatline simulate --url http://127.0.0.1:{port}" + (f" --public-url {public}" if public else ""))
    where = ", ".join(str(path) for path in logs)
    say(f"\nLogs: {where}" + (" (streamed below)" if streaming else "") + ". Press Ctrl-C to stop.\n")


def monitor_settings(environ: dict[str, str]) -> dict[str, str]:
    """The operator page on, with a fresh local password unless MONITOR_PASSWORD is set; the call history in the
    working directory (the gateway runs in the project's folder) unless DATABASE_URL says otherwise."""
    extra = {}
    if not environ.get("MONITOR_PASSWORD"):
        extra["MONITOR_PASSWORD"] = secrets.token_urlsafe(12)
    if not environ.get("DATABASE_URL"):
        extra["DATABASE_URL"] = f"sqlite:///{Path.cwd() / 'chatline-history.db'}"
    return extra


def monitor_line(base: str, extra: dict[str, str]) -> str:
    """Where the operator page is, and how to log in (the password only when we made it up)."""
    password = extra.get("MONITOR_PASSWORD")
    login = f"user operator, password {password}" if password else "user operator, your MONITOR_PASSWORD"
    return f"monitor:  {base}/monitor  ({login})"


def _stream_logs(logs: dict[str, Path], offsets: dict[str, int]) -> None:
    """Print the complete log lines written since the last call, prefixed with their process's name."""
    width = max(len(name) for name in logs)
    for name, path in logs.items():
        try:
            with open(path, "rb") as log_file:
                log_file.seek(offsets[name])
                chunk = log_file.read()
        except OSError:
            continue
        complete = chunk[:chunk.rfind(b"\n") + 1]  # a half-written line waits for the next round
        offsets[name] += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            say(f"{name:<{width}} | {line}")


def serve(port: int, chatbot_port: int | None, log_dir: str | None, quiet: bool) -> int:
    """Run the gateway (and the sample chatbot unless CHATBOT_URL is set) until Ctrl-C."""
    extra, local_mode = gateway_settings(dict(os.environ))
    extra.update(monitor_settings(dict(os.environ)))
    own_bot = os.environ.get("CHATBOT_URL")
    if port_in_use(port):  # before starting the chatbot, so a busy port fails at once with nothing to undo
        raise ChatlineError(f"port {port} is already in use; stop what holds it or choose another with --port")
    directory = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="chatline-serve-"))
    with terminate_as_interrupt(), LocalProcesses(directory) as processes:
        if own_bot:
            chatbot_url = own_bot
        else:
            chatbot = processes.start("chatbot", "the sample chatbot", {}, chatbot_port, "--chatbot-port")
            chatbot_url = extra["CHATBOT_URL"] = chatbot.url + "/message"
            if not os.environ.get("HINTS"):  # the offline recognizer hears the first words best with the script's phrases
                extra["HINTS"] = sample_first_hints(dict(os.environ))
        processes.start("web", "the gateway", extra, port)
        logs = {("gateway" if p.kind == "web" else "chatbot"): p.log_path for _, p in processes.started}
        _banner(port, chatbot_url, bool(own_bot), local_mode, extra, list(logs.values()), not quiet)
        offsets = {name: 0 for name in logs}
        try:
            while True:
                if not quiet:
                    _stream_logs(logs, offsets)
                processes.check_alive()
                time.sleep(0.2)
        except KeyboardInterrupt:
            say("")  # end the line the terminal's ^C was echoed on
        finally:
            if not quiet:
                _stream_logs(logs, offsets)
    return 0
