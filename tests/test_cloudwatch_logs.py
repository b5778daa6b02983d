"""The cloudwatch_logs source against moto's server, and the daemon reading it.

In-process tests drive ``CloudWatchLogsSources`` with a real state database and real boto3
over HTTP to moto (directly, or through ``tests/logs_endpoint.py`` when a request must fail);
the daemon tests run ``authz-watcher run`` as a process and stop it with SIGTERM or SIGKILL.
"""

from __future__ import annotations

import io
import itertools
import json
import signal
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.logs_endpoint import LogsEndpoint
from tests.moto_server import MotoServer
from tests.recording_output import RecordingOutput, commit
from tests.test_daemon import Watcher, wait_for
from tests.tmpfs import fill
from watcher.config import CloudWatchLogsSource, parse_config
from watcher.errors import ConfigError
from watcher.events import iso_utc
from watcher.log import configure_logging
from watcher.sources.cloudwatch_logs import (
    BACKOFF_FIRST_SECONDS,
    MIN_REQUEST_INTERVAL_SECONDS,
    CloudWatchLogsSources,
    account_label,
    advanced,
)
from watcher.sources.log_events import log_event
from watcher.state import LogGroupPosition, StateStore

DENIAL = "User: arn:aws:iam::111122223333:user/{name} is not authorized to perform: s3:GetObject"


def denial(name: str) -> str:
    return DENIAL.format(name=name)


class Logs:
    """Log groups in moto, set up and written with a real boto3 client."""

    def __init__(self, moto: MotoServer) -> None:
        self.client = moto.client("logs")

    def group(self, name: str, *streams: str) -> None:
        self.client.create_log_group(logGroupName=name)
        for stream in streams or ("s1",):
            self.client.create_log_stream(logGroupName=name, logStreamName=stream)

    def put(self, group: str, stream: str, *events: tuple[int, str]) -> None:
        self.client.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": ms, "message": text} for ms, text in events],
        )


@pytest.fixture
def logs(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Logs:
    """moto's CloudWatch Logs, and this process' boto3 pointed at it (as a daemon would be)."""
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    return Logs(moto_server)


@pytest.fixture
def now_ms() -> int:
    return int(time.time() * 1000)


class Harness:
    """One ``CloudWatchLogsSources`` at a time over one state directory; restart at will."""

    def __init__(self, state_dir: Path, **options: Any) -> None:
        self.log_stream = io.StringIO()
        self.log = configure_logging(self.log_stream)
        self.store = StateStore(state_dir, self.log)
        self.options = options
        self.source: CloudWatchLogsSources | None = None
        self.out = RecordingOutput()

    def start(self, *configs: CloudWatchLogsSource, **options: Any) -> CloudWatchLogsSources:
        merged = {"min_request_interval_seconds": 0.01, **self.options, **options}
        self.source = CloudWatchLogsSources(configs, self.store, self.log, **merged)
        self.source.start(lambda: None)
        return self.source

    def read_until(self, count: int, what: str = "events") -> list[str]:
        """Read until ``count`` texts were handed on in all (fails after the deadline)."""
        assert self.source is not None
        return self.out.read_until(self.source, count, what)

    def commit(self) -> None:
        assert self.source is not None
        commit(self.source)

    def stop(self, *, commit: bool = True) -> None:
        """A graceful stop saves what was handed on; ``commit=False`` is a crash."""
        if self.source is not None:
            if commit:
                self.commit()
            self.source.close()
            self.source = None

    def logged(self, event: str) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.log_stream.getvalue().splitlines()]
        return [line for line in lines if line.get("event") == event]

    def close(self) -> None:
        self.stop(commit=False)
        self.store.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path / "state")
    yield h
    h.close()


def config(*groups: str, **options: Any) -> CloudWatchLogsSource:
    return CloudWatchLogsSource(
        log_groups=groups,
        **{"start_at": "beginning", "poll_interval_seconds": 0.05, **options},
    )


class TestConfig:
    def test_a_star_inside_a_group_name_is_a_config_error(self):
        """Only a trailing '*' (a prefix) is understood; elsewhere it is named with its line."""
        with pytest.raises(ConfigError) as info:
            parse_config(
                "sources:\n  - {type: cloudwatch_logs, log_groups: ['/aws/*/x']}\n", "c.yaml"
            )
        assert "c.yaml:2: sources.0.log_groups: '/aws/*/x': '*' may only end a name" in str(
            info.value
        )


class TestPosition:
    """``advanced``: the position a group is saved at."""

    def test_a_later_event_starts_a_new_millisecond(self):
        """Only the ids of the last millisecond are kept."""
        position = LogGroupPosition(5, frozenset({"a", "b"}))
        assert LogGroupPosition(6, frozenset({"c"})) == advanced(position, 6, "c")

    def test_the_same_millisecond_adds_its_id(self):
        """Two events at one millisecond are both remembered."""
        position = LogGroupPosition(5, frozenset({"a"}))
        assert LogGroupPosition(5, frozenset({"a", "b"})) == advanced(position, 5, "b")

    def test_an_earlier_event_leaves_it(self):
        """An event out of time order does not move the position back."""
        position = LogGroupPosition(5, frozenset({"a"}))
        assert position == advanced(position, 4, "z")


class TestReading:
    """What the source hands on, in-process against moto."""

    def test_pages_through_a_group(self, logs, harness, now_ms, moto_server, monkeypatch):
        """25 events read 10 a page: each handed on once, in time order, over several pages."""
        logs.group("/app/a")
        logs.put("/app/a", "s1", *[(now_ms + i, denial(f"u{i}")) for i in range(25)])
        with LogsEndpoint(moto_server.url) as endpoint:
            monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
            harness.start(config("/app/a"), page_events=10)
            assert [denial(f"u{i}") for i in range(25)] == harness.read_until(25)
            wait_for(lambda: len(endpoint.calls_of("FilterLogEvents")) >= 4, "a later poll")
            harness.source.read(None, harness.out)
            harness.stop()
        assert 25 == len(harness.out.handed)

    def test_origin_and_timestamp_come_from_the_log_event(self, logs, harness, now_ms):
        """source_path is group/stream, the time is the event's, the key is its eventId."""
        logs.group("/aws/lambda/f", "2026/11/29/[$LATEST]abc")
        logs.put("/aws/lambda/f", "2026/11/29/[$LATEST]abc", (now_ms, denial("ana")))
        harness.start(config("/aws/lambda/f", aws_profile=None))
        harness.read_until(1)
        _, origin, profile, timestamp = harness.out.handed[0]
        event = logs.client.filter_log_events(logGroupName="/aws/lambda/f")["events"][0]
        expected = log_event("/aws/lambda/f", "2026/11/29/[$LATEST]abc", event)
        assert expected is not None
        assert (expected.origin, None, expected.timestamp) == (origin, profile, timestamp)
        assert "cloudwatch_logs" == origin.source_kind
        assert "/aws/lambda/f/2026/11/29/[$LATEST]abc" == origin.source_path
        assert f"cwl:/aws/lambda/f:{event['eventId']}" == origin.file_key
        assert iso_utc(datetime.fromtimestamp(now_ms / 1000, tz=UTC)) == timestamp

    def test_several_groups_and_a_prefix(self, logs, harness, now_ms):
        """Names and prefixes are read; a group outside them is not."""
        for group in ("/aws/lambda/a", "/aws/lambda/b", "/ecs/x", "/other/skip"):
            logs.group(group)
            logs.put(group, "s1", (now_ms, denial(group.replace("/", "-"))))
        harness.start(config("/aws/lambda/*", "/ecs/x"))
        harness.read_until(3)
        paths = sorted(origin.source_path for _, origin, *_ in harness.out.handed)
        assert ["/aws/lambda/a/s1", "/aws/lambda/b/s1", "/ecs/x/s1"] == paths
        assert 3 == harness.source.progress().followed

    def test_a_group_created_under_a_prefix_while_running_is_read_from_its_beginning(
        self, logs, harness, now_ms
    ):
        """A group that appears later under a prefix is found and read in full."""
        logs.group("/aws/lambda/a")
        harness.start(config("/aws/lambda/*", start_at="end"))
        wait_for(lambda: harness.logged("log_groups_found"), "the first listing")
        logs.group("/aws/lambda/new")
        logs.put("/aws/lambda/new", "s1", (now_ms - 60_000, denial("early")))
        assert [denial("early")] == harness.read_until(1)

    def test_new_events_while_running(self, logs, harness, now_ms):
        """Events put after the first poll arrive at a later poll, each once."""
        logs.group("/app/a")
        logs.put("/app/a", "s1", (now_ms, denial("first")))
        harness.start(config("/app/a"))
        harness.read_until(1)
        logs.put("/app/a", "s1", (now_ms + 1, denial("second")), (now_ms + 2, denial("third")))
        assert [denial("first"), denial("second"), denial("third")] == harness.read_until(3)

    def test_start_at_end_skips_history_and_keeps_its_place_across_a_restart(
        self, logs, harness, now_ms
    ):
        """start_at: end reads only what comes later; an event put while stopped is read."""
        logs.group("/app/a")
        logs.put("/app/a", "s1", (now_ms - 5000, denial("old")))
        harness.start(config("/app/a", start_at="end"))
        wait_for(lambda: (harness.source.read(None, harness.out), harness.source.checkpoint())[1],
                 "the starting position")  # fmt: skip
        harness.stop()
        logs.put("/app/a", "s1", (now_ms + 5000, denial("while stopped")))
        harness.start(config("/app/a", start_at="end"))
        assert [denial("while stopped")] == harness.read_until(1)

    def test_a_restart_repeats_nothing_at_the_same_millisecond(self, logs, harness, now_ms):
        """Events sharing the last millisecond read before a stop are not read again; events
        added later at that same millisecond are."""
        logs.group("/app/a", "s1", "s2")
        logs.put("/app/a", "s1", (now_ms, denial("a1")), (now_ms, denial("a2")))
        logs.put("/app/a", "s2", (now_ms, denial("b1")))
        harness.start(config("/app/a"))
        harness.read_until(3)
        harness.stop()
        saved = harness.store.log_group_position(account_label(None, "us-east-1"), "/app/a")
        assert saved is not None
        assert (now_ms, 3) == (saved.last_event_ms, len(saved.event_ids))
        logs.put("/app/a", "s2", (now_ms, denial("b2")), (now_ms + 1, denial("b3")))
        harness.start(config("/app/a"))
        harness.read_until(5)
        assert sorted(denial(n) for n in ("a1", "a2", "b1", "b2", "b3")) == sorted(
            harness.out.messages()
        )

    def test_an_event_at_the_last_millisecond_in_another_stream_comes_once(
        self, logs, harness, now_ms, moto_server, monkeypatch
    ):
        """Found by the model: an event of stream s2 at the millisecond already read from s1,
        then a later one in s1; polls after that hand on nothing again."""
        logs.group("/app/a", "s1", "s2")
        with LogsEndpoint(moto_server.url) as endpoint:
            monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
            harness.start(config("/app/a"))
            logs.put("/app/a", "s1", (now_ms, denial("m0")))
            harness.read_until(1)
            logs.put("/app/a", "s2", (now_ms, denial("m1")))
            logs.put("/app/a", "s1", (now_ms + 7, denial("m2")))
            harness.read_until(3)
            polls = len(endpoint.calls_of("FilterLogEvents"))
            wait_for(lambda: len(endpoint.calls_of("FilterLogEvents")) >= polls + 3, "3 polls")
            harness.source.read(None, harness.out)
            harness.stop()
        assert [denial("m0"), denial("m1"), denial("m2")] == harness.out.messages()

    def test_a_crash_hands_on_again_with_the_same_origin(self, logs, harness, now_ms):
        """Not saved (a crash): the events come again, with the same origins (event ids)."""
        logs.group("/app/a")
        logs.put("/app/a", "s1", (now_ms, denial("a")), (now_ms + 1, denial("b")))
        harness.start(config("/app/a"))
        harness.read_until(2)
        first = [origin for _, origin, *_ in harness.out.handed]
        harness.stop(commit=False)
        harness.out = RecordingOutput()
        harness.start(config("/app/a"))
        harness.read_until(2)
        assert first == [origin for _, origin, *_ in harness.out.handed]

    def test_nothing_is_handed_on_while_paused(self, logs, harness, now_ms):
        """While a sink is failing the events wait; they are handed on once it recovers."""
        logs.group("/app/a")
        logs.put("/app/a", "s1", (now_ms, denial("a")))
        harness.out.paused = True
        source = harness.start(config("/app/a"))
        wait_for(lambda: source.more_ready, "a fetched page")
        assert 0 == source.read(None, harness.out)
        assert (None, []) == (source.checkpoint(), harness.out.handed)
        harness.out.paused = False
        assert [denial("a")] == harness.read_until(1)

    def test_first_polls_are_spread_over_the_interval(
        self, logs, harness, moto_server, monkeypatch
    ):
        """Four groups, a 2 s interval: their first polls come about half a second apart,
        not in one burst."""
        for name in "abcd":
            logs.group(f"/app/{name}")
        with LogsEndpoint(moto_server.url) as endpoint:
            monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
            harness.start(config("/app/*", poll_interval_seconds=2.0))
            wait_for(lambda: len(endpoint.calls_of("FilterLogEvents")) >= 4, "four first polls")
            harness.stop()
        first = endpoint.calls_of("FilterLogEvents")[:4]
        assert ["/app/a", "/app/b", "/app/c", "/app/d"] == [call.group for call in first]
        gaps = [b.at - a.at for a, b in itertools.pairwise(first)]
        assert all(gap >= 0.35 for gap in gaps), gaps  # 0.5 s apart; 0.01 s if not spread

    def test_requests_are_paced_however_short_the_interval(
        self, logs, tmp_path, moto_server, monkeypatch
    ):
        """A 10 ms interval over three groups: with the default pacing no two requests of one
        profile and region come closer than MIN_REQUEST_INTERVAL_SECONDS."""
        for name in "abc":
            logs.group(f"/app/{name}")
        paced = Harness(tmp_path / "paced")
        try:
            with LogsEndpoint(moto_server.url) as endpoint:
                monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
                paced.start(
                    config("/app/a", "/app/b", "/app/c", poll_interval_seconds=0.01),
                    min_request_interval_seconds=MIN_REQUEST_INTERVAL_SECONDS,
                )
                wait_for(lambda: len(endpoint.calls_of("FilterLogEvents")) >= 8, "8 polls")
                paced.stop()
        finally:
            paced.close()
        calls = endpoint.calls
        gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
        assert all(gap >= MIN_REQUEST_INTERVAL_SECONDS * 0.9 for gap in gaps), gaps
        assert {"/app/a", "/app/b", "/app/c"} == {call.group for call in calls[:6]}

    def test_a_missing_group_is_reported_once_and_read_once_created(
        self, logs, harness, now_ms, moto_server, monkeypatch
    ):
        """A group that does not exist (or was deleted) is one warning; it is retried slowly,
        and read from the start once it exists."""
        with LogsEndpoint(moto_server.url) as endpoint:
            monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
            harness.start(config("/app/later", poll_interval_seconds=0.02))
            wait_for(lambda: len(endpoint.calls_of("FilterLogEvents")) >= 3, "three attempts")
            calls = endpoint.calls_of("FilterLogEvents")
            gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
            assert all(gap >= 0.02 * 30 * 0.9 for gap in gaps), gaps
            assert 1 == len(harness.logged("log_group_unreadable"))
            logs.group("/app/later")
            logs.put("/app/later", "s1", (now_ms, denial("late")))
            assert [denial("late")] == harness.read_until(1)
            assert 1 == len(harness.logged("log_group_readable"))
            logs.client.delete_log_group(logGroupName="/app/later")
            wait_for(lambda: len(harness.logged("log_group_unreadable")) == 2, "the deletion")
            harness.stop()

    def test_throttling_backs_off_and_loses_nothing(
        self, logs, harness, now_ms, moto_server, monkeypatch
    ):
        """Three ThrottlingExceptions: the waits double (with jitter, never under half), one
        warning is logged, and every event arrives once."""
        logs.group("/app/a")
        logs.put("/app/a", "s1", *[(now_ms + i, denial(f"u{i}")) for i in range(5)])
        with LogsEndpoint(moto_server.url) as endpoint:
            monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
            endpoint.fail("FilterLogEvents", "throttle", "throttle", "throttle")
            harness.start(config("/app/a"))
            harness.read_until(5)
            calls = endpoint.calls_of("FilterLogEvents")[:4]
            gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
            harness.stop()
        minimums = [BACKOFF_FIRST_SECONDS * 2**i / 2 for i in range(3)]
        assert all(gap >= low for gap, low in zip(gaps, minimums, strict=True)), gaps
        assert 1 == len(harness.logged("source_throttled"))
        assert [denial(f"u{i}") for i in range(5)] == harness.out.messages()

    def test_a_dropped_connection_mid_pages_repeats_nothing(
        self, logs, harness, now_ms, moto_server, monkeypatch
    ):
        """A page whose connection is cut is asked again: nothing lost, nothing twice."""
        logs.group("/app/a")
        logs.put("/app/a", "s1", *[(now_ms + i, denial(f"u{i}")) for i in range(30)])
        with LogsEndpoint(moto_server.url) as endpoint:
            monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
            harness.start(config("/app/a"), page_events=10)
            wait_for(lambda: endpoint.calls_of("FilterLogEvents"), "the first page")
            endpoint.fail("FilterLogEvents", "drop", "500")
            harness.read_until(30)
            harness.stop()
        assert [denial(f"u{i}") for i in range(30)] == harness.out.messages()

    def test_an_answer_of_the_wrong_shape_is_reported_and_retried(
        self, logs, harness, now_ms, moto_server, monkeypatch
    ):
        """HTTP 200 with JSON no service sends (botocore raises TypeError on it): reported,
        backed off, and the events arrive with the next answer; the fetch thread survives."""
        logs.group("/app/a")
        logs.put("/app/a", "s1", (now_ms, denial("a")))
        with LogsEndpoint(moto_server.url) as endpoint:
            monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
            endpoint.fail("FilterLogEvents", "garbage")
            harness.start(config("/app/a"))
            assert [denial("a")] == harness.read_until(1)
            harness.stop()
        [error] = harness.logged("source_error")
        assert ("/app/a", "TypeError") == (error["path"], error["error_type"])

    def test_malformed_log_events_are_reported_and_the_rest_read(
        self, logs, harness, now_ms, moto_server, monkeypatch
    ):
        """An event without eventId and one without a message are each reported with the
        group and skipped; the third event of the page is handed on."""
        logs.group("/app/a")
        logs.put("/app/a", "s1", *[(now_ms + i, denial(f"u{i}")) for i in range(3)])
        with LogsEndpoint(moto_server.url) as endpoint:
            monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
            endpoint.fail("FilterLogEvents", "malformed")
            harness.start(config("/app/a"))
            assert [denial("u2")] == harness.read_until(1)
            wait_for(lambda: len(endpoint.calls_of("FilterLogEvents")) >= 3, "later polls")
            harness.source.read(None, harness.out)
            harness.stop()
        reasons = [(e["path"], e["error"]) for e in harness.logged("log_event_malformed")]
        assert [("/app/a", "no timestamp or eventId"), ("/app/a", "no message")] == reasons
        assert [denial("u2")] == harness.out.messages()

    def test_an_unreachable_endpoint_is_reported_and_read_once_it_answers(
        self, logs, harness, now_ms, moto_server, monkeypatch
    ):
        """Connection refused: one error naming the endpoint; events arrive once it is up."""
        logs.group("/app/a")
        logs.put("/app/a", "s1", (now_ms, denial("a")))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        harness.start(config("/app/a"))
        wait_for(lambda: harness.logged("source_error"), "the connection error")
        [error] = harness.logged("source_error")
        assert f"127.0.0.1:{port}" in error["error"]
        with LogsEndpoint(moto_server.url, port=port):
            assert [denial("a")] == harness.read_until(1)
            harness.stop()
        assert 1 == len(harness.logged("source_recovered"))


def cloudwatch_watcher(root: Path, moto: MotoServer, *groups: str) -> Watcher:
    """``authz-watcher run`` reading ``groups`` from moto, events to a file sink."""
    watcher = Watcher(root, env=moto.env())
    names = ", ".join(json.dumps(group) for group in groups)
    watcher.config.write_text(
        f"state_dir: {root / 'state'}\n"
        "sources:\n"
        f"  - type: cloudwatch_logs\n    log_groups: [{names}]\n"
        "    start_at: beginning\n    poll_interval: 0.2\n"
        "decode:\n  enabled: false\n"
        f"sinks:\n  - type: file\n    path: {watcher.events_path}\n"
    )
    return watcher


@pytest.fixture
def daemon(tmp_path: Path, moto_server: MotoServer) -> Iterator[Watcher]:
    watcher = cloudwatch_watcher(tmp_path, moto_server, "/aws/lambda/*")
    yield watcher
    watcher.kill()


def principals(events: list[dict[str, Any]]) -> list[str]:
    return [str(e["principal_arn"]).rsplit("/", 1)[-1] for e in events]


def ids_by_principal(events: list[dict[str, Any]]) -> dict[str, set[str]]:
    """The event ids each denial (by its principal's name) was emitted with."""
    ids_of: dict[str, set[str]] = {}
    for name, event in zip(principals(events), events, strict=True):
        ids_of.setdefault(name, set()).add(event["event_id"])
    return ids_of


class TestDaemon:
    """``authz-watcher run`` as a process, reading moto's CloudWatch Logs."""

    def test_events_while_running_and_a_restart_without_repeats(self, logs, daemon, now_ms):
        """Events put before and while it runs arrive once each with the log event's origin;
        after SIGTERM and a start, only the events put in between arrive."""
        logs.group("/aws/lambda/f", "2026/11/29/[$LATEST]abc")
        stream = "2026/11/29/[$LATEST]abc"
        logs.put("/aws/lambda/f", stream, (now_ms, denial("a")), (now_ms + 1, "START Request"))
        daemon.start()
        wait_for(lambda: len(daemon.events()) >= 1, "the first event")
        logs.put("/aws/lambda/f", stream, (now_ms + 2, denial("b")), (now_ms + 2, denial("c")))
        wait_for(lambda: len(daemon.events()) >= 3, "the events put while running")
        assert 0 == daemon.stop()
        logs.put("/aws/lambda/f", stream, (now_ms + 2, denial("d")), (now_ms + 3, denial("e")))
        daemon.start()
        wait_for(lambda: len(daemon.events()) >= 5, "the events put while stopped")
        assert 0 == daemon.stop()
        events = daemon.events()
        assert ["a", "b", "c", "d", "e"] == principals(events)
        assert 5 == len({e["event_id"] for e in events})
        first = events[0]
        expected_time = iso_utc(datetime.fromtimestamp(now_ms / 1000, tz=UTC))
        assert ("cloudwatch_logs", f"/aws/lambda/f/{stream}", expected_time) == (
            first["source_kind"],
            first["source_path"],
            first["timestamp"],
        )

    def test_kill_9_repeats_with_the_same_event_id_and_loses_nothing(self, logs, daemon, now_ms):
        """SIGKILL while events arrive: after a start every denial is there at least once, and
        a denial seen twice carries the same event_id both times."""
        logs.group("/aws/lambda/f")
        logs.put("/aws/lambda/f", "s1", *[(now_ms + i, denial(f"u{i}")) for i in range(300)])
        daemon.start()
        wait_for(daemon.events, "the first events")
        daemon.kill()  # SIGKILL: no drain, no commit
        logs.put("/aws/lambda/f", "s1", (now_ms + 400, denial("after")))
        daemon.start()
        wait_for(lambda: "after" in principals(daemon.events()), "the event put after the kill")
        assert 0 == daemon.stop()
        events = daemon.events()
        ids_of = ids_by_principal(events)
        assert {f"u{i}" for i in range(300)} | {"after"} == set(ids_of)
        assert all(1 == len(ids) for ids in ids_of.values())

    def test_kill_9_before_the_commit_repeats_every_event_with_its_event_id(
        self, logs, tmp_path, moto_server, now_ms, tmpfs
    ):
        """A second file sink on a full disk holds the commit back while the first one has
        the events; SIGKILL; space returns; the start reads them again: each denial is in
        the first sink twice, with the same event_id both times."""
        full = tmpfs(tmp_path / "full", "size=256k")
        filler = fill(full)
        (tmp_path / "d").mkdir()
        daemon = cloudwatch_watcher(tmp_path / "d", moto_server, "/aws/lambda/f")
        with daemon.config.open("a") as config:
            config.write(f"  - type: file\n    path: {full / 'events.jsonl'}\n")
        logs.group("/aws/lambda/f")
        logs.put("/aws/lambda/f", "s1", *[(now_ms + i, denial(f"u{i}")) for i in range(50)])
        try:
            daemon.start()
            wait_for(lambda: len(daemon.events()) == 50, "the 50 events in the first sink")
            wait_for(
                lambda: any(e["event"] == "sink_retry" for e in daemon.log_events()),
                "the full disk to be noticed",
            )
            daemon.kill()
            filler.unlink()
            daemon.start()
            wait_for(lambda: len(daemon.events()) == 100, "the 50 events again")
            assert 0 == daemon.stop()
        finally:
            daemon.kill()
        events = daemon.events()
        ids_of = ids_by_principal(events)
        assert {f"u{i}" for i in range(50)} == set(ids_of)
        assert all(1 == len(ids) for ids in ids_of.values())

    def test_a_reload_that_rebuilds_the_source_repeats_nothing(self, logs, daemon, now_ms):
        """SIGHUP with a changed poll_interval builds the source anew from the saved
        positions: the events read before are not emitted again, later ones are."""
        logs.group("/aws/lambda/f")
        logs.put("/aws/lambda/f", "s1", (now_ms, denial("a")), (now_ms, denial("b")))
        daemon.start()
        wait_for(lambda: len(daemon.events()) >= 2, "the first two events")
        daemon.config.write_text(
            daemon.config.read_text().replace("poll_interval: 0.2", "poll_interval: 0.3")
        )
        daemon.signal(signal.SIGHUP)
        wait_for(
            lambda: any(e["event"] == "config_reloaded" for e in daemon.log_events()), "reload"
        )
        logs.put("/aws/lambda/f", "s1", (now_ms, denial("c")))
        wait_for(lambda: len(daemon.events()) >= 3, "the event put after the reload")
        assert 0 == daemon.stop()
        assert ["a", "b", "c"] == principals(daemon.events())
