"""sources: an SQS message body -> what the ``s3_sqs`` source must read; pure, no I/O.

    body -> [SNS envelope] -> S3 notification     -> objects (bucket, URL-decoded key, eTag)
                           -> EventBridge event   -> "Object Created": one object (its key
                                                     as it is: EventBridge does not encode it)
                                                  -> "AWS API Call via CloudTrail": one record
                           -> s3:TestEvent        -> nothing (deleted quietly)

One queue may carry all of these at once. Records of other events (``ObjectRemoved:*``,
"Object Deleted") are ignored; a body that is none of the above raises ``MessageFormatError``,
and the consumer names the message, logs it once and deletes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from watcher.sources.s3_objects import notification_key
from watcher.state import ObjectVersion

API_CALL_DETAIL_TYPE = "AWS API Call via CloudTrail"
OBJECT_CREATED_DETAIL_TYPE = "Object Created"
_MAX_ENVELOPES = 2  # SNS around EventBridge around nothing deeper exists in practice


class MessageFormatError(ValueError):
    """The body is not JSON, or not a shape the source knows."""


@dataclass(frozen=True, slots=True)
class MessageContents:
    """What one message asks the source to read."""

    objects: tuple[ObjectVersion, ...] = ()
    api_calls: tuple[dict[str, Any], ...] = ()  # CloudTrail records from EventBridge
    test_event: bool = False  # S3's s3:TestEvent, sent when notifications are configured


def message_contents(body: str) -> MessageContents:
    """The objects and CloudTrail records a message names. Raises MessageFormatError."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise MessageFormatError(f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise MessageFormatError("the body is JSON nested too deeply") from None
    return _contents(document, envelopes=0)


def _contents(document: object, *, envelopes: int) -> MessageContents:
    if not isinstance(document, dict):
        raise MessageFormatError("the body is not a JSON object")
    if isinstance(document.get("Message"), str) and "TopicArn" in document:
        if envelopes >= _MAX_ENVELOPES:
            raise MessageFormatError("SNS envelopes nested too deep")
        try:
            inner = json.loads(document["Message"])
        except ValueError as exc:
            raise MessageFormatError(f"the SNS Message is not JSON: {exc}") from None
        except RecursionError:
            raise MessageFormatError("the SNS Message is JSON nested too deeply") from None
        return _contents(inner, envelopes=envelopes + 1)
    if document.get("Event") == "s3:TestEvent":
        return MessageContents(test_event=True)
    if isinstance(document.get("Records"), list):
        return MessageContents(objects=_notification_objects(document["Records"]))
    if "detail-type" in document:
        return _eventbridge_contents(document)
    raise MessageFormatError("neither an S3 notification nor an EventBridge event")


def _notification_objects(records: list[object]) -> tuple[ObjectVersion, ...]:
    objects = []
    for record in records:
        if not isinstance(record, dict):
            raise MessageFormatError("a notification record that is not a JSON object")
        if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
            continue
        s3 = _mapping(record, "s3")
        bucket = _mapping(s3, "bucket").get("name")
        item = _mapping(s3, "object")
        key = item.get("key")
        key = notification_key(key) if isinstance(key, str) else key
        objects.append(_version(bucket, key, item.get("eTag"), item.get("sequencer")))
    return tuple(objects)


def _eventbridge_contents(event: dict[str, Any]) -> MessageContents:
    detail = _mapping(event, "detail")
    kind = event["detail-type"]
    if kind == API_CALL_DETAIL_TYPE:
        if not isinstance(detail.get("eventName"), str):
            raise MessageFormatError("an 'AWS API Call via CloudTrail' event without eventName")
        return MessageContents(api_calls=(detail,))
    if kind == OBJECT_CREATED_DETAIL_TYPE:
        item = _mapping(detail, "object")
        bucket = _mapping(detail, "bucket").get("name")
        etag = item.get("etag", item.get("eTag"))
        version = _version(bucket, item.get("key"), etag, item.get("sequencer"))
        return MessageContents(objects=(version,))
    return MessageContents()  # another EventBridge event: nothing to read


def _version(bucket: object, key: object, etag: object, sequencer: object) -> ObjectVersion:
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise MessageFormatError("an object record without a bucket name or key")
    return ObjectVersion(
        bucket=bucket,
        key=key,
        etag=etag.strip('"') if isinstance(etag, str) else "",
        sequencer=sequencer if isinstance(sequencer, str) else "",
    )


def _mapping(document: dict[str, Any], key: str) -> dict[str, Any]:
    value = document.get(key)
    if not isinstance(value, dict):
        raise MessageFormatError(f"{key!r} is missing or not a JSON object")
    return value
