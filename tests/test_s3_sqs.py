"""``type: s3_sqs`` against moto's server: S3 notifications, EventBridge events and SNS envelopes on
one queue, read by real daemons; leases, deletion after the sinks, release, poison messages."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.fault_proxy import FaultProxy
from tests.moto_server import MotoServer
from tests.test_daemon import wait_for
from tests.tmpfs import fill, remount
from tests.trail_queue import (
    BUCKET,
    QueueDaemon,
    TrailQueue,
    api_call_event,
    notification,
    object_created_event,
    sns_wrapped,
    trail_key,
    trail_object,
    trail_record,
)
from watcher.config import S3SqsSource
from watcher.events import utc_now
from watcher.log import configure_logging
from watcher.sources.base import SourceContext
from watcher.sources.cloudtrail import record_denial
from watcher.sources.s3_sqs import S3SqsSources, _Lease, _ObjectsInFlight, _QueueReader
from watcher.state import StateStore

OTHER_BUCKET = "other-trail"  # no notifications: the tests send its messages themselves


def expected_id(number: int) -> str:
    """The event_id of trail_record(number)'s denial, as the CloudTrail mapping derives it."""
    denial = record_denial(trail_record(number), 0, "anywhere", utc_now())
    return str(denial.extra["event_id"])


def event_ids(events: list[dict[str, Any]]) -> list[str]:
    return [event["event_id"] for event in events]


def put_numbered(queue: TrailQueue, objects: int, per_object: int, *, first: int = 0) -> set[str]:
    """``objects`` trail objects of ``per_object`` denials (and one success each); their ids."""
    ids = set()
    for n in range(objects):
        numbers = range(first + n * per_object, first + (n + 1) * per_object)
        records = [trail_record(number) for number in numbers]
        records.append(trail_record(10**9 + first + n, denial=False))
        queue.put(trail_key(f"obj{first + n:06d}"), trail_object(records))
        ids.update(expected_id(number) for number in numbers)
    return ids


@pytest.fixture
def queue(moto_server: MotoServer) -> TrailQueue:
    return TrailQueue(moto_server)


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[list[QueueDaemon]]:
    running: list[QueueDaemon] = []
    yield running
    for daemon in running:
        daemon.kill()


def started(daemons: list[QueueDaemon], daemon: QueueDaemon) -> QueueDaemon:
    daemons.append(daemon)
    daemon.start()
    return daemon


def holding(
    daemons: list[QueueDaemon], queue: TrailQueue, root: Path, tmpfs: Any, **options: object
) -> tuple[QueueDaemon, Path]:
    """A daemon whose file sink is on a full tmpfs: it reads messages but can acknowledge
    none, so it holds them. Returns it and the filler file (unlink it and remount to free)."""
    filler = fill(tmpfs(root / "out", "size=256k"))
    return started(daemons, QueueDaemon(root, queue, **options)), filler


def holding_two(
    daemons: list[QueueDaemon],
    moto_server: MotoServer,
    *,
    queue: TrailQueue,
    proxy: FaultProxy,
    root: Path,
    tmpfs: Any,
) -> QueueDaemon:
    """A holder (see ``holding``) whose calls go through ``proxy``, once it holds two
    messages, each of whose objects it has read."""
    through_proxy = SimpleNamespace(
        url=queue.url,
        aws=SimpleNamespace(env=lambda: moto_server.env(AWS_ENDPOINT_URL=proxy.url)),
    )
    holder, _ = holding(daemons, through_proxy, root, tmpfs)  # type: ignore[arg-type]
    put_numbered(queue, 2, 1)
    wait_for(lambda: len(read_objects(holder)) == 2, "both objects read and held")
    return holder


def held_objects(queue: TrailQueue, holder: QueueDaemon) -> set[str]:
    """Wait until the holder holds 3 or 4 messages (its workers: 4; it receives again only
    when 2 are free), each of whose objects it has read; those objects."""
    wait_for(lambda: 3 <= queue.counts()[1] == len(read_objects(holder)), "3 or 4 held")
    return read_objects(holder)


class TestS3Notifications:
    def test_objects_notified_by_s3_give_their_denials_and_the_messages_are_deleted(
        self, moto_server, daemons, tmp_path
    ):
        """S3's own notifications (URL-encoded keys, a space in one) lead to every denial of
        every object; S3's TestEvent and the notifications are all deleted from the queue."""
        queue = TrailQueue(moto_server, "with-test-event", keep_test_event=True)
        assert (1, 0) == queue.counts()
        daemon = started(daemons, QueueDaemon(tmp_path / "a", queue))
        queue.put(trail_key("with space"), trail_object([trail_record(1), trail_record(2)]))
        queue.put(trail_key("plain"), trail_object([trail_record(3, denial=False)]))
        wait_for(lambda: len(daemon.events()) >= 2, "the two denials")
        wait_for(queue.empty, "every message deleted")
        events = daemon.events()
        assert {expected_id(1), expected_id(2)} == set(event_ids(events))
        assert f"s3://{BUCKET}/{trail_key('with space')}" == events[0]["source_path"]
        assert 1 == len(daemon.logged("sqs_test_event_deleted"))
        assert 0 == daemon.stop()

    def test_two_watchers_share_one_queue_and_every_denial_comes_out_once(
        self, queue, daemons, tmp_path
    ):
        """200 objects holding 1,000 denials, two daemons on the queue: every denial is
        emitted, and exactly once unless the queue itself handed one message to both (SQS
        standard queues may; moto's server does when two receives race); both did work."""
        first = started(daemons, QueueDaemon(tmp_path / "a", queue))
        second = started(daemons, QueueDaemon(tmp_path / "b", queue))
        expected = put_numbered(queue, 200, 5)
        both = lambda: first.events() + second.events()  # noqa: E731
        wait_for(lambda: len(both()) >= 1000, "1,000 denials", deadline=180)
        wait_for(queue.empty, "every message deleted")
        events = both()
        assert expected == set(event_ids(events))
        counts = Counter(event_ids(events))
        repeated = {e["source_path"] for e in events if counts[e["event_id"]] > 1}
        assert set() == repeated - (read_objects(first) & read_objects(second))
        assert first.events()
        assert second.events()
        assert (0, 0) == (first.stop(), second.stop())

    def test_the_same_object_notified_again_is_skipped_by_the_watcher_that_read_it(
        self, queue, daemons, tmp_path
    ):
        """S3 may notify twice: a repeat of an object (same bucket, key, eTag) this watcher
        already read and acknowledged is skipped, its message deleted."""
        queue.s3.create_bucket(Bucket=OTHER_BUCKET)
        key = trail_key("twice")
        queue.s3.put_object(Bucket=OTHER_BUCKET, Key=key, Body=trail_object([trail_record(7)]))
        daemon = started(daemons, QueueDaemon(tmp_path / "a", queue))
        queue.send(notification(OTHER_BUCKET, key))
        wait_for(lambda: len(daemon.events()) == 1, "the denial")
        wait_for(queue.empty, "the first message deleted")
        queue.send(notification(OTHER_BUCKET, key))
        wait_for(lambda: daemon.logged("s3_object_skipped"), "the repeat skipped")
        wait_for(queue.empty, "the repeat deleted")
        assert [expected_id(7)] == event_ids(daemon.events())
        assert 0 == daemon.stop()

    def test_copies_of_a_notification_received_together_read_the_object_once(
        self, queue, daemons, tmp_path
    ):
        """An outsider found it: four copies of one notification waiting in the queue were
        all read at once (28 events for 7 denials, no crash). Copies in flight are skipped."""
        queue.s3.create_bucket(Bucket=OTHER_BUCKET)
        key = trail_key("four times")
        records = [trail_record(n) for n in range(7)]
        queue.s3.put_object(Bucket=OTHER_BUCKET, Key=key, Body=trail_object(records))
        for _ in range(4):
            queue.send(notification(OTHER_BUCKET, key))
        daemon = started(daemons, QueueDaemon(tmp_path / "a", queue))
        wait_for(lambda: len(daemon.events()) >= 7, "the denials")
        wait_for(queue.empty, "every copy deleted")
        assert 0 == daemon.stop()
        assert sorted(expected_id(n) for n in range(7)) == sorted(event_ids(daemon.events()))
        assert 1 == len(daemon.logged("s3_object_read"))

    def test_an_object_named_many_times_in_one_message_is_read_once(self, queue, daemons, tmp_path):
        """An outside tester's message named one object 10 times (and 300 times with other
        sequencers): each was read, its denial emitted 10 (300) times with no crash. S3 never
        sends that shape; a republisher may."""
        queue.s3.create_bucket(Bucket=OTHER_BUCKET)
        key = trail_key("named often")
        queue.s3.put_object(Bucket=OTHER_BUCKET, Key=key, Body=trail_object([trail_record(3)]))
        record = notification(OTHER_BUCKET, key)["Records"][0]
        again = [dict(record, s3=dict(record["s3"], object=dict(record["s3"]["object"],
                 sequencer=f"{n:016X}"))) for n in range(5)]  # fmt: skip
        queue.send({"Records": [record] * 10 + again})
        daemon = started(daemons, QueueDaemon(tmp_path / "a", queue))
        wait_for(queue.empty, "the message deleted")
        assert 0 == daemon.stop()
        assert [expected_id(3)] == event_ids(daemon.events())
        assert 1 == len(daemon.logged("s3_object_read"))


def read_objects(daemon: QueueDaemon) -> set[str]:
    return {entry["object"] for entry in daemon.logged("s3_object_read")}


def object_readers(daemon: QueueDaemon) -> list[int]:
    """Pids of the daemon's object reader processes (multiprocessing's spawned children)."""
    assert daemon.proc is not None
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == daemon.proc.pid and b"spawn_main" in command and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


class TestObjectReaders:
    def test_a_reader_process_killed_is_replaced_and_every_denial_comes_out_once(
        self, queue, daemons, tmp_path
    ):
        """The child process reading objects is killed (-9, as the OOM killer does): the next
        objects are read by a new one; no denial is lost or repeated; none is left at a stop."""
        daemon = started(daemons, QueueDaemon(tmp_path / "a", queue, processes=1))
        ids = put_numbered(queue, 2, 3)
        wait_for(lambda: set(event_ids(daemon.events())) == ids, "the first objects' denials")
        (reader,) = object_readers(daemon)
        os.kill(reader, signal.SIGKILL)
        ids |= put_numbered(queue, 2, 3, first=6)
        wait_for(lambda: set(event_ids(daemon.events())) == ids, "the next objects' denials")
        assert len(ids) == len(event_ids(daemon.events()))
        (replaced,) = daemon.logged("s3_object_reader_ended")
        assert (reader, "killed by SIGKILL") == (replaced["pid"], replaced["ended"])
        (new,) = object_readers(daemon)
        assert 0 == daemon.stop()
        wait_for(lambda: gone(new), "the reader gone with the daemon")

    def test_with_no_reader_processes_the_objects_are_read_in_the_daemon(
        self, queue, daemons, tmp_path
    ):
        daemon = started(daemons, QueueDaemon(tmp_path / "a", queue, processes=0))
        ids = put_numbered(queue, 3, 2)
        wait_for(lambda: set(event_ids(daemon.events())) == ids, "every denial")
        assert [] == object_readers(daemon)
        assert len(ids) == len(event_ids(daemon.events()))
        assert 0 == daemon.stop()


class TestFullStateDisk:
    def test_a_stop_while_the_state_disk_is_full_gives_back_nothing_it_emitted(
        self, queue, daemons, tmp_path, tmpfs
    ):
        """An outside tester: with state_dir full, the objects read could not be remembered,
        so their messages were not deleted; a SIGTERM gave them back and the next start
        emitted their denials again (3 of 150, no line saying why). The sinks have them: the
        messages are deleted all the same, and the watcher says what it could not record."""
        state = tmpfs(tmp_path / "a" / "state", "size=4m")
        daemon = started(daemons, QueueDaemon(tmp_path / "a", queue))
        first = put_numbered(queue, 1, 3)
        wait_for(lambda: first <= set(event_ids(daemon.events())), "the first object's denials")
        filler = fill(state)
        second = put_numbered(queue, 2, 3, first=10)
        wait_for(lambda: second <= set(event_ids(daemon.events())), "the others' denials")
        wait_for(queue.empty, "their messages deleted")
        assert 1 == len(daemon.logged("s3_objects_not_remembered"))
        assert 0 == daemon.stop()
        filler.unlink()
        daemon.start()
        third = put_numbered(queue, 1, 3, first=20)
        wait_for(lambda: third <= set(event_ids(daemon.events())), "a later object's denials")
        assert 0 == daemon.stop()
        ids = event_ids(daemon.events())
        assert sorted(first | second | third) == sorted(ids)  # each once


class TestLeases:
    def test_a_watcher_killed_while_holding_messages_leaves_them_to_the_other(
        self, queue, daemons, tmp_path, tmpfs
    ):
        """The first daemon's sink is full, so it holds its messages (deleting none); kill -9
        it: after the visibility timeout the second daemon emits them; nothing is lost."""
        holder, _ = holding(daemons, queue, tmp_path / "a", tmpfs, visibility_timeout=3)
        expected = put_numbered(queue, 20, 5)
        held = held_objects(queue, holder)
        other = started(daemons, QueueDaemon(tmp_path / "b", queue, visibility_timeout=3))
        holder.kill()
        wait_for(lambda: len(other.events()) == 100, "every denial from the other daemon")
        wait_for(queue.empty, "every message deleted")
        assert expected == set(event_ids(other.events()))
        assert held <= {event["source_path"] for event in other.events()}

    def test_extension_keeps_a_held_message_from_another_watcher_beyond_the_timeout(
        self, queue, daemons, tmp_path, tmpfs
    ):
        """A daemon holds messages (its sink is full) for three visibility timeouts of 2 s
        while a second daemon reads the queue: the lease is extended at half the timeout, so
        the second never gets them; once the sink has room, every denial is out exactly once."""
        holder, filler = holding(daemons, queue, tmp_path / "a", tmpfs, visibility_timeout=2)
        expected = put_numbered(queue, 20, 5)
        held = held_objects(queue, holder)
        other = started(daemons, QueueDaemon(tmp_path / "b", queue, visibility_timeout=2))
        window_end = time.monotonic() + 3 * 2.0  # an observation window, not a synchronisation
        while time.monotonic() < window_end:
            assert set() == held & {event["source_path"] for event in other.events()}
            time.sleep(0.1)
        assert (20 - len(held)) * 5 == len(other.events())
        filler.unlink()
        remount(filler.parent, "size=8m")
        ids = lambda: event_ids(holder.events()) + event_ids(other.events())  # noqa: E731
        wait_for(lambda: len(ids()) >= 100, "every denial")
        wait_for(queue.empty, "every message deleted")
        assert expected == set(ids())
        assert [] == [i for i, count in Counter(ids()).items() if count > 1]
        assert 0 == holder.stop()

    def test_sigterm_releases_the_messages_in_flight_and_exits_0(
        self, queue, daemons, tmp_path, tmpfs
    ):
        """SIGTERM while a daemon holds messages it could not deliver: it exits 0 and gives
        them back at once (visibility 0, not after its 10-minute timeout); the next watcher
        emits every denial exactly once."""
        holder, _ = holding(daemons, queue, tmp_path / "a", tmpfs, visibility_timeout="10m")
        expected = put_numbered(queue, 20, 5)
        held = held_objects(queue, holder)
        assert 0 == holder.stop()
        assert (20, 0) == queue.counts()
        (released,) = holder.logged("sqs_messages_released")
        assert len(held) == released["released"]
        other = started(daemons, QueueDaemon(tmp_path / "b", queue))
        wait_for(lambda: len(other.events()) >= 100, "every denial from the next watcher")
        wait_for(queue.empty, "every message deleted")
        assert sorted(expected) == sorted(event_ids(other.events()))

    def test_a_release_that_fails_at_a_stop_is_logged_with_its_count(
        self, moto_server, queue, daemons, tmp_path, tmpfs
    ):
        """SQS refuses ChangeMessageVisibilityBatch when the holder stops: it still exits 0,
        and says how many messages stay invisible until their timeout (an outside tester
        saw the stop say nothing)."""
        with FaultProxy(moto_server.url) as proxy:
            holder = holding_two(
                daemons, moto_server, queue=queue, proxy=proxy, root=tmp_path / "a", tmpfs=tmpfs
            )
            proxy.failing_operations.add("AmazonSQS.ChangeMessageVisibilityBatch")
            assert 0 == holder.stop()
        assert (0, 2) == queue.counts()  # still invisible: not given back
        (failed,) = holder.logged("sqs_release_failed")
        assert 2 == failed["failed"]
        assert "(InternalError)" in failed["error"]
        assert "visibility timeout (30 s)" in failed["detail"]

    def test_a_stop_while_sqs_accepts_and_never_answers_ends_in_bounded_time(
        self, moto_server, queue, daemons, tmp_path, tmpfs
    ):
        """Found by an outside attack: SQS behind a path that accepts connections and never
        answers. SIGTERM waited for the long poll's read timeout (``wait_time`` + 40 s, tried
        again), then for the release's: minutes, past systemd's stop timeout. Now the threads
        get ``wait_time`` and a grace, and each call of the stop one short try: exit 0, the
        messages it could not give back named."""
        with FaultProxy(moto_server.url) as proxy:
            holder = holding_two(
                daemons, moto_server, queue=queue, proxy=proxy, root=tmp_path / "a", tmpfs=tmpfs
            )
            receive = "AmazonSQS.ReceiveMessage"
            proxy.hanging_operations |= {receive, "AmazonSQS.ChangeMessageVisibilityBatch"}
            receives = proxy.operations[receive]
            wait_for(lambda: proxy.operations[receive] > receives, "a receive left unanswered")
            began = time.monotonic()
            assert 0 == holder.stop()
            took = time.monotonic() - began
        assert took < 30, f"the stop took {took:.0f} s"  # wait_time 1 s + 5 s + 5 s, and slack
        (failed,) = holder.logged("sqs_release_failed")
        assert 2 == failed["failed"]
        (stuck,) = holder.logged("sqs_stop_not_waited")
        assert any("receiver" in name for name in stuck["threads"])


class TestEventBridge:
    def test_api_calls_envelopes_and_notifications_share_the_queue_and_one_id_per_denial(
        self, queue, daemons, tmp_path
    ):
        """EventBridge CloudTrail events (direct and SNS-wrapped), S3 notifications (direct and
        SNS-wrapped) and EventBridge 'Object Created' on one queue: every denial comes out;
        the one that arrives both ways (EventBridge now, the S3 object later) has one event_id;
        an API call that is not a denial is deleted quietly."""
        queue.s3.create_bucket(Bucket=OTHER_BUCKET)
        for name, number in (("via-sns", 5), ("via-eventbridge", 6)):
            body = trail_object([trail_record(number)])
            queue.s3.put_object(Bucket=OTHER_BUCKET, Key=trail_key(name), Body=body)
        daemon = started(daemons, QueueDaemon(tmp_path / "a", queue))
        queue.send(api_call_event(trail_record(1)))
        queue.send(sns_wrapped(api_call_event(trail_record(2))))
        queue.send(api_call_event(trail_record(4, denial=False)))
        queue.send(sns_wrapped(notification(OTHER_BUCKET, trail_key("via-sns"))))
        queue.send(object_created_event(OTHER_BUCKET, trail_key("via-eventbridge")))
        wait_for(lambda: len(daemon.events()) >= 4, "the EventBridge and other denials")
        queue.put(trail_key("both-ways"), trail_object([trail_record(1), trail_record(3)]))
        wait_for(lambda: len(daemon.events()) >= 6, "the S3 object's denials")
        wait_for(queue.empty, "every message deleted")
        events = daemon.events()
        assert Counter({expected_id(1): 2} | {expected_id(n): 1 for n in (2, 3, 5, 6)}) == Counter(
            event_ids(events)
        )
        paths = {e["source_path"] for e in events if e["event_id"] == expected_id(1)}
        assert {queue.url, f"s3://{BUCKET}/{trail_key('both-ways')}"} == paths
        assert 0 == daemon.stop()


class TestBadInput:
    def test_bad_bodies_and_objects_are_named_once_deleted_and_others_unaffected(
        self, queue, daemons, tmp_path
    ):
        """A body that is not JSON, one nested too deeply for the parser, one of no known
        shape, an object that is gone, one that is
        not CloudTrail, a cut gzip, and an archived object (it fails every time) whose message
        was already received more than max_receive_count times: one log line each, naming the
        object; all deleted; the good object still comes out."""
        queue.s3.create_bucket(Bucket=OTHER_BUCKET)
        good = trail_object([trail_record(1)])
        for name, body in {"not-gzip": b"\x00 not a trail", "cut": good[:-12], "ok": good}.items():
            queue.s3.put_object(Bucket=OTHER_BUCKET, Key=trail_key(name), Body=body)
        archived = trail_key("archived")
        queue.s3.put_object(Bucket=OTHER_BUCKET, Key=archived, Body=good, StorageClass="GLACIER")
        queue.send(notification(OTHER_BUCKET, archived))
        for _ in range(5):  # consumers before this one, which failed on it
            queue.sqs.receive_message(QueueUrl=queue.url, VisibilityTimeout=0)
        queue.send("not JSON {")
        queue.send({"hello": "world"})
        queue.send("[" * 3000 + "]" * 3000)  # nested too deeply: it killed a worker a receive
        for name in ("gone", "not-gzip", "cut", "ok"):
            queue.send(notification(OTHER_BUCKET, trail_key(name)))
        daemon = started(daemons, QueueDaemon(tmp_path / "a", queue))
        wait_for(lambda: len(daemon.logged("sqs_message_dropped")) >= 7, "seven messages dropped")
        wait_for(queue.empty, "every message deleted")
        dropped = daemon.logged("sqs_message_dropped")
        named = sorted(o for entry in dropped for o in entry["objects"])
        names = ("archived", "cut", "gone", "not-gzip")
        assert [f"s3://{OTHER_BUCKET}/{trail_key(n)}" for n in names] == named
        assert 7 == len(dropped)
        assert any("nested too deeply" in entry["error"] for entry in dropped)
        assert [] == daemon.logged("source_error")
        (failed,) = daemon.logged("s3_object_read_failed")
        assert "InvalidObjectState" in failed["error"]
        assert [expected_id(1)] == event_ids(daemon.events())
        assert daemon.proc is not None
        assert daemon.proc.poll() is None
        assert 0 == daemon.stop()

    def test_a_message_released_by_many_restarts_is_not_taken_for_poison(
        self, queue, daemons, tmp_path
    ):
        """Each release (a SIGTERM) counts as a receive in SQS; a message that reads fine is
        still read after more than max_receive_count of them (found by QueueMachine)."""
        queue.s3.create_bucket(Bucket=OTHER_BUCKET)
        key = trail_key("often-released")
        queue.s3.put_object(Bucket=OTHER_BUCKET, Key=key, Body=trail_object([trail_record(9)]))
        queue.send(notification(OTHER_BUCKET, key))
        for _ in range(7):  # watchers that received it and stopped before acknowledging it
            queue.sqs.receive_message(QueueUrl=queue.url, VisibilityTimeout=0)
        daemon = started(daemons, QueueDaemon(tmp_path / "a", queue, max_receive_count=2))
        wait_for(lambda: len(daemon.events()) == 1, "the denial")
        wait_for(queue.empty, "the message deleted")
        assert [expected_id(9)] == event_ids(daemon.events())
        assert [] == daemon.logged("sqs_message_dropped")
        assert 0 == daemon.stop()

    def test_reads_s3_does_not_answer_make_no_message_poison(
        self, moto_server, queue, daemons, tmp_path
    ):
        """Found by an outside attack: with S3 unreachable (SQS fine), every read failed and
        counted as a receive, so each message was dropped as poison after max_receive_count
        receives and its denials lost. A read S3 does not answer is the watcher's network,
        not the message's: it does not count; the message is read once S3 answers."""
        queue.s3.create_bucket(Bucket=OTHER_BUCKET)
        key = trail_key("while-s3-is-down")
        queue.s3.put_object(Bucket=OTHER_BUCKET, Key=key, Body=trail_object([trail_record(11)]))
        queue.send(notification(OTHER_BUCKET, key))
        no_s3 = SimpleNamespace(
            url=queue.url,
            aws=SimpleNamespace(
                env=lambda: moto_server.env(AWS_ENDPOINT_URL_S3="http://127.0.0.1:9")
            ),
        )
        options = {"visibility_timeout": "1s", "max_receive_count": 1}
        down = started(daemons, QueueDaemon(tmp_path / "a", no_s3, **options))  # type: ignore[arg-type]
        wait_for(lambda: len(down.logged("s3_object_read_failed")) >= 4, "four reads failed")
        assert [] == down.logged("sqs_message_dropped")
        assert 0 == down.stop()
        up = started(daemons, QueueDaemon(tmp_path / "a", queue, **options))
        wait_for(lambda: len(up.events()) == 1, "the denial once S3 answers")
        wait_for(queue.empty, "the message deleted")
        assert [expected_id(11)] == event_ids(up.events())
        assert [] == up.logged("sqs_message_dropped")
        assert 0 == up.stop()

    def test_a_failing_receive_is_logged_once_and_the_queue_read_once_it_answers(
        self, moto_server, daemons, tmp_path
    ):
        """A queue that does not exist yet: one sqs_receive_failed for all the retries of
        its backoff, then sqs_receive_recovered and its messages read."""
        name = f"later-{tmp_path.name}"[:80]
        with FaultProxy(moto_server.url) as proxy:
            later = SimpleNamespace(
                url=f"{moto_server.url}/123456789012/{name}",
                aws=SimpleNamespace(env=lambda: moto_server.env(AWS_ENDPOINT_URL=proxy.url)),
            )
            daemon = started(daemons, QueueDaemon(tmp_path / "a", later))  # type: ignore[arg-type]
            receives = lambda: proxy.operations["AmazonSQS.ReceiveMessage"]  # noqa: E731
            wait_for(lambda: receives() >= 3, "three receives refused")
            assert 1 == len(daemon.logged("sqs_receive_failed"))
            sqs = moto_server.client("sqs")
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(api_call_event(trail_record(7))))
            wait_for(lambda: len(daemon.events()) == 1, "the denial")
        (failed,) = daemon.logged("sqs_receive_failed")
        assert "NonExistentQueue" in failed["error"] or "QueueDoesNotExist" in failed["error"]
        assert 1 == len(daemon.logged("sqs_receive_recovered"))
        assert [expected_id(7)] == event_ids(daemon.events())
        assert 0 == daemon.stop()

    def test_a_queue_url_without_a_region_and_none_configured_says_how_to_fix_it(
        self, monkeypatch, tmp_path
    ):
        """A local endpoint's queue URL names no region: the source is not read, and the
        error line says so and what to set."""
        for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            monkeypatch.delenv(name, raising=False)
        log_path = tmp_path / "log.jsonl"
        with log_path.open("w") as log_file:
            log = configure_logging(log_file)
            store = StateStore(tmp_path / "state", log)
            config = S3SqsSource(queue_url="http://127.0.0.1:9/000000000000/q")
            source = S3SqsSources((config,), SourceContext(store, log))
            source.start(lambda: None)
            source.close()
            store.close()
        errors = [json.loads(line) for line in log_path.read_text().splitlines()]
        (error,) = [e for e in errors if e["event"] == "source_error"]
        assert "region" in error["error"]
        assert "is not read" in error["detail"]
        assert "region:" in error["detail"]
        assert "http://127.0.0.1:9/000000000000/q" == error["path"]

    def test_a_deletion_that_fails_is_tried_again_while_the_message_is_held(
        self, moto_server, queue, daemons, tmp_path
    ):
        """SQS answers DeleteMessageBatch 500 for a while: the message stays held (not
        visible, so no other watcher emits it again), one sqs_delete_failed line counts it,
        and it is deleted once SQS answers (sqs_delete_recovered)."""
        with FaultProxy(moto_server.url) as proxy:
            through_proxy = SimpleNamespace(
                url=queue.url,
                aws=SimpleNamespace(env=lambda: moto_server.env(AWS_ENDPOINT_URL=proxy.url)),
            )
            proxy.failing_operations.add("AmazonSQS.DeleteMessageBatch")
            daemon = started(daemons, QueueDaemon(tmp_path / "a", through_proxy))  # type: ignore[arg-type]
            ids = put_numbered(queue, 1, 3)
            wait_for(lambda: len(daemon.events()) == 3, "the denials")
            deletions = lambda: proxy.operations["AmazonSQS.DeleteMessageBatch"]  # noqa: E731
            wait_for(lambda: deletions() >= 6, "two rounds of refused deletions (3 tries each)")
            assert (0, 1) == queue.counts()  # still held by the watcher
            proxy.failing_operations.clear()
            wait_for(queue.empty, "the message deleted")
            assert 0 == daemon.stop()
        assert ids == set(event_ids(daemon.events()))
        (failed,) = daemon.logged("sqs_delete_failed")
        assert 1 == failed["failed"]
        assert "(InternalError)" in failed["error"]
        assert 1 == len(daemon.logged("sqs_delete_recovered"))


class TestDeletions:
    """The deleter's batches and what counts against ``workers``, on a reader whose threads
    are not started (its messages received from moto by the test through the reader)."""

    @pytest.fixture
    def reader(self, queue, moto_server, monkeypatch, tmp_path) -> Iterator[_QueueReader]:
        for name, value in moto_server.env().items():
            monkeypatch.setenv(name, value)
        log_file = (tmp_path / "log.jsonl").open("w")
        log = configure_logging(log_file)
        store = StateStore(tmp_path / "state", log)
        config = S3SqsSource(
            queue_url=queue.url, workers=4, wait_time_seconds=1, max_receive_count=2
        )
        ready: deque[Any] = deque()
        reader = _QueueReader(
            config, SourceContext(store, log), ready, lambda: None,
            _ObjectsInFlight(),
        )  # fmt: skip
        yield reader
        store.close()
        log_file.close()

    def leases(self, queue: TrailQueue, reader: _QueueReader, count: int) -> list[_Lease]:
        for n in range(count):
            queue.send(api_call_event(trail_record(n)))
        messages: list[Any] = []
        while len(messages) < count:
            messages += reader._receive(min(10, count - len(messages)))
        for message in messages:
            reader._take(message)
        return list(reader._leases.values())

    def test_acknowledged_messages_go_ten_a_call_and_no_longer_count_against_workers(
        self, queue, reader
    ):
        leases = self.leases(queue, reader, 12)
        assert 12 == reader.unacknowledged
        reader.acknowledge(leases[:11])
        assert 1 == reader.unacknowledged  # acknowledged: receiving need not wait for SQS
        first, second = reader._next_deletions(), reader._next_deletions()
        assert (10, 1) == (len(first or []), len(second or []))  # the 11th waited, then alone
        assert ([], None) == reader._delete([*(first or []), *(second or [])])
        assert 1 == sum(queue.counts())  # only the 12th is left in the queue

    def test_releases_at_a_stop_do_not_make_a_message_look_like_poison(self, queue, reader):
        """Found by an outside tester: a watcher restarted while its sink was full gave a
        message back at each stop, each a receive in SQS; one transient failure after that
        dropped it (max_receive_count 2), losing its denials without a crash. Only receives
        this watcher did not give back count."""
        (lease,) = self.leases(queue, reader, 1)
        for _ in range(3):  # three stops while holding it
            reader.release_all()
            (lease,) = self.leases_again(reader, 1)
        assert 4 == lease.receive_count
        assert reader._given_up(lease) is None  # 4 receives, 3 of them given back: 1 <= 2
        queue.sqs.change_message_visibility(
            QueueUrl=queue.url, ReceiptHandle=lease.receipt, VisibilityTimeout=0
        )  # another watcher's receives and failures count in full
        for _ in range(2):
            received = queue.sqs.receive_message(QueueUrl=queue.url, VisibilityTimeout=0)
            assert 1 == len(received["Messages"])
        (lease,) = self.leases_again(reader, 1)
        assert 7 == lease.receive_count
        assert reader._given_up(lease) is not None  # 7 - 3 = 4 > 2: dropped

    def leases_again(self, reader: _QueueReader, count: int) -> list[_Lease]:
        """Receive ``count`` messages already in the queue through the reader."""
        reader._leases.clear()
        messages: list[Any] = []
        while len(messages) < count:
            messages += reader._receive(count - len(messages))
        for message in messages:
            reader._take(message)
        return list(reader._leases.values())

    def test_a_stop_deletes_what_is_due_at_once_and_then_ends_the_deleter(self, queue, reader):
        leases = self.leases(queue, reader, 3)
        reader.acknowledge(leases)
        reader.stop()
        assert 3 == len(reader._next_deletions() or [])
        assert reader._next_deletions() is None
