"""backpressure: the commit gate with real file sinks, one of them on a tmpfs that fills up.

A hypothesis state machine reads events, fills and frees the disk, reopens the sinks and lets
time pass, against a model that is only the list of events read. Whatever the order: no
checkpoint passes what every sink has, no sink holds an event twice, and once space returns
every sink holds every event exactly once.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.tmpfs import fill
from watcher.backpressure import CommitGate
from watcher.log import configure_logging
from watcher.sinks import Sinks
from watcher.sinks.file import FileSink


def ids_in(path: Path) -> list[int]:
    """The ids of the complete lines of a sink's file, in order."""
    lines = path.read_bytes().split(b"\n")[:-1] if path.exists() else []
    return [json.loads(line)["n"] for line in lines]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestCommitGate:
    def test_no_commit_passes_a_sink_and_nothing_is_lost_or_doubled(self, tmp_path, tmpfs):
        """The state machine below, on a real 1 MiB tmpfs (room for every event it can read,
        so only the filler makes it full)."""
        small = tmpfs(tmp_path / "small", "size=1m")
        run_state_machine_as_test(
            _machine(small, tmp_path / "big"),
            settings=settings(max_examples=40, stateful_step_count=30, deadline=None),
        )

    def test_sink_retry_is_logged_once_per_failure_not_per_attempt(self, tmp_path, tmpfs):
        """Three failed retries of the same full disk: one sink_retry, then one recovery."""
        small = tmpfs(tmp_path / "small", "size=64k")
        logs = io.StringIO()
        clock = FakeClock()
        sink = FileSink(str(small / "events.jsonl"))
        failed: list[str] = []
        gate = CommitGate(
            Sinks([sink]).flush, configure_logging(logs), clock=clock, on_failure=failed.append
        )
        filler = fill(small)
        sink.write({"event": "authz_denial", "n": 0})
        gate.commit("source", lambda: None)
        for _ in range(3):
            clock.now += 60
            gate.retry()
        filler.unlink()
        clock.now += 60
        gate.retry()
        sink.close()
        names = [json.loads(line)["event"] for line in logs.getvalue().splitlines()]
        assert ["sink_retry", "sink_recovered"] == names
        assert [0] == ids_in(small / "events.jsonl")
        assert [
            f"file:{small}/events.jsonl"
        ] * 4 == failed  # every failed attempt counts (sink_errors metric)


def _machine(small: Path, big: Path) -> type[RuleBasedStateMachine]:
    big.mkdir(exist_ok=True)

    class CommitGateMachine(RuleBasedStateMachine):
        @initialize()
        def start(self) -> None:
            for path in (small / "events.jsonl", small / "filler", big / "events.jsonl"):
                path.unlink(missing_ok=True)
            self.paths = (small / "events.jsonl", big / "events.jsonl")
            self.sinks = [FileSink(str(path)) for path in self.paths]
            self.clock = FakeClock()
            self.gate = CommitGate(
                Sinks(list(self.sinks)).flush, configure_logging(io.StringIO()), clock=self.clock
            )
            self.read: list[int] = []  # the model: every event read, in order
            self.committed = 0  # how many of them the last saved checkpoint covers
            self.filler: Path | None = None

        def _save(self, upto: int) -> None:
            self.committed = upto

        @precondition(lambda self: not self.gate.blocked)
        @rule(count=st.integers(min_value=1, max_value=20))
        def read_and_commit(self, count: int) -> None:
            """What the daemon does while no sink fails: read a slice, then commit it."""
            for _ in range(count):
                n = len(self.read)
                self.read.append(n)
                event = {"event": "authz_denial", "n": n, "pad": "x" * 150}
                for sink in self.sinks:
                    sink.write(event)
            upto = len(self.read)
            self.gate.commit("source", lambda: self._save(upto))

        @precondition(lambda self: self.filler is None)
        @rule()
        def disk_fills(self) -> None:
            self.filler = fill(small)

        @precondition(lambda self: self.filler is not None)
        @rule()
        def space_returns(self) -> None:
            assert self.filler is not None
            self.filler.unlink()
            (small / "probe").unlink(missing_ok=True)
            self.filler = None

        @rule(seconds=st.sampled_from([0.1, 1.0, 60.0]))
        def time_passes(self, seconds: float) -> None:
            self.clock.now += seconds
            self.gate.retry()

        @rule()
        def sighup_reopens(self) -> None:
            for sink in self.sinks:
                sink.reopen()

        @invariant()
        def no_commit_past_any_sink(self) -> None:
            for path in self.paths:
                assert self.committed <= len(ids_in(path))

        @invariant()
        def every_sink_holds_a_prefix_of_what_was_read(self) -> None:
            for path in self.paths:
                ids = ids_in(path)
                assert self.read[: len(ids)] == ids

        def teardown(self) -> None:
            if self.filler is not None:
                self.space_returns()
            for _ in range(20):
                if not self.gate.blocked:
                    break
                self.time_passes(60.0)
            for sink in self.sinks:
                sink.close()
            assert (False, len(self.read)) == (self.gate.blocked, self.committed)
            for path in self.paths:
                assert self.read == ids_in(path)

    return CommitGateMachine
