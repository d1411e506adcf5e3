"""What one outbound-track frame costs the gateway, next to an inbound one (run by hand):

    .venv/bin/python bench/bench_outbound_track.py

Parsing a frame as Twilio writes it (the fast path, no json.loads), then for an outbound frame the PlaybackMeter;
for comparison the inbound frame's parse alone (the recognizer's cost comes on top of it and is not measured here).
Also the cost of the per-transcript checks (backchannel, echo) and of one end-of-turn decision by words.
"""
from __future__ import annotations

import base64
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.dialogue.end_of_turn import WordsEndOfTurn  # noqa: E402
from gateway.dialogue.listening import is_backchannel, is_echo  # noqa: E402
from gateway.dialogue.playback import PlaybackMeter  # noqa: E402
from gateway.twilio.media_stream import parse_message  # noqa: E402

SPEECH = (ROOT / "chatline" / "audio" / "book_a_table.ulaw").read_bytes()


def message(track: str, payload: bytes, n: int) -> str:
    return ('{"event":"media","sequenceNumber":"%d","media":{"track":"%s","chunk":"%d","timestamp":"%d",'
            '"payload":"%s"},"streamSid":"MZ0123456789abcdef0123456789abcdef"}'
            % (n, track, n, 20 * n, base64.b64encode(payload).decode()))


def per_call(label: str, function, items: list, repeat: int = 5) -> None:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for item in items:
            function(item)
        best = min(best, (time.perf_counter() - started) / len(items))
    print(f"{label:58s} {best * 1e6:8.2f} us")


def main() -> None:
    frames = [SPEECH[i:i + 160] for i in range(0, len(SPEECH) - 159, 160)] + [b"\xff" * 160] * 50
    inbound = [message("inbound", f, n) for n, f in enumerate(frames * 20)]
    outbound = [message("outbound", f, n) for n, f in enumerate(frames * 20)]
    per_call("inbound frame: parse", parse_message, inbound)
    per_call("outbound frame: parse", parse_message, outbound)
    meter = PlaybackMeter()

    def outbound_path(raw: str) -> None:
        media = parse_message(raw)
        meter.feed(media.payload, media.timestamp_ms)

    per_call("outbound frame: parse + PlaybackMeter.feed", outbound_path, outbound)
    prompt = "Good evening, Trattoria Bella. Tonight we have a very good house wine and fresh seafood risotto."
    per_call("is_backchannel (per transcript over a prompt)", lambda w: is_backchannel(w, "en-US"),
             ["mm-hmm", "okay got it", "i would like the risotto please"] * 200)
    per_call("is_echo, 5 words vs a 17-word window (per transcript)", lambda w: is_echo(w, prompt),
             ["very good house wine and", "i would like to book a"] * 100)
    per_call("end of turn by words (per final)", WordsEndOfTurn().finished,
             ["i'd like to book a table for", "can i see the menu please"] * 300)


if __name__ == "__main__":
    main()
