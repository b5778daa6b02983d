"""The values that flow through the pipeline: sources -> extract -> decode -> explain -> sinks.

A source produces ``Origin``-tagged text, ``extract`` turns it into ``Finding``s, and the event
builder turns each finding into one schema-version-1 event (a plain ``dict``, see
``watcher/schema/event.schema.json``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

Event = dict[str, Any]

SourceKind = Literal["file", "cloudtrail", "journald", "cloudwatch_logs"]

# CloudTrail errorCodes that are authorization failures (globs); throttling and not-found are not.
DEFAULT_CLOUDTRAIL_ERROR_CODES = (
    "AccessDenied*",
    "*UnauthorizedOperation",
    "*AccessDeniedException",
)


class BlobState(StrEnum):
    """What the extractor saw after ``Encoded authorization failure message:``."""

    ABSENT = "absent"  # no prefix, or a placeholder such as ``...`` or ``[message]``
    COMPLETE = "complete"  # a whole blob, worth an STS call
    TRUNCATED = "truncated"  # cut short (``...`` after it, or too short to be whole): no STS call


class DecodeStatus(StrEnum):
    """The ``decode_status`` of an event (design section 2)."""

    DECODED = "decoded"
    CACHED = "cached"
    NOT_NEEDED = "not_needed"
    DISABLED = "disabled"
    TRUNCATED = "truncated"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DecodeResult:
    """What the decode stage made of one finding: the decoded message, or why there is none."""

    status: DecodeStatus
    message: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """One denial found in a piece of text, with everything the text itself gives away.

    ``start`` and ``end`` are character offsets of the denial within the text it was found in;
    ``ordinal`` numbers the denials of one text from 0, so that ids stay distinct and stable.
    """

    ordinal: int
    start: int
    end: int
    encoded_message: str | None = None
    blob_state: BlobState = BlobState.ABSENT
    principal_arn: str | None = None
    action: str | None = None
    resource: str | None = None
    policy_type: str | None = None
    explicit_deny: bool | None = None
    policy_arn: str | None = None
    because: str | None = None  # AWS's own clause, e.g. "no identity-based policy allows ..."
    error_code: str | None = None
    operation: str | None = None
    service: str | None = None
    request_id: str | None = None
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a piece of text came from: the file and the byte offset of its line."""

    source_kind: SourceKind
    source_path: str
    source_offset: int | None = None
    record_index: int | None = None
    text_offset: int | None = None  # start of the text when it is a window of a longer line
    file_key: str | None = None  # the followed file's own key (daemon); see events.event_id
