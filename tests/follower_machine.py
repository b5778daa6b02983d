"""What the follower's model-based tests share: the follower driven as the daemon drives it
(started, stopped, killed), their hypothesis settings, and replaying a failing example's steps
as a plain regression test."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from watcher.config import FileSource
from watcher.events import event_id
from watcher.log import configure_logging
from watcher.model import Finding, Origin
from watcher.sources.files import FileSources, LineContext
from watcher.sources.lines import Candidate
from watcher.state import StateStore


@dataclass
class Handed:
    line: int
    epoch: int
    event_id: str
    file_key: str
    path: str


class FollowerMachine(RuleBasedStateMachine):
    """The real follower and state database, started, stopped and killed as the daemon would
    be. A subclass sets ``root``, ``source`` and its model, and says what a stop or a crash
    makes its model forget (``_forget``). Lines are ``L<number> ...``: ``handed`` records each
    handed on, with the epoch (crashes so far) it came in."""

    root: Path
    source: FileSource

    def __init__(self) -> None:
        super().__init__()
        self.logs = io.StringIO()
        self.store: StateStore | None = None
        self.follower: FileSources | None = None
        self.now = 0.0
        self.epoch = 0
        self.handed: list[Handed] = []
        self.polled_since_start = False  # before its first poll a follower holds nothing open
        self.touched: set[str] = set()
        self.steps: list[str] = []  # what happened, for the failure message
        self.ids: dict[str, int] = {}  # event_id -> line
        self.id_of: dict[int, str] = {}  # line -> event_id of its first handing
        # Lines the model allows to be read again under another key (after a crash, from
        # another file than the first time)
        self.id_may_change: set[int] = set()
        # A poll to be stopped at its n-th look at the clock while ``action`` changes the files
        self.stall: tuple[int, Callable[[], None]] | None = None
        self.crashed = False  # the last end of a follower was a crash (for ``_forget``)

    @initialize()
    def start_first(self) -> None:
        self._start()

    def _start(self) -> None:
        """As the daemon starts it: a first start until the first look is saved."""
        self.polled_since_start = False
        self.store = StateStore(self.root / "state", configure_logging(self.logs))
        self.follower = FileSources(
            (self.source,),
            self.store,
            configure_logging(self.logs),
            first_start=self.store.files_first_look_due(),
            clock=self._clock,
        )

    def _clock(self) -> float:
        """The follower's clock. A stalled poll's world moves on at its n-th reading: the
        process stops right there (SIGSTOP, a starved CPU stop it anywhere) while another
        program changes the files; the follower reads the clock between its look at a file's
        first bytes and its read, as it opens a file, takes up a copy, closes idle files."""
        if self.stall is not None:
            countdown, action = self.stall
            self.stall = (countdown - 1, action) if countdown else None
            if not countdown:
                before = len(self.steps)
                action()
                self.steps[before:] = [f"  ~ stalled here: {step}" for step in self.steps[before:]]
        return self.now

    def _poll_as_the_daemon(self, changed: set[str] | None) -> None:
        """One look, and at once more while a backlog is read in slices (the daemon does not
        wait then); every sink takes what was handed on."""
        assert self.follower is not None
        self.follower.poll(changed, self._handle)
        self.follower.save_checkpoints()
        for _ in range(100):
            if not self.follower.more_pending:
                return
            self.follower.poll(set(), self._handle)
            self.follower.save_checkpoints()
        raise AssertionError(f"still more pending after 100 polls{self._story()}")

    def _poll_stalled(self, at_clock: int, action: Callable[[], None]) -> list[Handed]:
        """One look at every file, stopped at its ``at_clock``-th reading of the clock while
        ``action`` changes the files (when it reads the clock fewer times, nothing happens);
        every sink takes what was handed on, which is returned."""
        assert self.follower is not None
        self.stall = (at_clock, action)
        self.touched.clear()
        before = len(self.handed)
        self.follower.poll(None, self._handle)
        self.follower.save_checkpoints()
        self.stall = None
        self.polled_since_start = True
        return self.handed[before:]

    def _handle(self, candidate: Candidate, file: LineContext) -> None:
        text = candidate.text.decode()
        number = text[1:7]
        assert re.fullmatch(r"L\d{6}", text[:7]), (
            f"a line handed on from its middle (a wrong offset): {text[:60]!r} in {file.path}"
            f" at {candidate.line_offset}{self._story()}"
        )
        line = int(number)
        origin = Origin("file", file.path, candidate.line_offset, file_key=file.file_key)
        self.handed.append(
            Handed(line, self.epoch, event_id(origin, Finding(0, 0, 0)), file.file_key, file.path)
        )

    @property
    def running(self) -> bool:
        return self.follower is not None

    def _forget(self) -> None:
        """The follower is gone: what the model no longer expects it to find."""
        raise NotImplementedError

    @precondition(lambda self: self.running)
    @rule()
    def stop(self) -> None:
        """SIGTERM: everything handed on is committed, then the follower closes."""
        self.steps.append("stop()")
        assert self.follower is not None
        assert self.store is not None
        self.follower.save_checkpoints()
        self.follower.close()
        self.store.close()
        self.follower = self.store = None
        self.crashed = False
        self._forget()

    @precondition(lambda self: not self.running)
    @rule()
    def start(self) -> None:
        self.steps.append("start()")
        self._start()

    @precondition(lambda self: self.running)
    @rule()
    def crash(self) -> None:
        """kill -9 after a poll whose lines reached no sink: they must all come again."""
        self.steps.append("crash()")
        assert self.follower is not None
        assert self.store is not None
        changed = set(self.touched)
        self.touched.clear()
        before = len(self.handed)
        self._before_crash_poll()
        self.follower.poll(changed, self._handle)  # and no sink confirms: nothing saved
        self.steps.append(f"  -> {[h.line for h in self.handed[before:]]} (never committed)")
        self._after_crash_poll()
        for followed in list(self.follower.files.values()):
            followed.close()  # no close(), no commit: the process is gone
        self.store.close()
        self.follower = self.store = None
        self.crashed = True
        self._forget()
        self.epoch += 1
        self.touched.add("<crash>")  # the follower must look again before anything is due

    def _before_crash_poll(self) -> None:
        """What a model decides as the crash's last poll begins, with the files as it sees them."""

    def _after_crash_poll(self) -> None:
        """What a model checks of the crash's last poll, with the files as that poll saw them."""

    def checks(self) -> list[Callable[[], None]]:
        """Every invariant, for a replay to check after each step as hypothesis does."""
        return [
            self.never_twice_without_a_crash,
            self.in_order_per_file,
            self.event_ids_unique_and_stable,
        ]

    def _story(self) -> str:
        return "\nsteps:\n  " + "\n  ".join(self.steps)

    @invariant()
    def never_twice_without_a_crash(self) -> None:
        seen: set[tuple[int, int]] = set()
        for handed in self.handed:
            key = (handed.line, handed.epoch)
            assert key not in seen, f"{handed.line} twice in epoch {handed.epoch}{self._story()}"
            seen.add(key)

    @invariant()
    def in_order_per_file(self) -> None:
        last: dict[tuple[str, int], int] = {}
        for handed in self.handed:
            key = (handed.file_key, handed.epoch)
            assert last.get(key, -1) < handed.line, f"{handed.line} out of order{self._story()}"
            last[key] = handed.line

    @invariant()
    def event_ids_unique_and_stable(self) -> None:
        for handed in self.handed:
            owner = self.ids.setdefault(handed.event_id, handed.line)
            assert owner == handed.line, f"{owner} and {handed.line} share an id{self._story()}"
            first = self.id_of.setdefault(handed.line, handed.event_id)
            stable = first == handed.event_id or handed.line in self.id_may_change
            assert stable, f"{handed.line} read with a new id{self._story()}"

    def teardown(self) -> None:
        if self.follower is not None:
            self.follower.close()
        if self.store is not None:
            self.store.close()


def model_settings(examples: int, *, explore: bool) -> settings:
    """A fixed set of examples (a red run always means a change broke one), or, exploring,
    new ones each run, failures kept in hypothesis's database."""
    return settings(
        max_examples=examples,
        stateful_step_count=40,
        deadline=None,
        derandomize=not explore,
        database=settings.default.database if explore else None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def replay(machine: FollowerMachine, steps: str) -> None:
    """Run ``steps`` (one rule call a line) on ``machine`` after its ``start_first`` (the first
    step when it names one), checking every invariant after each step, as hypothesis does;
    then tear it down."""
    lines = [line.strip() for line in steps.splitlines()]
    calls = [line for line in lines if line and not line.startswith(("~", "->"))]  # not notes
    if not calls or not calls[0].startswith("start_first("):
        calls.insert(0, "start_first()")
    try:
        for step in calls:
            name, _, arguments = step.partition("(")
            kwargs = eval(f"dict({arguments}")  # noqa: S307 - literals from our own tests
            getattr(machine, name)(**kwargs)
            for check in machine.checks():
                check()
    finally:
        machine.teardown()
