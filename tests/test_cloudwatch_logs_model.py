"""cloudwatch_logs: the real source against a simple model, on random runs against moto.

The machine puts events into two streams of a group in moto (often several at one
millisecond), lets the source read them (FilterLogEvents pages of 3 events), saves its
checkpoint, stops it gracefully or crashes it (no save), and starts it again over the same
state database. The model: every event put is handed on at least once; an event is handed on
twice only if a crash came after it was handed on and before a save covered it; and it keeps
its origin (so its ``event_id``) every time.

``CWL_MODEL_EXAMPLES`` runs more examples than the 8 of ``make test``.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
import uuid
from collections import Counter

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from tests.moto_server import MotoServer
from tests.recording_output import RecordingOutput
from tests.test_cloudwatch_logs import Logs, denial
from tests.test_daemon import wait_for
from watcher.config import CloudWatchLogsSource
from watcher.log import configure_logging
from watcher.sources.cloudwatch_logs import CloudWatchLogsSources
from watcher.state import StateStore

STREAMS = ("s1", "s2")
EXAMPLES = int(os.environ.get("CWL_MODEL_EXAMPLES", "8"))


class CloudWatchLogsMachine(RuleBasedStateMachine):
    """One group in moto, the source over a real state database, and the model beside them."""

    def __init__(self, logs: Logs) -> None:
        super().__init__()
        self.logs = logs
        self.group = f"/model/{uuid.uuid4().hex}"
        logs.group(self.group, *STREAMS)
        self.millis = int(time.time() * 1000) - 60_000
        self.directory = tempfile.mkdtemp(prefix="cwl-model-")
        self.log = configure_logging(io.StringIO())
        self.store = StateStore(self.directory, self.log)
        self.config = CloudWatchLogsSource(
            log_groups=(self.group,), start_at="beginning", poll_interval_seconds=0.02
        )
        self.source = self._start()
        self.out = RecordingOutput()
        self.written: list[str] = []
        self.handed_on: Counter[str] = Counter()
        self.origin_of: dict[str, object] = {}
        self.unsaved: set[str] = set()  # handed on by this run, not covered by a save
        self.may_repeat: set[str] = set()  # handed on, then a crash before a save

    def _start(self) -> CloudWatchLogsSources:
        source = CloudWatchLogsSources(
            (self.config,), self.store, self.log, min_request_interval_seconds=0.005, page_events=3
        )
        source.start(lambda: None)
        return source

    @rule(
        stream=st.sampled_from(STREAMS),
        steps=st.lists(st.sampled_from([0, 0, 1, 7]), min_size=1, max_size=4),
    )
    def put(self, stream: str, steps: list[int]) -> None:
        """Events at the last millisecond (step 0) or later ones, never earlier."""
        events = []
        for step in steps:
            self.millis += step
            message = denial(f"m{len(self.written)}")
            self.written.append(message)
            events.append((self.millis, message))
        self.logs.put(self.group, stream, *events)

    @rule()
    def read(self) -> None:
        """Read until every event put has been handed on."""

        def everything_handed_on() -> bool:
            before = len(self.out.handed)
            self.source.read(None, self.out)
            for text, origin, *_ in self.out.handed[before:]:
                self.handed_on[text] += 1
                self.unsaved.add(text)
                assert self.origin_of.setdefault(text, origin) == origin, "same event_id"
            return set(self.written) <= set(self.handed_on)

        wait_for(everything_handed_on, "every event put to be handed on")
        repeated = {text for text, count in self.handed_on.items() if count > 1}
        assert set() == repeated - self.may_repeat

    @rule()
    def save(self) -> None:
        """The daemon runs the checkpoint once every sink has the events."""
        checkpoint = self.source.checkpoint()
        if checkpoint is not None:
            checkpoint()
        self.unsaved.clear()

    @precondition(lambda self: self.written)
    @rule()
    def stop_and_start(self) -> None:
        """SIGTERM: the last checkpoint is saved, then a new start."""
        self.save()
        self.source.close()
        self.source = self._start()

    @precondition(lambda self: self.written)
    @rule()
    def crash_and_start(self) -> None:
        """kill -9: nothing more is saved; what was not saved may come again."""
        self.source.close()
        self.may_repeat |= self.unsaved
        self.unsaved.clear()
        self.source = self._start()

    def teardown(self) -> None:
        self.source.close()
        self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def test_at_least_once_and_exactly_once_without_a_crash(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
):
    """Random puts, reads, saves, stops and crashes: nothing lost, repeats only after a crash."""
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    logs = Logs(moto_server)
    run_state_machine_as_test(
        lambda: CloudWatchLogsMachine(logs),
        settings=settings(max_examples=EXAMPLES, stateful_step_count=20, deadline=None),
    )
