"""A local HTTP receiver for webhook tests: records what it gets, fails on demand."""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """``with Receiver() as r``: POSTs to ``r.url`` are recorded in ``r.received``.

    ``r.answers`` holds status codes to answer next (then 200); "hang" answers after the
    client has given up; "slow" answers 200 after half a second.
    """

    def __init__(self, port: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.answers: deque[int | str] = deque()
        self.attempts = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = False
        self._server.block_on_close = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="receiver")

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                del format, args

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.attempts += 1
                    answer = receiver.answers.popleft() if receiver.answers else 200
                if answer == "hang":  # answer only after the client has given up
                    receiver._stopping.wait(5)
                    answer = 504
                if answer == "slow":  # take it, but only after half a second
                    receiver._stopping.wait(0.5)
                    answer = 200
                status = int(answer)
                if status == 200:
                    with receiver._lock:
                        receiver.received.append(json.loads(body))
                        receiver.headers.append(dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler
