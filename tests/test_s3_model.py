"""Model-based test of the ``s3`` source: random puts, polls, acknowledgements, restarts and
crashes, against moto's S3 and a real state database, checked against a simple model.

The model: every denial put is handed on at least once; a denial handed on twice must have
been handed on and not yet acknowledged when a crash came (without a crash: exactly once).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.moto_server import MotoServer
from tests.s3_trail import Driver, RecordingLog, TrailBucket
from watcher.config import S3Source
from watcher.state import StateStore

ACCOUNTS = ("111122223333", "444455556666")
REGIONS = ("us-east-1",)
# Sorts after every prefix above (organisation ones too): listed last in each turn.
LAST_ORG, LAST_ACCOUNT, LAST_REGION = "o-zzzzzzzzzz", "999999999999", "us-west-2"
EXAMPLES = int(os.environ.get("S3_MODEL_EXAMPLES", "10"))
# `make test` runs a fixed set of examples; S3_MODEL_RANDOM=1 explores new ones.
EXPLORE = os.environ.get("S3_MODEL_RANDOM") == "1"


class S3ListingModel(RuleBasedStateMachine):
    """One bucket, one ``S3Buckets`` over it (restarted or crashed at random), one model."""

    aws: MotoServer

    def __init__(self) -> None:
        super().__init__()
        self.trail = TrailBucket(self.aws.client("s3"), f"model-{uuid.uuid4().hex[:12]}").create()
        self.state_dir = tempfile.TemporaryDirectory()
        self.log = RecordingLog()
        self.store = StateStore(Path(self.state_dir.name) / "state", self.log)
        self.driver = self._start()
        self.seen: Counter[str] = Counter()  # event_id -> times handed on
        self.unacknowledged: set[str] = set()  # handed on since the last acknowledgement
        self.may_repeat: set[str] = set()  # handed on, not acknowledged, when a crash came
        self._counted = 0  # of the running driver's denials
        self._late = 0

    def _start(self) -> Driver:
        config = S3Source(bucket=self.trail.name, poll_interval_seconds=0.05, start_at="beginning")
        return Driver((config,), self.store, self.log)

    def _count_new(self) -> None:
        handed_on = self.driver.event_ids()
        new = handed_on[self._counted :]
        self._counted = len(handed_on)
        self.seen.update(new)
        self.unacknowledged.update(new)

    @rule(
        account=st.sampled_from(ACCOUNTS),
        region=st.sampled_from(REGIONS),
        in_organisation=st.booleans(),
        denials=st.integers(min_value=0, max_value=3),
    )
    def put_object(self, account: str, region: str, in_organisation: bool, denials: int) -> None:
        org = "o-model1234" if in_organisation else None
        self.trail.put_trail_object(account, region, denials=denials, org=org)

    @rule(
        account=st.sampled_from(ACCOUNTS),
        region=st.sampled_from(REGIONS),
        day=st.sampled_from(("2026/11/28", "2026/11/29")),
    )
    def put_late_object(self, account: str, region: str, day: str) -> None:
        """Delivered now, under a key that sorts before the ones put so far that day (within
        the look-back window)."""
        self._late += 1
        stamp = day.replace("/", "")
        self.trail.put_trail_object_at(
            f"AWSLogs/{account}/CloudTrail/{region}/{day}/"
            f"{account}_CloudTrail_{region}_{stamp}T0000Z_late{self._late:04d}.json.gz",
            account,
            region,
        )

    @rule()
    def poll(self) -> None:
        """Put an object in the prefix listed last and read until it is handed on: the turn
        that found it has handed on everything it listed before it (repeats included)."""
        last = self.trail.put_trail_object(LAST_ACCOUNT, LAST_REGION, denials=1, org=LAST_ORG)
        wanted = self.trail.event_ids([last])
        self.driver.read_until(lambda: wanted <= set(self.driver.event_ids()), "a whole turn")
        self._count_new()

    @rule()
    def acknowledge(self) -> None:
        """The sinks confirmed everything handed on: the latest save runs."""
        self.driver.read_once()
        self._count_new()
        self.driver.acknowledge()
        self.unacknowledged.clear()

    @rule()
    def restart(self) -> None:
        """SIGTERM: the daemon drains (acknowledges) and closes; a new one starts."""
        self.acknowledge()
        self.driver.close()
        self.driver = self._start()
        self._counted = 0

    @rule()
    def crash(self) -> None:
        """kill -9: nothing more is saved; what was not acknowledged may come again."""
        self.driver.close()
        self.may_repeat |= self.unacknowledged
        self.unacknowledged.clear()
        self.driver = self._start()
        self._counted = 0

    @rule(account=st.sampled_from(ACCOUNTS), region=st.sampled_from(REGIONS))
    def crash_with_objects_fetched(self, account: str, region: str) -> None:
        """kill -9 while objects are fetched and not handed on yet: they come at the next start."""
        self.trail.put_trail_object(account, region)
        self.driver.wait_until(lambda: self.driver.source.held_objects > 0, "an object fetched")
        self.crash()

    @invariant()
    def never_twice_without_a_crash(self) -> None:
        twice = {event_id for event_id, times in self.seen.items() if times > 1}
        assert set() == twice - self.may_repeat

    @invariant()
    def only_denials_that_were_put(self) -> None:
        assert set() == set(self.seen) - self.trail.event_ids()

    def teardown(self) -> None:
        try:
            self.poll()
            assert self.trail.event_ids() == set(self.seen)  # nothing lost
            self.never_twice_without_a_crash()
        finally:
            self.driver.close()
            self.store.close()
            self.state_dir.cleanup()


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    return moto_server


def test_the_s3_source_matches_the_model(aws: MotoServer) -> None:
    """Random puts under account/region/organisation prefixes, polls, acknowledgements,
    restarts and crashes: every denial at least once, twice only after a crash."""
    machine = type("S3ListingModelHere", (S3ListingModel,), {"aws": aws})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=15,
            deadline=None,
            derandomize=not EXPLORE,
            database=None if not EXPLORE else settings.default.database,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


# -- sequences kept as plain regression tests ---------------------------------------------------


def test_a_late_object_after_a_turn_that_read_its_prefix_is_read(aws: MotoServer) -> None:
    """put, poll, a late object (its key sorts before the one read), poll: nothing lost (a
    listing that started after the newest key done lost it)."""
    machine = type("S3ListingModelHere", (S3ListingModel,), {"aws": aws})()
    machine.put_object(ACCOUNTS[0], REGIONS[0], in_organisation=False, denials=2)
    machine.poll()
    machine.put_late_object(ACCOUNTS[0], REGIONS[0], "2026/11/29")
    machine.poll()
    machine.never_twice_without_a_crash()
    machine.teardown()
