"""Helpers for the s3_sqs tests and benchmark: a trail bucket notifying a queue in moto's server,
CloudTrail objects made of numbered denials, and `authz-watcher run` processes reading the queue.

`TrailQueue` sets the AWS side up as the README tells a person to (bucket, queue, ObjectCreated
notifications); S3 itself then sends the notifications (and its s3:TestEvent). `QueueDaemon`
is test_daemon's `Watcher` reading the queue through `AWS_ENDPOINT_URL` (moto), its events in a
file sink under ``root/out`` (on a full tmpfs there, it holds its messages while the test wants).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from tests.moto_server import MotoServer
from tests.test_daemon import Watcher

ACCOUNT = "111122223333"
BUCKET = "org-trail"
TRAIL_PREFIX = f"AWSLogs/o-abc123/{ACCOUNT}/CloudTrail/us-east-1/2026/11/29/"


def trail_record(number: int, *, denial: bool = True) -> dict[str, Any]:
    """A CloudTrail record, in the key order CloudTrail writes (``eventVersion`` first)."""
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/user{number}",
            "accountId": ACCOUNT,
        },
        "eventTime": "2026-11-29T05:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "10.0.0.1",
        "requestID": f"REQ{number:08d}",
        "eventID": f"00000000-0000-4000-8000-{number:012d}",
        "recipientAccountId": ACCOUNT,
    }
    if denial:
        record["errorCode"] = "AccessDenied"
        record["errorMessage"] = (
            f"User: arn:aws:iam::{ACCOUNT}:user/user{number} is not authorized to perform: "
            f"s3:GetObject on resource: arn:aws:s3:::data/object{number}"
        )
    return record


def trail_object(records: list[dict[str, Any]]) -> bytes:
    """A CloudTrail delivery as S3 holds it: compact JSON, gzip."""
    return gzip.compress(json.dumps({"Records": records}, separators=(",", ":")).encode(), 1)


def trail_key(name: str) -> str:
    return f"{TRAIL_PREFIX}{ACCOUNT}_CloudTrail_us-east-1_20261129T0500Z_{name}.json.gz"


def api_call_event(record: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge event CloudTrail sends for one management event."""
    return {
        "version": "0",
        "id": f"eb-{record['eventID']}",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": record["eventTime"],
        "region": "us-east-1",
        "resources": [],
        "detail": record,
    }


def sns_wrapped(document: dict[str, Any]) -> dict[str, Any]:
    """What SNS delivers to a subscribed queue (raw delivery off)."""
    return {
        "Type": "Notification",
        "MessageId": "5b5c2e0c-0000-4000-8000-000000000000",
        "TopicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:trail-topic",
        "Message": json.dumps(document),
        "Timestamp": "2026-11-29T05:00:00.000Z",
    }


def notification(bucket: str, key: str, etag: str = "0f343b0931126a20f133d67c2b018a3b") -> dict:
    """An S3 ObjectCreated notification as S3 sends it (the key URL-encoded)."""
    s3 = {"bucket": {"name": bucket}, "object": {"key": quote_plus(key), "eTag": etag}}
    return {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": s3}]}


def object_created_event(bucket: str, key: str) -> dict[str, Any]:
    """The EventBridge event S3 sends when a bucket has EventBridge notifications on."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "region": "us-east-1",
        "detail": {
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 1, "etag": "b1946ac92492d2347c6235b4d2611184"},
            "reason": "PutObject",
        },
    }


class TrailQueue:
    """A bucket that notifies a queue of every ObjectCreated, in moto's server."""

    def __init__(
        self, aws: MotoServer, name: str = "trail-objects", *, keep_test_event: bool = False
    ) -> None:
        self.aws = aws
        self.sqs = aws.client("sqs")
        self.s3 = aws.client("s3")
        self.url: str = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        self.s3.create_bucket(Bucket=BUCKET)
        self.s3.put_bucket_notification_configuration(
            Bucket=BUCKET,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"QueueArn": arn["Attributes"]["QueueArn"], "Events": ["s3:ObjectCreated:*"]}
                ]
            },
        )
        if not keep_test_event:  # S3 sent its s3:TestEvent; most tests count only objects
            self.sqs.purge_queue(QueueUrl=self.url)

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    def send(self, body: dict[str, Any] | str) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        self.sqs.send_message(QueueUrl=self.url, MessageBody=text)

    def counts(self) -> tuple[int, int]:
        """(visible, in flight) messages."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)
        values = attributes["Attributes"]
        return int(values[names[0]]), int(values[names[1]])

    def empty(self) -> bool:
        return self.counts() == (0, 0)


class QueueDaemon(Watcher):
    """`authz-watcher run` over the queue, its events in a file sink (``events_path``)."""

    def __init__(self, root: Path, queue: TrailQueue, **options: object) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.queue_url = queue.url
        self.options = {"visibility_timeout": "30s", "wait_time": "1s", "workers": 4, **options}
        super().__init__(root, env=queue.aws.env())

    def write_config(self, extra: str = "", *_: object, **__: object) -> None:
        source = "".join(f"    {key}: {value}\n" for key, value in self.options.items())
        self.config.write_text(
            f"state_dir: {self.root / 'state'}\n"
            f"sources:\n  - type: s3_sqs\n    queue_url: {self.queue_url}\n{source}"
            f"decode:\n  enabled: false\nsinks:\n  - type: file\n    path: {self.events_path}\n"
            + extra
        )

    def logged(self, name: str) -> list[dict[str, Any]]:
        return [entry for entry in self.log_events() if entry.get("event") == name]
