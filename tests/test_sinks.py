"""sinks: webhook and SNS delivery through the durable outbox, against real local receivers."""

from __future__ import annotations

import io
import json
import time

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.receiver import Receiver
from watcher.errors import ConfigError
from watcher.log import configure_logging
from watcher.sinks.delivery import DeliveringSink
from watcher.sinks.sns import SnsDelivery
from watcher.sinks.webhook import WebhookDelivery, slack_message
from watcher.state import StateStore

ALERT = {
    "event": "authz_alert",
    "schema_version": 1,
    "event_id": "a" * 32,
    "timestamp": "2026-11-28T10:00:00.000Z",
    "rule": "repeated-denials",
    "group": {"principal_arn": "arn:aws:iam::111122223333:user/ana", "action": "s3:GetObject"},
    "count": 5,
    "window_seconds": 600.0,
    "first_seen": "2026-11-28T09:55:00.000Z",
    "last_seen": "2026-11-28T10:00:00.000Z",
    "event_ids": ["b" * 32],
    "suggested_policy": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    },
}


def wait_for(condition, what: str, deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.02)  # polling interval of the check
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def store(tmp_path):
    state = StateStore(tmp_path / "state", configure_logging(io.StringIO()))
    yield state
    state.close()


def webhook(url: str, **options) -> WebhookDelivery:
    settings = {"body_format": "json", "headers": {}, "timeout_seconds": 1.0}
    settings.update(options)
    return WebhookDelivery(url, **settings)


class FastClock:
    """Wall time plus a skip, so backoff waits pass without sleeping in the test."""

    def __init__(self) -> None:
        self.skip = 0.0

    def __call__(self) -> float:
        return time.time() + self.skip


class TestWebhook:
    def test_alert_is_posted_as_json(self, store):
        logs = io.StringIO()
        with Receiver() as receiver:
            sink = DeliveringSink("hook", webhook(receiver.url), store, configure_logging(logs),
                                  events=("authz_alert",))  # fmt: skip
            sink.write(ALERT)
            sink.write({**ALERT, "event": "authz_denial"})  # filtered out by events:
            wait_for(lambda: receiver.received, "the delivery")
            sink.close()
        assert [ALERT] == receiver.received
        assert "application/json" == receiver.headers[0]["Content-Type"]

    def test_5xx_is_retried_with_backoff_until_delivered(self, store):
        clock = FastClock()
        logs = io.StringIO()
        with Receiver() as receiver:
            receiver.answers.extend([503, 500])
            sink = DeliveringSink("hook", webhook(receiver.url), store, configure_logging(logs),
                                  events=("authz_alert",), clock=clock)  # fmt: skip
            sink.write(ALERT)
            wait_for(lambda: receiver.attempts >= 1, "the first attempt")
            clock.skip = 10_000  # past any backoff
            sink._wake.set()
            wait_for(lambda: receiver.received, "the delivery after retries")
            sink.close()
        assert (3, 1) == (receiver.attempts, len(receiver.received))
        assert 2 == logs.getvalue().count("sink_retry")

    def test_4xx_is_a_logged_permanent_failure(self, store):
        logs = io.StringIO()
        with Receiver() as receiver:
            receiver.answers.append(404)
            sink = DeliveringSink("hook", webhook(receiver.url), store, configure_logging(logs),
                                  events=("authz_alert",))  # fmt: skip
            sink.write(ALERT)
            wait_for(lambda: sink.failed_count == 1, "the permanent failure")
            sink.close()
        assert 1 == receiver.attempts
        assert [] == store.due("hook", time.time() + 10**6)
        assert "sink_delivery_failed" in logs.getvalue()

    def test_timeout_is_retried(self, store):
        clock = FastClock()
        logs = io.StringIO()
        with Receiver() as receiver:
            receiver.answers.append("hang")
            sink = DeliveringSink("hook", webhook(receiver.url, timeout_seconds=0.3), store,
                                  configure_logging(logs), events=("authz_alert",),
                                  clock=clock)  # fmt: skip
            sink.write(ALERT)
            wait_for(lambda: "sink_retry" in logs.getvalue(), "the retry after the timeout")
            clock.skip = 10_000
            sink._wake.set()
            wait_for(lambda: receiver.received, "the delivery after the timeout")
            sink.close()
        assert (2, [ALERT]) == (receiver.attempts, receiver.received)
        assert "timed out" in logs.getvalue()

    def test_pending_delivery_survives_a_stop_and_is_made_after_restart(self, store):
        with Receiver() as receiver:
            dead_url = receiver.url
        # The receiver is gone: the alert waits in the outbox.
        clock = FastClock()
        sink = DeliveringSink("hook", webhook(dead_url), store, configure_logging(io.StringIO()),
                              events=("authz_alert",), clock=clock)  # fmt: skip
        sink.write(ALERT)
        wait_for(lambda: store.next_due_at("hook") is not None, "the queued alert")
        sink.close()
        port = int(dead_url.split(":")[2].split("/")[0])
        with Receiver(port=port) as receiver:
            clock.skip = 10_000
            again = DeliveringSink("hook", webhook(dead_url), store,
                                   configure_logging(io.StringIO()), events=("authz_alert",),
                                   clock=clock)  # fmt: skip
            wait_for(lambda: receiver.received, "delivery after the restart")
            again.close()
        assert [ALERT] == receiver.received

    def test_slack_format_and_secret_headers(self, store, monkeypatch):
        monkeypatch.setenv("HOOK_TOKEN", "s3cr3t-token")
        logs = io.StringIO()
        with Receiver() as receiver:
            delivery = webhook(receiver.url, body_format="slack",
                               headers={"Authorization": "Bearer ${HOOK_TOKEN}"})  # fmt: skip
            sink = DeliveringSink("hook", delivery, store, configure_logging(logs),
                                  events=("authz_alert",))  # fmt: skip
            sink.write(ALERT)
            wait_for(lambda: receiver.received, "the delivery")
            sink.close()
        (message,) = receiver.received
        assert ["text"] == list(message)
        assert "repeated-denials" in message["text"]
        assert '"s3:GetObject"' in message["text"]
        assert "Bearer s3cr3t-token" == receiver.headers[0]["Authorization"]
        assert "s3cr3t" not in logs.getvalue()

    def test_missing_environment_variable_is_a_config_error(self, monkeypatch):
        monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
        with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE"):
            webhook("https://hooks.example.invalid/${NOT_SET_ANYWHERE}")

    def test_slack_text_for_a_denial(self):
        denial = {**ALERT, "event": "authz_denial", "action": "s3:GetObject"}
        text = slack_message({**denial, "principal_arn": "arn:x", "reason": "No policy."})["text"]
        assert "arn:x was denied s3:GetObject" in text


class TestOneBackoffPerSink:
    def sink(self, store, url: str, clock=time.time) -> DeliveringSink:
        log = configure_logging(io.StringIO())
        return DeliveringSink(
            "hook", webhook(url), store, log, events=("authz_alert",), clock=clock
        )

    def alerts(self, count: int) -> list[dict]:
        return [{**ALERT, "event_id": f"{i:032x}"} for i in range(count)]

    def test_a_failing_receiver_is_probed_at_the_backoff_rate(self, store):
        """Fifty queued alerts and a receiver answering 500: one probe per backoff, not 50."""
        clock = FastClock()
        with Receiver() as receiver:
            receiver.answers.extend([500] * 1000)
            sink = self.sink(store, receiver.url, clock)
            for alert in self.alerts(50):
                sink.write(alert)
            wait_for(lambda: receiver.attempts >= 1, "the first attempt")
            clock.skip = 10_000  # past the first backoff: time for exactly one more probe
            sink._wake.set()
            wait_for(lambda: receiver.attempts >= 2, "the probe after the backoff")
            sink.close()
        assert 2 == receiver.attempts

    def test_queued_alerts_go_in_order_when_the_receiver_answers_again(self, store):
        """After three failed probes, all fifty arrive, oldest first, each once."""
        clock = FastClock()
        with Receiver() as receiver:
            receiver.answers.extend([500, 503, 500])
            sink = self.sink(store, receiver.url, clock)
            for alert in self.alerts(50):
                sink.write(alert)
            for probes in (1, 2, 3):
                wait_for(lambda n=probes: receiver.attempts >= n, f"probe {probes}")
                clock.skip += 10_000
                sink._wake.set()
            wait_for(lambda: len(receiver.received) == 50, "every alert")
            sink.close()
        assert [a["event_id"] for a in self.alerts(50)] == [
            a["event_id"] for a in receiver.received
        ]
        assert 53 == receiver.attempts

    def test_a_sink_rebuilt_while_a_delivery_is_in_flight_sends_nothing_twice(self, store):
        """A reload builds the new sink before closing the old one: six alerts, six POSTs."""
        with Receiver() as receiver:
            receiver.answers.append("slow")
            old = self.sink(store, receiver.url)
            for alert in self.alerts(6):
                old.write(alert)
            wait_for(lambda: receiver.attempts >= 1, "the first delivery in flight")
            new = self.sink(store, receiver.url)
            old.close()
            wait_for(lambda: len(receiver.received) >= 6, "six alerts")
            new.close()
        assert (6, 6) == (receiver.attempts, len({a["event_id"] for a in receiver.received}))


@pytest.fixture
def moto():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class TestSns:
    def test_alert_arrives_in_a_subscribed_queue(self, moto, store, monkeypatch):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        sns = boto3.client("sns", endpoint_url=moto, region_name="us-east-1")
        sqs = boto3.client("sqs", endpoint_url=moto, region_name="us-east-1")
        topic = sns.create_topic(Name="authz-alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        delivery = SnsDelivery(topic, region=None, profile=None, endpoint_url=moto,
                               timeout_seconds=5)  # fmt: skip
        sink = DeliveringSink("sns", delivery, store, configure_logging(io.StringIO()),
                              events=("authz_alert",))  # fmt: skip
        sink.write(ALERT)
        messages: list[dict] = []

        def arrived() -> bool:
            messages.extend(sqs.receive_message(QueueUrl=queue).get("Messages", []))
            return bool(messages)

        wait_for(arrived, "the SNS message in the queue")
        sink.close()
        envelope = json.loads(messages[0]["Body"])
        assert ALERT == json.loads(envelope["Message"])
        assert envelope["Subject"].startswith("authz-watcher: 5 denials")

    def test_unknown_topic_is_a_permanent_failure(self, moto, store, monkeypatch):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        delivery = SnsDelivery("arn:aws:sns:us-east-1:123456789012:missing", region=None,
                               profile=None, endpoint_url=moto, timeout_seconds=5)  # fmt: skip
        sink = DeliveringSink("sns", delivery, store, configure_logging(io.StringIO()),
                              events=("authz_alert",))  # fmt: skip
        sink.write(ALERT)
        wait_for(lambda: sink.failed_count == 1, "the permanent failure")
        sink.close()
