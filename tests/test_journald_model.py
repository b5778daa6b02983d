"""The journald source against a model: appends, rotations, reads, commits, restarts and
crashes, on a real journal directory (systemd-journal-remote), real journalctl processes and
the real state database.

The model is a list of the messages written and, per message, how many crashes happened while
it was handed on and not committed. The source must hand on every message at least once, at
most once more per such crash (exactly once when nothing crashed), and always with the same
cursor (the event-id key).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from tests.recording_output import RecordingOutput
from tests.test_daemon import wait_for
from tests.test_journald import Harness, needs_journal

EXAMPLES = int(os.environ.get("JOURNALD_MODEL_EXAMPLES", "25"))
EXPLORE = os.environ.get("JOURNALD_MODEL_RANDOM") == "1"


class JournalModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="journald-model-"))
        self.harness = Harness(self.root, start_at="beginning")
        self.harness.start()
        self.written: list[str] = []
        self.delivered: Counter[str] = Counter()
        self.keys: defaultdict[str, set[str | None]] = defaultdict(set)
        self.uncommitted: set[str] = set()
        self.repeats_allowed: Counter[str] = Counter()

    # -- what happens to the journal ----------------------------------------------------------

    @rule(count=st.integers(min_value=1, max_value=4))
    def append(self, count: int) -> None:
        messages = [f"message {len(self.written) + n}" for n in range(count)]
        self.harness.journal.append(*messages)
        self.written += messages

    @rule()
    def rotate(self) -> None:
        self.harness.journal.rotate()

    # -- what the daemon does ------------------------------------------------------------------

    @rule()
    def read(self) -> None:
        """One read of what the reader fetched so far (maybe nothing yet)."""
        assert self.harness.source is not None
        self.harness.source.read(None, self.harness.out)
        self._take_handed()

    @rule()
    def read_everything(self) -> None:
        """Read until every message written so far was handed on (the reader is a thread)."""
        self._drain()

    @rule()
    def commit(self) -> None:
        self.harness.commit()
        self.uncommitted.clear()

    @rule()
    def restart(self) -> None:
        """SIGTERM: commit what was handed on, stop, start again."""
        self.commit()
        self._start_again()

    @rule()
    def crash(self) -> None:
        """kill -9: what was handed on and not committed may come again."""
        self.repeats_allowed.update(self.uncommitted)
        self.uncommitted.clear()
        self._start_again()

    def _start_again(self) -> None:
        assert self.harness.source is not None
        self.harness.source.close()
        self.harness.out = RecordingOutput()
        self.harness.start()

    def _take_handed(self) -> None:
        for handed in self.harness.out.handed:
            self.delivered[handed.message] += 1
            self.keys[handed.message].add(handed.origin.file_key)
            self.uncommitted.add(handed.message)
        self.harness.out.handed.clear()

    # -- the check -----------------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            self._drain()
            missing = [m for m in self.written if self.delivered[m] == 0]
            too_many = {m: n for m, n in self.delivered.items() if n > 1 + self.repeats_allowed[m]}
            several_keys = {m: k for m, k in self.keys.items() if len(k) != 1}
            assert ([], {}, {}) == (missing, too_many, several_keys)
        finally:
            self.harness.close()
            shutil.rmtree(self.root, ignore_errors=True)

    def _drain(self) -> None:
        def all_delivered() -> bool:
            self.read()
            return all(self.delivered[m] for m in self.written)

        wait_for(all_delivered, "every message written")


@needs_journal
def test_the_journald_source_matches_the_model() -> None:
    """Random sequences of appends, rotations, reads, commits, restarts and crashes: every
    message arrives, none twice without a crash, each always with the same cursor."""
    JournalModel.TestCase.settings = settings(
        max_examples=EXAMPLES,
        stateful_step_count=15,
        deadline=None,
        derandomize=not EXPLORE,
        database=None if not EXPLORE else settings.default.database,
        suppress_health_check=[HealthCheck.too_slow],
    )
    JournalModel.TestCase().runTest()
