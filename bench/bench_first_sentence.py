"""The first sentence first: how soon a caller hears an LLM's answer, streamed a sentence ahead or sent whole.

A model stand-in writes a 60-token answer at 20 tokens a second; calls go through the Twilio stand-in, the real
gunicorn gateway and the Speech-to-Text stand-in. The figure is the gateway's own: from the caller's final transcript
to the call update carrying the first <Say> of the answer (sent), as its log lines report it.

    flock /tmp/chatline-bench.lock .venv/bin/python -m bench.bench_first_sentence [--calls 3]
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

from chatline.procfile import ProcfileProcess
from standins.openai_api import Answer, OpenAIStandIn, tokens
from standins.speech import SpeechStandIn
from standins.twilio import Caller, TwilioStandIn

ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL = "AC" + "be" * 16, "bench-auth-token-0123456789", "https://chatline.bench"
TOKENS_PER_SECOND = 20
ANSWER = ("Thanks for calling the restaurant, happy to help you out. We open every day at noon and close at ten in the "
          "evening, and the kitchen takes its last orders at half past nine. Tonight we have a table by the window "
          "for four people at eight, and the special is a roasted lamb with spring vegetables and "
          "red wine.")
BIN_DIR = str(Path(sys.executable).parent)


def model(messages: list[dict]) -> Answer:
    said = messages[-1]["content"].replace(" ", "")
    return Answer("Goodbye!", (("end_call", {}),)) if said == "goodbye" else Answer(ANSWER)


def run(stream: bool, calls: int, logs: Path) -> list[float]:
    """Milliseconds from the caller's words to the first update saying the answer, for each call."""
    with OpenAIStandIn(model, tokens_per_second=TOKENS_PER_SECOND) as api, SpeechStandIn() as speech, \
            TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN, speed=4.0) as twilio:
        env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_URL": PUBLIC_URL,
               "TWILIO_API_URL": twilio.api_url, "STT_PROVIDER": "google", "SPEECH_EMULATOR_HOST": speech.address,
               "CHATBOT_PROTOCOL": "openai", "CHATBOT_URL": api.url, "CHATBOT_MODEL": "bench",
               "CHATBOT_API_KEY": api.api_key, "CHATBOT_STREAM": "true" if stream else "false",
               "CHATBOT_TIMEOUT": "10", "HINTS": "hello, goodbye", "SAY_CHARACTERS_PER_SECOND": "66.7"}
        with ProcfileProcess("web", env=env, log_path=logs / f"gateway-{'stream' if stream else 'whole'}.log",
                             bin_dir=BIN_DIR) as gateway:
            twilio.tunnel[PUBLIC_URL] = gateway.url
            for _ in range(calls):
                # The caller waits for the whole answer (the rest follows the first sentence) before goodbye.
                call = twilio.place_call(f"{PUBLIC_URL}/voice", Caller(["hello", "goodbye"], think_time=6.0),
                                         status_callback=f"{PUBLIC_URL}/status")
                if not call.wait_ended(timeout=90) or " ".join(call.said()[1:-1]) != ANSWER:
                    raise SystemExit(f"the caller did not hear the whole answer: {call.transcript()}")
            text = gateway.logs()
    if stream:
        return [float(ms) for ms in re.findall(r"first sentence \(\d+ characters\) sent (\d+) ms", text)]
    turns = [json.loads(line.split("turn ", 1)[1]) for line in text.splitlines() if " turn {" in line]
    return [t["ms"] for t in turns if t["action"] is None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    print(f"answer: {len(tokens(ANSWER))} tokens at {TOKENS_PER_SECOND} tokens/s "
          f"({len(tokens(ANSWER)) / TOKENS_PER_SECOND:.1f} s to write); {args.calls} calls each")
    with tempfile.TemporaryDirectory() as logs:
        for stream, label in ((True, "first sentence first (stream)"), (False, "whole answer first")):
            figures = run(stream, args.calls, Path(logs))
            if len(figures) != args.calls:
                raise SystemExit(f"{label}: expected {args.calls} figures, got {figures}")
            print(f"{label:32s} caller's words → first <Say> update: median {statistics.median(figures):6.0f} ms, "
                  f"max {max(figures):6.0f} ms  ({', '.join(f'{f:.0f}' for f in figures)})")


if __name__ == "__main__":
    main()
