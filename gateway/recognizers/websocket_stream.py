"""Streaming recognition over a provider's websocket (Deepgram, AssemblyAI), on the process's shared speech loop.

The provider's own messages live in a Dialect (deepgram.py, assemblyai.py); this module keeps one stream open per
call the way the Google recognizer does: audio batched to 100 ms, the audio with no final result yet re-sent to the
next stream when one closes or fails, reconnects backing off, and an outage reported through `on_health`.

Written on the `websockets` asyncio client rather than the providers' SDKs: the gateway needs the same stream
lifecycle for both (re-sending unfinalized audio, its own bounded retries, health), which the SDKs' single-use
connections with their own retry loops and per-client HTTP pools do not offer.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import replace
from typing import Sequence

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from . import HealthCallback, ResultCallback, Transcript, speech_loop
from .dialect import Dialect, Finalized
from .health import StreamHealth
from .pacing import AudioLimits, CallerClock

log = logging.getLogger(__name__)

BYTES_PER_SECOND = 8000  # 8 kHz mu-law, one byte a sample
_END, _RESTART = object(), object()  # outbox sentinels: the call is over / open a new stream


class WebSocketRecognizer(speech_loop.LoopRecognizer):
    """One call's recognition over a provider's websocket; the public methods hand work to the shared loop.

    Like GoogleRecognizer: only the inbox is touched from other threads; everything else is the loop thread's.
    """

    def __init__(self, dialect: Dialect, language: str = "en-US", hints: Sequence[str] = (), batch_ms: int = 100,
                 max_resend_seconds: float = 30.0, outage_seconds: float = 5.0, working_after_seconds: float = 2.0,
                 keepalive_seconds: float = 4.0, connect_timeout: float = 5.0):
        self.dialect, self.language = dialect, language
        self.limits: AudioLimits = getattr(dialect, "limits", None) or AudioLimits()  # the provider's audio rules
        self._hints = tuple(hints)
        self._batch_bytes = BYTES_PER_SECOND * batch_ms // 1000
        self._max_resend_bytes = int(BYTES_PER_SECOND * max_resend_seconds)
        self._keepalive_seconds, self._connect_timeout = keepalive_seconds, connect_timeout
        self._inbox = speech_loop.AudioInbox(self._drain)  # audio fed from the websocket thread
        self._shut = False  # the loop's own copy of the inbox's closed
        # The loop thread's alone:
        self._pending = bytearray()  # audio not yet a full batch
        self._unfinalized = bytearray()  # audio sent since the last final result: re-sent after a restart
        self._finalized_at = 0  # call-timeline byte offset where _unfinalized begins
        self._stream_start = 0  # call-timeline byte offset where the current stream's audio begins
        self._outbox: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._on_result: ResultCallback | None = None
        self._on_health: HealthCallback | None = None
        self._health = StreamHealth(outage_seconds)
        self._working_after = working_after_seconds
        self._refusal_logged = False
        self._clock = CallerClock()  # the caller's audio: how fast a stream of a real-time-only provider may go
        self._resent = 0  # bytes of _unfinalized re-sent to the current stream
        self._answered = False  # the current stream gave a result
        self.streams_started = 0

    # Everything below runs on the loop thread.

    def _begin(self) -> None:
        if self._shut or self._task is not None:
            return
        self._task = speech_loop.event_loop().create_task(self._run(), name=f"{self.dialect.name}-stt")

    def _shutdown(self) -> None:
        self._shut = True
        self._clock.tick(0)  # a stream waiting for real time to send its audio stops waiting
        if self._outbox is not None:
            self._outbox.put_nowait(_END)  # the sender says goodbye to the provider, then the task ends
        elif self._task is not None:
            self._task.cancel()  # between streams (backing off): nothing to say goodbye on

    def _restart(self) -> None:
        if self._outbox is not None:
            self._outbox.put_nowait(_RESTART)

    def _hints_changed(self) -> None:
        message = self.dialect.hints_message(self._hints)
        if message is None:
            self._restart()
        elif self._outbox is not None:
            self._outbox.put_nowait(message)

    def _drain(self, audio: bytes) -> None:
        """Take the fed audio: full batches go to the current stream."""
        try:
            self._clock.tick(len(audio))
            self._pending += audio
            whole = len(self._pending) - len(self._pending) % self._batch_bytes
            for i in range(0, whole, self._batch_bytes):
                batch = bytes(self._pending[i:i + self._batch_bytes])
                self._unfinalized += batch
                if self._outbox is not None:
                    self._outbox.put_nowait(batch)
            del self._pending[:whole]
            excess = len(self._unfinalized) - self._max_resend_bytes
            if excess > 0:  # long stretches with no final result are silence or noise: bound what a restart re-sends
                del self._unfinalized[:excess]
                self._finalized_at += excess
        except Exception:  # a callback's boundary: the call's next audio comes through as usual
            log.exception("passing caller audio to the %s stream failed", self.dialect.name)

    async def _run(self) -> None:
        """Keep one stream open for as long as the call lasts (the task's boundary)."""
        failures = 0
        try:
            while not self._shut:
                self._answered, self._resent = False, 0
                failures = await self._one_stream(failures)
                if failures and not self._answered:  # the provider fails us, however long each try lasts: back off
                    await asyncio.sleep(self._health.retry_delay(failures))
        except asyncio.CancelledError:
            pass  # close() between streams
        except Exception:
            log.exception("%s stream task stopped unexpectedly; the call hears nothing more", self.dialect.name)

    async def _one_stream(self, failures: int) -> int:
        """Run one stream until it ends; returns the count of failures in a row so far."""
        name = self.dialect.name
        try:
            async with websockets.connect(self.dialect.url(self.language, self._hints),
                                          additional_headers=self.dialect.headers(),
                                          open_timeout=self._connect_timeout, close_timeout=1.0,
                                          max_size=2 ** 20) as ws:
                await self._stream(ws)
            return 0
        except InvalidStatus as exc:
            reason = self.dialect.refusal(exc)
            if reason:
                return self._refused(reason, failures)
            log.warning("%s refused the stream: HTTP %s; retrying (failure %d)", name, exc.response.status_code,
                        failures + 1)
        except ConnectionClosed as exc:
            code, why = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, "no close frame")
            reason = self.dialect.refusal(exc)
            if reason:
                return self._refused(reason, failures)
            if self.dialect.expected_close(code):
                log.info("%s stream ended (%s %s); restarting", name, code, why)
                return 0
            log.warning("%s stream broke (%s %s); restarting (failure %d)", name, code, why, failures + 1)
        except (OSError, InvalidHandshake, asyncio.TimeoutError) as exc:
            log.warning("%s stream could not connect: %r; retrying (failure %d)", name, exc, failures + 1)
        except asyncio.CancelledError:
            raise
        except Exception:  # the stream's boundary: a bug here must not leave the call deaf without a trace
            log.exception("%s stream broke unexpectedly; restarting (failure %d)", name, failures + 1)
        finally:
            self._outbox = None
            for transcript in self.dialect.stream_ended():  # words already final at the provider stay heard
                self._emit(self._on_call_timeline(transcript))
        self._health.failed()
        self._drop_refused_resend()
        return 1 if self._answered else failures + 1  # a stream that answered broke once; else one more failure

    def _drop_refused_resend(self) -> None:
        """A stream that failed before any result took the re-sent audio with it: it is not re-sent again (a
        provider that refuses it would refuse it for ever), only the audio that came after it."""
        if self._answered or not self._resent:
            return
        dropped = min(self._resent, len(self._unfinalized))
        del self._unfinalized[:dropped]
        self._finalized_at += dropped
        self._resent = 0
        log.warning("%s: %.1f s of audio re-sent after a reconnect was not heard (the stream failed before any "
                    "result); it is dropped, not re-sent again", self.dialect.name, dropped / BYTES_PER_SECOND)

    def _refused(self, reason: str, failures: int) -> int:
        """Say once, loudly, why the provider refuses us; the call is reported down at once (<Gather> listens)."""
        if not self._refusal_logged:
            self._refusal_logged = True
            log.error("%s refused the stream: %s", self.dialect.name, reason)
        self._health.refused()
        return max(failures + 1, 5)  # retry slowly: this will not fix itself quickly

    async def _stream(self, ws) -> None:
        """Send the unfinalized audio, then new audio as it comes, while reading results; until the stream ends."""
        outbox: asyncio.Queue = asyncio.Queue()
        for message in self.limits.resend_messages(bytes(self._unfinalized), self._batch_bytes):
            outbox.put_nowait(message)
        self._resent = len(self._unfinalized)
        self._stream_start = self._finalized_at
        self._outbox = outbox
        self.streams_started += 1
        if self._shut:  # closed while connecting: say goodbye at once
            outbox.put_nowait(_END)
        reader = asyncio.ensure_future(self._read(ws))
        try:
            await self._send(ws, outbox, time.monotonic(), reader)
        finally:
            if not reader.done():
                reader.cancel()
            # Gathered, not awaited: the reader's own cancellation must not pass for this task's (close()).
            (ended,) = await asyncio.gather(reader, return_exceptions=True)
        if isinstance(ended, Exception):
            raise ended  # how the provider ended the stream (a close code), for _one_stream to judge

    async def _send(self, ws, outbox: asyncio.Queue, opened: float, reader: asyncio.Future) -> None:
        pace = self._clock.pace(self.limits.burst_seconds)
        while not reader.done():
            getter = asyncio.ensure_future(outbox.get())
            done, _ = await asyncio.wait({getter, reader}, timeout=self._keepalive_seconds,
                                         return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                if reader in done:
                    return
                if self.dialect.keepalive:  # no audio for a while: the provider would close an idle stream
                    await ws.send(self.dialect.keepalive)
                continue
            item = getter.result()
            if item is _RESTART:
                await ws.close()
                return
            if item is _END:
                await self._say_goodbye(ws, reader)
                return
            if isinstance(item, bytes) and self._shut:
                continue  # the call is over: audio still queued (paced behind real time) would be heard by no one
            if isinstance(item, bytes) and self.limits.realtime and not await pace.take(len(item), reader,
                                                                                        lambda: self._shut):
                continue  # the stream ended, or the call did, while this audio waited for real time to catch up
            await ws.send(item)
            if isinstance(item, bytes) and time.monotonic() - opened >= self._working_after:
                self._health.working()  # a stream still taking audio after a while works, though quiet

    async def _say_goodbye(self, ws, reader: asyncio.Future) -> None:
        """End the stream the provider's way, so it closes (and bills) the session now; briefly await its close."""
        try:
            await ws.send(self.dialect.close_message)
            await asyncio.wait_for(ws.wait_closed(), 1.0)
        except (asyncio.TimeoutError, ConnectionClosed):
            log.debug("%s stream did not close within a second of the goodbye", self.dialect.name)
        finally:
            await ws.close()

    async def _read(self, ws) -> None:
        """Pass the provider's results on; finals also mark their audio done, so a restart does not repeat it."""
        async for raw in ws:
            if isinstance(raw, bytes):
                continue
            try:
                message = json.loads(raw)
            except ValueError:
                log.warning("%s sent a message that is not JSON (%d characters); ignored", self.dialect.name,
                            len(raw))
                continue
            try:
                events = self.dialect.handle(message) if isinstance(message, dict) else []
            except (TypeError, ValueError, AttributeError, KeyError) as exc:  # a message of an unexpected shape
                log.warning("%s sent a message the gateway cannot read (%r); ignored", self.dialect.name, exc)
                continue
            if events:  # a result: the stream works (a session's Begin or Error is not one)
                self._answered = True
                self._health.working()
            for event in events:
                if isinstance(event, Finalized):
                    done = self._stream_start + int(event.seconds * BYTES_PER_SECOND) - self._finalized_at
                    if done > 0:
                        del self._unfinalized[:done]
                        self._finalized_at += done
                else:
                    self._emit(self._on_call_timeline(event))

    def _on_call_timeline(self, transcript: Transcript) -> Transcript:
        """A final's end, from seconds of this stream to seconds of the call's audio."""
        if transcript.end_seconds is None:
            return transcript
        return replace(transcript, end_seconds=self._stream_start / BYTES_PER_SECOND + transcript.end_seconds)

