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

# A key that names a secret, then ``=`` or ``:`` (JSON's ``"Key": `` too), then the value:
# quoted (spaces and escapes allowed; a quote left open by a cut runs to the line's end) or
# a bare word, after an optional auth scheme.
_SECRET_PAIR_RE = re.compile(
    r"(?i)(?:secret|token|passw(?:or)?d|passphrase|api[_-]?key|private[_-]?key"
    r"|authorization)[\w.-]*+[\"']?[ \t]*+[=:][ \t]*+"
    r"(?:(?:bearer|basic|digest|token)[ \t]++)?"
    r"(?:\"(?P<double>(?:[^\"\\\n]|\\.?)*+)(?:\"|(?=\n)|\Z)"
    r"|'(?P<single>[^'\n]*+)(?:'|(?=\n)|\Z)|(?P<bare>[^\s\"',;&]++))"
)
_BEARER_RE = re.compile(r"(?i)\b(?:Bearer|Basic)\s++(?P<token>[A-Za-z0-9._~+/=-]{8,}+)")
_URL_PASSWORD_RE = re.compile(r"://[^/\s:@]++:(?P<password>[^/\s@]++)@")
# Where a key-value pair may start; found with str.find on the lowered text (fast), then
# _SECRET_PAIR_RE is matched there.
_SECRET_WORDS = (
    "secret", "token", "passw", "passphrase", "api_key", "api-key", "apikey", "private_key",
    "private-key", "privatekey", "authorization",
)  # fmt: skip
# A run that may be an AWS secret access key on its own: checked to be exactly 40 base64
# characters with upper, lower and a digit (so a 40-hex git hash is left alone), and not part
# of a longer token such as a blob.
_KEY_RUN_RE = re.compile(r"[A-Za-z0-9/+=_-]{40,}")
_AWS_SECRET_KEY_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+"
)
REDACTED = "[REDACTED]"


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
    """At most 4 KiB of the text around the denial, secrets masked before it is cut.

    Masking first matters: a cut inside ``password=`` would leave a value no rule recognises.
    """
    text = text.rstrip("\r\n")
    spans = secret_spans(text)
    if len(text.encode()) <= RAW_MAX_BYTES:
        return _masked(text, spans)
    start = max(0, finding.start - RAW_CONTEXT_BEFORE_CHARS)
    end = start + RAW_MAX_BYTES  # characters: at least RAW_MAX_BYTES bytes once encoded
    kept = [(max(b, start) - start, min(e, end) - start) for b, e in spans if e > start and b < end]
    masked = _masked(text[start:end], kept)
    return masked.encode()[:RAW_MAX_BYTES].decode("utf-8", "ignore")


def secret_spans(text: str) -> list[tuple[int, int]]:
    """Where the secret values in ``text`` are (the keys and schemes around them are kept)."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a few non-ASCII letters change length when lowered
        lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    spans = _pair_spans(text, lowered)
    if "bearer" in lowered or "basic" in lowered:
        spans.extend(m.span("token") for m in _BEARER_RE.finditer(text))
    if "://" in text and "@" in text:
        spans.extend(m.span("password") for m in _URL_PASSWORD_RE.finditer(text))
    spans.extend(m.span() for m in _KEY_RUN_RE.finditer(text) if _is_aws_secret_key(m.group()))
    return _merged(spans)


def _pair_spans(text: str, lowered: str) -> list[tuple[int, int]]:
    spans = []
    for word in _SECRET_WORDS:
        start = lowered.find(word)
        while start >= 0:
            match = _SECRET_PAIR_RE.match(text, start)
            if match is not None:
                group = next(g for g in ("double", "single", "bare") if match.group(g) is not None)
                if match.group(group) and match.group(group) != REDACTED:
                    spans.append(match.span(group))
            start = lowered.find(word, start + len(word))
    return spans


def _is_aws_secret_key(run: str) -> bool:
    return (
        len(run) == 40
        and _AWS_SECRET_KEY_CHARS.issuperset(run)
        and any(c.isupper() for c in run)
        and any(c.islower() for c in run)
        and any(c.isdigit() for c in run)
    )


def redact_secrets(text: str) -> str:
    """Mask secret values: ``password=...`` and the like in every common quoting, JSON
    ``"SecretAccessKey": "..."``, bearer tokens, ``user:pass@`` in URLs, bare AWS secret keys."""
    return _masked(text, secret_spans(text))


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        elif end > begin:
            merged.append((begin, end))
    return merged


def _masked(text: str, spans: list[tuple[int, int]]) -> str:
    parts = []
    position = 0
    for begin, end in spans:
        parts.append(text[position:begin])
        parts.append(REDACTED)
        position = end
    parts.append(text[position:])
    return "".join(parts)


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
        "truncated_fields": None,
    }
