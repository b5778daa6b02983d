"""A local HTTP proxy in front of moto's server that refuses chosen S3 objects, as AWS does.

``with FaultProxy(moto.url) as proxy``: clients given ``proxy.url`` as their endpoint reach
moto, except for GETs whose path contains one of ``proxy.refused`` (answered 403
``AccessDenied``, as S3 answers for an object whose KMS key the caller may not use), or one of
``proxy.refused_once`` (the same, for the next such GET only: a blip).
``proxy.operations`` counts the JSON-protocol calls (SQS, CloudWatch Logs) by ``X-Amz-Target``;
those named in ``proxy.failing_operations`` are answered 500 ``InternalError``, as AWS answers
in an incident.
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message><RequestId>fault-proxy</RequestId></Error>"
)
INTERNAL_ERROR = b'{"__type": "InternalError", "message": "We encountered an internal error."}'
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class FaultProxy:
    """Forwards every request to ``upstream``; refuses GETs of the paths in ``refused``."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.refused: set[str] = set()
        self.refused_once: set[str] = set()
        self.refusals = 0
        self.operations: Counter[str] = Counter()  # X-Amz-Target -> requests received
        self.failing_operations: set[str] = set()  # X-Amz-Target values answered 500
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = False
        self._server.block_on_close = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _refuses(self, method: str, path: str) -> bool:
        with self._lock:
            if method != "GET":
                return False
            once = {part for part in self.refused_once if part in path}
            self.refused_once -= once
            refused = bool(once) or any(part in path for part in self.refused)
            self.refusals += refused
            return refused

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: one request per connection, so closing never waits on an idle client.
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                del format, args

            def _forward(self) -> None:
                if proxy._refuses(self.command, self.path):
                    self._answer(403, {"Content-Type": "application/xml"}, ACCESS_DENIED)
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                operation = self.headers.get("X-Amz-Target", self.command)
                with proxy._lock:
                    proxy.operations[operation] += 1
                    failing = operation in proxy.failing_operations
                if failing:
                    headers = {"Content-Type": "application/x-amz-json-1.0"}
                    self._answer(500, headers, INTERNAL_ERROR)
                    return
                upstream = http.client.HTTPConnection(*proxy._upstream, timeout=30)
                try:
                    upstream.request(self.command, self.path, body, dict(self.headers))
                    response = upstream.getresponse()
                    headers = {
                        k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP
                    }
                    self._answer(response.status, headers, response.read())
                finally:
                    upstream.close()

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward  # noqa: N815

        return Handler
