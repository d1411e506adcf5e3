"""CHATBOT_PROTOCOL=openai: an OpenAI-compatible chat-completions API, with the call's history kept in the call store.

Spoken with requests rather than the `openai` SDK: one pooled session like the other protocols, a single deadline per
turn across a 429's wait and a streamed answer (the SDK's timeouts and retries are per request), and no pydantic
import in every gateway process for a few dozen lines of JSON and Server-Sent Events.
"""
from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import requests

from ..calls.store import CallStore
from .reply import MAX_TEXT_CHARS, ChatbotError, Reply, parse_reply, xml_safe
from .base import FirstSentence, HttpJson

log = logging.getLogger(__name__)

TOOLS = [
    {"type": "function", "function": {
        "name": "end_call", "description": "Hang up the phone call, after your last words to the caller.",
        "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {
        "name": "transfer_call", "description": "Transfer the caller to a person at this phone number.",
        "parameters": {"type": "object", "properties": {"to": {"type": "string", "description": "E.164, +1555..."}},
                       "required": ["to"]}}},
    # Choices are a tool, not a convention in the text: the text stays what the caller hears (no JSON to strip out of
    # a streamed first sentence), and a model that ignores the tool still works. The caller hears the titles as a
    # menu and may press 1 to 9 or say one; the model then reads "(the caller chose: <title>)".
    {"type": "function", "function": {
        "name": "offer_options", "description": "Offer the caller a few short choices after your words; they hear "
        "them as a menu and answer by saying one or pressing its number (1 to 9).",
        "parameters": {"type": "object", "properties": {"options": {
            "type": "array", "items": {"type": "string"}, "maxItems": 9,
            "description": "the choices' titles, a few words each, in the order they are offered"}},
            "required": ["options"]}}},
]
# The end of a first sentence worth saying on its own: ., ! or ? (closing quotes allowed), then a space.
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d)\]]*\s")
MIN_SENTENCE_CHARS = 12  # "Sure." alone, then a wait for the rest, sounds odder than waiting for the next sentence
MAX_RETRY_AFTER = 60.0


def first_sentence(text: str) -> str | None:
    """The first complete sentence of `text` (followed by more text), or None while there is none yet (or when it is
    too long for a call update: the answer then goes out whole, shortened like any other)."""
    for end in _SENTENCE_END.finditer(text):
        sentence = text[:end.end()].strip()
        if len(sentence) >= MIN_SENTENCE_CHARS:
            return sentence if len(sentence) <= MAX_TEXT_CHARS else None
    return None


def tool_action(name: str, arguments: str) -> Any:
    """The contract's action for one of our tools; None (logged) for anything else."""
    try:
        args = json.loads(arguments or "{}")
    except ValueError:
        log.warning("model called %s with arguments that are not JSON, ignoring it: %.100r", name, arguments)
        return None
    if name == "end_call":
        return "hangup"
    if name == "transfer_call" and isinstance(args, dict):
        return {"type": "transfer", "to": args.get("to")}
    if name == "offer_options":
        return None  # not an action: reply_body reads its titles
    log.warning("model called an unknown tool %.50r, ignoring it", name)
    return None


def reply_body(content: Any, tool_calls: Any) -> dict:
    """The contract's body for an assistant message: its text, and the action its first known tool call asks for."""
    action, options = None, []
    for call in tool_calls if isinstance(tool_calls, (list, tuple)) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and function.get("name") == "offer_options" and not options:
            options = offered_options(str(function.get("arguments") or ""))
        elif isinstance(function, dict) and action is None:
            action = tool_action(str(function.get("name") or ""), str(function.get("arguments") or ""))
    return {"text": content if isinstance(content, str) else "", "action": action, "options": options}


def offered_options(arguments: str) -> list[dict]:
    """The contract's `options` for an offer_options call: each title is its own payload (the model reads it back)."""
    try:
        titles = json.loads(arguments or "{}").get("options")
    except (ValueError, AttributeError):
        titles = None
    if not isinstance(titles, list):
        log.warning("model called offer_options without a list of options, ignoring it: %.100r", arguments)
        return []
    return [{"title": title, "payload": title} for title in titles if isinstance(title, str)]


def completion_body(answer: Any) -> dict:
    """A `chat.completion` object → the contract's body; ChatbotError when it has no first choice's message."""
    try:
        message = answer["choices"][0]["message"]
        return reply_body(message.get("content"), message.get("tool_calls") or [])
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ChatbotError(f"answer is not a chat completion: {str(answer)[:100]!r}") from exc


class StreamedAnswer:
    """A `chat.completion.chunk` stream put back together: text as it comes, tool calls from their fragments."""

    def __init__(self) -> None:
        self.content = ""
        self.calls: dict[int, dict] = {}  # index → {"function": {"name", "arguments"}}
        self.done = False

    def take(self, line: str) -> bool:
        """Read one Server-Sent Events line; True when it added text. ChatbotError for a chunk that is not one."""
        if not line.startswith("data:"):
            return False  # blank separators, comments, event names
        data = line[5:].strip()
        if data == "[DONE]":
            self.done = True
            return False
        try:
            chunk = json.loads(data)
            choices = chunk["choices"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ChatbotError(f"streamed a chunk that is not a chat.completion.chunk: {data[:100]!r}") from exc
        added = False
        for choice in choices if isinstance(choices, list) else ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict) or choice.get("index", 0) != 0:
                continue
            if isinstance(delta.get("content"), str) and delta["content"]:
                self.content += delta["content"]
                added = True
            fragments = delta.get("tool_calls")
            for fragment in fragments if isinstance(fragments, list) else ():
                self._tool_fragment(fragment)
        return added

    def _tool_fragment(self, fragment: Any) -> None:
        """Add one tool call fragment: the first brings its id and name, the next ones pieces of its arguments."""
        if not isinstance(fragment, dict) or not isinstance(fragment.get("index", 0), int):
            return
        call = self.calls.setdefault(fragment.get("index", 0), {"function": {"name": "", "arguments": ""}})
        function = fragment.get("function") if isinstance(fragment.get("function"), dict) else {}
        for part in ("name", "arguments"):
            if isinstance(function.get(part), str):
                call["function"][part] += function[part]

    def body(self) -> dict:
        """The contract's body for the whole answer."""
        return reply_body(self.content, [self.calls[i] for i in sorted(self.calls)])


class OpenAIChatbot:
    """Asks `{CHATBOT_URL}/chat/completions`; the call's messages live in the call store, bounded by turns."""

    def __init__(self, base_url: str, store: CallStore, *, model: str, prompt: str, api_key: str = "",
                 temperature: float | None = None, history_turns: int = 20, stream: bool = True,
                 timeout: float = 5.0, pool_size: int = 32):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.store = store
        self.model, self.prompt, self.temperature = model, prompt, temperature
        self.keep = 2 * history_turns  # a turn is the caller's message and the assistant's answer
        self.stream = stream
        self.timeout = timeout
        self._http = HttpJson(timeout, pool_size, {"Authorization": f"Bearer {api_key}"} if api_key else None)

    def ask(self, message: str, session_id: str, input_type: str = "speech", *,
            on_first_sentence: FirstSentence | None = None, **extra: str) -> Reply:
        """One turn: the system prompt, the call's history and the caller's message in; the validated Reply out.
        Streamed when there is someone to hand the first sentence to."""
        said = [] if input_type == "start" else [{"role": "user", "content": _user_text(message, input_type)}]
        payload: dict[str, Any] = {
            "model": self.model, "tools": TOOLS,
            "messages": [{"role": "system", "content": self.prompt}, *self.store.history(session_id), *said]}
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        streamed = self.stream and on_first_sentence is not None
        if streamed:
            payload["stream"] = True
        deadline = time.monotonic() + self.timeout
        with self._open(payload, deadline) as response:
            if streamed:
                body = self._streamed(response, deadline, on_first_sentence)
            else:
                body = completion_body(self._http.json(response, deadline))
        reply = parse_reply(body)
        self.store.add_history(session_id, [*said, {"role": "assistant", "content": _assistant_text(reply)}],
                               self.keep)
        return reply

    def _open(self, payload: dict, deadline: float) -> requests.Response:
        """POST until a 200, waiting out a 429's Retry-After when it ends before the deadline; ChatbotError else."""
        while True:
            response = self._http.post(self.url, payload, deadline)
            if response.status_code == 200:
                return response
            with response:
                reason = f"answered HTTP {response.status_code}{_provider_message(response, self._http, deadline)}"
                wait = _retry_after(response) if response.status_code == 429 else None
            if wait is None or time.monotonic() + wait >= deadline:
                raise ChatbotError(reason + (f"; Retry-After {wait:g} s is past the turn's timeout"
                                             if wait is not None else ""))
            log.info("chatbot rate limited (HTTP 429); retrying in %.1f s as Retry-After asks", wait)
            time.sleep(wait)

    def _streamed(self, response: requests.Response, deadline: float, on_first: FirstSentence) -> dict:
        """Read the chunks to the end; the first complete sentence goes to `on_first` while the rest is written."""
        answer, handed = StreamedAnswer(), False
        for line in self._http.lines(response, deadline):
            if answer.take(line) and not handed:
                sentence = first_sentence(answer.content)
                if sentence is not None:
                    handed = True
                    on_first(xml_safe(sentence))
            if answer.done:
                break
        if not answer.done:
            raise ChatbotError("the streamed answer ended without [DONE]")
        return answer.body()

    def interrupted(self, session_id: str, said: str, heard: str) -> None:
        """The model is told what the caller really heard: its last answer is cut where the caller spoke over it."""
        # Cut before its first word, the answer keeps an ellipsis: some servers refuse an empty assistant message.
        if self.store.cut_reply(session_id, said, heard or "\u2026"):
            log.info("call %s: the caller heard %d of %d characters; the history keeps only those", session_id,
                     len(heard), len(said))

    def close(self) -> None:
        """Release pooled connections."""
        self._http.close()


def _user_text(message: str, input_type: str) -> str:
    """What the caller did, as the model reads it: their words, or the keys they pressed."""
    if input_type == "option":
        return f"(the caller chose: {message})"
    return f"(the caller pressed the keys {message})" if input_type == "dtmf" else message


def _assistant_text(reply: Reply) -> str:
    """What the assistant said, for the history (an action with no words is noted, so no message is empty)."""
    if reply.text or (reply.action_type is None and not reply.options):
        return reply.text
    if reply.options:
        return f"(offered: {', '.join(title for title, _ in reply.options)})"
    return f"(called {'end_call' if reply.action_type == 'hangup' else 'transfer_call'})"


def _retry_after(response: requests.Response) -> float | None:
    """Seconds a 429 asks us to wait (Retry-After in seconds), or None without a usable one."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if 0 <= seconds <= MAX_RETRY_AFTER else None


def _provider_message(response: requests.Response, http: HttpJson, deadline: float) -> str:
    """The provider's own words for an error (`{"error": {"message"}}`), for the log line; "" when it has none."""
    try:
        error = http.json(response, deadline).get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ChatbotError, AttributeError):
        return ""
    return f": {str(message)[:120]}" if message else ""
