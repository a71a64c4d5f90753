"""An HTTP server on 127.0.0.1 for the webhook tests, each module giving it the handler it needs
(``tests/test_webhooks.py`` checks signatures, ``tests/test_webhook_guard.py`` answers the status
a path names).

``LocalServer(handler)`` binds a free port at once (``port``) and serves from a daemon thread
while used as a context manager: a module's ``receiver`` fixture is ``with Receiver() as server:
yield server``."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing."""

    def log_message(self, *args):
        pass


class LocalServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()
