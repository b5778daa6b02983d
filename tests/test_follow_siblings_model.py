"""sources.files against a model, with several live files under one pattern: random writes to
each, rename rotations (numbered, dated, dated keeping the extension, into another directory),
deletions of rotated files, restarts and crashes, on real files through the real follower and
the real state database.

tests/test_follow_model.py proves the follower's guarantees on one live file through every
rotation scheme. This one proves what only several files can break: a file's lines are never
taken for another's (a sibling whose name looks like a rotation, a rotated file the pattern
also matches, one directory of rotated files for all of them), and every guarantee still holds
for each.

After every poll:
- every line the follower could read has been handed on: written to a file at a path the
  patterns match, or to one the follower holds open (renamed away, until it idles past
  rotate_wait; deleted, until it stops), or found again by its checkpoint after a restart;
- no line was handed on twice unless a crash came between the two;
- a line is handed on under the path of its own file (one of the names that file had), with
  one ``file_key`` per file, never shared by two files; lines of one file come in order;
- two distinct lines never share an ``event_id``, and a line read again after a crash keeps
  its id.

Lenient where the one-file model is strict: lines of a file rotated away before the follower
ever saw it hold anything (a generation it missed) may be lost here.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from tests.follower_machine import FollowerMachine, model_settings, replay
from watcher.config import FileSource

DENIAL = "User: arn:aws:iam::111122223333:user/ana is not authorized to perform: s3:GetObject"
ROTATE_WAIT_SECONDS = 5.0
KEEP = 2  # numbered rotated generations kept per file: X.1, X.2
# Siblings whose names look alike: "app-1.log" is not a rotation of "app.log", nor "app.log"
# of "app-1.log"; "app-2026.log" is named as app.log dated before its extension would be;
# "web.log" is not matched by `app*`.
LIVE = ("app.log", "app-1.log", "app-2026.log", "web.log")
SCHEMES = ("numbered", "dated", "dated_keeps_extension")


@dataclass(frozen=True)
class Layout:
    name: str
    patterns: tuple[str, ...]  # relative to the test's root
    rotated_paths: tuple[str, ...] = ()
    olddir: str = "logs"  # where rotation moves files


LAYOUTS = {
    "siblings": Layout("siblings", ("logs/*.log",)),
    "siblings_prefix_glob": Layout("siblings_prefix_glob", ("logs/app*",)),
    "siblings_olddir": Layout(
        "siblings_olddir", ("logs/*.log",), rotated_paths=("old/*",), olddir="old"
    ),
}


@dataclass(eq=False)
class File:
    """One file's content and names, as the model sees it."""

    live: str  # the name it was created as, in logs/
    names: set[str]  # every name it has had ("logs/app.log", "old/app.log.1")
    lines: list[int] = field(default_factory=list)
    secured: bool = False  # every line it has now must have been handed on
    held: bool = False  # the follower has it open (or finds it again by checkpoint at a start)
    read_something: bool = False  # held while it had lines: its checkpoint knows its bytes
    left: bool = False  # renamed to a path the patterns do not match
    closing: bool = False  # left and idle past rotate_wait: closed at the next poll


class SiblingsModel(FollowerMachine):
    layout: Layout = LAYOUTS["siblings"]

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="follow-siblings-"))
        for directory in {"logs", self.layout.olddir}:
            (self.root / directory).mkdir(exist_ok=True)
        self.source = FileSource(
            paths=tuple(str(self.root / p) for p in self.layout.patterns),
            rotated_paths=tuple(str(self.root / p) for p in self.layout.rotated_paths),
            start_at="beginning",
            rotate_wait_seconds=ROTATE_WAIT_SECONDS,
        )
        self.mtime_ns = time.time_ns()
        self.next_line = 0
        self.stamp = 0  # the dated rotations' next date
        self.at: dict[str, File] = {}  # relative path -> the file there
        self.file_of: dict[int, File] = {}  # line -> its file
        self.deleted_but_open: list[File] = []
        self.delivered: set[int] = set()
        self.file_of_key: dict[str, File] = {}

    def teardown(self) -> None:
        super().teardown()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- the files ---------------------------------------------------------------------------

    def _name(self, path: str) -> str:
        return str(Path(path).relative_to(self.root))

    def _matched(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.layout.patterns)

    def _stamp(self, name: str) -> None:
        """A change's time: the model's next tick, so that a later change looks newer."""
        self.mtime_ns = max(self.mtime_ns + 1_000_000, time.time_ns())
        os.utime(self.root / name, ns=(self.mtime_ns, self.mtime_ns))

    def _create(self, name: str) -> File:
        (self.root / name).touch()
        self._stamp(name)
        self.touched.add(str(self.root / name))
        self.at[name] = File(live=name, names={name})
        return self.at[name]

    @rule(which=st.sampled_from(LIVE), count=st.integers(1, 3))
    def append(self, which: str, count: int) -> None:
        name = f"logs/{which}"
        self.steps.append(f"append(which={which!r}, count={count})")
        file = self.at.get(name) or self._create(name)
        with (self.root / name).open("a", encoding="utf-8") as handle:
            for _ in range(count):
                line = self.next_line
                self.next_line += 1
                handle.write(f"L{line:06d} {DENIAL}\n")
                file.lines.append(line)
                self.file_of[line] = file
        file.secured = False
        self._stamp(name)
        self.touched.add(str(self.root / name))

    def _rename(self, old: str, new: str) -> None:
        if not (self.running and self.polled_since_start):
            # Renamed while the follower was away: lines it read before a crash and never
            # committed may be read again from the rotated file as a generation it never saw.
            self.id_may_change.update(set(self.at[old].lines) - self.delivered)
        (self.root / old).rename(self.root / new)
        self.touched |= {str(self.root / old), str(self.root / new)}
        file = self.at.pop(old)
        self.at[new] = file
        file.names.add(new)
        if not self._matched(new):
            file.left = True

    def _delete(self, name: str) -> None:
        (self.root / name).unlink()
        self.touched.add(str(self.root / name))
        file = self.at.pop(name)
        if self.running and self.polled_since_start and file.held:
            self.deleted_but_open.append(file)  # readable through its descriptor until a stop

    @precondition(lambda self: any(f"logs/{name}" in self.at for name in LIVE))
    @rule(pick=st.integers(0, len(LIVE) - 1), scheme=st.sampled_from(SCHEMES), create=st.booleans())
    def rotate(self, pick: int, scheme: str, create: bool) -> None:
        """logrotate's `create`: rename the live file (olddir: into the other directory); the
        writer has reopened its log (it writes to the live name only)."""
        live = [name for name in LIVE if f"logs/{name}" in self.at]
        which = live[pick % len(live)]
        self.steps.append(f"rotate(pick={pick}, scheme={scheme!r}, create={create!r})")
        self._rename(f"logs/{which}", self._rotated_name(which, scheme))
        if create:
            self._create(f"logs/{which}")

    def _rotated_name(self, which: str, scheme: str) -> str:
        """The name ``scheme`` gives live file ``which`` now (numbered: the older ones moved
        on, the oldest deleted)."""
        old = self.layout.olddir
        if scheme == "numbered":
            if f"{old}/{which}.{KEEP}" in self.at:
                self._delete(f"{old}/{which}.{KEEP}")
            for number in range(KEEP - 1, 0, -1):
                if f"{old}/{which}.{number}" in self.at:
                    self._rename(f"{old}/{which}.{number}", f"{old}/{which}.{number + 1}")
            return f"{old}/{which}.1"
        self.stamp += 1
        date = f"2026112{self.stamp // 100}{self.stamp % 100:02d}0000"
        stem, _, extension = which.rpartition(".")
        keeps = scheme == "dated_keeps_extension"
        return f"{old}/{stem}-{date}.{extension}" if keeps else f"{old}/{which}-{date}"

    @precondition(lambda self: any(f"logs/{name}" in self.at for name in LIVE))
    @rule(pick=st.integers(0, len(LIVE) - 1), scheme=st.sampled_from(SCHEMES))
    def rotate_by_copytruncate(self, pick: int, scheme: str) -> None:
        """logrotate's `copytruncate`: the live file copied to its rotated name, then emptied
        in place (no line written between the two). The copy holds the life the follower was
        reading: it is found by its first bytes if the follower read some of them."""
        live = [name for name in LIVE if f"logs/{name}" in self.at]
        which = live[pick % len(live)]
        self.steps.append(f"rotate_by_copytruncate(pick={pick}, scheme={scheme!r})")
        name, rotated = f"logs/{which}", self._rotated_name(which, scheme)
        file = self.at[name]
        # Read before a crash and never committed: read again from the copy, maybe as a file
        # of its own (after a restart, or a copy the patterns reach).
        self.id_may_change.update(set(file.lines) - self.delivered)
        shutil.copyfile(self.root / name, self.root / rotated)
        self._stamp(rotated)
        os.truncate(self.root / name, 0)
        self._stamp(name)
        self.touched |= {str(self.root / name), str(self.root / rotated)}
        self.at[rotated] = file  # the life goes on in the copy: its lines, its key
        file.names.add(rotated)
        if not self._matched(rotated):
            file.left = True
        held = file.held
        file.held = held and file.read_something
        self.at[name] = File(live=name, names={name}, held=held)  # the same inode, a new life

    @precondition(lambda self: any(file.live != name for name, file in self.at.items()))
    @rule(pick=st.integers(0, 20))
    def delete_rotated(self, pick: int) -> None:
        """logrotate's `maxage`, or an operator: a rotated file goes."""
        rotated = sorted(name for name, file in self.at.items() if file.live != name)
        self.steps.append(f"delete_rotated(pick={pick})")
        self._delete(rotated[pick % len(rotated)])

    @rule()
    def time_passes(self) -> None:
        """Longer than rotate_wait: files that left every pattern close at the next poll."""
        self.steps.append("time_passes()")
        self.now += ROTATE_WAIT_SECONDS + 1
        for file in self.at.values():
            if file.left:
                file.closing = True

    # -- the follower's actions --------------------------------------------------------------

    @precondition(lambda self: self.running)
    @rule(after_events=st.booleans())
    def poll(self, after_events: bool) -> None:
        """The follower looks: at every file, or (as after inotify events) at what changed."""
        self.steps.append(f"poll(after_events={after_events!r})")
        self._poll(after_events)

    @precondition(lambda self: self.running and any(f"logs/{n}" in self.at for n in LIVE))
    @rule(
        at_clock=st.integers(0, 6),
        pick=st.integers(0, len(LIVE) - 1),
        scheme=st.sampled_from(SCHEMES),
        count=st.integers(1, 4),
    )
    def poll_stalled_while_rotated(self, at_clock: int, pick: int, scheme: str, count: int) -> None:
        """The follower stops inside a poll (at its ``at_clock``-th reading of the clock) while
        a live file is rotated and the writer puts ``count`` lines in the new one; then it
        polls again, as the daemon does at once. The model counts the two as one look."""
        self.steps.append(
            f"poll_stalled_while_rotated(at_clock={at_clock!r}, pick={pick!r}, "
            f"scheme={scheme!r}, count={count!r})"
        )

        def rotate_and_write() -> None:
            live = [name for name in LIVE if f"logs/{name}" in self.at]
            which = live[pick % len(live)]
            self.rotate(pick=pick, scheme=scheme, create=True)
            self.append(which=which, count=count)

        handed = self._poll_stalled(at_clock, rotate_and_write)
        self.steps.append(f"  -> {[(h.line, self._name(h.path)) for h in handed]}")
        self.delivered.update(h.line for h in handed)
        self._poll(after_events=True)

    def _poll(self, after_events: bool) -> None:
        assert self.follower is not None
        changed = set(self.touched) if after_events else None
        self.touched.clear()
        before = len(self.handed)
        self._poll_as_the_daemon(changed)
        self.polled_since_start = True
        self.steps.append(f"  -> {[(h.line, self._name(h.path)) for h in self.handed[before:]]}")
        for handed in self.handed[before:]:
            self.delivered.add(handed.line)
        self._secure()

    def _secure(self) -> None:
        """What the follower can read now, it has read."""
        for name, file in self.at.items():
            # A file at a rotation's name that is empty is not opened yet (maybe a copy).
            waits = name != file.live and not file.lines and not file.held
            if self._matched(name) and not waits:
                file.held = True
            if file.held:
                file.secured = True
                file.read_something = file.read_something or bool(file.lines)
            if file.closing and file.left:
                file.held = False
        for file in self.deleted_but_open:
            file.secured = True
        self.deleted_but_open = []

    def _forget(self) -> None:
        """The follower is gone. What it held that is deleted is gone for good; a file that
        left its path while the follower had read nothing of it is, to the next follower, a
        file it does not know (its checkpoint has no bytes to know it by elsewhere)."""
        self.deleted_but_open = []
        for file in self.at.values():
            if file.held and file.left and not file.read_something:
                file.held = False

    # -- what must hold ----------------------------------------------------------------------

    def checks(self) -> list[Callable[[], None]]:
        return [self.nothing_lost, self.each_line_under_its_own_file, *super().checks()]

    @invariant()
    def nothing_lost(self) -> None:
        if not self.running or self.touched:
            return  # checked after polls: the follower has not looked yet
        files = [*self.at.values()]
        must = {line for file in files if file.secured for line in file.lines}
        missing = must - self.delivered
        assert not missing, f"lines never handed on: {sorted(missing)}{self._story()}"

    @invariant()
    def each_line_under_its_own_file(self) -> None:
        for handed in self.handed:
            file = self.file_of[handed.line]
            assert self._matched(file.live), f"{handed.line} of an unmatched file{self._story()}"
            name = self._name(handed.path)
            assert name in file.names, (
                f"{handed.line} of {sorted(file.names)} handed on as {name}{self._story()}"
            )
            owner = self.file_of_key.setdefault(handed.file_key, file)
            assert owner is file, (
                f"{handed.line} of {sorted(file.names)} under the key of "
                f"{sorted(owner.names)}{self._story()}"
            )


def _machine(layout: Layout) -> type[SiblingsModel]:
    return type(f"SiblingsModel_{layout.name}", (SiblingsModel,), {"layout": layout})


MACHINES = {name: _machine(layout) for name, layout in LAYOUTS.items()}
EXAMPLES = int(os.environ.get("FOLLOW_MODEL_EXAMPLES", "100"))
EXPLORE = os.environ.get("FOLLOW_MODEL_RANDOM") == "1"


@pytest.mark.parametrize("layout", sorted(MACHINES))
def test_siblings_match_the_model(layout: str) -> None:
    """Several live files under one pattern, rotated and restarted at random: each file's lines
    come once, in order, under their own file's path and key, and none the model can read is
    lost."""
    machine = MACHINES[layout]
    machine.TestCase.settings = model_settings(EXAMPLES, explore=EXPLORE)
    machine.TestCase().runTest()


# -- examples hypothesis found, kept as plain regression tests --------------------------------


def _replay(layout: str, steps: str) -> None:
    replay(MACHINES[layout](), steps)


class TestFoundByHypothesis:
    def test_a_dated_rotation_keeping_its_extension_is_no_rotation_of_another(self):
        """``app-20261120020000.log`` (dateext keeping ``.log``, matched by ``*.log``) was read
        as a generation missed after ``app-20261120010000.log``, whose inode it took: both
        had the stem ``app``. Its line came out under the other file's path."""
        _replay(
            "siblings",
            """
            crash()
            append(which='app.log', count=1)
            rotate(pick=0, scheme='dated_keeps_extension', create=False)
            start()
            crash()
            time_passes()
            delete_rotated(pick=0)
            append(which='app.log', count=1)
            start()
            rotate(pick=0, scheme='dated_keeps_extension', create=False)
            crash()
            """,
        )

    def test_an_olddir_holding_every_files_rotations_gives_each_its_own(self):
        """With ``rotated_paths: old/*``, ``old/app.log.1`` was read as a generation missed
        after ``app-1.log`` (rotated to ``old/app-1.log.1`` while stopped), under its path."""
        _replay(
            "siblings_olddir",
            """
            append(which='app-1.log', count=1)
            crash()
            append(which='app.log', count=1)
            start()
            rotate(pick=0, scheme='numbered', create=False)
            rotate(pick=0, scheme='numbered', create=False)
            crash()
            """,
        )

    def test_a_rotated_name_the_pattern_matched_searches_for_no_generations(self):
        """Under ``app*``: the checkpoint of ``app.log.2``, whose inode the next ``app.log``
        took once it was deleted, made a search beside it that read ``app.log.1`` as its
        missed generation, under the name ``app.log.2``."""
        _replay(
            "siblings_prefix_glob",
            """
            crash()
            append(which='app.log', count=1)
            rotate(pick=0, scheme='numbered', create=True)
            start()
            rotate(pick=0, scheme='numbered', create=False)
            crash()
            append(which='app.log', count=1)
            rotate(pick=0, scheme='numbered', create=False)
            start()
            crash()
            """,
        )

    def test_a_dated_rotation_keeping_its_extension_in_olddir_is_found_after_a_restart(self):
        """``app-1.log``, empty when last saved, written and rotated into ``old/`` as
        ``app-1-20261120010000.log`` (dateext keeping ``.log``) before the first look after a
        restart: nothing but its name tells it is ``app-1.log``'s generation, and that name was
        not taken for one."""
        _replay(
            "siblings_olddir",
            """
            crash()
            append(which='app-1.log', count=1)
            rotate(pick=0, scheme='numbered', create=True)
            start()
            poll(after_events=False)
            crash()
            start()
            append(which='app-1.log', count=1)
            rotate(pick=0, scheme='dated_keeps_extension', create=False)
            poll(after_events=False)
            """,
        )

    def test_a_live_file_named_like_a_dated_rotation_is_followed_while_empty(self):
        """``app-2026.log``, created empty beside ``app.log``, waited unopened as if it were a
        copy in the making (named as app.log dated before ``.log``): written while stopped and
        rotated after the start, its line was lost. A dated name holds a day at least now."""
        _replay(
            "siblings",
            """
            crash()
            time_passes()
            append(which='app.log', count=1)
            append(which='app-1.log', count=1)
            append(which='app-2026.log', count=1)
            start()
            rotate(pick=2, scheme='numbered', create=True)
            poll(after_events=False)
            append(which='app-2026.log', count=1)
            stop()
            start()
            rotate(pick=0, scheme='numbered', create=False)
            rotate(pick=1, scheme='numbered', create=False)
            poll(after_events=False)
            """,
        )

    def test_a_dated_rotation_belongs_to_the_file_it_names_also_once_that_file_is_gone(self):
        """``old/app-2026-20261120010000.log`` was read as ``app.log``'s missed generation
        once ``app-2026.log`` no longer existed beside it."""
        _replay(
            "siblings_olddir",
            """
            append(which='app.log', count=1)
            crash()
            append(which='app-2026.log', count=1)
            rotate(pick=0, scheme='numbered', create=False)
            start()
            rotate(pick=0, scheme='dated_keeps_extension', create=False)
            crash()
            """,
        )

    def test_a_copy_dated_before_its_extension_continues_a_checkpoint_gone_in_a_crash(self):
        """copytruncate with ``dateext`` and ``extension .log`` (the copy `app-DATE.log`, which
        `*.log` matches), then app.log rotated on, between crashes: the copy was not known as
        the copy of app.log's gone checkpoint (only numbered names were, beside it), so it
        was read from 0, its committed line again under a new id."""
        _replay(
            "siblings",
            """
            crash()
            append(which='app.log', count=1)
            start()
            poll(after_events=False)
            crash()
            start()
            rotate_by_copytruncate(pick=0, scheme='dated_keeps_extension')
            crash()
            start()
            rotate(pick=0, scheme='numbered', create=False)
            crash()
            """,
        )

    def test_a_truncated_empty_file_takes_no_others_rotation_in_olddir_for_its_copy(self):
        """app.log, followed while empty, truncated again (an empty copy-truncate): its copy
        is known by its age only, and ``old/app-2026.log.1``, app-2026.log's rotation that a
        stalled poll saw made, was taken for it: read under app.log's path."""
        _replay(
            "siblings_olddir",
            """
            time_passes()
            time_passes()
            append(count=1, which='app.log')
            append(count=1, which='app-1.log')
            rotate_by_copytruncate(pick=0, scheme='numbered')
            poll_stalled_while_rotated(at_clock=0, count=1, pick=1, scheme='numbered')
            time_passes()
            append(count=1, which='app-2026.log')
            rotate_by_copytruncate(pick=0, scheme='numbered')
            time_passes()
            poll_stalled_while_rotated(at_clock=0, count=1, pick=2, scheme='numbered')
            """,
        )

    def test_a_copy_of_a_file_listed_and_rotated_away_at_a_start_is_no_missed_generation(self):
        """Stalled at a start's first look, after the listing: app.log, copied and emptied
        while stopped, was rotated away; the search for what rotation made after an older
        file found its copy and read it whole as a generation missed (its line twice): the
        checkpoint of the file listed at app.log did not count as what is at app.log."""
        _replay(
            "siblings_olddir",
            """
            append(which='app.log', count=1)
            poll_stalled_while_rotated(at_clock=0, pick=0, scheme='numbered', count=1)
            poll_stalled_while_rotated(at_clock=0, pick=0, scheme='numbered', count=1)
            stop()
            start()
            rotate_by_copytruncate(pick=0, scheme='numbered')
            poll_stalled_while_rotated(at_clock=0, pick=0, scheme='numbered', count=1)
            """,
        )

    def test_a_copy_renamed_on_while_the_follower_searches_for_it_is_found(self):
        """Stalled as it opened the copy it had listed (old/app.log.1) when it saw app.log
        truncated: rotation renamed the copy to old/app.log.2 and the emptied app.log to
        old/app.log.1; the file opened was not the copy, the search ended, and the copy's
        unread line was lost (a warning that no copy was found). A name that holds another
        file when opened sends the search round again."""
        _replay(
            "siblings_olddir",
            """
            append(which='app.log', count=1)
            poll_stalled_while_rotated(at_clock=0, pick=0, scheme='numbered', count=1)
            crash()
            delete_rotated(pick=0)
            append(which='app.log', count=1)
            rotate_by_copytruncate(pick=0, scheme='numbered')
            start()
            poll_stalled_while_rotated(at_clock=3, pick=0, scheme='numbered', count=1)
            """,
        )

    def test_a_copy_made_before_its_original_was_renamed_is_known_as_its_copy(self):
        """Under ``app*``: app.log copied to app.log.1 and emptied, then renamed to its dated
        name, both before the next look. That look took the rename first, so app.log.1 no
        longer looked like a rotation of the file it was copied from: read from 0, its line
        twice without a crash. New names of followed files are now taken after new files."""
        _replay(
            "siblings_prefix_glob",
            """
            poll(after_events=False)
            append(count=1, which='app.log')
            poll(after_events=False)
            rotate_by_copytruncate(pick=0, scheme='numbered')
            rotate(create=False, pick=0, scheme='dated_keeps_extension')
            poll(after_events=False)
            """,
        )

    def test_a_copy_of_a_file_rotated_between_the_listing_and_its_open_continues_it(self):
        """Stalled at a start's first look: app.log, copied (dated, keeping `.log`) and
        emptied while stopped, was then rotated away and a new one made. The copy was looked
        at before app.log's checkpoint was known as gone, so it was read from 0 (a committed
        line, new id). Such a checkpoint is now known as gone before the next file opens."""
        _replay(
            "siblings",
            """
            crash()
            append(count=1, which='app.log')
            start()
            crash()
            start()
            poll_stalled_while_rotated(at_clock=0, count=1, pick=0, scheme='numbered')
            crash()
            start()
            rotate_by_copytruncate(pick=0, scheme='dated_keeps_extension')
            poll_stalled_while_rotated(at_clock=0, count=1, pick=0, scheme='numbered')
            """,
        )

    def test_a_copy_of_a_file_renamed_before_its_truncation_was_seen_is_found(self):
        """app-1.log copied to app-1.log.1 and emptied, then renamed to its dated name, before
        the follower looked: it saw the rename, then the truncation, and searched for the
        copy by the new name only (no copy found; the copy read later from 0, its committed
        line under a new id). The name a file had before a rename seen since counts too."""
        _replay(
            "siblings",
            """
            crash()
            start()
            append(which='app.log', count=1)
            crash()
            append(which='app-1.log', count=1)
            start()
            crash()
            start()
            poll_stalled_while_rotated(at_clock=0, pick=1, scheme='numbered', count=1)
            rotate_by_copytruncate(pick=1, scheme='numbered')
            rotate(pick=0, scheme='numbered', create=False)
            rotate(pick=0, scheme='dated_keeps_extension', create=True)
            poll_stalled_while_rotated(at_clock=0, pick=0, scheme='numbered', count=1)
            crash()
            start()
            crash()
            """,
        )

    def test_a_copy_on_the_inode_of_a_gone_copy_is_read_from_its_originals_offset(self):
        """A copy-truncate copy made while the follower was down took the inode of an older
        copy rotation had just deleted (ext4 hands a freed inode on at once; this replay
        relies on it), whose checkpoint was still saved: the search took the new copy for
        the file that checkpoint describes and passed over it, its unread line lost. A
        checkpoint now hides a file only while its first bytes are that file's."""
        _replay(
            "siblings",
            """
            append(which='app.log', count=1)
            poll(after_events=False)
            rotate_by_copytruncate(pick=0, scheme='numbered')
            poll_stalled_while_rotated(at_clock=0, pick=0, scheme='numbered', count=1)
            crash()
            append(which='app.log', count=1)
            time_passes()
            start()
            rotate_by_copytruncate(pick=0, scheme='numbered')
            poll_stalled_while_rotated(at_clock=0, pick=0, scheme='numbered', count=1)
            """,
        )

    def test_a_copy_of_a_file_renamed_since_is_named_as_the_file_was_when_copied(self):
        """app.log copy-truncated to app.log.1, then renamed to app-20261120010000.log (in the
        patterns) before the follower looked: the rest read from the copy was named after
        the new name, which those lines never had; now after app.log."""
        _replay(
            "siblings",
            """
            append(which='app.log', count=1)
            poll(after_events=False)
            append(which='app.log', count=1)
            rotate_by_copytruncate(pick=0, scheme='numbered')
            rotate(pick=0, scheme='dated_keeps_extension', create=False)
            poll(after_events=False)
            """,
        )

    def test_a_new_file_renamed_away_while_its_copies_are_searched_is_read_once(self):
        """Found by an explore run of the search at a start for what rotation made of a file
        new since the last run: app-1.log, listed, opened, then rotated into old/ (a stalled
        poll) before that search, which read it as one of those generations; the open file
        was then followed as app-1.log too, from 0: its line twice without a crash."""
        _replay(
            "siblings_olddir",
            """
            stop()
            append(which='app.log', count=1)
            append(which='app-1.log', count=1)
            start()
            rotate(pick=1, scheme='numbered', create=False)
            poll(after_events=False)
            stop()
            append(which='app-1.log', count=1)
            start()
            time_passes()
            poll_stalled_while_rotated(at_clock=2, pick=1, scheme='numbered', count=1)
            """,
        )
