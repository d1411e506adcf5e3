"""A chatbot endpoint for tests: records what reaches it, forwards to the real sample bot, or misbehaves on purpose."""
from __future__ import annotations

import json
import threading
import time

import requests
from flask import Flask, Response, request
from werkzeug.serving import make_server


class ChatbotSpy:
    """An HTTP server speaking the chatbot contract in front of `upstream` (the real sample bot)."""

    def __init__(self, upstream: str | None = None):
        self.upstream = upstream
        self.requests: list[dict] = []
        self.delay = 0.0
        self.status = 200
        self.body: str | None = None  # answer this raw body instead of forwarding
        self.amend = None  # optional (request, answer) -> answer: extend the sample bot's answers (contract extensions)
        self._lock = threading.Lock()
        app = Flask("chatbot-spy")
        app.add_url_rule("/message", "message", self._message, methods=["POST"])
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/message"
        # A short poll interval: shutdown() waits for the serve loop to notice, 0.5 s by default, after every test.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _message(self):
        """Record, wait, then answer as configured."""
        with self._lock:
            self.requests.append(request.get_json(silent=True))
        time.sleep(self.delay)
        if self.body is not None or self.status != 200:
            return Response(self.body or "", status=self.status, mimetype="application/json")
        upstream = requests.post(self.upstream, json=request.get_json(silent=True), timeout=10)
        if self.amend is not None and upstream.status_code == 200:
            return Response(json.dumps(self.amend(request.get_json(silent=True), upstream.json())),
                            mimetype="application/json")
        return Response(upstream.content, status=upstream.status_code, mimetype="application/json")

    def reset(self) -> "ChatbotSpy":
        """As if new: nothing recorded, answering through the sample bot."""
        with self._lock:
            self.requests.clear()
        self.delay, self.status, self.body, self.amend = 0.0, 200, None, None
        return self

    def messages(self) -> list[str]:
        """What callers said, as the chatbot received it."""
        with self._lock:
            return [r.get("message") for r in self.requests if isinstance(r, dict)]

    def __enter__(self) -> "ChatbotSpy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
