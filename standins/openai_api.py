"""An OpenAI-compatible chat-completions stand-in: `chat.completion` objects, or `chat.completion.chunk` Server-Sent
Events written at a set pace with tool calls streamed in fragments, and OpenAI's error answers (401, 429, 500).

    with OpenAIStandIn(lambda messages: Answer("Hello there!")) as api:
        OpenAI(base_url=api.url, api_key=api.api_key).chat.completions.create(model="m", messages=[...])
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from flask import Flask, Response, jsonify, request

from standins.local_server import LocalServer

ERRORS = {  # OpenAI's own error bodies for the faults a test may ask for
    401: ("Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
          "invalid_request_error", "invalid_api_key"),
    429: ("Rate limit reached for requests per min. Please try again in 1s.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
}
ARGUMENT_FRAGMENT_CHARS = 4  # OpenAI streams a tool call's arguments a few characters at a time


@dataclass(frozen=True)
class Answer:
    """What the model says: its text, and the tools it calls as (name, arguments)."""

    text: str | None = None
    tools: tuple[tuple[str, dict], ...] = ()


@dataclass(frozen=True)
class Fault:
    """A failure for the next request: an HTTP error (`status`, with Retry-After `retry_after`), an answer that is not
    a chat completion (`malformed`), or no answer for `stall` seconds."""

    status: int = 200
    retry_after: float | None = None
    malformed: bool = False
    stall: float = 0.0


def tokens(text: str) -> list[str]:
    """The text in tokens as a model writes them: a word with the space before it (roughly OpenAI's)."""
    return re.findall(r"\s*\S+", text)


@dataclass
class _Completion:
    answer: Answer
    model: str
    id: str = field(default_factory=lambda: "chatcmpl-" + format(time.time_ns(), "x"))
    created: int = field(default_factory=lambda: int(time.time()))

    def _tool_calls(self) -> list[dict]:
        return [{"id": f"call_{self.id[-8:]}{i}", "type": "function",
                 "function": {"name": name, "arguments": json.dumps(arguments)}}
                for i, (name, arguments) in enumerate(self.answer.tools)]

    def whole(self) -> dict:
        """The `chat.completion` object."""
        message = {"role": "assistant", "content": self.answer.text, "refusal": None}
        if self.answer.tools:
            message["tool_calls"] = self._tool_calls()
        written = len(tokens(self.answer.text or ""))
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": "tool_calls" if self.answer.tools else "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": written, "total_tokens": 10 + written},
                "system_fingerprint": "fp_standin"}

    def chunk(self, delta: dict, finish_reason: str | None = None) -> str:
        """One `chat.completion.chunk` event."""
        return "data: " + json.dumps({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "system_fingerprint": "fp_standin",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}) + "\n\n"

    def deltas(self) -> list[dict]:
        """The deltas OpenAI streams: the role, the text token by token, then each tool call in fragments."""
        out: list[dict] = [{"role": "assistant", "content": "", "refusal": None}]
        out += [{"content": token} for token in tokens(self.answer.text or "")]
        for index, call in enumerate(self._tool_calls()):
            out.append({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                        "function": {"name": call["function"]["name"], "arguments": ""}}]})
            arguments = call["function"]["arguments"]
            out += [{"tool_calls": [{"index": index, "function": {"arguments": arguments[i:i + ARGUMENT_FRAGMENT_CHARS]}}]}
                    for i in range(0, len(arguments), ARGUMENT_FRAGMENT_CHARS)]
        return out


class OpenAIStandIn:
    """POST {url}/chat/completions answered by `model(messages) -> Answer`; streamed at `tokens_per_second`."""

    def __init__(self, model: Callable[[list[dict]], Answer], api_key: str = "sk-standin-0123456789",
                 tokens_per_second: float = 0.0):
        self.model = model
        self.api_key = api_key
        self.tokens_per_second = tokens_per_second  # 0: as fast as it can
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.faults: deque[Fault] = deque()  # one per request, in order, before any answer
        self._lock = threading.Lock()
        app = Flask("openai-standin")
        app.add_url_rule("/v1/chat/completions", "completions", self._completions, methods=["POST"])
        self._server = LocalServer(app)
        self.url = self._server.base + "/v1"

    def _completions(self):
        body = request.get_json(silent=True)
        with self._lock:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            fault = self.faults.popleft() if self.faults else Fault()
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401)
        if fault.stall:
            time.sleep(fault.stall)
        if fault.status != 200:
            return _error(fault.status, fault.retry_after)
        if fault.malformed and isinstance(body, dict) and body.get("stream"):
            return Response('data: {"id": "chatcmpl-x", "object": "chat.completion.chunk", "choices"\n\n',
                            mimetype="text/event-stream")
        if fault.malformed:
            return Response('{"id": "chatcmpl-x", "object": "chat.completion", "choices": "none"',
                            mimetype="application/json")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body.get("model"):
            return jsonify({"error": {"message": "'messages' and 'model' are required", "type":
                                      "invalid_request_error", "param": None, "code": None}}), 400
        completion = _Completion(self.model(body["messages"]), body["model"])
        if not body.get("stream"):
            if self.tokens_per_second:  # a model answering whole has written every token first
                time.sleep(len(tokens(completion.answer.text or "")) / self.tokens_per_second)
            return jsonify(completion.whole())
        return Response(self._stream(completion), mimetype="text/event-stream")

    def _stream(self, completion: _Completion):
        pause = 1.0 / self.tokens_per_second if self.tokens_per_second else 0.0
        for delta in completion.deltas():
            yield completion.chunk(delta)
            if pause and "content" in delta and delta["content"]:
                time.sleep(pause)
        yield completion.chunk({}, "tool_calls" if completion.answer.tools else "stop")
        yield "data: [DONE]\n\n"

    def conversations(self) -> list[list[dict]]:
        """The messages of every request, in order."""
        with self._lock:
            return [r["messages"] for r in self.requests if isinstance(r, dict) and "messages" in r]

    def __enter__(self) -> "OpenAIStandIn":
        self._server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()


def _error(status: int, retry_after: float | None = None) -> Response:
    """OpenAI's error answer for `status`."""
    message, kind, code = ERRORS.get(status, ERRORS[500])
    response = jsonify({"error": {"message": message, "type": kind, "param": None, "code": code}})
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = f"{retry_after:g}"
    return response
