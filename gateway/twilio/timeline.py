"""Keeps a stream's audio true to Twilio's media timestamps: gaps become silence, repeats are dropped."""
from __future__ import annotations

from ..audio import MULAW_SILENCE, SAMPLE_RATE

BYTES_PER_MS = SAMPLE_RATE // 1000
MAX_GAP_MS = 10_000  # a longer hole is a broken peer, not dropped frames: don't invent minutes of audio


class AudioTimeline:
    """Places each media payload at its timestamp, so the recognizer's clock matches the call's."""

    def __init__(self, tolerance_ms: int = 10):
        self.next_ms: int | None = None  # where the next payload is expected to start
        self.tolerance_ms = tolerance_ms
        self.filled_ms = 0
        self.dropped = 0

    def place(self, payload: bytes, timestamp_ms: int | None) -> bytes:
        """Return the audio to feed for this payload: silence for any gap before it, or nothing for a repeat."""
        duration_ms = len(payload) // BYTES_PER_MS
        if timestamp_ms is None or self.next_ms is None:
            self.next_ms = (timestamp_ms if timestamp_ms is not None else (self.next_ms or 0)) + duration_ms
            return payload
        gap = timestamp_ms - self.next_ms
        if gap < -self.tolerance_ms:
            if timestamp_ms + duration_ms <= self.next_ms:
                self.dropped += 1
                return b""  # a repeated or late frame whose time has passed
            payload = payload[(self.next_ms - timestamp_ms) * BYTES_PER_MS:]  # overlap: keep only the new part
            gap = 0
        self.next_ms = max(timestamp_ms, self.next_ms) + len(payload) // BYTES_PER_MS
        if gap <= self.tolerance_ms:
            return payload
        filled = min(gap, MAX_GAP_MS)
        self.filled_ms += filled
        return bytes([MULAW_SILENCE]) * (filled * BYTES_PER_MS) + payload
