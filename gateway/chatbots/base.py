"""The chatbot seam every protocol implements, and the pooled, deadline-bound HTTP they share."""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

import requests
import requests.adapters
import urllib3.exceptions

from .reply import MAX_ANSWER_BYTES, ChatbotError, Reply

# Called with the first complete sentence of an answer still being written; True when the caller is hearing it.
FirstSentence = Callable[[str], bool]


class Chatbot(Protocol):
    """What the gateway asks a chatbot, whatever it speaks: one message in, one validated Reply out."""

    def ask(self, message: str, session_id: str, input_type: str = "speech", *,
            on_first_sentence: FirstSentence | None = None, **extra: str) -> Reply:
        """Send one caller message (`input_type` "speech", "dtmf", or "start" for the greeting); raise ChatbotError.
        A protocol that writes its answer over time may hand `on_first_sentence` its first sentence early."""
        ...

    def interrupted(self, session_id: str, said: str, heard: str) -> None:
        """The caller cut `said` short after hearing `heard` of it (barge-in)."""
        ...

    def close(self) -> None:
        """Release pooled connections."""
        ...


@runtime_checkable
class CallSessions(Protocol):
    """A chatbot holding a connection per call (ConversationRelay): opened where the call's stream is held, closed
    when the stream goes or the call ends."""

    def open(self, call_sid: str, *, caller: str = "", called: str = "", **facts: str) -> None: ...

    def end_call(self, call_sid: str) -> None: ...


# What reading a streamed body raises when the connection times out or breaks (urllib3's own, not requests').
_BROKEN = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


def _broken(exc: Exception, timeout: float) -> ChatbotError:
    """The ChatbotError for an answer whose connection stalled or broke while it was being read."""
    if isinstance(exc, (urllib3.exceptions.TimeoutError, TimeoutError)):
        return ChatbotError(f"no complete answer within {timeout:g} s")
    return ChatbotError(f"answer broke off: {exc.__class__.__name__}")


class HttpJson:
    """A pooled requests session posting JSON, with every answer read against one deadline and a size cap."""

    def __init__(self, timeout: float, pool_size: int = 32, headers: dict[str, str] | None = None):
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers.update(headers or {})
        # One kept-alive connection per concurrent turn (requests keeps only 10: busy moments reconnected).
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def post(self, url: str, payload: Any, deadline: float) -> requests.Response:
        """Open a streamed POST (the caller closes it); ChatbotError when the chatbot cannot be reached in time."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise ChatbotError(f"no answer within {self.timeout:g} s")
        try:
            # Streamed, so a chatbot that drips its answer byte by byte is still cut off at the deadline.
            return self._session.post(url, json=payload, timeout=left, stream=True)
        except requests.Timeout as exc:
            raise ChatbotError(f"no answer within {self.timeout:g} s") from exc
        except requests.RequestException as exc:
            raise ChatbotError(f"cannot reach {url}: {exc.__class__.__name__}") from exc

    def body(self, response: requests.Response, deadline: float) -> bytes:
        """The answer's body, refused when it is over MAX_ANSWER_BYTES or still arriving at the deadline."""
        content = bytearray()
        try:
            # read1 returns whatever has arrived, so the deadline is checked while a slow chatbot drips bytes.
            while chunk := response.raw.read1(16 * 1024, decode_content=True):
                content += chunk
                if len(content) > MAX_ANSWER_BYTES:
                    raise ChatbotError(f"answer is over {MAX_ANSWER_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise ChatbotError(f"no complete answer within {self.timeout:g} s")
        except _BROKEN as exc:
            raise _broken(exc, self.timeout) from exc
        return bytes(content)

    def json(self, response: requests.Response, deadline: float) -> Any:
        """The answer's body decoded as JSON; ChatbotError for anything that is not."""
        content = self.body(response, deadline)
        try:
            return json.loads(content)
        except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, huge integers, absurd nesting
            raise ChatbotError(f"answered invalid JSON: {content[:100]!r}") from exc

    def lines(self, response: requests.Response, deadline: float) -> Iterator[str]:
        """The answer's lines as they arrive (Server-Sent Events), under the same deadline and size cap."""
        buffer, total = bytearray(), 0
        try:
            while chunk := response.raw.read1(16 * 1024, decode_content=True):
                total += len(chunk)
                if total > MAX_ANSWER_BYTES:
                    raise ChatbotError(f"answer is over {MAX_ANSWER_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise ChatbotError(f"no complete answer within {self.timeout:g} s")
                buffer += chunk
                *whole, rest = buffer.split(b"\n")
                buffer = bytearray(rest)
                for line in whole:
                    yield line.rstrip(b"\r").decode("utf-8", "replace")
        except _BROKEN as exc:
            raise _broken(exc, self.timeout) from exc
        if buffer:
            yield buffer.decode("utf-8", "replace")

    def close(self) -> None:
        """Release pooled connections."""
        self._session.close()
