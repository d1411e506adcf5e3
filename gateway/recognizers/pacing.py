"""What a provider accepts per audio message and how fast, and the pacing that keeps a stream within it.

AssemblyAI takes 50-1000 ms of audio per message (else close 3007, "Input duration violation") and closes a session
sent audio faster than real time (3007, "Audio Transmission Rate Exceeded: Received <x> sec. audio in <y> sec"),
with no tolerance documented. Deepgram documents neither: it takes any message size, and audio sent faster than
real time is only answered later, so its streams are not paced.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Callable

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
    """Paces a stream to real time: it may run `burst` bytes ahead of the audio it could have had by now, counted
    by the caller's own audio since it opened (which comes in real time; in tests that play calls faster, it runs
    faster alike, as do the stand-ins) or by the clock, whichever is further (the caller's audio may pause)."""

    def __init__(self, clock=time.monotonic) -> None:
        self.arrived = 0  # bytes of caller audio since the call began
        self.now = clock
        self._event: asyncio.Event | None = None

    def tick(self, count: int) -> None:
        """Caller audio arrived (on the loop thread)."""
        self.arrived += count
        if self._event is not None:
            self._event.set()

    def pace(self, burst_seconds: float) -> "Pace":
        """The pacing of a stream opening now."""
        return Pace(self, self.arrived, self.now(), int(burst_seconds * BYTES_PER_SECOND))

    async def wait(self, reader: asyncio.Future, seconds: float) -> bool:
        """Wait for more caller audio or `seconds`; False if the stream ended (`reader` done) first."""
        if self._event is None:
            self._event = asyncio.Event()
        self._event.clear()
        waiter = asyncio.ensure_future(self._event.wait())
        done, _ = await asyncio.wait({waiter, reader}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
        return reader not in done


@dataclass
class Pace:
    """One stream's budget: what it has sent against what real time allows."""

    clock: CallerClock
    arrived_at_open: int
    opened_at: float
    burst: int
    sent: int = 0

    def allowed(self) -> int:
        by_caller = self.clock.arrived - self.arrived_at_open
        by_clock = int((self.clock.now() - self.opened_at) * BYTES_PER_SECOND)
        return self.burst + max(by_caller, by_clock)

    async def take(self, count: int, reader: asyncio.Future, stopped: Callable[[], bool]) -> bool:
        """Wait until `count` more bytes may go; False if the stream ended (or `stopped()`) first."""
        self.sent += count
        while self.sent > self.allowed():
            if stopped():
                return False
            wait = (self.sent - self.allowed()) / BYTES_PER_SECOND
            if not await self.clock.wait(reader, min(wait, 0.1)):
                return False
        return True
