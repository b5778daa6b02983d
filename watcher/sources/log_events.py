"""sources: a CloudWatch Logs event -> the message, where it came from, and when.

Shared by the two ways such events arrive: ``FilterLogEvents`` (the ``cloudwatch_logs``
source) and subscription records (``{"messageType": "DATA_MESSAGE", "logEvents": [...]}``)
that Firehose writes to S3 (the ``s3``/``s3_sqs`` sources). Both give an event the same
origin, so the same log event read either way gets the same ``event_id``: CloudWatch's
``eventId`` (or ``id``) is the key, and no position enters it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from watcher.events import iso_utc
from watcher.model import Origin, SourceKind

SOURCE_KIND: SourceKind = "cloudwatch_logs"


@dataclass(frozen=True, slots=True)
class LogEvent:
    text: str
    origin: Origin
    timestamp: str | None  # ISO-8601 UTC of the event's own time


def log_event(group: str, stream: str, event: Mapping[str, Any]) -> LogEvent | None:
    """One event as FilterLogEvents or a subscription record gives it; None when malformed."""
    message = event.get("message")
    if not isinstance(message, str):
        return None
    event_id = event.get("eventId", event.get("id"))
    key = f"cwl:{group}:{event_id}" if isinstance(event_id, str) and event_id else None
    origin = Origin(source_kind=SOURCE_KIND, source_path=f"{group}/{stream}", file_key=key)
    return LogEvent(message, origin, _timestamp(event.get("timestamp")))


def subscription_events(document: Mapping[str, Any]) -> Iterator[LogEvent]:
    """The log events of one subscription record (control messages hold none)."""
    if document.get("messageType") != "DATA_MESSAGE":
        return
    group, stream = document.get("logGroup"), document.get("logStream")
    events = document.get("logEvents")
    if not isinstance(group, str) or not isinstance(stream, str) or not isinstance(events, list):
        return
    for event in events:
        found = log_event(group, stream, event) if isinstance(event, dict) else None
        if found is not None:
            yield found


def is_subscription_record(document: object) -> bool:
    return isinstance(document, dict) and document.get("messageType") in (
        "DATA_MESSAGE",
        "CONTROL_MESSAGE",
    )


def _timestamp(millis: object) -> str | None:
    if isinstance(millis, bool) or not isinstance(millis, int | float):
        return None
    try:
        return iso_utc(datetime.fromtimestamp(millis / 1000, tz=UTC))
    except (OverflowError, OSError, ValueError):
        return None
