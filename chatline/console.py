"""What the `chatline` command prints: progress steps, and the one-line errors it exits with."""
from __future__ import annotations

import contextlib
import signal
import sys
import time
from typing import Iterator


class ChatlineError(Exception):
    """A failure to report as one `chatline: error: …` line; `code` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def say(text: str = "", *, err: bool = False) -> None:
    """Print one line now (flushed, so it interleaves correctly with live output)."""
    stream = sys.stderr if err else sys.stdout
    print(text, file=stream, flush=True)


@contextlib.contextmanager
def step(what: str) -> Iterator[None]:
    """Print `what…`, run the block, then `ok (0.8 s)` or `failed` on the same line."""
    print(f"{what}… ", end="", flush=True)
    started = time.monotonic()
    try:
        yield
    except BaseException:
        print("failed", flush=True)
        raise
    print(f"ok ({time.monotonic() - started:.1f} s)", flush=True)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM and SIGHUP like Ctrl-C inside the block, so the same cleanup runs for all three."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    # A shell starting us in the background (`chatline serve &`) leaves SIGINT ignored; Ctrl-C must still stop us.
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """Ignore Ctrl-C (and SIGTERM/SIGHUP) while cleaning up, so an impatient second Ctrl-C cannot orphan a process."""
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
