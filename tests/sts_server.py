"""A local STS-compatible endpoint for tests: real HTTP, the AWS Query protocol, real boto3.

It answers ``DecodeAuthorizationMessage`` from a table of known blobs (the corpus' decoded
messages), ``AssumeRole`` with fresh credentials, and ``GetCallerIdentity``; and it can be
told to misbehave: latency, throttling, 5xx, AccessDenied, invalid messages. It records every
call (action, the access key that signed it, the blob) and the most calls it had in flight.

It can also answer HTTP 200 with a body no STS would send (``MALFORMED``): a captive
proxy's HTML page, garbage, truncated XML, 100,000-deep nesting in the XML or in the JSON of
the decoded message, and an XML external entity pointing at ``xxe_target``.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from tests.local_server import LocalServer, QuietHandler

NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"

# fault name -> (HTTP status, error code, message)
FAULTS = {
    "throttle": (400, "Throttling", "Rate exceeded"),
    "500": (500, "InternalFailure", "An internal error occurred"),
    "503": (503, "ServiceUnavailable", "Service unavailable"),
    "access_denied": (
        403,
        "AccessDenied",
        "User: arn:aws:iam::111122223333:user/watcher is not authorized to perform: "
        "sts:DecodeAuthorizationMessage because no identity-based policy allows the "
        "sts:DecodeAuthorizationMessage action",
    ),
    "invalid": (400, "InvalidAuthorizationMessageException", "Invalid authorization message"),
}


DEEP_NESTING = 100_000
MALFORMED = ("html", "garbage", "truncated_xml", "deep_xml", "deep_json", "xxe")


def _malformed(fault: str, xxe_target: str) -> tuple[int, str]:
    """A 200 answer with a body that is not a well-formed STS reply."""
    if fault == "html":
        return 200, "<!DOCTYPE html><html><head><title>Sign in to the Wi-Fi</title></head>" \
            "<body><form action='/login'><input name='user'></form></body></html>"  # fmt: skip
    if fault == "garbage":
        return 200, "\x00\x01garbage \ufffd{not xml at all"
    whole = _response("DecodeAuthorizationMessage", "<DecodedMessage>{}</DecodedMessage>")
    if fault == "truncated_xml":
        return 200, whole[: len(whole) // 2]
    if fault == "deep_xml":
        nested = "<a>" * DEEP_NESTING + "</a>" * DEEP_NESTING
        return 200, whole.replace("<DecodedMessage>{}", "<DecodedMessage>" + nested)
    if fault == "deep_json":
        nested = "[" * DEEP_NESTING + "]" * DEEP_NESTING
        return 200, whole.replace("<DecodedMessage>{}", f"<DecodedMessage>{nested}")
    doctype = f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file://{xxe_target}">]>'
    return 200, doctype + whole.replace("<DecodedMessage>{}", "<DecodedMessage>&xxe;")


@dataclass
class Call:
    action: str
    access_key: str | None
    blob: str | None
    external_id: str | None = None


@dataclass
class StsBehaviour:
    """What the endpoint knows and how it misbehaves; change it between calls."""

    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: deque[str] = field(default_factory=deque)  # consumed one per request
    always: str | None = None  # a fault for every request
    latency_seconds: float = 0.0
    denied_access_keys: set[str] = field(default_factory=set)
    unassumable_roles: set[str] = field(default_factory=set)  # AssumeRole answers AccessDenied
    xxe_target: str = "/etc/hostname"  # the file an external entity in a reply points at


class StsServer(LocalServer):
    """Start with ``with StsServer() as sts:``; ``sts.url`` is the endpoint for boto3."""

    def __init__(self) -> None:
        self.behaviour = StsBehaviour()
        self.calls: list[Call] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        super().__init__()

    thread_name = "sts-server"

    def decode_calls(self) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.action == "DecodeAuthorizationMessage"]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                status, body = server._answer(form, self.headers.get("Authorization", ""))
                payload = body.encode()
                self.send_response(status)
                html = body.startswith("<!DOCTYPE html>")
                self.send_header("Content-Type", "text/html" if html else "text/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    def _answer(self, form: dict[str, list[str]], authorization: str) -> tuple[int, str]:
        action = form.get("Action", [""])[0]
        blob = form.get("EncodedMessage", [None])[0]
        access_key = _access_key(authorization)
        with self._lock:
            self.calls.append(Call(action, access_key, blob, form.get("ExternalId", [None])[0]))
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            fault = self.behaviour.faults.popleft() if self.behaviour.faults else None
            fault = fault or self.behaviour.always
            latency = self.behaviour.latency_seconds
        try:
            if fault == "timeout":
                self._stopping.wait(30)
            elif latency:
                self._stopping.wait(latency)
            if fault in FAULTS:
                return _error(*FAULTS[fault])
            if fault in MALFORMED:
                return _malformed(fault, self.behaviour.xxe_target)
            if access_key in self.behaviour.denied_access_keys:
                return _error(*FAULTS["access_denied"])
            if action == "DecodeAuthorizationMessage":
                return self._decode(blob)
            if action == "AssumeRole":
                role_arn = form.get("RoleArn", [""])[0]
                if role_arn in self.behaviour.unassumable_roles:
                    return _error(403, "AccessDenied", f"Not authorized to assume {role_arn}")
                return _assume_role(form)
            if action == "GetCallerIdentity":
                return 200, _response(
                    "GetCallerIdentity",
                    "<Arn>arn:aws:iam::111122223333:user/watcher</Arn>"
                    "<UserId>AIDAEXAMPLE</UserId><Account>111122223333</Account>",
                )
            return _error(400, "InvalidAction", f"Could not find operation {action}")
        finally:
            with self._lock:
                self._in_flight -= 1

    def _decode(self, blob: str | None) -> tuple[int, str]:
        message = self.behaviour.messages.get(blob or "")
        if message is None:
            return _error(*FAULTS["invalid"])
        return 200, _response(
            "DecodeAuthorizationMessage",
            f"<DecodedMessage>{escape(json.dumps(message))}</DecodedMessage>",
        )


def _access_key(authorization: str) -> str | None:
    marker = "Credential="
    start = authorization.find(marker)
    if start < 0:
        return None
    return authorization[start + len(marker) :].split("/", 1)[0]


def _assume_role(form: dict[str, list[str]]) -> tuple[int, str]:
    role_arn = form.get("RoleArn", [""])[0]
    account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else "000000000000"
    role_name = role_arn.rsplit("/", 1)[-1]
    expiration = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    key = "ASIA" + role_name.upper().replace("-", "")[:12].ljust(12, "X")
    return 200, _response(
        "AssumeRole",
        f"<Credentials><AccessKeyId>{key}</AccessKeyId>"
        f"<SecretAccessKey>secret-{uuid.uuid4().hex}</SecretAccessKey>"
        f"<SessionToken>token-{uuid.uuid4().hex}</SessionToken>"
        f"<Expiration>{expiration}</Expiration></Credentials>"
        f"<AssumedRoleUser><Arn>arn:aws:sts::{account}:assumed-role/{role_name}/authz-watcher"
        f"</Arn><AssumedRoleId>AROAEXAMPLE:authz-watcher</AssumedRoleId></AssumedRoleUser>",
    )


def _response(action: str, result: str) -> str:
    return (
        f'<{action}Response xmlns="{NAMESPACE}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    )


def _error(status: int, code: str, message: str) -> tuple[int, str]:
    kind = "Receiver" if status >= 500 else "Sender"
    return status, (
        f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>{kind}</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
        f"</ErrorResponse>"
    )
