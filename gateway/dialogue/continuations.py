"""Answers said a sentence at a time: the rest of each, waiting in this process for the call's /continue."""
from __future__ import annotations

import secrets
import threading

from ..chatbots.reply import Reply


class Continuation:
    """The rest of one answer whose first sentence the caller is hearing; set once the model has finished."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(6)  # names this answer in the /continue URL, so a stale one is told apart
        self._rest: Reply | None = None
        self._done = threading.Event()
        self.settled = threading.Event()  # /continue took it here, or a barge-in means nobody will

    def finish(self, rest: Reply) -> None:
        """The rest of the answer is written (its text after the first sentence, its action and hints)."""
        self._rest = rest
        self._done.set()

    def wait(self, timeout: float) -> Reply | None:
        """The rest, waiting up to `timeout` seconds while it is still being written; None if it did not come."""
        return self._rest if self._done.wait(timeout) else None


class Continuations:
    """Each call's answer being said a sentence at a time in this process (at most one per call)."""

    def __init__(self) -> None:
        self._by_call: dict[str, Continuation] = {}
        self._lock = threading.Lock()

    def open(self, call_sid: str) -> Continuation:
        """A new answer for the call; one left from an earlier turn (a barge-in cut it short) is dropped."""
        with self._lock:
            continuation = self._by_call[call_sid] = Continuation()
            return continuation

    def take(self, call_sid: str, token: str) -> Continuation | None:
        """The call's answer named by `token` (once), or None when it is not here."""
        with self._lock:
            continuation = self._by_call.get(call_sid)
            if continuation is None or continuation.token != token:
                return None
            continuation.settled.set()
            return self._by_call.pop(call_sid)

    def cut_short(self, call_sid: str) -> None:
        """The caller spoke over the first sentence: its <Redirect> is gone, and the rest will not be said."""
        with self._lock:
            continuation = self._by_call.pop(call_sid, None)
        if continuation is not None:
            continuation.settled.set()

    def discard(self, call_sid: str, continuation: Continuation) -> None:
        """Forget the call's answer if it is still this one."""
        with self._lock:
            if self._by_call.get(call_sid) is continuation:
                del self._by_call[call_sid]

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_call)
