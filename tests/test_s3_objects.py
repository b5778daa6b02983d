"""S3 objects -> denials: CloudTrail deliveries and Firehose-written CloudWatch Logs records."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime

import pytest

from tests.conftest import DATA
from watcher.model import DEFAULT_CLOUDTRAIL_ERROR_CODES
from watcher.sources.s3_objects import (
    ObjectFormatError,
    UnrecognisedObjectError,
    notification_key,
    object_denials,
)

WITH_A_DENIAL = "218007301253_CloudTrail_us-east-1_20230710T1200Z_iLj9fb7yyUG9X4Bf.json"
NOW = datetime(2026, 11, 29, tzinfo=UTC)
DENIAL = (
    "User: arn:aws:iam::111122223333:user/ana is not authorized to perform: "
    "s3:GetObject on resource: arn:aws:s3:::bucket/key"
)


def denials_of(body: bytes) -> list:
    return object_denials(
        io.BytesIO(body),
        "s3://trail/k",
        NOW,
        error_codes=DEFAULT_CLOUDTRAIL_ERROR_CODES,
        profile=None,
    )


def subscription(group: str, events: list[tuple[str, str]]) -> dict:
    return {
        "messageType": "DATA_MESSAGE",
        "owner": "111122223333",
        "logGroup": group,
        "logStream": "2026/11/29/[$LATEST]abc",
        "subscriptionFilters": ["denials"],
        "logEvents": [
            {"id": event_id, "timestamp": 1796000000000, "message": message}
            for event_id, message in events
        ],
    }


class TestCloudTrail:
    def test_a_gzip_delivery_gives_the_same_denials_as_the_plain_file(self):
        """The real trail file, gzip as S3 holds it, or plain: same denials, same ids."""
        sample = (DATA / "cloudtrail" / WITH_A_DENIAL).read_bytes()
        plain = denials_of(sample)
        zipped = denials_of(gzip.compress(sample))
        assert plain
        assert [d.extra["event_id"] for d in plain] == [d.extra["event_id"] for d in zipped]


class TestSubscriptionRecords:
    def test_concatenated_records_give_one_denial_per_denying_event(self):
        """Firehose writes records back to back; each event's message goes through extract."""
        body = json.dumps(subscription("/aws/lambda/f", [("1", DENIAL), ("2", "fine")]))
        body += json.dumps(subscription("/aws/lambda/g", [("3", DENIAL)]))
        denials = denials_of(gzip.compress(body.encode()))
        assert [
            "/aws/lambda/f/2026/11/29/[$LATEST]abc",
            "/aws/lambda/g/2026/11/29/[$LATEST]abc",
        ] == [d.origin.source_path for d in denials]
        assert {"cloudwatch_logs"} == {d.origin.source_kind for d in denials}
        assert ["2026-11-30T00:53:20.000Z"] * 2 == [d.finding.timestamp for d in denials]

    def test_a_control_message_holds_no_denial(self):
        body = json.dumps({"messageType": "CONTROL_MESSAGE", "logEvents": []}).encode()
        assert [] == denials_of(body)

    def test_broken_json_is_a_format_error(self):
        body = json.dumps(subscription("/g", [("1", DENIAL)])).encode()[:-5]
        with pytest.raises(ObjectFormatError):
            denials_of(gzip.compress(body))


class TestOtherObjects:
    @pytest.mark.parametrize("body", [b"hello", b"{}", gzip.compress(b"plain text")])
    def test_something_else_is_not_recognised(self, body):
        with pytest.raises(UnrecognisedObjectError):
            denials_of(body)

    @pytest.mark.parametrize(
        "body",
        [
            b'{"Records": [{"errorCode": "AccessDenied", "x": ' + b"[" * 200_000,
            b'{"Records": [{"errorCode": "AccessDenied", "x": '
            + b"[" * 200_000
            + b"]" * 200_000
            + b"}]}",
            b"[" * 5000 + b"]" * 5000,
        ],
    )
    def test_json_nested_too_deeply_is_named_not_raised_as_recursion(self, body):
        """An outside tester's object nested 200,000 deep raised RecursionError, which the
        ``s3`` source took for a listing failure: its bucket was stuck for good. It is an
        object the sources name and pass now."""
        for shape in (body, gzip.compress(body)):
            with pytest.raises((ObjectFormatError, UnrecognisedObjectError)):
                denials_of(shape)

    def test_truncated_gzip_is_a_format_error(self):
        sample = sorted((DATA / "cloudtrail").glob("*.json"))[0].read_bytes()
        with pytest.raises(ObjectFormatError):
            denials_of(gzip.compress(sample)[:-100])


def test_notification_keys_are_url_decoded_with_plus_for_space():
    assert "AWSLogs/a b/c+d=.json.gz" == notification_key("AWSLogs/a+b/c%2Bd%3D.json.gz")
