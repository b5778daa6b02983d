"""sources: an S3 object's body -> the denials in it; shared by the ``s3`` and ``s3_sqs`` kinds.

Two shapes are recognised by content: CloudTrail deliveries (``{"Records": [...]}``, gzip or
not, streamed record by record through ``sources/cloudtrail.py``) and CloudWatch Logs
subscription records as Firehose writes them (one or more concatenated
``{"messageType": "DATA_MESSAGE", "logGroup": ..., "logEvents": [...]}`` documents, usually
gzip). Anything else raises ``UnrecognisedObjectError``; a broken object raises
``ObjectFormatError``. Either way the caller names the object and moves on.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any, cast
from urllib.parse import unquote_plus

from watcher.pipeline import Denial, denials_in
from watcher.sources.cloudtrail import (
    CloudTrailFormatError,
    iter_records,
    looks_like_cloudtrail,
    record_denials,
)
from watcher.sources.lines import Readable
from watcher.sources.log_events import is_subscription_record, subscription_events

# CloudTrail log files, not digests or insights: .../CloudTrail/<region>/.../<name>.json.gz
CLOUDTRAIL_LOG_KEY = r"(?:^|/)CloudTrail/.*_CloudTrail_[^/]*\.json(?:\.gz)?$"
_GZIP_MAGIC = b"\x1f\x8b"
_SNIFF_BYTES = 4096
MAX_SUBSCRIPTION_OBJECT_BYTES = 256 * 1024 * 1024  # Firehose objects are far smaller


class UnrecognisedObjectError(ValueError):
    """Neither a CloudTrail delivery nor CloudWatch Logs subscription records."""


class ObjectFormatError(ValueError):
    """Looked like a known shape but is broken (truncated gzip, invalid JSON)."""


def object_path(bucket: str, key: str) -> str:
    """How events name the object (``source_path``)."""
    return f"s3://{bucket}/{key}"


def notification_key(raw: str) -> str:
    """A key as S3 notifications give it: URL-encoded, with ``+`` for a space."""
    return unquote_plus(raw)


def object_denials(
    body: Readable,
    path: str,
    observed_at: datetime,
    *,
    error_codes: tuple[str, ...],
    profile: str | None,
) -> list[Denial]:
    """Every denial in the object, in order. Raises UnrecognisedObjectError or ObjectFormatError."""
    try:
        stream, head = _unzipped(body)
        if looks_like_cloudtrail(head):
            records = iter_records(stream, only_errors=True)
            return list(record_denials(records, path, observed_at, error_codes, profile))
        if head.lstrip().startswith(b'{"messageType"') or b'"logEvents"' in head:
            return list(_subscription_denials(stream, observed_at, profile))
    except (CloudTrailFormatError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ObjectFormatError(str(exc)) from exc
    except RecursionError:  # JSON nested deeper than the parser goes: hostile, not CloudTrail
        raise ObjectFormatError("JSON nested too deeply") from None
    raise UnrecognisedObjectError(
        "neither a CloudTrail log file nor CloudWatch Logs subscription records"
    )


class _Peekable:
    """Keeps the first bytes read so they can be sniffed and then read again."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self._head = b""

    def peek(self, size: int) -> bytes:
        while len(self._head) < size:
            more = self._stream.read(size - len(self._head))
            if not more:
                break
            self._head += more
        return self._head[:size]

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            if size < 0:
                data, self._head = self._head + self._stream.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._stream.read(size)


def _unzipped(body: Readable) -> tuple[Readable, bytes]:
    raw = _Peekable(body)
    if raw.peek(2) == _GZIP_MAGIC:
        unzipped = gzip.GzipFile(fileobj=cast("IO[bytes]", raw), mode="rb")
        return unzipped, unzipped.peek(_SNIFF_BYTES)[:_SNIFF_BYTES]
    return raw, raw.peek(_SNIFF_BYTES)


def _subscription_denials(
    stream: Readable, observed_at: datetime, profile: str | None
) -> Iterator[Denial]:
    data = stream.read(MAX_SUBSCRIPTION_OBJECT_BYTES + 1)
    if len(data) > MAX_SUBSCRIPTION_OBJECT_BYTES:
        raise ObjectFormatError(f"subscription records larger than {MAX_SUBSCRIPTION_OBJECT_BYTES}")
    for document in _concatenated_json(data.decode("utf-8", "replace")):
        if not is_subscription_record(document):
            raise ObjectFormatError("a document among the records is not a subscription record")
        for event in subscription_events(document):
            yield from denials_in(event.text, event.origin, observed_at, profile, event.timestamp)


def _concatenated_json(text: str) -> Iterator[Any]:
    """Firehose writes records back to back with no separator: ``{...}{...}``."""
    decoder = json.JSONDecoder()
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return
        try:
            document, position = decoder.raw_decode(text, position)
        except RecursionError:
            raise ObjectFormatError(f"JSON nested too deeply at character {position}") from None
        except ValueError as exc:
            raise ObjectFormatError(f"invalid JSON at character {position}: {exc}") from exc
        yield document
