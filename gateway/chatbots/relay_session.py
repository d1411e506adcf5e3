"""One call's ConversationRelay websocket to the bot, on the process's shared event loop (loop thread only).

It opens with `setup`, reopens once (a new `setup`, the same session) when the bot closes mid-call, turns the bot's
frames into RelayReplies (a sentence as soon as it is complete), and hands each to the prompt waiting for it or,
with none waiting, to `push`. After `end` nothing more is said and the websocket is closed at once.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from . import relay_protocol as rp
from .reply import ChatbotError

log = logging.getLogger(__name__)


@dataclass
class CallFacts:
    """What `setup` tells the bot about the call (the webhook's fields)."""
    call_sid: str
    caller: str = ""
    called: str = ""
    direction: str = "inbound"
    forwarded_from: str = ""
    caller_name: str = ""
    parent_call_sid: str = ""
    call_status: str = "IN-PROGRESS"
    extra: dict[str, Any] = field(default_factory=dict)


class RelaySession:
    """The websocket, the token assembler and the waiting prompt of one call."""

    def __init__(self, client, facts: CallFacts, session_id: str, language: str):
        self.client, self.facts, self.session_id = client, facts, session_id
        self.lang = language  # `lang` of each prompt: LANGUAGE until a `language` message changes it
        self.opened_at = time.monotonic()
        self._ws = None
        self._reader: asyncio.Task | None = None
        self._connecting: asyncio.Future | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._assembler = rp.SentenceAssembler()
        self._token_lang: str | None = None
        self._token_interruptible: bool | None = None
        self._quiet: asyncio.TimerHandle | None = None
        self._languages: tuple[str | None, str | None] = (None, None)  # a switch not yet delivered
        self._waiter: asyncio.Future | None = None
        self._pending_frames: list[str] = []  # the waiting prompt's frames, re-sent after a reopen
        self._reopened = False
        self.ended = self.closed = False

    @property
    def connected(self) -> bool:
        return self._ws is not None

    # Opening and closing.

    async def ensure_connected(self) -> None:
        """Open the websocket unless it is open or opening (an `open` at the call's start and its first prompt may
        race); ChatbotError when the bot refuses."""
        if self._ws is not None:
            return
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self.connect())
        await asyncio.shield(self._connecting)

    async def connect(self) -> None:
        """Open the websocket and send `setup`; ChatbotError (logged by the caller) when the bot refuses."""
        client = self.client
        try:
            ws = await websockets.connect(client.url, additional_headers=client.handshake_headers(),
                                          open_timeout=client.timeout, close_timeout=1.0, max_size=2 ** 20,
                                          compression=None)
        except InvalidStatus as exc:
            raise ChatbotError(f"refused the websocket handshake: HTTP {exc.response.status_code}") from exc
        except (OSError, InvalidHandshake, asyncio.TimeoutError) as exc:
            raise ChatbotError(f"cannot open the websocket: {exc!r:.120}") from exc
        if self.closed:  # the call ended while the socket was opening
            await ws.close(1000, "call ended")
            raise ChatbotError("the call ended")
        f = self.facts
        await ws.send(rp.setup_message(
            self.session_id, f.call_sid, client.account_sid, f.caller, f.called,
            custom_parameters=client.parameters, direction=f.direction, forwarded_from=f.forwarded_from,
            caller_name=f.caller_name, call_status=f.call_status, parent_call_sid=f.parent_call_sid))
        self._ws = ws
        self._reader = asyncio.ensure_future(self._read(ws))
        if client.max_session_seconds and self._deadline is None:  # a call whose end this process never heard of
            self._deadline = asyncio.get_running_loop().call_later(client.max_session_seconds, self._expire)

    def _expire(self) -> None:
        log.warning("call %s: the bot's websocket is still open past the longest call; closing it",
                    self.facts.call_sid)
        asyncio.ensure_future(self.close())

    async def close(self, fail_waiter: bool = True) -> None:
        """Close the websocket for good (the call is over, or the bot ended the session)."""
        self.closed = True
        self._cancel_quiet()
        if self._deadline is not None:
            self._deadline.cancel()
        ws, self._ws = self._ws, None
        if fail_waiter and self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ChatbotError("the call ended while the bot was answering"))
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(1000, "call ended"), 2.0)
            except (asyncio.TimeoutError, ConnectionClosed, OSError):
                log.debug("call %s: the bot's websocket did not close cleanly", self.facts.call_sid)

    # Prompts.

    async def ask(self, frames: list[str], timeout: float, answer_required: bool = True) -> rp.RelayReply:
        """Send the frames and wait for what the bot says first; ChatbotError past `timeout` (opening the socket
        included) when an answer is required, else an empty reply."""
        if self.ended:
            raise ChatbotError("the bot ended the session")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:  # a session that could not be reopened: one new try per prompt
            await asyncio.wait_for(self.ensure_connected(), timeout)
        except asyncio.TimeoutError:
            raise ChatbotError(f"cannot open the websocket within {timeout:g} s") from None
        if self._waiter is not None and not self._waiter.done():
            # A newer prompt: the bot's next words answer it (they are said either way).
            self._waiter.set_exception(ChatbotError("a newer prompt took its place"))
        waiter = self._waiter = loop.create_future()
        self._pending_frames = frames
        try:
            for frame in frames:
                await self._ws.send(frame)
        except (ConnectionClosed, AttributeError):
            pass  # the reader reopens the socket and re-sends the pending frames
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            if not answer_required:
                return rp.relay_reply([])
            raise ChatbotError(f"no answer within {timeout:g} s") from None
        finally:
            if self._waiter is waiter:
                self._waiter, self._pending_frames = None, []
                if not waiter.done():
                    waiter.cancel()
            elif waiter.done() and not waiter.cancelled():
                waiter.exception()  # retrieved: a superseded prompt's error is not "never retrieved"

    async def send(self, frame: str) -> None:
        """Send a frame that needs no answer (an interrupt); lost quietly when the socket is down."""
        if self._ws is not None and not self.ended:
            try:
                await self._ws.send(frame)
            except ConnectionClosed:
                log.info("call %s: could not tell the bot (its websocket is closing)", self.facts.call_sid)

    def interrupted(self) -> None:
        """The caller spoke over the bot: what it had not said yet is dropped."""
        self._assembler.clear()
        self._cancel_quiet()

    # The bot's frames.

    async def _read(self, ws) -> None:
        try:
            async for raw in ws:
                event = rp.parse_bot_message(raw)
                if self.ended:
                    continue  # nothing after `end` is said
                await self._handle(event)
        except ConnectionClosed:
            pass
        except Exception:  # the reader's boundary: the call goes on, its next prompt opens a new socket
            log.exception("call %s: reading the bot's websocket failed", self.facts.call_sid)
        if ws is self._ws and not self.closed and not self.ended:
            await self._lost(ws)

    async def _lost(self, ws) -> None:
        """The bot closed the socket mid-call: reopen once, re-sending a waiting prompt; then give up."""
        self._ws = None
        code = ws.close_code
        if self._reopened:
            log.error("call %s: the bot closed its websocket again (code %s); its next prompt tries anew",
                      self.facts.call_sid, code)
            self._fail("the bot closed its websocket")
            return
        self._reopened = True
        log.warning("call %s: the bot closed its websocket mid-call (code %s); reopening it with a new setup",
                    self.facts.call_sid, code)
        try:
            await self.ensure_connected()
            for frame in self._pending_frames:
                await self._ws.send(frame)
        except (ChatbotError, ConnectionClosed) as exc:
            log.error("call %s: reopening the bot's websocket failed: %s", self.facts.call_sid, exc)
            self._ws = None
            self._fail(str(exc))

    def _fail(self, reason: str) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ChatbotError(reason))

    async def _handle(self, event: rp.BotEvent) -> None:
        if isinstance(event, rp.Text):
            self._text(event)
        elif isinstance(event, (rp.Play, rp.SendDigits)):
            self._deliver([*self._flushed(), event])
        elif isinstance(event, rp.Language):
            self._switch(event)
        elif isinstance(event, rp.End):
            await self._end(event)
        else:
            log.warning("call %s: the bot sent an invalid frame, ignored: %s", self.facts.call_sid, event.reason)
            await self.send(rp.error_message(f"Invalid message received: {event.reason}"))

    def _text(self, event: rp.Text) -> None:
        """A token's `lang` and `interruptible: false` hold for the sentences it is part of, then lapse."""
        if event.lang:
            self._token_lang = event.lang
        if event.interruptible is False:
            self._token_interruptible = False
        for sentence in self._assembler.add(event.token):
            self._deliver([self._say(sentence)])
        self._cancel_quiet()
        if event.last:
            self._deliver(self._flushed())
        elif self._assembler.pending.strip():
            self._quiet = asyncio.get_running_loop().call_later(self.client.quiet_seconds, self._quiet_flush)
        if not self._assembler.pending.strip():
            self._token_lang = self._token_interruptible = None

    def _say(self, sentence: str) -> rp.Say:
        return rp.Say(sentence[:rp.MAX_TEXT_CHARS], self._token_lang, self._token_interruptible)

    def _flushed(self) -> list[rp.Part]:
        self._cancel_quiet()
        rest = self._assembler.flush()
        return [self._say(rest)] if rest else []

    def _quiet_flush(self) -> None:
        self._quiet = None
        self._deliver(self._flushed())
        self._token_lang = self._token_interruptible = None

    def _cancel_quiet(self) -> None:
        if self._quiet is not None:
            self._quiet.cancel()
            self._quiet = None

    def _switch(self, event: rp.Language) -> None:
        tts, transcription = self._languages
        self._languages = (event.tts or tts, event.transcription or transcription)
        if event.transcription:
            self.lang = event.transcription
        parts = self._flushed()
        if parts or self._waiter is None:  # a waiting prompt takes the switch with its answer
            self._deliver(parts)

    async def _end(self, event: rp.End) -> None:
        """Say what is pending, close the socket, then ask the handoff URL what the call does next."""
        self.ended = True
        parts = self._flushed()
        await self.close(fail_waiter=False)
        twiml = await self.client.handoff(self, event.handoff_data)
        self._deliver(parts, ended=True, handoff_twiml=twiml, force=True)

    def _deliver(self, parts: list, *, ended: bool = False, handoff_twiml: str | None = None,
                 force: bool = False) -> None:
        """Hand a reply to the waiting prompt, or push it."""
        tts, transcription = self._languages
        if not parts and not ended and tts is None and transcription is None:
            return
        self._languages = (None, None)
        reply = rp.relay_reply(parts, tts_language=tts, transcription_language=transcription, ended=ended,
                               handoff_twiml=handoff_twiml)
        waiter = self._waiter
        if waiter is not None and not waiter.done() and (parts or ended):
            waiter.set_result(reply)
        elif not self.closed or force:
            self.client.push(self.facts.call_sid, reply)


PushCallback = Callable[[str, rp.RelayReply], None]
