"""What a provider accepts per audio message and how fast, and the pacing that keeps a stream within it.

AssemblyAI takes 50-1000 ms of audio per message (else close 3007, "Input duration violation") and closes a session
sent audio faster than real time (3007, "Audio Transmission Rate Exceeded: Received <x> sec. audio in <y> sec"),
with no tolerance documented. Deepgram documents neither: it takes any message size, and audio sent faster than
real time is only answered later, so its streams are not paced.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

BYTES_PER_SECOND = 8000  # 8 kHz mu-law, one byte a sample


@dataclass(frozen=True)
class AudioLimits:
    """A provider's rules for the audio messages of one stream."""

    min_message_ms: int = 0
    max_message_ms: int | None = None
    realtime: bool = False  # never ahead of the caller's own audio by more than `burst_seconds`
    burst_seconds: float = 0.5  # half the largest message AssemblyAI takes: within any tolerance it may have

    def resend_messages(self, audio: bytes, batch_bytes: int) -> list[bytes]:
        """Audio re-sent to a new stream, in messages of `batch_bytes` the provider accepts: a short last piece joins
        the one before it; a lone piece shorter than the minimum is left out (no word fits in it)."""
        smallest = BYTES_PER_SECOND * self.min_message_ms // 1000
        largest = BYTES_PER_SECOND * self.max_message_ms // 1000 if self.max_message_ms else None
        size = min(batch_bytes, largest) if largest else batch_bytes
        messages = [audio[i:i + size] for i in range(0, len(audio), size)]
        if messages and len(messages[-1]) < smallest:
            tail = messages.pop()
            if messages and (largest is None or len(messages[-1]) + len(tail) <= largest):
                messages[-1] += tail
        return messages


class CallerClock:
    """Paces a stream by the caller's own audio, which comes in real time: a stream may run `burst_seconds` ahead of
    the audio that arrived since it opened, never more. (In tests that play calls faster, both run faster alike.)"""

    def __init__(self) -> None:
        self.arrived = 0  # bytes of caller audio since the call began
        self._event: asyncio.Event | None = None

    def tick(self, count: int) -> None:
        """Caller audio arrived (on the loop thread)."""
        self.arrived += count
        if self._event is not None:
            self._event.set()

    async def wait_for(self, needed: int, reader: asyncio.Future) -> bool:
        """Wait until `arrived` reaches `needed`; False if the stream ended (`reader` done) first."""
        while self.arrived < needed:
            if self._event is None:
                self._event = asyncio.Event()
            self._event.clear()
            waiter = asyncio.ensure_future(self._event.wait())
            done, _ = await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                waiter.cancel()
                return False
        return True
