"""SQS message bodies -> what the s3_sqs source reads: every shape one queue may carry."""

from __future__ import annotations

import json

import pytest

from tests.trail_queue import (
    api_call_event,
    notification,
    object_created_event,
    sns_wrapped,
    trail_record,
)
from watcher.config import parse_config
from watcher.errors import ConfigError
from watcher.sources.s3_sqs import queue_region
from watcher.sources.sqs_messages import MessageContents, MessageFormatError, message_contents
from watcher.state import ObjectVersion

KEY = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/29/a b+c.json.gz"


def contents(document: object) -> MessageContents:
    return message_contents(json.dumps(document))


class TestShapes:
    def test_an_s3_notification_names_its_object_with_the_key_url_decoded(self):
        """S3 encodes keys (a space as '+', '+' as '%2B'); the source reads the real key."""
        expected = ObjectVersion("trail", KEY, "0f343b0931126a20f133d67c2b018a3b", "")
        assert (expected,) == contents(notification("trail", KEY)).objects

    def test_an_sns_envelope_gives_what_it_wraps(self):
        """SNS around a notification or an EventBridge event: the same contents as without."""
        direct = notification("trail", KEY)
        event = api_call_event(trail_record(1))
        assert contents(direct) == contents(sns_wrapped(direct))
        assert contents(event) == contents(sns_wrapped(event))

    def test_an_eventbridge_api_call_gives_its_cloudtrail_record(self):
        """'AWS API Call via CloudTrail': ``detail`` is the record, as in a trail file."""
        record = trail_record(1)
        assert MessageContents(api_calls=(record,)) == contents(api_call_event(record))

    def test_an_eventbridge_object_created_names_its_object_with_the_key_as_given(self):
        """EventBridge's 'Object Created' from S3: bucket, key (not URL-encoded there, unlike
        a notification's) and etag."""
        expected = ObjectVersion("trail", KEY, "b1946ac92492d2347c6235b4d2611184", "")
        assert (expected,) == contents(object_created_event("trail", KEY)).objects

    def test_the_test_event_and_other_events_ask_for_nothing(self):
        """s3:TestEvent is recognised; ObjectRemoved records and other EventBridge events are
        nothing to read (their messages are deleted quietly)."""
        removed = notification("trail", KEY)
        removed["Records"][0]["eventName"] = "ObjectRemoved:Delete"
        deleted = object_created_event("trail", KEY) | {"detail-type": "Object Deleted"}
        test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "trail"}
        assert MessageContents(test_event=True) == contents(test_event)
        assert MessageContents() == contents(removed)
        assert MessageContents() == contents(deleted)

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            ("not JSON {", "the body is not JSON"),
            ("[1, 2]", "the body is not a JSON object"),
            ('{"hello": "world"}', "neither an S3 notification nor an EventBridge event"),
            ('{"TopicArn": "arn", "Message": "{oops"}', "the SNS Message is not JSON"),
            ('{"Records": [{"eventName": "ObjectCreated:Put"}]}', "'s3' is missing"),
            (
                '{"detail-type": "AWS API Call via CloudTrail", "detail": {}}',
                "without eventName",
            ),
            ("[" * 100_000 + "]" * 100_000, "the body is JSON nested too deeply"),
            (
                json.dumps({"TopicArn": "arn", "Message": "[" * 5000 + "]" * 5000}),
                "the SNS Message is JSON nested too deeply",
            ),
        ],
    )
    def test_a_malformed_body_says_why(self, body, reason):
        """Each malformed body raises MessageFormatError with the reason the log line gives."""
        with pytest.raises(MessageFormatError, match=reason):
            message_contents(body)


class TestQueueRegion:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("https://sqs.eu-west-1.amazonaws.com/111122223333/q", "eu-west-1"),
            ("https://queue.amazonaws.com/111122223333/q", "us-east-1"),
            ("http://127.0.0.1:5000/123456789012/q", None),
        ],
    )
    def test_the_region_comes_from_the_queue_url_when_it_names_one(self, url, expected):
        """A queue URL names its region; a local endpoint leaves it to the AWS settings."""
        assert expected == queue_region(url)


class TestConfig:
    def test_wait_time_is_the_long_poll_of_0_to_20_seconds(self):
        """``wait_time`` takes a duration up to SQS's 20 s (the default); more is an error."""
        source = "sources:\n  - {type: s3_sqs, queue_url: q, %s}\n"
        assert 5.0 == parse_config(source % "wait_time: 5s", "c.yaml").sources[0].wait_time_seconds
        assert 20.0 == parse_config(source % "workers: 1", "c.yaml").sources[0].wait_time_seconds
        with pytest.raises(ConfigError, match="wait_time: SQS long-polls 0 to 20 seconds"):
            parse_config(source % "wait_time: 30", "c.yaml")
