"""One load-generator process: plays Twilio for its share of the calls (signed /voice, a Media Stream of real speech).

Lean on purpose: asyncio, raw sockets, every websocket frame pre-built before the run (a zero mask key leaves the
payload as is, RFC 6455 section 5.3), one 20 ms ticker that writes whatever frames are due for all its calls.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import struct
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from twilio.request_validator import RequestValidator

from bench.bench_services import cpu_seconds

AUDIO = Path(__file__).resolve().parent.parent / "chatline" / "audio"
FRAME, FRAME_SECONDS = 160, 0.02
SILENCE = b"\xff"


@dataclass
class Call:
    """One simulated call: its schedule, its pre-built frames, and what happened to it."""

    index: int
    start_at: float  # seconds after t0
    call_sid: str = field(default_factory=lambda: "CA" + secrets.token_hex(16))
    stream_sid: str = field(default_factory=lambda: "MZ" + secrets.token_hex(16))
    frames: list[bytes] = field(default_factory=list)
    sent: int = 0
    streaming_since: float | None = None  # monotonic time of frame 0
    writer: asyncio.StreamWriter | None = None
    error: str = ""
    duration: float = 0.0


def ws_frame(text: str | bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame with the all-zero mask key: the payload goes out unchanged."""
    data = text.encode() if isinstance(text, str) else text
    n = len(data)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + b"\0\0\0\0" + data


def dialogue(utterances: list[str], gap: float, lead: float = 0.5) -> bytes:
    """The caller's side: a short silence, then each recording followed by `gap` seconds of silence."""
    audio = SILENCE * int(8000 * lead)
    for name in utterances:
        audio += (AUDIO / f"{name}.ulaw").read_bytes() + SILENCE * int(8000 * gap)
    return audio + SILENCE * (-len(audio) % FRAME)


def media_frames(audio: bytes, stream_sid: str, outbound: bytes | None = None) -> list[bytes]:
    """Every `media` message of the call, as websocket frames, in Twilio's JSON shape; with `outbound` (both_tracks)
    each 20 ms carries the caller's frame and then the frame of what the caller hears."""
    frames, sequence = [], 1
    for i in range(len(audio) // FRAME):
        tick = b""
        for track, source in (("inbound", audio), ("outbound", outbound)):
            if source is None:
                continue
            sequence += 1
            payload = base64.b64encode(source[i * FRAME:(i + 1) * FRAME].ljust(FRAME, SILENCE)).decode()
            tick += ws_frame(
                f'{{"event":"media","sequenceNumber":"{sequence}","media":{{"track":"{track}","chunk":"{i + 1}",'
                f'"timestamp":"{i * 20}","payload":"{payload}"}},"streamSid":"{stream_sid}"}}')
        frames.append(tick)
    return frames


def prompts(utterances: list[str], gap: float, lead: float = 0.5) -> bytes:
    """The outbound track for `dialogue(utterances, gap, lead)`: silent while the caller speaks, the bot's answer (a
    recording) from 0.6 s after each utterance, when the gateway's update for it has arrived: a conversation with no
    barge-in, as most turns are (prompts that ignore the caller would make every turn a barge-in)."""
    answer, start, room = (AUDIO / "weather.ulaw").read_bytes(), int(8000 * 0.6), int(8000 * gap)
    audio = SILENCE * int(8000 * lead)
    for name in utterances:
        reply = answer[:max(0, room - start - 8000)]  # over a second before the caller speaks again
        audio += SILENCE * (len((AUDIO / f"{name}.ulaw").read_bytes()) + start) + reply
        audio += SILENCE * (room - start - len(reply))
    return audio + SILENCE * (-len(audio) % FRAME)


class LoadProcess:
    """Runs a process's calls on one asyncio loop against the gateway at `local_url`."""

    def __init__(self, calls: list[Call], opts: dict) -> None:
        self.calls, self.opts = calls, opts
        self.validator = RequestValidator(opts["auth_token"])
        self.lateness: list[float] = []
        self.active: list[Call] = []

    async def run(self, t0: float) -> None:
        async with aiohttp.ClientSession() as self.http:
            ticker = asyncio.create_task(self._tick(t0))
            await asyncio.gather(*(self._call(call, t0) for call in self.calls))
            ticker.cancel()

    async def _tick(self, t0: float) -> None:
        """Every 20 ms, write each active call's due frames (a late tick catches up, so timing never drifts)."""
        tick = 0
        loop = asyncio.get_running_loop()
        while True:
            tick += 1
            await asyncio.sleep(max(0.0, t0 + tick * FRAME_SECONDS - loop.time()))
            now = loop.time()
            self.lateness.append(now - (t0 + tick * FRAME_SECONDS))
            for call in self.active:
                due = min(len(call.frames), int((now - call.streaming_since) / FRAME_SECONDS) + 1)
                if due > call.sent:
                    call.writer.write(b"".join(call.frames[call.sent:due]))
                    call.sent = due

    async def _call(self, call: Call, t0: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, t0 + call.start_at - loop.time()))
        begun = loop.time()
        try:
            await self._play(call)
        except Exception as exc:  # the call's boundary: one broken call is a result, not a crash
            call.error = f"{type(exc).__name__}: {exc}"
            if call in self.active:
                self.active.remove(call)
        call.duration = loop.time() - begun

    async def _play(self, call: Call) -> None:
        o = self.opts
        # a server that takes streams with no webhook first (Twilio's own samples) gets its stream URL in the opts
        url, parameters = (o["stream_url"], {}) if o.get("stream_url") else await self._voice(call)
        reader, writer = await asyncio.open_connection(*o["local_addr"])
        call.writer = writer
        key = base64.b64encode(os.urandom(16)).decode()
        path = "/" + url.split("/", 3)[3]
        writer.write((f"GET {path} HTTP/1.1\r\nHost: {o['local_addr'][0]}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      f"X-Twilio-Signature: {self.validator.compute_signature(url, {})}\r\n"
                      f"User-Agent: Twilio.TmeWs/1.0\r\n\r\n").encode())
        status = await reader.readuntil(b"\r\n\r\n")
        if not status.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"handshake refused: {status.splitlines()[0]!r}")
        drain = asyncio.create_task(self._discard(reader))
        start = {"event": "start", "sequenceNumber": "1", "streamSid": call.stream_sid, "start": {
            "accountSid": o["account_sid"], "streamSid": call.stream_sid, "callSid": call.call_sid,
            "tracks": ["inbound", "outbound"] if self.opts.get("both_tracks") else ["inbound"],
            "customParameters": parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}
        writer.write(ws_frame('{"event":"connected","protocol":"Call","version":"1.0.0"}')
                     + ws_frame(json.dumps(start, separators=(",", ":"))))
        call.streaming_since = asyncio.get_running_loop().time()
        self.active.append(call)
        while call.sent < len(call.frames):
            await asyncio.sleep(0.2)
            if drain.done():
                raise RuntimeError(f"the gateway closed the stream after {call.sent} frames")
        self.active.remove(call)
        messages = len(call.frames) * (2 if self.opts.get("both_tracks") else 1)
        stop = {"event": "stop", "sequenceNumber": str(messages + 2), "streamSid": call.stream_sid,
                "stop": {"accountSid": o["account_sid"], "callSid": call.call_sid}}
        writer.write(ws_frame(json.dumps(stop)) + ws_frame(struct.pack("!H", 1000), opcode=0x8))
        await writer.drain()
        await asyncio.sleep(0.5)
        drain.cancel()
        writer.close()

    async def _voice(self, call: Call) -> tuple[str, dict]:
        """The signed /voice webhook: the <Stream> URL and parameters of the TwiML it answers."""
        o = self.opts
        params = {"CallSid": call.call_sid, "AccountSid": o["account_sid"], "From": f"+1555{call.index:07d}",
                  "To": "+15550000000", "CallStatus": "ringing", "Direction": "inbound"}
        headers = {"X-Twilio-Signature": self.validator.compute_signature(o["public_url"] + "/voice", params)}
        async with self.http.post(o["local_url"] + "/voice", data=params, headers=headers) as response:
            body = await response.read()
            if response.status != 200:
                raise RuntimeError(f"/voice answered {response.status}")
        stream = ET.fromstring(body).find("./Start/Stream")
        if stream is None:  # over MAX_CONCURRENT_STREAMS: the gateway answered in Gather mode
            raise RuntimeError("/voice answered without a <Stream> (Gather mode)")
        return stream.get("url"), {p.get("name"): p.get("value") for p in stream.findall("Parameter")}

    @staticmethod
    async def _discard(reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass


def run(calls: list[tuple[int, float]], opts: dict, conn) -> None:
    """Process entry: build every frame, say ready, wait for t0 (monotonic), play the calls, send back the results."""
    audio = dialogue(opts["utterances"], opts["gap"])
    outbound = prompts(opts["utterances"], opts["gap"]) if opts.get("both_tracks") else None
    if opts.get("seconds"):  # a fixed length: the dialogue repeated, or cut, to whole 20 ms frames
        length = int(opts["seconds"] / FRAME_SECONDS) * FRAME
        audio = (audio * (length // len(audio) + 1))[:length]
        outbound = (outbound * (length // len(outbound) + 1))[:length] if outbound is not None else None
    work = [Call(index, start_at) for index, start_at in calls]
    for call in work:
        call.frames = media_frames(audio, call.stream_sid, outbound)
    cpu_before = cpu_seconds()
    conn.send(os.getpid())
    t0_monotonic = conn.recv()
    process = LoadProcess(work, opts)
    loop = asyncio.new_event_loop()
    t0 = loop.time() + (t0_monotonic - time.monotonic())  # the loop's clock is monotonic too, but may be offset
    loop.run_until_complete(process.run(t0))
    late = sorted(process.lateness) or [0.0]
    conn.send({"calls": [(c.index, c.call_sid, c.error, c.duration) for c in work],
               "cpu": cpu_seconds() - cpu_before, "wall": loop.time() - t0,
               "late_p99": late[int(len(late) * 0.99)], "late_max": late[-1]})
