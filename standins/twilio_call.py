"""One simulated phone call: its state, its event log, its caller and media streams, and how it ends."""
from __future__ import annotations

import logging
import math
import threading
import time
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Callable

from standins.media_stream import MediaStream, tracks_of
from standins.outbound_audio import DEFAULT_CHARS_PER_SECOND, OutboundTrack
from standins.twilio_caller import Caller, CallerRuntime, Cues, GatherSlot, Line
from standins.twilio_webhooks import WebhookClient, new_sid
from standins.twiml_runner import TwimlRunner

log = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
MAX_STREAMS = 4  # Twilio's limit of forked tracks on one call: a both_tracks <Stream> counts as two
Event = tuple  # (seconds since the call started, kind, detail)

_TRANSCRIPT: dict[str, Callable[[object], str]] = {
    "say": lambda d: f"bot said: {d}",
    "caller-speaks": lambda d: f"caller said: {d}",
    "caller-dtmf": lambda d: f"caller pressed: {d}",
    "caller-silent": lambda d: f"caller stayed silent for {d:g}s",
    "dial": lambda d: f"bot transferred the call to {d}",
    "hangup": lambda d: f"hung up ({d})",
    "webhook-error": lambda d: f"webhook {d[0]} failed: {d[1]}",
    "stream-refused": lambda d: f"media stream refused: {d}",
    "error": lambda d: f"error: {d}",
}


def _rfc2822(moment: datetime | None) -> str | None:
    return format_datetime(moment) if moment else None


class SimulatedCall:
    """A call the stand-in is running; every method is safe to call from any thread."""

    def __init__(self, *, account_sid: str, from_: str, to: str, direction: str, webhooks: WebhookClient,
                 speed: float, caller: Caller | None = None, url: str | None = None, method: str = "POST",
                 twiml: str | None = None, status_callback: str | None = None,
                 status_callback_method: str = "POST", say_chars_per_second: float = DEFAULT_CHARS_PER_SECOND,
                 speakerphone_leak: float = 0.0, outbound_voice: str = "buzz") -> None:
        self.sid = new_sid("CA")
        self.account_sid, self.from_, self.to, self.direction = account_sid, from_, to, direction
        self.url, self.method, self.twiml = url, method, twiml
        self.status_callback, self.status_callback_method = status_callback, status_callback_method
        self.speed = speed
        self.webhooks = webhooks
        # What the caller hears (the outbound track): its voice's pace, and how much of it the caller's microphone
        # picks up (0: a handset; 0.3: a speakerphone feeding the bot's voice back into the caller's audio), and
        # its voice ("buzz": speech-like and cheap; "espeak": the prompt's words, for a recognizer to hear in a leak).
        self.outbound = OutboundTrack(speed, say_chars_per_second, speakerphone_leak, outbound_voice)
        self.status = "ringing" if direction == "inbound" else "queued"
        self.error: str | None = None
        self.streams: list[MediaStream] = []
        self.date_created = datetime.now(timezone.utc)
        self.start_time: datetime | None = None
        self.end_time: datetime | None = None
        self._cond = threading.Condition()  # guards everything below, and the caller's Cues
        self.cues = Cues(self._cond)
        self.line = Line()
        self._t0 = time.monotonic()
        self._answered_at: float | None = None
        self._events: list[Event] = []
        self._pending_update: dict | None = None
        self._end_reason: str | None = None
        self._ended = threading.Event()
        self._caller = CallerRuntime(caller or Caller(), self.cues, self.line, self.record, self.end, speed)
        self._runner = threading.Thread(target=TwimlRunner(self).run, name=f"twilio-standin-{self.sid[:10]}",
                                        daemon=True)

    def start(self) -> None:
        self._caller.start()
        self._runner.start()

    # ---- what tests look at -------------------------------------------------------------------------
    @property
    def events(self) -> list[Event]:
        with self._cond:
            return list(self._events)

    def said(self) -> list[str]:
        """The text of every <Say> the caller heard (or started hearing), in order."""
        return [detail for _, kind, detail in self.events if kind == "say"]

    def wait_for_event(self, kind: str, timeout: float = 5.0,
                       predicate: Callable[[object], bool] | None = None) -> Event | None:
        """Wait for an event of `kind` whose detail satisfies `predicate`; None on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self._events:
                    if event[1] == kind and (predicate is None or predicate(event[2])):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def wait_for_say(self, match: str | Callable[[str], bool], timeout: float = 5.0) -> str | None:
        """Wait until the bot says something containing `match` (or satisfying it); the text, or None on timeout."""
        predicate = match if callable(match) else (lambda text: match in text)
        event = self.wait_for_event("say", timeout, predicate)
        return event[2] if event else None

    def wait_ended(self, timeout: float = 10.0) -> bool:
        """Wait until the call has fully ended (streams stopped, status callback sent)."""
        return self._ended.wait(timeout)

    def hang_up(self) -> None:
        """The caller hangs up."""
        self.end("caller hung up")

    @property
    def media_frames_sent(self) -> int:
        return sum(stream.frames_sent for stream in self.streams)

    def transcript(self) -> str:
        """A human-readable log of the conversation."""
        lines = []
        for t, kind, detail in self.events:
            describe = _TRANSCRIPT.get(kind)
            if describe:
                lines.append(f"[{t:6.2f}s] {describe(detail)}")
        return "\n".join(lines)

    # ---- what the runner, the caller and the streams use ------------------------------------------------
    def record(self, kind: str, detail: object = None) -> None:
        with self._cond:
            self._events.append((round(time.monotonic() - self._t0, 3), kind, detail))
            if kind in ("error", "webhook-error") and self.error is None:
                self.error = f"{kind}: {detail}"
            self._cond.notify_all()
        log.debug("twilio stand-in %s: %s %r", self.sid, kind, detail)

    @property
    def over(self) -> bool:
        with self._cond:
            return self._end_reason is not None

    def answered(self) -> None:
        with self._cond:
            if self._answered_at is None and self._end_reason is None:
                self._answered_at, self.start_time = time.monotonic(), datetime.now(timezone.utc)
                self.status = "in-progress"

    def webhook_params(self) -> dict[str, str]:
        """The parameters Twilio sends with every voice webhook for this call."""
        with self._cond:
            status = self.status
        params = {"AccountSid": self.account_sid, "ApiVersion": API_VERSION, "CallSid": self.sid,
                  "CallStatus": status, "Direction": self.direction, "From": self.from_, "To": self.to,
                  "Caller": self.from_, "Called": self.to}
        for prefix in ("From", "To", "Caller", "Called"):
            params.update({f"{prefix}City": "", f"{prefix}State": "", f"{prefix}Zip": "", f"{prefix}Country": "US"})
        return params

    def sleep(self, seconds: float, until: Callable[[], bool] | None = None) -> str:
        """Wait `seconds` (wall); returns "over", "update", "until" or "timeout", whichever happens first."""
        deadline = time.monotonic() + seconds
        with self._cond:
            while True:
                if self._end_reason is not None:
                    return "over"
                if self._pending_update is not None:
                    return "update"
                if until is not None and until():
                    return "until"
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "timeout"
                self._cond.wait(remaining)

    def request_update(self, form: dict[str, str]) -> bool:
        """Apply a REST update (Twiml / Url / Status); False when the call is no longer in progress."""
        with self._cond:
            if self._end_reason is not None:
                return False
            status = form.get("Status")
            if form.get("Twiml") or form.get("Url"):
                self._pending_update = {"twiml": form.get("Twiml") or None, "url": form.get("Url"),
                                        "method": form.get("Method") or "POST"}
        self.record("update", dict(form))
        if status in ("completed", "canceled"):
            self.end(f"REST Status={status}", "canceled" if self.status in ("queued", "ringing") else "completed")
        with self._cond:
            self._cond.notify_all()
        return True

    def take_update(self) -> dict | None:
        with self._cond:
            update, self._pending_update = self._pending_update, None
            return update

    def say_playing(self, playing: bool, finished: bool = True) -> None:
        """A <Say> starts, or stops: a caller answers one the bot finished, not one cut short (by them, or an update)."""
        with self._cond:
            self.cues.saying = playing
            if playing:
                self.cues.last_say_start = time.monotonic()
            elif finished:
                self.cues.last_say_end = time.monotonic()
            self._cond.notify_all()

    def open_gather(self, inputs: frozenset[str], finish_on_key: str) -> GatherSlot:
        with self._cond:
            self.cues.gather = GatherSlot(inputs, finish_on_key)
            self._cond.notify_all()
            return self.cues.gather

    def close_gather(self) -> None:
        with self._cond:
            self.cues.gather = None

    def start_stream(self, url: str, name: str | None, parameters: dict[str, str],
                     track: str = "inbound_track") -> MediaStream | None:
        """Start a Media Stream (from <Start><Stream> or the REST Streams subresource); None if the call is over."""
        with self._cond:
            if self._end_reason is not None:
                return None
            if sum(len(s.tracks) for s in self.streams if s.running) + len(tracks_of(track)) > MAX_STREAMS:
                self.record("stream-refused", f"more than {MAX_STREAMS} streams")
                return None
            stream = MediaStream(url=url, name=name, parameters=parameters, call_sid=self.sid,
                                 account_sid=self.account_sid, webhooks=self.webhooks, line=self.line,
                                 speed=self.speed, record=self.record, on_started=self._stream_started,
                                 track=track, outbound=self.outbound)
            self.streams.append(stream)
        stream.start()
        return stream

    def stop_streams(self, name: str | None = None) -> None:
        with self._cond:
            streams = [s for s in self.streams if name is None or s.name == name]
        for stream in streams:
            stream.stop()

    def drop_streams(self) -> None:
        """The call's Media Streams break (a network failure): the call itself goes on."""
        with self._cond:
            streams = list(self.streams)
        for stream in streams:
            stream.drop()

    def _stream_started(self, stream: MediaStream) -> None:
        with self._cond:
            if self.cues.stream_started_at is None:
                self.cues.stream_started_at = time.monotonic()
            self._cond.notify_all()

    # ---- the end ----------------------------------------------------------------------------------------
    def end(self, reason: str, status: str = "completed") -> None:
        """End the call (idempotent): stop streams, then post the status callback, in the background."""
        with self._cond:
            if self._end_reason is not None:
                return
            self._end_reason, self.status = reason, status
            self.end_time = datetime.now(timezone.utc)
            self._ended_at = time.monotonic()
            self.cues.over = True
            self._cond.notify_all()
        self.record("hangup", reason)
        threading.Thread(target=self._finish, name=f"twilio-standin-end-{self.sid[:10]}", daemon=True).start()

    def _finish(self) -> None:
        try:
            self.stop_streams()
            if self.status_callback:
                params = {**self.webhook_params(), "Timestamp": format_datetime(datetime.now(timezone.utc)),
                          "CallbackSource": "call-progress-events", "SequenceNumber": "0",
                          "CallDuration": str(self.duration or 0)}
                result = self.webhooks.request(self.status_callback, params, self.status_callback_method)
                self.record("status-callback", (self.status_callback, result.status))
        except Exception as exc:  # the boundary of the ending thread: report, and still mark the call ended
            log.exception("twilio stand-in: ending call %s failed", self.sid)
            self.record("error", f"ending the call failed: {exc!r}")
        finally:
            self.record("ended", self._end_reason)
            self._ended.set()

    @property
    def duration(self) -> int | None:
        """Call seconds from answer to hang-up, as Twilio counts them (wall time scaled by speed)."""
        with self._cond:
            if self._end_reason is None or self._answered_at is None:
                return None if self._end_reason is None else 0
            return math.ceil((self._ended_at - self._answered_at) * self.speed)

    def resource(self) -> dict:
        """The REST API's JSON representation of this call."""
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        duration = self.duration
        return {
            "sid": self.sid, "account_sid": self.account_sid, "parent_call_sid": None, "status": self.status,
            "to": self.to, "to_formatted": self.to, "from": self.from_, "from_formatted": self.from_,
            "direction": self.direction, "api_version": API_VERSION, "answered_by": None, "annotation": None,
            "caller_name": None, "forwarded_from": None, "group_sid": None, "phone_number_sid": None,
            "trunk_sid": None, "queue_time": "0", "price": None, "price_unit": "USD",
            "duration": None if duration is None else str(duration),
            "date_created": _rfc2822(self.date_created), "date_updated": _rfc2822(self.end_time or self.start_time
                                                                                   or self.date_created),
            "start_time": _rfc2822(self.start_time), "end_time": _rfc2822(self.end_time),
            "uri": uri + ".json",
            "subresource_uris": {name: f"{uri}/{name.title().replace('_', '')}.json"
                                 for name in ("notifications", "recordings", "events", "streams", "payments")},
        }

    def shutdown(self) -> None:
        """Used by the stand-in's stop(): end the call and wait (bounded) for its threads."""
        self.end("stand-in stopped")
        self._ended.wait(5)
        self._caller.join(1)
        self._runner.join(1)
