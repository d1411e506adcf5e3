"""A Flask app served on 127.0.0.1 at a free port in a background thread, for the chatbot stand-ins."""
from __future__ import annotations

import logging
import threading

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

log = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    """Request lines go to the debug log, not stderr."""

    def log(self, type: str, message: str, *args: object) -> None:
        log.debug("stand-in: " + message, *args)


class LocalServer:
    """Serves `app` with a thread per request (streamed answers run side by side) until stopped."""

    def __init__(self, app: Flask):
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{app.name}-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
