"""A local HTTP proxy in front of moto's server that refuses chosen S3 objects, as AWS does.

``with FaultProxy(moto.url) as proxy``: clients given ``proxy.url`` as their endpoint reach
moto, except for GETs whose path contains one of ``proxy.refused`` (answered 403
``AccessDenied``, as S3 answers for an object whose KMS key the caller may not use), or one of
``proxy.refused_once`` (the same, for the next such GET only: a blip).
``proxy.operations`` counts the JSON-protocol calls (SQS, CloudWatch Logs) by ``X-Amz-Target``;
those named in ``proxy.failing_operations`` are answered 500 ``InternalError``, as AWS answers
in an incident; those in ``proxy.hanging_operations`` get no answer at all (a connection
accepted and never answered, until the proxy exits), as a broken network path does.
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from tests.local_server import LocalServer, QuietHandler

ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message><RequestId>fault-proxy</RequestId></Error>"
)
INTERNAL_ERROR = b'{"__type": "InternalError", "message": "We encountered an internal error."}'
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class FaultProxy(LocalServer):
    """Forwards every request to ``upstream``; refuses GETs of the paths in ``refused``."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.refused: set[str] = set()
        self.refused_once: set[str] = set()
        self.refusals = 0
        self.operations: Counter[str] = Counter()  # X-Amz-Target -> requests received
        self.failing_operations: set[str] = set()  # X-Amz-Target values answered 500
        self.hanging_operations: set[str] = set()  # X-Amz-Target values never answered
        self._lock = threading.Lock()
        super().__init__()

    thread_name = "fault-proxy"

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

        class Handler(QuietHandler):
            def _forward(self) -> None:
                if proxy._refuses(self.command, self.path):
                    self._answer(403, {"Content-Type": "application/xml"}, ACCESS_DENIED)
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                operation = self.headers.get("X-Amz-Target", self.command)
                with proxy._lock:
                    proxy.operations[operation] += 1
                    failing = operation in proxy.failing_operations
                    hanging = operation in proxy.hanging_operations
                if hanging:
                    proxy._stopping.wait()  # no answer; the proxy's exit ends the wait
                    return
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

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        return Handler
