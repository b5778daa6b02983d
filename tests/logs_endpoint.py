"""A local CloudWatch Logs endpoint that fails on demand, in front of moto's server.

Real HTTP, the AWS JSON protocol (``X-Amz-Target: Logs_20140328.<Action>``), reached by real
boto3 through ``endpoint_url``/``AWS_ENDPOINT_URL``. Each request consumes one queued fault of
its action (``throttle``: HTTP 400 ``ThrottlingException``; ``500``: ``ServiceUnavailable``;
``drop``: the connection closed without an answer; ``garbage``: HTTP 200 with JSON of the
wrong shape; ``malformed``: moto's answer with its first event stripped of its ``eventId``
and its second of its ``message``) or, when none is queued, is passed on to moto unchanged.
Every request is recorded (action, group, when it arrived), as ``tests/sts_server.py`` does
for STS.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from tests.local_server import LocalServer, QuietHandler

FAULTS = {
    "throttle": (400, "ThrottlingException", "Rate exceeded"),
    "500": (500, "ServiceUnavailableException", "The service is unavailable"),
}


@dataclass(frozen=True)
class Call:
    action: str
    group: str | None
    at: float  # time.monotonic() when it arrived


class LogsEndpoint(LocalServer):
    """``with LogsEndpoint(moto.url) as logs:``; ``logs.url`` is the endpoint for boto3."""

    def __init__(self, upstream: str, port: int = 0) -> None:
        self.upstream = upstream
        self.calls: list[Call] = []
        self.faults: dict[str, deque[str]] = defaultdict(deque)  # action -> faults, in turn
        self._lock = threading.Lock()
        super().__init__(port)

    thread_name = "logs-endpoint"

    def fail(self, action: str, *faults: str) -> None:
        """The next requests of ``action`` get ``faults``, one each."""
        with self._lock:
            self.faults[action].extend(faults)

    def calls_of(self, action: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.action == action]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                target = self.headers.get("X-Amz-Target", "")
                action = target.rsplit(".", 1)[-1]
                fault = endpoint._record(action, body)
                if fault == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault in FAULTS:
                    status, code, message = FAULTS[fault]
                    payload = json.dumps({"__type": code, "message": message}).encode()
                elif fault == "garbage":
                    status, payload = 200, b'{"events": 5, "nextToken": 7}'
                else:
                    status, payload = endpoint._forward(body, dict(self.headers))
                    if fault == "malformed":
                        payload = _malformed(payload)
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    def _record(self, action: str, body: bytes) -> str | None:
        try:
            group = json.loads(body or b"{}").get("logGroupName")
        except ValueError:
            group = None
        with self._lock:
            self.calls.append(Call(action, group, time.monotonic()))
            queued = self.faults.get(action)
            return queued.popleft() if queued else None

    def _forward(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        kept = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
        request = urllib.request.Request(self.upstream + "/", data=body, headers=kept)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - local
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


def _malformed(payload: bytes) -> bytes:
    answer = json.loads(payload)
    events = answer.get("events", [])
    if events:
        del events[0]["eventId"]
    if len(events) > 1:
        del events[1]["message"]
    return json.dumps(answer).encode()
