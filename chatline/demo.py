"""`chatline demo`: the sample chatbot, the gateway and the Twilio simulator on free ports, and the classic dialogue."""
from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from pathlib import Path

from chatbot_api.config import DEFAULT_SCRIPT
from chatline.console import ChatlineError, say, terminate_as_interrupt
from chatline.local import PLACEHOLDER_ACCOUNT_SID, PLACEHOLDER_AUTH_TOKEN, LocalProcesses, sample_first_hints
from chatline.procfile import free_port
from chatline.serve import monitor_line
from chatline.simulate import Outcome, build_turns, run_call

GREETING = "Hello! You are talking to Chatline. How can I help?"
# What the bundled script (chatbot_api/default_script.yaml) answers to each bundled recording, in order.
EXPECTED = (("hello", "Hi, how are you?"),
            ("good", "Glad to hear it! What can I do for you?"),
            ("goodbye", "Goodbye! Thanks for calling."))


def check(outcome: Outcome) -> str | None:
    """Why the call did not go as the script says (None when it did): the replies in order, then a hang-up."""
    if outcome.problem:
        return outcome.problem
    if not outcome.said or outcome.said[0] != GREETING:
        return f"the call did not start with the greeting {GREETING!r}"
    replies = outcome.said[1:]
    for index, (words, expected) in enumerate(EXPECTED):
        if index >= len(replies):
            return f"the bot never answered {words!r} (expected {expected!r})"
        if replies[index] != expected:
            return f"after {words!r} the bot said {replies[index]!r}, expected {expected!r}"
    if len(replies) > len(EXPECTED):
        return f"the bot said more than the script: {replies[len(EXPECTED)]!r}"
    if outcome.hangup != "<Hangup/>":
        return f"the call ended ({outcome.hangup}) without the bot's hang-up"
    return None


def gateway_env(chatbot_url: str, api_port: int) -> dict[str, str]:
    """Everything the demo's gateway depends on, set explicitly, so neither the shell nor a .env file changes it."""
    return {"TWILIO_ACCOUNT_SID": PLACEHOLDER_ACCOUNT_SID, "TWILIO_AUTH_TOKEN": PLACEHOLDER_AUTH_TOKEN,
            "CHATBOT_URL": chatbot_url, "PUBLIC_URL": "", "STT_PROVIDER": "sphinx",
            "TWILIO_API_URL": f"http://127.0.0.1:{api_port}", "LANGUAGE": "en-US", "GREETING": GREETING,
            "VOICE": "", "VALIDATE_SIGNATURES": "true", "WEB_CONCURRENCY": "1", "HINTS": sample_first_hints({})}


def wait_for_interrupt(processes: LocalProcesses) -> None:
    """Keep everything running until Ctrl-C (or SIGTERM), failing if a process dies meanwhile."""
    try:
        while True:
            processes.check_alive()
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("")


def run_demo(speed: float, timeout: float, record: str | None, verbose: bool, keep_monitor: bool = False) -> int:
    """Run the demo call end to end; raises ChatlineError with the reason when it does not go as scripted. With
    `keep_monitor` the gateway stays up afterwards, its operator page showing the call, until Ctrl-C."""
    log_dir = Path(tempfile.mkdtemp(prefix="chatline-demo-"))
    keep_logs = False
    try:
        with terminate_as_interrupt(), LocalProcesses(log_dir) as processes:
            chatbot = processes.start("chatbot", "the sample chatbot",
                                      {"CHATBOT_SCRIPT": str(DEFAULT_SCRIPT)})
            api_port = free_port()
            # The demo's history lives and goes with its temp folder: a demo leaves nothing behind.
            monitor = {"MONITOR_PASSWORD": secrets.token_urlsafe(12), "DATABASE_URL": f"sqlite:///{log_dir}/history.db",
                       "CALL_HISTORY": "full", "REDIS_URL": ""}
            gateway = processes.start("web", "the gateway (offline speech recognition)",
                                      {**gateway_env(chatbot.url + "/message", api_port), **monitor})
            say(f"gateway on {gateway.url}, sample chatbot on {chatbot.url}")
            outcome = run_call(gateway.url, turns=build_turns([]), api_port=api_port, speed=speed,
                               timeout=timeout, account_sid=PLACEHOLDER_ACCOUNT_SID,
                               auth_token=PLACEHOLDER_AUTH_TOKEN, record=record, verbose=verbose)
            problem = check(outcome)
            if problem:
                raise ChatlineError(f"demo failed: {problem} (logs: {log_dir})")
            if keep_monitor:
                say(f"demo passed ({outcome.duration:.1f} s of call); the gateway stays up to look at:")
                say(monitor_line(gateway.url, monitor))
                say("Press Ctrl-C to stop.")
                wait_for_interrupt(processes)
                return 0
        say(f"demo passed: the call went as the script says ({outcome.duration:.1f} s of call)")
        return 0
    except ChatlineError:
        keep_logs = any(log_dir.iterdir())  # the error may name a log file; it must still be there to read
        raise
    finally:
        if not keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
