"""CHATBOT_PROTOCOL=rasa: Rasa's REST channel, {"sender", "message"} in, a list of bot messages out."""
from __future__ import annotations

import logging
import time
from typing import Any

from .reply import ChatbotError, Reply, parse_reply
from .base import FirstSentence, HttpJson

log = logging.getLogger(__name__)



def rasa_body(messages: Any) -> dict:
    """Turn the REST channel's answer into the contract's body: every text in order, the buttons as `options`, an
    `image` as a markdown image in the text (a link the caller is sent, never read out), and a `custom` payload's
    `action` and `audio`; attachments are skipped."""
    if not isinstance(messages, list):
        raise ChatbotError(f"answer is not a list of messages: {str(messages)[:100]!r}")
    texts: list[str] = []
    options: list[dict] = []
    action = audio = None
    for message in messages:
        if not isinstance(message, dict):
            log.warning("rasa sent a message that is not an object, skipping it: %.100r", message)
            continue
        if isinstance(message.get("text"), str) and message["text"].strip():
            texts.append(message["text"].strip())
        buttons = message.get("buttons")
        options.extend(button for button in (buttons if isinstance(buttons, list) else ()) if isinstance(button, dict))
        if isinstance(message.get("image"), str) and message["image"].strip():
            texts.append(f"![image]({message['image'].strip()})")
        custom = message.get("custom")
        if isinstance(custom, dict) and "action" in custom:
            action = custom["action"]
        if isinstance(custom, dict) and custom.get("audio") is not None and audio is None:
            audio = custom["audio"]
        if message.get("attachment"):
            log.debug("rasa sent an attachment; a phone cannot show it, skipped")
    return {"text": " ".join(texts), "action": action, "options": options, "audio": audio}


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
