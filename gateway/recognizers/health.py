"""Whether a streaming recognizer's backend works: down after failing for a while, up again once a stream works."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from .. import metrics

log = logging.getLogger(__name__)


class StreamHealth:
    """Turns a recognizer's stream failures and successes into `on_change(ok)` reports, on transitions only.

    Down: streams have kept failing, with no stream working in between, for at least `outage_seconds`.
    Up (only after a down report): a stream works again, i.e. it answered or stayed open long enough.
    """

    def __init__(self, outage_seconds: float, on_change: Callable[[bool], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.outage_seconds = outage_seconds
        self.on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._failing_since: float | None = None
        self._down = False

    @property
    def down(self) -> bool:
        """True between a down report and the next up report."""
        with self._lock:
            return self._down

    def failed(self) -> None:
        """A stream failed (not one Google ends by design); report down once failures have lasted long enough."""
        metrics.recognizer_reconnect()
        with self._lock:
            now = self._clock()
            if self._failing_since is None:
                self._failing_since = now
            report = not self._down and now - self._failing_since >= self.outage_seconds
            if report:
                self._down = True
        if report:
            log.warning("speech recognition has failed for %.1f s; reporting it down", now - self._failing_since)
            metrics.recognizer_outage()
            self._report(False)

    def refused(self) -> None:
        """The provider refused the stream itself (a wrong key, bad settings): no retry can hide that, so report
        down at once and the call listens through <Gather> while the gateway keeps retrying slowly."""
        metrics.recognizer_reconnect()
        with self._lock:
            if self._failing_since is None:
                self._failing_since = self._clock()
            report, self._down = not self._down, True
        if report:
            metrics.recognizer_outage()
            self._report(False)

    def retry_delay(self, failures: int) -> float:
        """How long to wait before the next stream after `failures` in a row: doubling from 0.25 s up to 5 s, but
        never past the outage threshold, so an outage is reported on time."""
        delay = min(0.25 * 2 ** (failures - 1), 5.0)
        until_outage = self.seconds_until_outage()
        return delay if until_outage is None else min(delay, until_outage + 0.01)

    def working(self) -> None:
        """A stream works: failures are forgotten, and a recognizer that was reported down is reported up."""
        with self._lock:
            if self._failing_since is None and not self._down:
                return  # the common case, on every audio batch: nothing to do
            self._failing_since = None
            report, self._down = self._down, False
        if report:
            log.info("speech recognition works again; reporting it up")
            self._report(True)

    def seconds_until_outage(self) -> float | None:
        """How much longer failures may go on before they are an outage (None: not failing, or already down)."""
        with self._lock:
            if self._failing_since is None or self._down:
                return None
            return max(0.0, self._failing_since + self.outage_seconds - self._clock())

    def _report(self, ok: bool) -> None:
        """Call `on_change`; its errors are logged, never raised into the recognizer's threads."""
        if self.on_change is None:
            return
        try:
            self.on_change(ok)
        except Exception:
            log.exception("speech health callback failed")
