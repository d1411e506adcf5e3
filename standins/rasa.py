"""A Rasa stand-in speaking the REST channel: POST /webhooks/rest/webhook {"sender", "message"} → bot messages.

    with RasaStandIn({"/greet": [{"text": "Hi!", "buttons": [{"title": "book", "payload": "/book"}]}]}) as rasa:
        requests.post(rasa.url, json={"sender": "CA1", "message": "/greet"}).json()
        # [{"recipient_id": "CA1", "text": "Hi!", "buttons": [{"title": "book", "payload": "/book"}]}]
"""
from __future__ import annotations

import threading
from typing import Callable

from flask import Flask, jsonify, request

from standins.local_server import LocalServer

Script = Callable[[str, str], list[dict]]  # (sender, message) → the bot's messages, without recipient_id


class RasaStandIn:
    """Answers each message from `script` (a callable, or a dict from message to messages; unknown: one text)."""

    def __init__(self, script: Script | dict[str, list[dict]]):
        self.script: Script = script if callable(script) else (
            lambda sender, message: script.get(message, [{"text": "Sorry, I didn't get that."}]))
        self.requests: list[dict] = []
        self.status = 200  # anything else: answered as Rasa does when it fails, with an error body
        self._lock = threading.Lock()
        app = Flask("rasa-standin")
        app.add_url_rule("/webhooks/rest/webhook", "webhook", self._webhook, methods=["POST"])
        self._server = LocalServer(app)
        self.url = self._server.base + "/webhooks/rest/webhook"

    def _webhook(self):
        body = request.get_json(silent=True)
        with self._lock:
            self.requests.append(body)
        if self.status != 200:
            return jsonify({"version": "3.6.0", "status": "failure", "message": "stand-in failure",
                            "reason": "Failure", "code": self.status}), self.status
        if not isinstance(body, dict) or not isinstance(body.get("message"), str):
            return jsonify({"status": "failure", "reason": "BadRequest", "code": 400}), 400
        sender = str(body.get("sender") or "default")  # Rasa's REST channel falls back to "default"
        return jsonify([{"recipient_id": sender, **message} for message in self.script(sender, body["message"])])

    def messages(self, sender: str | None = None) -> list[str]:
        """What reached the bot, in order (from one sender only, when given)."""
        with self._lock:
            return [r["message"] for r in self.requests if sender is None or r.get("sender") == sender]

    def __enter__(self) -> "RasaStandIn":
        self._server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()
