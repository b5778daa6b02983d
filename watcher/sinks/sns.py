"""sinks: events -> an SNS topic through boto3 (subject and JSON message)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config as BotocoreConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from watcher.model import Event
from watcher.sinks.delivery import PermanentDeliveryError, RetryableDeliveryError

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

RETRYABLE_CODES = frozenset(
    {"Throttling", "ThrottlingException", "InternalError", "InternalFailure",
     "ServiceUnavailable", "KMSThrottling", "RequestTimeout"}
)  # fmt: skip
SUBJECT_MAX_CHARS = 100


class SnsDelivery:
    def __init__(
        self,
        topic_arn: str,
        *,
        region: str | None,
        profile: str | None,
        endpoint_url: str | None,
        timeout_seconds: float,
    ) -> None:
        self._topic_arn = topic_arn
        arn_region = topic_arn.split(":")[3] if topic_arn.count(":") >= 5 else None
        session = boto3.Session(profile_name=profile)
        self._client: SNSClient = session.client(
            "sns",
            region_name=region or arn_region or session.region_name,
            endpoint_url=endpoint_url,
            config=BotocoreConfig(
                connect_timeout=timeout_seconds,
                read_timeout=timeout_seconds,
                retries={"mode": "standard", "total_max_attempts": 3},
            ),
        )

    def __call__(self, event: Event) -> None:
        try:
            self._client.publish(
                TopicArn=self._topic_arn,
                Subject=subject(event),
                Message=json.dumps(event),
            )
        except NoCredentialsError as exc:
            raise RetryableDeliveryError("no AWS credentials found") from exc
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
            if code in RETRYABLE_CODES:
                raise RetryableDeliveryError(code) from exc
            raise PermanentDeliveryError(f"{code}: {exc}") from exc
        except BotoCoreError as exc:
            raise RetryableDeliveryError(str(exc)) from exc


def subject(event: Event) -> str:
    if event["event"] == "authz_alert":
        text = f"authz-watcher: {event['count']} denials ({event['rule']})"
    else:
        text = f"authz-watcher: {event.get('action') or 'denied request'}"
    return "".join(c if c.isprintable() else " " for c in text)[:SUBJECT_MAX_CHARS]
