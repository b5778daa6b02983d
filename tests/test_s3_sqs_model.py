"""The s3_sqs guarantees against simple models (hypothesis state machines).

``QueueMachine`` drives the real source (its threads, moto's SQS and S3 over HTTP through a
proxy that can refuse deletions, a real state database) through objects put, reads,
acknowledgements, restarts, S3 refusing an object once, and SQS refusing DeleteMessageBatch for
a while; the model says which denials the sinks must take (all, each once) and which may be
handed on twice (handed on, not taken, then restarted). ``max_receive_count`` is 1 and no object
fails more than once, so a message is dropped only if the watcher counted its own releases at a
stop as failures.
``SeenObjectsMachine`` drives the state database's seen-objects table against a dict.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.fault_proxy import FaultProxy
from tests.moto_server import MotoServer
from tests.trail_queue import TrailQueue, trail_key, trail_object, trail_record
from watcher.config import S3SqsSource
from watcher.events import utc_now
from watcher.log import configure_logging
from watcher.model import Origin
from watcher.pipeline import Denial
from watcher.sources.base import Save, SourceContext
from watcher.sources.cloudtrail import record_denial
from watcher.sources.s3_sqs import S3SqsSources
from watcher.state import ObjectVersion, StateStore

DEADLINE_SECONDS = 30.0
DELETE_BATCH = "AmazonSQS.DeleteMessageBatch"
WAIT_FOR_READY_SECONDS = 3.0
BOTOCORE_ATTEMPTS = 3  # a call's attempts in botocore's "standard" retry mode, the source's


class Collected:
    """The daemon's side of the protocol, reduced to a list of what was handed on."""

    paused = False

    def __init__(self) -> None:
        self.ids: list[str] = []

    def text(self, text: bytes | str, origin: Origin, **_: Any) -> int:
        del text
        raise AssertionError(f"s3_sqs hands on denials, not text ({origin})")

    def denials(self, denials: Iterable[Denial]) -> int:
        batch = [str(denial.extra["event_id"]) for denial in denials]
        self.ids.extend(batch)
        return len(batch)


class QueueMachine(RuleBasedStateMachine):
    def __init__(self, aws: MotoServer, proxy: FaultProxy) -> None:
        super().__init__()
        aws.reset()
        self.proxy = proxy
        proxy.failing_operations.clear()
        proxy.refused_once.clear()
        self.root = Path(tempfile.mkdtemp(prefix="s3sqs-model-"))
        self.queue = TrailQueue(aws)
        self.log_path = self.root / "log.jsonl"
        self.log_file = self.log_path.open("w")
        self.store = StateStore(self.root / "state", configure_logging(self.log_file))
        self.out = Collected()
        self.woken = threading.Event()
        self.source = self._started()
        self.next_number = 0
        self.expected: set[str] = set()
        self.keys: list[str] = []  # objects put; each is refused by S3 at most once
        self.handed_unacknowledged: list[str] = []
        self.may_repeat: set[str] = set()  # handed on again: the sinks had not taken them
        self.taken: list[str] = []  # what the sinks took (acknowledged)
        self.stopped_while_deletions_refused = False  # its messages come back: skipped
        self.save: Save | None = None
        self.readers_killed = False  # a killed read counts as a receive: no S3 refusals after

    def _started(self, processes: int = 1) -> S3SqsSources:
        """The source; objects read into denials by ``processes`` children (0: in its own
        worker threads)."""
        config = S3SqsSource(
            queue_url=self.queue.url,
            visibility_timeout_seconds=2,
            workers=3,
            processes=processes,
            wait_time_seconds=1,
            max_receive_count=1,
        )
        context = SourceContext(self.store, configure_logging(self.log_file))
        source = S3SqsSources((config,), context)
        source.start(self.woken.set)
        return source

    @rule(denials=st.integers(min_value=1, max_value=3))
    def put_object(self, denials: int) -> None:
        numbers = range(self.next_number, self.next_number + denials)
        self.next_number += denials
        records = [trail_record(n) for n in numbers]
        key = trail_key(f"o{numbers[0]:06d}")
        self.queue.put(key, trail_object(records))
        self.keys.append(key)
        self.expected.update(_ids(records))

    @rule(wait=st.booleans())
    def hand_on(self, wait: bool) -> None:
        """With wait, first wait (bounded) until the source has something ready; without,
        hand on whatever its threads have read by now."""
        if wait and self.woken.wait(WAIT_FOR_READY_SECONDS):
            self.woken.clear()
        before = len(self.out.ids)
        self.source.read(None, self.out)
        self.handed_unacknowledged.extend(self.out.ids[before:])
        self.save = self.source.checkpoint() or self.save

    @rule(sqs_refuses_deletions=st.booleans())
    def sinks_take_everything(self, sqs_refuses_deletions: bool = False) -> None:
        """The sinks take what was handed on, while SQS refuses DeleteMessageBatch or again
        answers it (the refusal lasts until the next take); then wait until the deleter's call
        has been answered for good (refused: every attempt botocore makes)."""
        self.deletions_refused(refused=sqs_refuses_deletions)
        if self.save is not None:
            attempts = BOTOCORE_ATTEMPTS if sqs_refuses_deletions else 1
            deletions = self.proxy.operations[DELETE_BATCH] + attempts
            self.save()
            end = time.monotonic() + DEADLINE_SECONDS
            while self.proxy.operations[DELETE_BATCH] < deletions:
                assert time.monotonic() < end, "the deleter sends what was acknowledged"
                self.woken.wait(0.05)  # re-checks the proxy's count; nothing to wake on
        self.save = None
        self.taken.extend(self.handed_unacknowledged)
        self.handed_unacknowledged.clear()

    def deletions_refused(self, *, refused: bool) -> None:
        if refused:
            self.proxy.failing_operations.add(DELETE_BATCH)
        else:
            self.proxy.failing_operations.discard(DELETE_BATCH)

    @precondition(lambda self: self.next_number > 0)
    @rule(s3_blip=st.booleans(), processes=st.sampled_from([0, 1, 2]))
    def restart(self, s3_blip: bool, processes: int) -> None:
        """With s3_blip, S3 refuses the next read of each object put so far (and never
        refused): the messages released at the stop fail once on their next receive."""
        self.source.close()
        self.stopped_while_deletions_refused |= DELETE_BATCH in self.proxy.failing_operations
        self.may_repeat.update(self.handed_unacknowledged)  # lost by the sinks: come again
        self.handed_unacknowledged.clear()
        self.save = None
        if s3_blip and not self.readers_killed:
            self.proxy.refused_once.update(self.keys)
            self.keys.clear()
        self.source = self._started(processes)

    @rule()
    def kill_readers(self) -> None:
        """SIGKILL the source's reader processes (the OOM killer's doing): a read in hand
        fails, its message comes back after the visibility timeout; the next objects are read
        by new children. A killed read counts toward max_receive_count (1 here), so S3 refusing
        a read after it could make a message poison: restarts refuse nothing from here on."""
        for child in multiprocessing.active_children():
            if child.name == "authz-watcher-object-reader" and child.pid is not None:
                os.kill(child.pid, signal.SIGKILL)
        self.readers_killed = True

    @invariant()
    def nothing_unexpected_and_nothing_twice_without_a_restart(self) -> None:
        assert set() == set(self.out.ids) - self.expected
        twice = {i for i, count in Counter(self.out.ids).items() if count > 1}
        assert set() == twice - self.may_repeat

    @invariant()
    def the_sinks_take_nothing_twice(self) -> None:
        assert [] == [i for i, count in Counter(self.taken).items() if count > 1]

    @invariant()
    def a_message_held_never_comes_back(self) -> None:
        """An acknowledged message whose deletion fails stays held (another watcher would emit
        it again); only one left by a stop while SQS refused deletions may come back."""
        if not self.stopped_while_deletions_refused:
            self.log_file.flush()
            assert "already read by this watcher" not in self.log_path.read_text()

    def teardown(self) -> None:
        try:
            self.deletions_refused(refused=False)
            end = time.monotonic() + DEADLINE_SECONDS
            while not (self.expected <= set(self.taken) and self.queue.empty()):
                assert time.monotonic() < end, "every denial out and every message deleted"
                self.woken.wait(0.2)  # woken by the source; the bound only re-checks the queue
                self.woken.clear()
                self.hand_on(wait=False)
                self.sinks_take_everything()
            self.nothing_unexpected_and_nothing_twice_without_a_restart()
            self.the_sinks_take_nothing_twice()
            self.a_message_held_never_comes_back()
            self.log_file.flush()
            assert "sqs_message_dropped" not in self.log_path.read_text()
        finally:
            self.source.close()
            self.store.close()
            self.log_file.close()


def _ids(records: list[dict[str, Any]]) -> set[str]:
    return {str(record_denial(r, 0, "x", utc_now()).extra["event_id"]) for r in records}


def test_every_denial_once_and_repeats_only_after_a_restart(moto_server, monkeypatch):
    """Objects put, reads, acknowledgements, restarts and refused deletions in any order: the
    sinks take every denial, each once; one is handed on twice only if it was handed on and not
    taken when the source restarted; nothing is dropped for the releases at those restarts."""
    with FaultProxy(moto_server.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        run_state_machine_as_test(
            lambda: QueueMachine(moto_server, proxy),
            settings=settings(max_examples=10, stateful_step_count=14, deadline=None),
        )


class SeenObjectsMachine(RuleBasedStateMachine):
    """The seen-objects table: a remembered version is seen until it expires or the bound
    pushes it out (the least recently remembered first)."""

    KEEP_AT_MOST = 5
    TTL_SECONDS = 100.0

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.TemporaryDirectory(prefix="seen-model-")
        self.store = StateStore(self.directory.name, configure_logging())
        self.now = 1000.0
        self.order = 0
        self.model: dict[ObjectVersion, tuple[float, int]] = {}  # -> (seen at, order)

    versions = st.builds(
        ObjectVersion,
        bucket=st.sampled_from(["a", "b"]),
        key=st.sampled_from(["k1", "k 2", "k+3"]),
        etag=st.sampled_from(["", "e1"]),
        sequencer=st.sampled_from(["", "s1", "s2"]),
    )

    @rule(batch=st.lists(versions, max_size=3))
    def remember(self, batch: list[ObjectVersion]) -> None:
        self.store.remember_objects(batch, self.now)
        for version in batch:
            self.order += 1
            self.model[version] = (self.now, self.order)

    @rule(seconds=st.floats(min_value=0.5, max_value=60))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def forget(self) -> None:
        self.store.forget_objects(self.now - self.TTL_SECONDS, self.KEEP_AT_MOST)
        young = {v: k for v, k in self.model.items() if k[0] >= self.now - self.TTL_SECONDS}
        kept = sorted(young, key=young.__getitem__)[-self.KEEP_AT_MOST :]
        self.model = {version: young[version] for version in kept}

    @rule(version=versions)
    def check(self, version: ObjectVersion) -> None:
        assert (version in self.model) == self.store.object_seen(version)

    def teardown(self) -> None:
        self.store.close()
        self.directory.cleanup()


SeenObjectsMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=30, deadline=None
)
TestSeenObjects = SeenObjectsMachine.TestCase


@pytest.fixture(autouse=True)
def _moto_endpoint(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """In-process sources reach moto the way the daemon does: through AWS_ENDPOINT_URL."""
    if "moto_server" in request.fixturenames:
        aws: MotoServer = request.getfixturevalue("moto_server")
        for name, value in aws.env().items():
            monkeypatch.setenv(name, value)
