"""Websocket framing alone: Media Stream frames per CPU-second through gateway/twilio/websocket.py, as the gateway reads them.

    .venv/bin/python -m bench.bench_websocket                 # this checkout's gateway/twilio/websocket.py
    .venv/bin/python -m bench.bench_websocket --against main  # ... and the one at a git revision, side by side

Each round is what one call's stream read takes every 100 ms: five masked text frames of Twilio's `media` JSON
(20 ms of μ-law each) written by the peer of a socketpair, then one `receive()`. CPU is this process's (user +
system), so other load on the machine barely moves it; the figure per call is at Twilio's 50 frames a second.
"""
from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEBSOCKET = "gateway/twilio/websocket.py"
sys.path.insert(0, str(ROOT))

FRAMES_PER_READ = 5  # 100 ms of a Media Stream
FRAMES_PER_SECOND = 50


def media_frame(sequence: int) -> bytes:
    """One masked client text frame carrying a Twilio `media` message, as Twilio sends it."""
    message = json.dumps({"event": "media", "sequenceNumber": str(sequence), "streamSid": "MZ" + "0" * 32,
                          "media": {"track": "inbound", "chunk": str(sequence), "timestamp": str(20 * sequence),
                                    "payload": base64.b64encode(os.urandom(160)).decode()}}).encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(message))
    header = bytes([0x81, 0x80 | 126]) + len(message).to_bytes(2, "big") if len(message) > 125 else \
        bytes([0x81, 0x80 | len(message)])
    return header + mask + masked


def load(label: str, source: str):
    """gateway/twilio/websocket.py as a module of its own, from source text (a git revision's, or this checkout's)."""
    path = Path(tempfile.mkdtemp(prefix="bench-ws-")) / f"websocket_{label}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"websocket_{label}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source_at(rev: str) -> str:
    """The websocket module at a git revision: in gateway/twilio/ now, at the package's top in older revisions."""
    for path in (WEBSOCKET, "gateway/websocket.py"):
        shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], capture_output=True, text=True)
        if shown.returncode == 0:
            return shown.stdout
    raise SystemExit(f"no websocket module at {rev}")


def measure(module, rounds: int) -> float:
    """Frames per CPU-second of one WebSocket reading `rounds` batches off a socketpair."""
    ours, peer = socket.socketpair()
    environ = {"gunicorn.socket": ours, "HTTP_UPGRADE": "websocket", "HTTP_SEC_WEBSOCKET_VERSION": "13",
               "HTTP_SEC_WEBSOCKET_KEY": base64.b64encode(os.urandom(16)).decode()}
    ws = module.WebSocket(environ)
    peer.recv(4096)  # the 101 response
    batches = [b"".join(media_frame(r * FRAMES_PER_READ + i) for i in range(FRAMES_PER_READ)) for r in range(50)]
    got = 0
    started = time.process_time()
    for r in range(rounds):
        peer.sendall(batches[r % len(batches)])
        messages = ws.receive(timeout=1.0)
        got += len(messages)
    elapsed = time.process_time() - started
    if got != rounds * FRAMES_PER_READ:
        raise SystemExit(f"{module.__name__}: {got} messages read, {rounds * FRAMES_PER_READ} sent")
    ours.close()
    peer.close()
    return got / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40_000, help="100 ms batches per measurement")
    parser.add_argument("--repeat", type=int, default=5, help="measurements per implementation (the best is kept)")
    parser.add_argument("--against", metavar="REV", help="also measure gateway/twilio/websocket.py at this git revision")
    args = parser.parse_args()
    candidates = {"this checkout": (ROOT / WEBSOCKET).read_text()}
    if args.against:
        candidates[args.against] = source_at(args.against)
    modules = {label: load(str(i), source) for i, (label, source) in enumerate(candidates.items())}
    load_avg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"{args.rounds} reads of {FRAMES_PER_READ} frames, best of {args.repeat}; load average {load_avg}")
    best = {label: 0.0 for label in modules}
    for _ in range(args.repeat):  # interleaved, so a burst of load on the machine hits both alike
        for label, module in modules.items():
            best[label] = max(best[label], measure(module, args.rounds))
    for label, rate in best.items():
        print(f"{label:>16}: {rate:10,.0f} frames per CPU-second = {100 * FRAMES_PER_SECOND / rate:.4f} % of a core "
              f"per call ({1e6 / rate:.1f} µs a frame)")
    if len(best) == 2:
        ours, theirs = best.values()
        print(f"this checkout costs {100 * (theirs / ours - 1):+.1f} % CPU per frame against {args.against}")


if __name__ == "__main__":
    main()
