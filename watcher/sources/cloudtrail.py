"""sources: CloudTrail exports -> records -> the denials among them.

Reads every shape an export takes, by content rather than by name: the S3 delivery
``{"Records": [...]}`` (plain or gzip; streamed record by record with the C JSON decoder, so a
multi-GB file is never held in memory), ``aws cloudtrail lookup-events`` output
(``{"Events": [{"CloudTrailEvent": "<JSON>"}]}``), JSON lines (CloudWatch Logs exports, where a
timestamp may come first), a single record, and an EventBridge event whose ``detail`` is one.

A record is a denial when its ``errorCode`` matches the source's globs. Its ``errorMessage``
goes through the plain-text grammar (action, resource, policy type and ARN are more precise
there), and a blob in it is decoded with the recipient account's credentials.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from watcher.extract import find_denials, parse_leading_timestamp
from watcher.model import DEFAULT_CLOUDTRAIL_ERROR_CODES, Finding, Origin
from watcher.pipeline import Denial
from watcher.sources.lines import Readable

READ_BYTES = 1 << 20
MAX_RECORD_BYTES = 64 * 1024 * 1024  # a "record" larger than this is a malformed file
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024  # non-streamable shapes are read whole, up to this
SKIPPED_DIRECTORIES = ("CloudTrail-Digest", "CloudTrail-Insight")
RAW_MAX_CHARS = 4000

_RECORDS_PREFIX = re.compile(r'\s*\{\s*"Records"\s*:\s*\[')
_DELIVERY_MARKER = '{"eventVersion"'
_ERROR_CODE_KEY = '"errorCode"'
_LEADING_TOKEN = re.compile(r"^\S+\s+(?=\{)")

# Endpoint names (eventSource) whose IAM action prefix differs.
_IAM_PREFIX_OF_SOURCE = {
    "monitoring": "cloudwatch",
    "email": "ses",
    "elasticmapreduce": "elasticmapreduce",
    "es": "es",
    "streams.dynamodb": "dynamodb",
    "api.ecr": "ecr",
    "ecr-public": "ecr-public",
    "api.sagemaker": "sagemaker",
    "runtime.sagemaker": "sagemaker",
    "bedrock-runtime": "bedrock",
    "execute-api": "execute-api",
    "apigateway": "apigateway",
    "signin": "signin",
}


class CloudTrailFormatError(ValueError):
    """The file is not (or not yet) a complete CloudTrail export."""


def looks_like_cloudtrail(head: bytes) -> bool:
    """Sniff the first KiB: JSON that names CloudTrail record fields."""
    text = head.lstrip()
    text = _LEADING_TOKEN.sub("", text.decode("utf-8", "replace"), count=1).encode()
    if not text.startswith(b"{"):
        return False
    return any(key in head for key in (b'"Records"', b'"eventVersion"', b'"CloudTrailEvent"'))


def iter_records(stream: Readable, *, only_errors: bool = False) -> Iterator[dict[str, Any]]:
    """Every record in an export, in order; CloudTrailFormatError when it is incomplete or not
    records (JSON nested deeper than Python's parser goes included: hostile input).

    With ``only_errors``, a record whose text has no ``"errorCode"`` is not parsed at all and
    comes out as ``{}`` (so record indexes stay right): most of a trail is successful calls,
    and parsing them would be most of the work.
    """
    try:
        yield from _records(stream, only_errors=only_errors)
    except RecursionError:
        raise CloudTrailFormatError("JSON nested too deeply to be CloudTrail records") from None


def _records(stream: Readable, *, only_errors: bool) -> Iterator[dict[str, Any]]:
    reader = _TextReader(stream)
    head = reader.peek(4096)
    prefix = _RECORDS_PREFIX.match(head)
    if prefix is not None:
        if only_errors and reader.buffer.startswith(_DELIVERY_MARKER, prefix.end()):
            yield from _delivered_records(reader, prefix.end())
        else:
            yield from _stream_records_array(reader)
        return
    first_line = head.split("\n", 1)[0]
    if _single_json_object(_LEADING_TOKEN.sub("", first_line.strip(), count=1)):
        yield from _json_lines(reader, only_errors=only_errors)
        return
    document = reader.read_all(MAX_DOCUMENT_BYTES)
    try:
        value = json.loads(document)
    except ValueError as exc:
        raise CloudTrailFormatError(f"not valid JSON: {exc}") from exc
    yield from _unwrap(value)


def _single_json_object(text: str) -> bool:
    if not text.startswith("{"):
        return False
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


class _TextReader:
    """Incremental UTF-8 text over a byte stream, with a look-ahead buffer."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.buffer = ""
        self.eof = False

    def more(self) -> bool:
        if self.eof:
            return False
        data = self._stream.read(READ_BYTES)
        if not data:
            self.buffer += self._decoder.decode(b"", final=True)
            self.eof = True
            return False
        self.buffer += self._decoder.decode(data)
        return True

    def peek(self, size: int) -> str:
        while len(self.buffer) < size and self.more():
            pass
        return self.buffer[:size]

    def read_all(self, limit: int) -> str:
        while self.more():
            if len(self.buffer) > limit:
                raise CloudTrailFormatError(f"larger than {limit} bytes and not streamable")
        return self.buffer

    def lines(self) -> Iterator[str]:
        while True:
            newline = self.buffer.find("\n")
            if newline >= 0:
                line, self.buffer = self.buffer[:newline], self.buffer[newline + 1 :]
                yield line
            elif not self.more():
                if self.buffer:
                    line, self.buffer = self.buffer, ""
                    yield line
                return


def _stream_records_array(reader: _TextReader) -> Iterator[dict[str, Any]]:
    """Decode ``{"Records": [ r, r, ... ]}`` one record at a time, strictly (no stray commas)."""
    decoder = json.JSONDecoder()
    match = _RECORDS_PREFIX.match(reader.buffer)
    if match is None:  # pragma: no cover - checked by the caller
        raise CloudTrailFormatError("no Records array")
    position = match.end()
    first = True
    while True:
        position = _skip_whitespace(reader, position)
        if reader.buffer[position] == "]" and first:
            break
        if not first:  # after a record: "," then the next one, or "]"
            if reader.buffer[position] == "]":
                break
            if reader.buffer[position] != ",":
                raise CloudTrailFormatError(f"expected ',' or ']' between records, at {position}")
            position = _skip_whitespace(reader, position + 1)
        record, end = _decode_at(decoder, reader, position)
        if not isinstance(record, dict):
            raise CloudTrailFormatError("a record that is not a JSON object")
        yield record
        first = False
        position = end
        if position > READ_BYTES:  # drop what was decoded, now and then rather than per record
            reader.buffer = reader.buffer[position:]
            position = 0
    rest = reader.buffer[position + 1 :]
    while reader.more():
        rest = reader.buffer[position + 1 :]
    if rest.strip() != "}":
        raise CloudTrailFormatError("unexpected content after the Records array")


def _decode_at(decoder: json.JSONDecoder, reader: _TextReader, position: int) -> tuple[Any, int]:
    """The JSON value at ``position``, reading more while it is cut by the end of the buffer."""
    while True:
        try:
            return decoder.raw_decode(reader.buffer, position)
        except ValueError as exc:
            if len(reader.buffer) - position <= MAX_RECORD_BYTES and reader.more():
                continue  # the record goes on in the next read: decode it again, whole
            raise CloudTrailFormatError(f"malformed or incomplete record: {exc}") from exc


def _skip_whitespace(reader: _TextReader, position: int) -> int:
    """The next non-space position, reading more as needed; incomplete file if there is none."""
    while True:
        while position < len(reader.buffer) and reader.buffer[position].isspace():
            position += 1
        if position < len(reader.buffer):
            return position
        if not reader.more():
            raise CloudTrailFormatError("the Records array is not closed (file incomplete?)")


def _delivered_records(reader: _TextReader, position: int) -> Iterator[dict[str, Any]]:
    """The fast path for files as CloudTrail delivers them: compact JSON in which every record
    starts with ``{"eventVersion"``. Records are cut at those markers (C-speed ``find``) and
    only those that mention ``"errorCode"`` are decoded (which also checks them)."""
    decoder = json.JSONDecoder()
    while True:
        following = reader.buffer.find(_DELIVERY_MARKER, position + 1)
        if following < 0 and reader.more():
            continue
        if following < 0:  # the last record: it must be followed by the end of the array
            record, end = _decode_at(decoder, reader, position)
            if reader.buffer[end:].strip() != "]}":
                raise CloudTrailFormatError("the Records array is not closed (file incomplete?)")
            yield record
            return
        if reader.buffer.find(_ERROR_CODE_KEY, position, following) >= 0:  # no slice copy
            record, end = _decode_at(decoder, reader, position)
            if reader.buffer[end:following].strip() != ",":
                raise CloudTrailFormatError(f"malformed record before offset {following}")
            yield record
        else:
            yield {}
        position = following
        if position > READ_BYTES:
            reader.buffer = reader.buffer[position:]
            position = 0


def _json_lines(reader: _TextReader, *, only_errors: bool) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(reader.lines(), start=1):
        text = _LEADING_TOKEN.sub("", line.strip(), count=1)
        if not text:
            continue
        if only_errors and _ERROR_CODE_KEY not in text:
            yield {}
            continue
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise CloudTrailFormatError(f"line {number}: not valid JSON: {exc}") from exc
        yield from _unwrap(value)


def _unwrap(value: object) -> Iterator[dict[str, Any]]:
    """Records from any of the shapes an export or an event stream takes."""
    if isinstance(value, list):
        for item in value:
            yield from _unwrap(item)
        return
    if not isinstance(value, dict):
        return
    if isinstance(value.get("Records"), list):
        yield from (r for r in value["Records"] if isinstance(r, dict))
    elif isinstance(value.get("Events"), list):
        for event in value["Events"]:
            embedded = event.get("CloudTrailEvent") if isinstance(event, dict) else None
            if isinstance(embedded, str):
                try:
                    inner = json.loads(embedded)
                except ValueError as exc:
                    raise CloudTrailFormatError(f"CloudTrailEvent is not JSON: {exc}") from exc
                yield from _unwrap(inner)
            elif isinstance(embedded, dict):
                yield embedded
    elif isinstance(value.get("detail"), dict) and "eventName" in value["detail"]:
        yield value["detail"]
    elif "eventName" in value or "eventVersion" in value:
        yield value


# -- records -> denials -------------------------------------------------------------------------


def is_denial(record: Mapping[str, Any], error_codes: tuple[str, ...]) -> bool:
    code = record.get("errorCode")
    return isinstance(code, str) and any(fnmatchcase(code, glob) for glob in error_codes)


def record_denials(
    records: Iterator[dict[str, Any]],
    path: str,
    observed_at: datetime,
    error_codes: tuple[str, ...] = DEFAULT_CLOUDTRAIL_ERROR_CODES,
    profile: str | None = None,
) -> Iterator[Denial]:
    """The denials among ``records``, each with the record's context."""
    for index, record in enumerate(records):
        if record and is_denial(record, error_codes):
            yield record_denial(record, index, path, observed_at, profile)


def record_denial(
    record: Mapping[str, Any],
    index: int,
    path: str,
    observed_at: datetime,
    profile: str | None = None,
) -> Denial:
    message = _text(record.get("errorMessage")) or ""
    user_identity = record.get("userIdentity")
    identity: Mapping[str, Any] = user_identity if isinstance(user_identity, dict) else {}
    found = find_denials(message, now=observed_at)
    text = found[0] if found else Finding(ordinal=0, start=0, end=len(message))
    finding = Finding(  # the message's own findings, completed from the record
        ordinal=0,
        start=text.start,
        end=text.end,
        encoded_message=text.encoded_message,
        blob_state=text.blob_state,
        principal_arn=text.principal_arn or _principal(identity),
        action=text.action or _action(record),
        resource=text.resource,
        policy_type=text.policy_type,
        explicit_deny=text.explicit_deny,
        policy_arn=text.policy_arn,
        because=text.because,
        error_code=_text(record.get("errorCode")),
        operation=_text(record.get("eventName")),
        service=text.service,
        request_id=_text(record.get("requestID")) or _text(record.get("requestId")),
        timestamp=parse_leading_timestamp(_text(record.get("eventTime")) or "") or None,
    )
    raw = json.dumps(record, separators=(",", ":"))[:RAW_MAX_CHARS]  # redacted with the event
    account = _text(record.get("recipientAccountId"))
    event_id = _text(record.get("eventID"))
    extra: dict[str, object] = {
        "source_ip": _text(record.get("sourceIPAddress")),
        "user_agent": _text(record.get("userAgent")),
        "invoked_by": _text(identity.get("invokedBy")),
    }
    # The record is authoritative on where the call landed; the ARNs are only a fallback.
    located = {"account_id": account, "region": _text(record.get("awsRegion"))}
    extra.update({key: value for key, value in located.items() if value is not None})
    if event_id is not None:
        # CloudTrail may deliver an event twice; the same eventID gives the same event_id.
        extra["event_id"] = hashlib.sha256(f"cloudtrail\x1f{event_id}".encode()).hexdigest()[:32]
    return Denial(
        finding=finding,
        text=raw,
        origin=Origin(source_kind="cloudtrail", source_path=path, record_index=index),
        observed_at=observed_at,
        profile=profile,
        account_id=account,
        extra=extra,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _action(record: Mapping[str, Any]) -> str | None:
    source = _text(record.get("eventSource"))
    name = _text(record.get("eventName"))
    if source is None or name is None:
        return None
    endpoint = source.removesuffix(".amazonaws.com")
    prefix = _IAM_PREFIX_OF_SOURCE.get(endpoint, endpoint.rsplit(".", 1)[-1])
    return f"{prefix}:{name}"


def _principal(identity: Mapping[str, Any]) -> str | None:
    """The best name a record has for who made the call."""
    for key in ("arn", "invokedBy", "principalId", "userName"):
        value = _text(identity.get(key))
        if value is not None:
            return value
    return _text(identity.get("type"))
