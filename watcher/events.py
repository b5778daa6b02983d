"""The event (schema version 1): a Finding, where it came from and its explanation -> one dict.

Every key is always present (null when unknown); ``watcher/schema/event.schema.json`` is the
contract and the tests validate every event they produce against it.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from watcher.explain import Explanation
from watcher.model import DecodeStatus, Event, Finding, Origin

SCHEMA_VERSION = 1
RAW_MAX_BYTES = 4096
RAW_CONTEXT_BEFORE_CHARS = 256

_SECRET_RE = re.compile(
    r"(?i)(?P<key>aws_secret_access_key|aws_session_token|x-amz-security-token|secret[_-]?key"
    r"|password|passwd|api[_-]?key|authorization)(?P<sep>\"?\s*+[=:]\s*+\"?)"
    r"(?P<value>[^\s\"',;&]++)"
)
_BEARER_RE = re.compile(r"\b(?P<scheme>Bearer|Basic|bearer)\s++[A-Za-z0-9._~+/=-]{8,}+")


def schema() -> dict[str, Any]:
    """The JSON Schema of events, as shipped in the package."""
    import json  # noqa: PLC0415 - only tests and docs tooling need it, not start-up
    from importlib import resources  # noqa: PLC0415 - same

    text = resources.files("watcher").joinpath("schema/event.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_id(origin: Origin, finding: Finding) -> str:
    """Deterministic: the same denial read again from the same place gets the same id.

    A followed file has a key of its own (saved before any of its lines is read, and carried
    through renames): its lines are told apart by that key and their offsets, so two
    generations of one path never share an id. Elsewhere the path stands in for the key.
    """
    place = origin.file_key or origin.source_path
    parts = (
        origin.source_kind,
        place,
        str(origin.source_offset),
        str(origin.record_index),
        str(origin.text_offset),
        str(finding.ordinal),
        finding.encoded_message or "",
        finding.principal_arn or "",
        finding.action or "",
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def raw_excerpt(text: str, finding: Finding) -> str:
    """At most 4 KiB of the text around the denial, with obvious secrets masked."""
    text = text.rstrip("\r\n")
    if len(text.encode()) > RAW_MAX_BYTES:
        start = max(0, finding.start - RAW_CONTEXT_BEFORE_CHARS)
        text = text[start:].encode()[:RAW_MAX_BYTES].decode("utf-8", "ignore")
    return redact_secrets(text)


_SECRET_KEYS = (
    "aws_secret_access_key", "aws_session_token", "x-amz-security-token", "secret_key",
    "secret-key", "secretkey", "password", "passwd", "api_key", "api-key", "apikey",
    "authorization",
)  # fmt: skip
_SECRET_VALUE_RE = re.compile(r"(?P<sep>\"?\s*+[=:]\s*+\"?)(?P<value>[^\s\"',;&]++)")


def redact_secrets(text: str) -> str:
    """Mask ``password=...``-style values and bearer tokens; log lines leak them sometimes."""
    if "earer" in text or "Basic" in text:
        text = _BEARER_RE.sub(lambda m: m.group("scheme") + " [REDACTED]", text)
    if not text.isascii():  # lower() keeps positions only for ASCII
        return _SECRET_RE.sub(lambda m: m.group("key") + m.group("sep") + "[REDACTED]", text)
    lowered = text.lower()
    spans = []
    for key in _SECRET_KEYS:
        start = lowered.find(key)
        while start >= 0:
            value = _SECRET_VALUE_RE.match(text, start + len(key))
            if value is not None and not value.group("value").startswith("[REDACTED]"):
                spans.append(value.span("value"))
            start = lowered.find(key, start + len(key))
    for begin, end in sorted(set(spans), reverse=True):
        text = text[:begin] + "[REDACTED]" + text[end:]
    return text


def denial_event(
    finding: Finding,
    origin: Origin,
    explanation: Explanation,
    *,
    raw: str,
    decode_status: DecodeStatus,
    decode_error: str | None,
    observed_at: datetime,
) -> Event:
    """Assemble the flat event for one denial."""
    observed = iso_utc(observed_at)
    return {
        "event": "authz_denial",
        "schema_version": SCHEMA_VERSION,
        "event_id": event_id(origin, finding),
        "timestamp": finding.timestamp or observed,
        "observed_at": observed,
        "source_kind": origin.source_kind,
        "source_path": origin.source_path,
        "source_offset": origin.source_offset,
        "record_index": origin.record_index,
        "encoded_message": finding.encoded_message,
        "error_code": finding.error_code,
        "operation": finding.operation,
        "action": explanation.action,
        "resource": explanation.resource,
        "principal_arn": explanation.principal_arn,
        "account_id": explanation.account_id,
        "region": explanation.region,
        "request_id": finding.request_id,
        "explicit_deny": explanation.explicit_deny,
        "policy_type": explanation.policy_type,
        "policy_arn": explanation.policy_arn,
        "reason": explanation.reason,
        "conditions": explanation.conditions,
        "matched_statements": explanation.matched_statements,
        "suggested_policy": explanation.suggested_policy,
        "decode_status": decode_status.value,
        "decode_error": decode_error,
        "raw": raw,
        "source_ip": None,
        "user_agent": None,
        "invoked_by": None,
    }
