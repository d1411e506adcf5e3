"""CHATBOT_PROTOCOL=rasa: Rasa's REST channel, {"sender", "message"} in, a list of bot messages out."""
from __future__ import annotations

import logging
import time
from typing import Any

from .reply import ChatbotError, Reply, parse_reply
from .base import FirstSentence, HttpJson

log = logging.getLogger(__name__)

SKIPPED = ("image", "attachment")  # nothing a phone can say


def rasa_body(messages: Any) -> dict:
    """Turn the REST channel's answer into the contract's body: every text in order, the buttons' titles as hints,
    and the `action` of a `custom` payload; images and attachments are skipped."""
    if not isinstance(messages, list):
        raise ChatbotError(f"answer is not a list of messages: {str(messages)[:100]!r}")
    texts: list[str] = []
    hints: list[str] = []
    action = None
    for message in messages:
        if not isinstance(message, dict):
            log.warning("rasa sent a message that is not an object, skipping it: %.100r", message)
            continue
        if isinstance(message.get("text"), str) and message["text"].strip():
            texts.append(message["text"].strip())
        buttons = message.get("buttons")
        for button in buttons if isinstance(buttons, list) else ():
            if isinstance(button, dict) and isinstance(button.get("title"), str):
                hints.append(button["title"])
        custom = message.get("custom")
        if isinstance(custom, dict) and "action" in custom:
            action = custom["action"]
        for kind in SKIPPED:
            if message.get(kind):
                log.debug("rasa sent an %s message; a phone cannot show it, skipped", kind)
    return {"text": " ".join(texts), "action": action, "hints": hints}


class RasaChatbot:
    """Posts caller messages to a Rasa REST channel webhook; the session is the CallSid (`sender`)."""

    def __init__(self, url: str, timeout: float = 5.0, greeting_message: str = "/greet", pool_size: int = 32):
        self.url = url
        self.timeout = timeout
        self.greeting_message = greeting_message
        self._http = HttpJson(timeout, pool_size)

    def ask(self, message: str, session_id: str, input_type: str = "speech", *,
            on_first_sentence: FirstSentence | None = None, **extra: str) -> Reply:
        """Send one message (the greeting message for "start") and return every text of the answer as one Reply."""
        payload = {"sender": session_id, "message": self.greeting_message if input_type == "start" else message}
        deadline = time.monotonic() + self.timeout
        with self._http.post(self.url, payload, deadline) as response:
            if response.status_code != 200:
                raise ChatbotError(f"answered HTTP {response.status_code}")
            return parse_reply(rasa_body(self._http.json(response, deadline)))

    def interrupted(self, session_id: str, said: str, heard: str) -> None:
        """Rasa keeps its own tracker by sender: nothing to correct here."""

    def close(self) -> None:
        """Release pooled connections."""
        self._http.close()
