"""What the test servers (STS, CloudWatch Logs, the fault proxy, the webhook receiver) share:
a ``ThreadingHTTPServer`` on 127.0.0.1 that serves on its own thread inside a ``with`` block.

Their handlers speak HTTP/1.0 (``BaseHTTPRequestHandler``'s default): one request per
connection, so no handler thread waits on an idle keep-alive connection while the server is
shut down.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LocalServer:
    """Subclasses give ``_handler()``; ``_stopping`` is set first at exit, so that a handler
    waiting on it (an injected delay) ends at once."""

    thread_name = "local-server"

    def __init__(self, port: int = 0) -> None:
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = False
        self._server.block_on_close = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.thread_name)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        del format, args  # quiet: pytest shows the stderr of failing tests
