"""CHATBOT_PROTOCOL=conversationrelay: the gateway plays Twilio ConversationRelay's part for a bot written for it.

One websocket per call to CHATBOT_URL, all of them on the process's shared asyncio loop (the speech loop the
websocket recognizers use: no thread per call). `ask` sends a prompt (or a key's `dtmf`) and returns the first thing
the bot says; whatever it says after that, or with no prompt pending (a greeting after `setup`, an idle reprompt),
goes to `on_unprompted(call_sid, RelayReply)` in order, from a small pool of threads (never the loop's).
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections import deque
from concurrent.futures import CancelledError, ThreadPoolExecutor
from typing import Any, Mapping

from ..recognizers import speech_loop
from . import relay_protocol as rp
from .base import FirstSentence
from .relay_handoff import handoff_form, post_handoff, twilio_signature
from .relay_session import CallFacts, PushCallback, RelaySession
from .reply import ChatbotError

log = logging.getLogger(__name__)

CLOSE_WAIT_SECONDS = 5.0  # how long a thread waits for the loop to close a call's socket


def session_id_for(call_sid: str) -> str:
    """The call's ConversationRelay session id, the same in every process (a call taken over after a crash, or a
    reopened socket, keeps its session)."""
    return "VX" + hashlib.sha256(b"conversationrelay:" + call_sid.encode()).hexdigest()[:32]


class ConversationRelayChatbot:
    """The chatbot seam over ConversationRelay's websocket protocol; see the module's docstring."""

    def __init__(self, url: str, *, account_sid: str, auth_token: str, api_key: str = "",
                 parameters: Mapping[str, Any] | None = None, handoff_url: str | None = None, timeout: float = 5.0,
                 language: str = "en-US", on_unprompted: PushCallback | None = None, quiet_seconds: float = 1.0,
                 chars_per_second: float = 13.0, push_threads: int = 8, max_session_seconds: float = 0):
        self.url, self.account_sid, self._auth_token = url, account_sid, auth_token
        self._api_key = api_key
        self.parameters = dict(parameters or {})
        self.handoff_url, self.timeout, self.language = handoff_url, timeout, language
        self.on_unprompted = on_unprompted  # given at construction: the dialogue's way to the call
        self.quiet_seconds, self.chars_per_second = quiet_seconds, chars_per_second
        self.max_session_seconds = max_session_seconds  # 0: a socket stays open until end_call or the bot's end
        self._sessions: dict[str, RelaySession] = {}  # the loop thread's alone
        self._pushes: dict[str, deque] = {}
        self._pushing: set[str] = set()
        self._push_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(push_threads, thread_name_prefix="relay-push")
        speech_loop.forget_on_new_loop(self._sessions.clear)  # a forked child's sockets belong to the dead loop

    def handshake_headers(self) -> dict[str, str]:
        """X-Twilio-Signature over CHATBOT_URL with no parameters, as Twilio signs it; the API key as a bearer."""
        headers = {"X-Twilio-Signature": twilio_signature(self._auth_token, self.url)}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    # The seam (any thread).

    def open(self, call_sid: str, *, caller: str = "", called: str = "", **facts: str) -> None:
        """Open the call's websocket and send `setup` now (at the call's start); returns at once. `facts` may name
        direction, forwarded_from, caller_name, parent_call_sid, call_status."""
        call = CallFacts(call_sid, caller, called, **{k: v for k, v in facts.items() if v})
        self._submit(self._open(call))

    def ask(self, message: str, session_id: str, input_type: str = "speech", *,
            on_first_sentence: FirstSentence | None = None, caller: str = "", called: str = "",
            **extra: str) -> rp.RelayReply:
        """Send a final utterance as `prompt` (a key press: one `dtmf` per key) and return the first thing the bot
        says (a sentence, a play or tones, or its `end`); the rest is pushed. "start" opens the session and waits
        for a greeting: an empty reply when the bot sends none. ChatbotError when a prompt gets no answer in time;
        keys need none (an empty reply). `on_first_sentence` is not used: sentences after the first are pushed."""
        call = CallFacts(session_id, caller, called)
        if input_type == "dtmf":
            digits = [d for d in message if d in "0123456789*#"]
            frames, required = [rp.dtmf_message(d) for d in digits], False
        elif input_type == "start":
            frames, required = [], False
        else:
            frames, required = None, True  # a prompt: its `lang` is the session's, read on the loop
        future = self._submit(self._ask(call, message, frames, required))
        try:  # a ChatbotError goes up as it is: the turn logs it, once, with the apology the caller hears
            return future.result(self.timeout + CLOSE_WAIT_SECONDS)
        except (TimeoutError, CancelledError) as exc:  # the loop is stuck or was closed under the prompt
            future.cancel()
            raise ChatbotError(f"no answer within {self.timeout:g} s") from exc

    def interrupted(self, session_id: str, said: str, heard: str, duration_ms: int | None = None) -> None:
        """Tell the bot the caller cut `said` short after hearing `heard` (`interrupt`); its unsaid text is dropped.
        Without a measured `duration_ms`, it is reckoned from the voice's speed."""
        if duration_ms is None:
            duration_ms = round(len(heard) / self.chars_per_second * 1000)
        self._submit(self._interrupt(session_id, rp.interrupt_message(heard, duration_ms)))

    def end_call(self, call_sid: str) -> None:
        """The call is over: close its websocket (returns at once)."""
        self._submit(self._close(call_sid))

    def close(self) -> None:
        """Close every call's websocket and the push threads."""
        future = self._submit(self._close_all())
        try:
            future.result(CLOSE_WAIT_SECONDS)
        except Exception as exc:  # shutting down: log and go on
            log.warning("closing the ConversationRelay websockets: %r", exc)
        self._pool.shutdown(wait=False)

    # The loop thread's.

    def _submit(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, speech_loop.event_loop())

    def _session(self, call: CallFacts) -> RelaySession:
        session = self._sessions.get(call.call_sid)
        if session is None or session.closed and not session.ended:
            session = self._sessions[call.call_sid] = RelaySession(self, call, session_id_for(call.call_sid),
                                                                   self.language)
        return session

    async def _open(self, call: CallFacts) -> None:
        session = self._session(call)
        if not session.ended:
            try:
                await session.ensure_connected()
            except ChatbotError as exc:
                log.error("call %s: the ConversationRelay bot at %s %s; its first prompt tries again",
                          call.call_sid, self.url, exc)

    async def _ask(self, call: CallFacts, words: str, frames: list[str] | None, required: bool) -> rp.RelayReply:
        session = self._session(call)
        if frames is None:
            frames = [rp.prompt_message(words, session.lang)]
        return await session.ask(frames, self.timeout, required)

    async def _interrupt(self, call_sid: str, frame: str) -> None:
        session = self._sessions.get(call_sid)
        if session is not None:
            session.interrupted()
            await session.send(frame)

    async def _close(self, call_sid: str) -> None:
        session = self._sessions.pop(call_sid, None)
        if session is not None:
            await session.close()

    async def _close_all(self) -> None:
        for call_sid in list(self._sessions):
            await self._close(call_sid)

    async def handoff(self, session: RelaySession, handoff_data: str | None) -> str | None:
        """The bot sent `end`: POST the handoff URL (off the loop); the TwiML it answers, or None to hang up."""
        if not self.handoff_url:
            return None
        f = session.facts
        form = handoff_form(account_sid=self.account_sid, call_sid=f.call_sid, caller=f.caller, called=f.called,
                            session_id=session.session_id, handoff_data=handoff_data, direction=f.direction,
                            duration_seconds=asyncio.get_running_loop().time() - session.opened_at)
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, post_handoff, self.handoff_url, self._auth_token, form, self.timeout)

    # Pushes: in order per call, from the pool (a slow call update never holds up the loop or another call).

    def push(self, call_sid: str, reply: rp.RelayReply) -> None:
        with self._push_lock:
            self._pushes.setdefault(call_sid, deque()).append(reply)
            if call_sid in self._pushing:
                return
            self._pushing.add(call_sid)
        try:
            self._pool.submit(self._drain, call_sid)
        except RuntimeError:  # closing down: the pool takes no more work
            log.info("call %s: the bot spoke while the gateway was closing; not said", call_sid)

    def _drain(self, call_sid: str) -> None:
        while True:
            with self._push_lock:
                queue = self._pushes.get(call_sid)
                if not queue:
                    self._pushes.pop(call_sid, None)
                    self._pushing.discard(call_sid)
                    return
                reply = queue.popleft()
            callback = self.on_unprompted
            if callback is None:
                log.warning("call %s: the bot said %.60r with no prompt pending, and nothing takes it", call_sid,
                            reply.text)
                continue
            try:
                callback(call_sid, reply)
            except Exception:  # the callback's boundary: the next reply still goes out
                log.exception("call %s: passing on what the bot said failed", call_sid)
