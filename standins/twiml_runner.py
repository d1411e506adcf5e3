"""Executes TwiML for one simulated call as Twilio does: verb by verb, dropped at once when a REST update arrives."""
from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable
from urllib.parse import urljoin, urlsplit

from standins.outbound_audio import DEFAULT_SECONDS_PER_CHAR

if TYPE_CHECKING:
    # standins.twilio_call.SimulatedCall, which owns the runner: not imported back, so the two form no import cycle.
    from typing import Any as SimulatedCall

log = logging.getLogger(__name__)

APP_ERROR_TEXT = "We are sorry, an application error has occurred. Goodbye."
SAY_SECONDS_PER_CHAR = DEFAULT_SECONDS_PER_CHAR  # the default voice's pace (a call's say_chars_per_second sets it)
PLAYBACK_MAX_SECONDS = 120.0  # the outbound track's audio for one <Say>, at most
SAY_MIN_SECONDS = 0.3
SAY_MAX_CHARS = 4096  # Twilio's basic-voice limit (warning 13521)
PLAY_SECONDS = 1.0  # the stand-in does not fetch <Play> audio; it "plays" for this long
DIAL_RING_SECONDS = 1.0


class _Interrupted(Exception):
    """A REST update replaced the TwiML being executed."""


class _CallOver(Exception):
    """The call has ended; stop executing."""


class _BargeIn(Exception):
    """The caller started answering a <Gather>: its nested verbs stop at once, as Twilio's do."""


@dataclass(frozen=True)
class Document:
    """A parsed <Response> and the URL it came from (None for TwiML passed inline through the REST API)."""

    root: ET.Element
    url: str | None


def _tag(element: ET.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def _text(element: ET.Element) -> str:
    return "".join(element.itertext()).strip()


def _spoken(say: ET.Element) -> str:
    """What a <Say> says: its text with its SSML tags' words (<say-as>, <s>, ...) and a pause (", ") for <break>."""
    if len(say) == 0:
        return _text(say)
    words = [say.text or ""]
    for child in say:
        words.append(", " if _tag(child) == "break" else _text(child))
        words.append(child.tail or "")
    return " ".join("".join(words).split()).replace(" ,", ",")


def parse_twiml(body: bytes | str, url: str | None) -> Document | None:
    """Parse a TwiML document; None when it is not XML with a <Response> root (Twilio error 12100)."""
    try:
        root = ET.fromstring(body.strip() if isinstance(body, bytes) else body.strip().encode("utf-8"))
    except ET.ParseError:
        return None
    return Document(root, url) if _tag(root) == "Response" else None


class TwimlRunner:
    """Runs one call's TwiML in the call's runner thread."""

    def __init__(self, call: SimulatedCall) -> None:
        self.call = call
        self.speed = call.speed
        self._verbs: dict[str, Callable[[ET.Element, Document], Document | None]] = {
            "Say": self._say, "Pause": self._pause, "Play": self._play, "Redirect": self._redirect,
            "Hangup": self._hangup, "Reject": self._hangup, "Dial": self._dial, "Gather": self._gather,
            "Start": self._start, "Stop": self._stop,
        }
        self._barge_in: Callable[[], bool] | None = None  # set while a <Gather>'s nested verbs play

    def run(self) -> None:
        try:
            doc = self._step(self._first_document)
            while doc is not None:
                doc = self._step(lambda: self._execute(doc))
            # Real Twilio hangs up as soon as a document runs out of verbs.
            self.call.end("end of TwiML")
        except _CallOver:
            pass
        except Exception as exc:  # the boundary of the runner thread: report, and end the call cleanly
            log.exception("twilio stand-in: running TwiML for %s failed", self.call.sid)
            self.call.record("error", f"TwiML runner failed: {exc!r}")
            self.call.end("stand-in error")

    def _step(self, step: Callable[[], Document | None]) -> Document | None:
        """Run one step; if a REST update interrupts it (or the update's own fetch), switch to the update."""
        while True:
            try:
                return step()
            except _Interrupted:
                step = self._apply_update

    def _first_document(self) -> Document | None:
        if self.call.twiml is not None:
            self.call.answered()
            return self._inline(self.call.twiml)
        if self.call.direction != "inbound":
            self.call.answered()  # an outbound call's Url is fetched once the callee has picked up
        return self._fetch(self.call.url, self.call.method)

    def _apply_update(self) -> Document | None:
        update = self.call.take_update()
        if update is None:  # cannot happen (only this thread takes updates); an empty document ends the call
            return None
        if update["twiml"] is not None:
            return self._inline(update["twiml"])
        return self._fetch(update["url"], update["method"])

    def _inline(self, twiml: str) -> Document | None:
        doc = parse_twiml(twiml, None)
        if doc is None:
            self._application_error("(inline Twiml)", "invalid TwiML")
        return doc

    def _execute(self, doc: Document) -> Document | None:
        """Run the verbs in order; returns the next document (redirect, action) or None when they ran out."""
        for verb in doc.root:
            self._wait(0)
            handler = self._verbs.get(_tag(verb))
            if handler is None:
                self.call.record("unknown-verb", _tag(verb))
                continue
            try:
                following = handler(verb, doc)
            except ValueError as exc:  # e.g. <Pause length="soon">: Twilio rejects the document (12200)
                self._application_error(doc.url or "(inline Twiml)", f"12200 invalid <{_tag(verb)}>: {exc}")
            if following is not None:
                return following
        return None

    def _wait(self, seconds: float, until: Callable[[], bool] | None = None) -> str:
        barge_in = self._barge_in if until is None else None
        outcome = self.call.sleep(seconds, until or barge_in)
        if outcome == "over":
            raise _CallOver
        if outcome == "update":
            raise _Interrupted
        if outcome == "until" and barge_in is not None:
            raise _BargeIn
        return outcome

    def _resolve(self, doc: Document, reference: str | None) -> str:
        """Resolve a URL from TwiML against its document, as Twilio does."""
        reference = (reference or "").strip()
        if urlsplit(reference).scheme in ("http", "https"):
            return reference
        if doc.url is None:
            # Error 15004: TwiML passed to the REST API has no document URL to resolve against.
            self._application_error(reference or "(no URL)", "15004 relative URL in inline TwiML")
        return urljoin(doc.url, reference)

    def _fetch(self, url: str, method: str = "POST", extra: dict[str, str] | None = None) -> Document:
        params = {**self.call.webhook_params(), **(extra or {})}
        self.call.record("webhook", url)
        result = self.call.webhooks.request(url, params, method)
        self._wait(0)  # an update that arrived meanwhile wins: Twilio drops this document
        if not result.ok:
            self._application_error(url, result.status if result.status is not None else result.error)
        doc = parse_twiml(result.body, url)
        if doc is None:
            self._application_error(url, f"{result.status} but not TwiML ({result.content_type or 'no type'})")
        self.call.answered()
        return doc

    def _application_error(self, url: str, status: object) -> None:
        """What Twilio does when the app fails it: apologise, hang up. Never returns."""
        log.warning("twilio stand-in: call %s: webhook %s failed: %s", self.call.sid, url, status)
        self.call.record("webhook-error", (url, status))
        self.call.answered()
        self._play_say(APP_ERROR_TEXT)
        self.call.end("application error")
        raise _CallOver

    # ---- verbs ----------------------------------------------------------------------------------------
    def _play_say(self, text: str, loops: int = 1) -> None:
        self.call.record("say", text)
        if len(text) > SAY_MAX_CHARS:
            self.call.record("warning", f"13521 <Say> longer than {SAY_MAX_CHARS} characters")
        self.call.say_playing(True)
        finished = False
        seconds = loops * max(SAY_MIN_SECONDS, self.call.outbound.say_seconds(text))
        # The outbound track carries it (a long loop as a steady voice: repeating the text would only cost memory).
        self.call.outbound.playing(text if loops == 1 else "", min(seconds, PLAYBACK_MAX_SECONDS))
        try:
            self._wait(seconds / self.speed)
            finished = True
        except (_Interrupted, _BargeIn):
            self.call.record("say-interrupted", text)
            raise
        finally:
            self.call.outbound.silent()
            self.call.say_playing(False, finished)

    def _say(self, verb: ET.Element, doc: Document) -> None:
        loops = int(verb.get("loop") or 1)
        self._play_say(_spoken(verb), loops if loops > 0 else 1000)  # loop="0" repeats until interrupted

    def _pause(self, verb: ET.Element, doc: Document) -> None:
        length = float(verb.get("length") or 1)
        self.call.record("pause", length)
        self._wait(length / self.speed)

    def _play(self, verb: ET.Element, doc: Document) -> None:
        self.call.record("play", _text(verb) or verb.get("digits"))
        self.call.outbound.playing("", PLAY_SECONDS)
        try:
            self._wait(PLAY_SECONDS / self.speed)
        finally:
            self.call.outbound.silent()

    def _redirect(self, verb: ET.Element, doc: Document) -> Document:
        url = self._resolve(doc, _text(verb))
        self.call.record("redirect", url)
        return self._fetch(url, verb.get("method") or "POST")

    def _hangup(self, verb: ET.Element, doc: Document) -> None:
        self.call.end(f"<{_tag(verb)}/>")
        raise _CallOver

    def _dial(self, verb: ET.Element, doc: Document) -> Document:
        number = (verb.text or "").strip() or next((_text(child) for child in verb), "")
        self.call.record("dial", number)
        if not verb.get("action"):
            self.call.end(f"transferred to {number}")
            raise _CallOver
        action = self._resolve(doc, verb.get("action"))
        self._wait(DIAL_RING_SECONDS / self.speed)  # it rings; the stand-in's far end never answers
        return self._fetch(action, verb.get("method") or "POST", {"DialCallStatus": "no-answer",
                                                                   "DialCallDuration": "0"})

    def _start(self, verb: ET.Element, doc: Document) -> None:
        for child in verb:
            if _tag(child) != "Stream":
                self.call.record("unknown-verb", f"Start/{_tag(child)}")
                continue
            url = (child.get("url") or "").strip()
            if urlsplit(url).scheme not in ("wss", "ws"):
                self.call.record("stream-refused", f"invalid stream url {url!r} (Twilio needs an absolute wss://)")
                continue
            parameters = {p.get("name", ""): p.get("value", "") for p in child if _tag(p) == "Parameter"}
            self.call.start_stream(url, child.get("name"), parameters, child.get("track") or "inbound_track")

    def _stop(self, verb: ET.Element, doc: Document) -> None:
        for child in verb:
            if _tag(child) == "Stream":
                self.call.stop_streams(child.get("name"))
            else:
                self.call.record("unknown-verb", f"Stop/{_tag(child)}")

    def _gather(self, verb: ET.Element, doc: Document) -> Document | None:
        inputs = frozenset((verb.get("input") or "dtmf").split())  # Twilio's default input is dtmf only
        timeout = float(verb.get("timeout") or 5)
        action = self._resolve(doc, verb.get("action")) if verb.get("action") or doc.url is None else doc.url
        self.call.record("gather", dict(verb.attrib))
        slot = self.call.open_gather(inputs, verb.get("finishOnKey", "#"))
        try:
            # Input the Gather takes (a key, or speech for a speech Gather) stops its nested verbs at once;
            # with bargeIn="false" speech waits for them to finish (keys still cut in).
            if (verb.get("bargeIn") or "true").lower() == "false":
                self._barge_in = lambda: slot.result is not None and "Digits" in slot.result
            else:
                self._barge_in = lambda: slot.result is not None or slot.pending
            try:
                for child in verb:
                    nested = _tag(child)
                    if nested in ("Say", "Pause", "Play"):
                        self._verbs[nested](child, doc)
                    else:
                        self.call.record("unknown-verb", f"Gather/{nested}")
            except _BargeIn:
                self.call.record("barge-in", _tag(child))
            finally:
                self._barge_in = None
            result = self._await_input(slot, timeout / self.speed)
        finally:
            self.call.close_gather()
        self.call.record("gather-result", result or "timeout")
        if result is None and (verb.get("actionOnEmptyResult") or "false").lower() != "true":
            return None  # no input: Twilio goes on with the next verb
        return self._fetch(action, verb.get("method") or "POST", result or {})

    def _await_input(self, slot, timeout: float) -> dict[str, str] | None:
        """Wait for the caller's input; the timeout counts only while the caller is not mid-utterance."""
        deadline = time.monotonic() + timeout
        while True:
            self._wait(max(0.0, deadline - time.monotonic()), lambda: slot.result is not None or slot.pending)
            if slot.result is not None:
                return slot.result
            if not slot.pending:
                return None
            self._wait(3600.0, lambda: slot.result is not None or not slot.pending)
            if slot.result is not None:
                return slot.result
            deadline = time.monotonic() + timeout  # speech the Gather could not use: listen again
