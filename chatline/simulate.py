"""`chatline simulate`: play Twilio's part against a running gateway and print the conversation as it happens."""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from urllib.parse import urlsplit

from chatline import sound
from chatline.console import ChatlineError, say, step
from chatline.recording import timeline_from_events, write_call_wav
from standins.twilio import Caller, TwilioStandIn
from standins.twilio_caller import Turn, load_audio

CLASSIC_DIALOGUE = ("hello", "good", "goodbye")  # bundled recordings in chatline/audio
HANGUP_REASONS = {"<Hangup/>": "by the bot", "caller hung up": "by the caller", "end of TwiML": "the TwiML ran out"}


@dataclass
class Outcome:
    """How a simulated call went."""

    ended: bool
    said: list[str]  # every <Say> the caller heard, the greeting first
    hangup: str | None  # the stand-in's reason, e.g. "<Hangup/>" or "caller hung up"
    problem: str | None  # why the call failed, in one sentence; None when it went through
    duration: float  # call seconds


def build_turns(specs: Sequence[tuple[str, str]]) -> list[Turn]:
    """The caller's turns from ("wav", path) / ("say", text) pairs; none given: the classic dialogue."""
    if not specs:
        return [load_audio(name) for name in CLASSIC_DIALOGUE]
    turns = []
    for kind, value in specs:
        if kind == "wav":
            # No words: a <Gather> (STT_PROVIDER=twilio) cannot know what a WAV says, only a real recognizer can.
            turns.append(Turn("audio", Path(value).name, audio=sound.wav_to_mulaw(value)))
        else:
            turns.append(Turn("audio", value, audio=sound.say_to_mulaw(value), text=value))
    return turns


def describe(kind: str, detail: object, verbose: bool = False) -> str | None:
    """One printed line for a call event; None for the events only --verbose shows (or none at all)."""
    if kind == "say":
        return f"bot said: {detail}"
    if kind == "caller-speaks":
        return f"caller said: {detail}"
    if kind == "hangup":
        return f"hung up ({HANGUP_REASONS.get(str(detail), detail)})"
    if kind == "dial":
        return f"bot transferred the call to {detail}"
    if kind == "webhook-error":
        url, status = detail
        return f"error: {url} failed: {status}"
    if kind == "stream-refused":
        return f"error: the media stream was refused: {detail}"
    if kind == "error":
        return f"error: {detail}"
    if verbose and kind in ("webhook", "redirect", "pause", "stream-start", "stream-stop", "stream-closed",
                            "say-interrupted", "status-callback", "update", "gather", "gather-result"):
        if kind == "update":
            detail = (detail.get("Twiml") or detail.get("Url") or detail) if isinstance(detail, dict) else detail
        return f"  ({kind}: {detail})"
    return None


def _check_reachable(url: str) -> None:
    """Fail early, in one line, when nothing listens at the gateway's URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ChatlineError(f"--url must be the gateway's http(s) base URL, like http://127.0.0.1:8000 "
                            f"(got {url!r})", 2)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=3).close()
    except OSError as exc:
        raise ChatlineError(f"cannot reach the gateway at {url} ({exc.strerror or exc}); "
                            "is `chatline serve` running?") from exc


def _diagnose(call, standin: TwilioStandIn, ended: bool, timeout: float, public_url: str) -> str | None:
    """Why the call failed, with a hint at the usual cause; None when it went through."""
    for _, kind, detail in call.events:
        if kind == "webhook-error":
            url, status = detail
            if status == 403:
                return (f"the gateway refused the signed webhook {url} (403): --auth-token must be its "
                        f"TWILIO_AUTH_TOKEN and --public-url its PUBLIC_URL (now {public_url})")
            return f"the webhook {url} failed: {status}"
        if kind in ("stream-refused", "error"):
            return f"{'the media stream was refused' if kind == 'stream-refused' else 'error'}: {detail}"
    if ended:
        return None
    updates = [r for r in standin.rest_requests if r["method"] == "POST"]
    if not updates:
        hint = (f"the gateway never updated the call through this simulator's REST API: set its TWILIO_API_URL "
                f"to {standin.api_url}")
    elif any(r["status"] == 401 for r in updates):
        hint = ("the gateway's REST requests were refused (401): its TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN must "
                "match --account-sid/--auth-token")
    else:
        spoken = [d for _, kind, d in call.events if kind == "caller-speaks"]
        hint = f"the bot did not answer {spoken[-1]!r}" if spoken else "the caller never got a turn"
    return f"the call did not end within {timeout:g} s; {hint}"


def run_call(url: str, *, public_url: str | None = None, turns: Sequence[Turn], api_port: int, speed: float,
             timeout: float, account_sid: str, auth_token: str, hangup_after: float = 15.0,
             record: str | None = None, verbose: bool = False) -> Outcome:
    """Call the gateway as Twilio would, print each event as it happens, and report how the call went."""
    url, public_url = url.rstrip("/"), (public_url or url).rstrip("/")
    _check_reachable(url)
    tunnel = {public_url: url} if public_url != url else None  # like ngrok: sign for the public URL, deliver locally
    standin = TwilioStandIn(account_sid, auth_token, tunnel=tunnel, speed=speed, port=api_port)
    with step(f"starting the Twilio simulator (REST API on port {api_port})"):
        try:
            standin.start()
        except OSError as exc:
            raise ChatlineError(f"cannot listen on port {api_port} ({exc.strerror or exc}); choose another "
                                "--api-port and point the gateway's TWILIO_API_URL at it") from exc
    try:
        say(f"calling {public_url}/voice" + (f" at {speed:g}x speed" if speed != 1 else ""))
        call = standin.place_call(f"{public_url}/voice", Caller(turns, hangup_after_script=hangup_after),
                                  status_callback=f"{public_url}/status")
        deadline, shown = time.monotonic() + timeout, 0
        ended, reason = False, f"the simulator gave up after {timeout:g} s"
        try:
            while not ended and time.monotonic() < deadline:
                ended = call.wait_ended(0.05)
                shown = _show(call.events, shown, speed, verbose)
        except KeyboardInterrupt:
            reason = "interrupted"
            raise
        finally:
            if not ended:
                call.end(reason)  # also on Ctrl-C: the gateway gets its status callback and frees the call
                call.wait_ended(5)
            _show(call.events, shown, speed, verbose)
        events = call.events
        hangup = next((d for _, kind, d in events if kind == "hangup"), None)
        outcome = Outcome(ended, call.said(), hangup, _diagnose(call, standin, ended, timeout, public_url),
                          next((t * speed for t, kind, _ in events if kind == "hangup"), 0.0))
        if record:
            timeline = timeline_from_events(events, [turn.audio for turn in turns], speed)
            seconds, warnings = write_call_wav(record, timeline)
            for warning in warnings:
                say(f"chatline: warning: {warning}", err=True)
            say(f"wrote {record} ({seconds:.1f} s)")
        return outcome
    finally:
        standin.stop()


def _show(events: list, shown: int, speed: float, verbose: bool) -> int:
    """Print the events not printed yet, with their call time; returns how many are printed now."""
    for t, kind, detail in events[shown:]:
        line = describe(kind, detail, verbose)
        if line:
            say(f"[{t * speed:6.2f} s] {line}")
    return len(events)
