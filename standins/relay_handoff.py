"""The bot owner's `<Connect action>` endpoint for a ConversationRelay bot: records each callback and answers TwiML."""
from __future__ import annotations

import threading

from flask import Flask, Response, request

from standins.local_server import LocalServer


class HandoffEndpoint:
    """POST /handoff records the form and headers, and answers `twiml` (or `status` with no body)."""

    def __init__(self, twiml: str = "<Response><Dial>+15550001111</Dial></Response>", status: int = 200):
        self.twiml, self.status = twiml, status
        self.requests: list[tuple[dict, dict]] = []  # (form, headers)
        self._lock = threading.Lock()
        app = Flask("relay-handoff")
        app.add_url_rule("/handoff", "handoff", self._handoff, methods=["POST"])
        self._server = LocalServer(app)

    @property
    def url(self) -> str:
        return self._server.base + "/handoff"

    def __enter__(self) -> "HandoffEndpoint":
        self._server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()

    def _handoff(self) -> Response:
        with self._lock:
            self.requests.append((request.form.to_dict(), dict(request.headers)))
        if self.status != 200:
            return Response("", status=self.status)
        return Response(self.twiml, mimetype="application/xml")
