"""CHATBOT_PROTOCOL=chatline: one POST of the contract's JSON per turn, the contract's JSON back (section 1)."""
from __future__ import annotations

import time

from .reply import ChatbotError, Reply, parse_reply
from .base import FirstSentence, HttpJson


class ChatlineChatbot:
    """Posts caller messages to CHATBOT_URL over a pooled HTTP session, with a timeout."""

    def __init__(self, url: str, timeout: float = 5.0, pool_size: int = 32):
        self.url = url
        self.timeout = timeout
        self._http = HttpJson(timeout, pool_size)

    def ask(self, message: str, session_id: str, input_type: str = "speech", *,
            on_first_sentence: FirstSentence | None = None, **extra: str) -> Reply:
        """Send one message and return the parsed reply, or raise ChatbotError (the answer comes whole)."""
        payload = {"message": message, "session_id": session_id, "input": input_type, "channel": "phone", **extra}
        deadline = time.monotonic() + self.timeout
        with self._http.post(self.url, payload, deadline) as response:
            if response.status_code != 200:
                raise ChatbotError(f"answered HTTP {response.status_code}")
            return parse_reply(self._http.json(response, deadline))

    def interrupted(self, session_id: str, said: str, heard: str) -> None:
        """The chatbot keeps its own dialogue state by session: nothing to correct here."""

    def close(self) -> None:
        """Release pooled connections."""
        self._http.close()
