"""The journald source (watcher/sources/journald.py) over real journal files.

Entries are written by Debian's systemd-journal-remote into a journal directory and read by a
real ``journalctl`` process, as on a host; the source class is driven with a real StateStore
and an Output that records what it is handed; the daemon tests run ``authz-watcher run``.
"""

from __future__ import annotations

import io
import json
import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.journal import Entry, Journal, denial, why_journal_cannot_be_written
from tests.recording_output import RecordingOutput, commit
from tests.test_daemon import Watcher, wait_for
from tests.tmpfs import remount
from watcher.config import JournaldSource
from watcher.log import configure_logging
from watcher.sources.journald import (
    EntryError,
    JournalSources,
    journalctl_command,
    matches,
    own_unit,
    parse_entry,
    source_key,
)
from watcher.state import StateStore

_SKIP_REASON = why_journal_cannot_be_written()
needs_journal = pytest.mark.skipif(_SKIP_REASON is not None, reason=str(_SKIP_REASON))


class Harness:
    """One JournalSources over a journal directory, with its state database and log."""

    def __init__(self, root: Path, **options: Any) -> None:
        self.root = root
        self.journal = Journal(root / "journal")
        self.options = {"directory": str(self.journal.directory), **options}
        self.log_stream = io.StringIO()
        self.log = configure_logging(self.log_stream)
        self.store = StateStore(root / "state", self.log)
        self.out = RecordingOutput()
        self.source: JournalSources | None = None
        self.wakes = 0

    def start(self) -> JournalSources:
        self.source = JournalSources((JournaldSource(**self.options),), self.store, self.log)
        self.source.start(self._wake)
        return self.source

    def _wake(self) -> None:
        self.wakes += 1

    def read_until(self, count: int) -> list[str]:
        """Read until ``count`` messages were handed on in all (deadline: the test fails)."""
        assert self.source is not None
        return self.out.read_until(self.source, count)

    def commit(self) -> None:
        assert self.source is not None
        commit(self.source)

    def restart(self, *, crash: bool = False) -> None:
        """Stop (graceful: commit first; crash: not) and start a new source on the same state."""
        assert self.source is not None
        if not crash:
            self.commit()
        self.source.close()
        self.out = RecordingOutput()
        self.start()

    def stop(self) -> None:
        assert self.source is not None
        self.source.close()

    def logs(self, event: str) -> list[dict[str, Any]]:
        lines = self.log_stream.getvalue().splitlines()
        return [entry for entry in map(json.loads, lines) if entry["event"] == event]

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
        self.store.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path, start_at="beginning")
    yield h
    h.close()


def journalctl_children() -> list[int]:
    """PIDs of the journalctl processes this test process started."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        if name == "journalctl" and int(rest.split()[1]) == os.getpid():
            found.append(int(entry))
    return found


def journalctl_reading(directory: Path) -> list[int]:
    """PIDs of the journalctl processes reading ``directory`` (alive, not zombies)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if argv[0].endswith(b"journalctl") and f"--directory={directory}".encode() in argv:
            found += [int(entry)] if state != "Z" else []
    return found


class TestJournalEntries:
    def test_a_message_given_as_a_byte_array_is_its_bytes(self):
        """journalctl gives a non-UTF-8 MESSAGE as an array of byte values: handed on as bytes."""
        line = json.dumps({"__CURSOR": "c", "MESSAGE": [0xFF, 0x20, 0x55]}).encode()
        assert b"\xff U" == parse_entry(line).message

    def test_the_timestamp_is_the_entry_realtime_in_utc(self):
        """__REALTIME_TIMESTAMP (microseconds since the epoch) becomes the event's timestamp."""
        line = json.dumps({"__CURSOR": "c", "__REALTIME_TIMESTAMP": "1795930734023915"}).encode()
        assert "2026-11-29T05:38:54.023Z" == parse_entry(line).timestamp

    def test_the_source_path_is_the_unit_else_the_identifier_else_the_command(self):
        """source_path names the unit; without one the syslog identifier, then the command."""
        fields = {"__CURSOR": "c", "SYSLOG_IDENTIFIER": "cron", "_COMM": "sh"}
        with_unit = {**fields, "_SYSTEMD_UNIT": "app.service"}
        paths = [
            parse_entry(json.dumps(f).encode()).source_path
            for f in (with_unit, fields, {"__CURSOR": "c", "_COMM": "sh"}, {"__CURSOR": "c"})
        ]
        assert ["app.service", "cron", "sh", "journal"] == paths

    def test_a_field_given_twice_is_joined_by_newlines(self):
        """An entry with MESSAGE twice (journalctl gives a list) keeps both values."""
        line = json.dumps({"__CURSOR": "c", "MESSAGE": ["one", [0xFF]]}).encode()
        assert b"one\n\xff" == parse_entry(line).message

    def test_a_line_that_is_not_an_entry_says_why(self):
        """Output that is not an entry (not JSON, no cursor) is an EntryError with the reason."""
        reasons = []
        for line in (b"-- No entries --", b'{"MESSAGE": "x"}'):
            with pytest.raises(EntryError) as caught:
                parse_entry(line)
            reasons.append(str(caught.value).split(":")[0])
        assert ["not JSON", "no __CURSOR field"] == reasons

    def test_units_and_identifiers_are_one_union(self):
        """Units (a bare name is a .service) or identifiers: journalctl's '+' between them."""
        source = JournaldSource(units=("sshd", "cron.timer"), identifiers=("sudo",))
        expected = ["_SYSTEMD_UNIT=sshd.service", "_SYSTEMD_UNIT=cron.timer", "+"]
        assert [*expected, "SYSLOG_IDENTIFIER=sudo"] == matches(source)

    def test_the_watchers_own_service_is_found_in_its_cgroups(self):
        """Under systemd (cgroup v2 or v1) the process's own service is known, so its own
        events, journal entries of that unit, are not read back; elsewhere there is none."""
        v2 = "0::/system.slice/authz-watcher.service\n"
        v1 = "12:pids:/system.slice/x.service\n1:name=systemd:/system.slice/x.service\n"
        shell = "0::/user.slice/user-0.slice/session-3.scope\n"
        assert ["authz-watcher.service", "x.service", None] == [
            own_unit(v2),
            own_unit(v1),
            own_unit(shell),
        ]

    def test_the_reader_starts_at_the_cursor_and_keeps_long_fields(self):
        """The reader's argv: the cursor's own entry first (--cursor), fields over 4 KiB kept
        (--all), the directory, following from the oldest entry otherwise (--no-tail) of
        every boot (--merge)."""
        source = JournaldSource(directory="/j", identifiers=("app",))
        command = journalctl_command(source, "s=1")
        wanted = ["--all", "--directory=/j", "--follow", "--no-tail", "--merge", "--cursor=s=1"]
        assert (wanted, "SYSLOG_IDENTIFIER=app") == (
            [a for a in command if a in wanted],
            command[-1],
        )


@needs_journal
class TestJournalSource:
    def test_entries_before_and_while_running_are_handed_on_with_their_time(self, harness):
        """Entries already in the journal and appended later arrive in order, each with its
        timestamp, its unit as source_path and its cursor as the event-id key."""
        harness.journal.append(Entry(denial("a0"), realtime_us=1795930734023915))
        harness.start()
        harness.read_until(1)
        harness.journal.append(denial("a1"), Entry(b"\xff" + denial("a2").encode(), unit=None))
        expected = [denial("a0"), denial("a1"), "\ufffd" + denial("a2")]
        assert expected == harness.read_until(3)
        first, _, third = harness.out.handed
        origin = first.origin
        seen = (first.timestamp, origin.source_kind, origin.source_path, third.origin.source_path)
        assert ("2026-11-29T05:38:54.023Z", "journald", "app.service", "app") == seen
        cursors = [h.origin.file_key for h in harness.out.handed]
        assert 3 == len({c for c in cursors if c and c.startswith("s=")})

    def test_entries_of_every_boot_are_read(self, harness):
        """Entries logged before a reboot are read too, not only the latest boot's (what
        ``journalctl --follow`` shows without ``--merge``)."""
        earlier_boot = "f" * 32
        harness.journal.append(Entry(denial("before-reboot"), boot_id=earlier_boot))
        harness.journal.append(denial("after-reboot"))
        harness.start()
        assert [denial("before-reboot"), denial("after-reboot")] == harness.read_until(2)

    def test_start_at_end_skips_what_is_there_and_a_crash_resumes_at_that_place(self, tmp_path):
        """start_at: end reads only later entries; its starting place is saved before any
        entry is handed on, so a crash before the first commit does not skip anything."""
        h = Harness(tmp_path, start_at="end")
        try:
            h.journal.append(denial("old"))
            h.start()
            wait_for(lambda: h.store.journal_cursor(_key(h)) is not None, "the start saved")
            h.journal.append(denial("new1"))
            assert [denial("new1")] == h.read_until(1)
            h.restart(crash=True)
            h.journal.append(denial("new2"))
            assert [denial("new1"), denial("new2")] == h.read_until(2)
        finally:
            h.close()

    def test_a_restart_resumes_after_the_committed_entry(self, harness):
        """A graceful restart (committed) hands on only the entries written after."""
        harness.journal.append(denial("b0"), denial("b1"))
        harness.start()
        harness.read_until(2)
        harness.restart()
        harness.journal.append(denial("b2"))
        assert [denial("b2")] == harness.read_until(1)

    def test_a_crash_hands_on_the_uncommitted_entries_again_with_the_same_keys(self, harness):
        """Entries handed on but not committed come again after a crash, with the same
        cursors (so the same event ids); committed ones do not."""
        harness.journal.append(denial("c0"))
        harness.start()
        harness.read_until(1)
        harness.commit()
        harness.journal.append(denial("c1"), denial("c2"))
        harness.read_until(3)
        before = [h.origin.file_key for h in harness.out.handed[1:]]
        harness.restart(crash=True)
        assert [denial("c1"), denial("c2")] == harness.read_until(2)
        assert before == [h.origin.file_key for h in harness.out.handed]

    def test_a_vacuumed_cursor_resumes_at_the_oldest_entry_and_says_so_once(self, harness):
        """The committed entry's file was deleted while stopped: reading resumes at the oldest
        entry left, and the log says so once (what was deleted unread, d1, the journal lost)."""
        harness.journal.append(denial("d0"))
        harness.start()
        harness.read_until(1)
        harness.commit()
        harness.stop()
        harness.journal.append(denial("d1"))
        finished = harness.journal.rotate()
        harness.journal.append(denial("d2"))
        harness.journal.vacuum(finished)
        harness.out = RecordingOutput()
        harness.start()
        assert [denial("d2")] == harness.read_until(1)
        harness.journal.append(denial("d3"))
        assert [denial("d2"), denial("d3")] == harness.read_until(2)
        assert 1 == len(harness.logs("journal_cursor_not_found"))

    def test_a_dead_reader_process_is_logged_and_restarted_losing_nothing(self, harness):
        """journalctl killed: the exit is logged, a new one starts after the last entry read,
        and entries written meanwhile arrive once."""
        harness.journal.append(denial("e0"))
        harness.start()
        harness.read_until(1)
        wait_for(lambda: len(journalctl_children()) == 1, "the reader process")
        (pid,) = journalctl_children()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: harness.logs("journal_reader_exited"), "the exit to be logged")
        harness.journal.append(denial("e1"))
        assert [denial("e0"), denial("e1")] == harness.read_until(2)
        (exited,) = harness.logs("journal_reader_exited")
        assert ("journalctl killed by SIGKILL", 1.0) == (exited["error"], exited["retry_seconds"])

    def test_a_journal_that_cannot_be_opened_is_reported_with_the_reason(self, tmp_path):
        """A missing directory: journalctl's own reason is logged once (not at every retry),
        and it is tried again with a growing delay; once the directory exists its entries are
        read."""
        h = Harness(tmp_path, start_at="beginning")
        h.options["directory"] = str(tmp_path / "later")
        try:
            h.start()
            wait_for(lambda: len(h.logs("journal_reader_exited")) >= 1, "the first attempt")
            first = h.logs("journal_reader_exited")[0]
            assert (
                f"journalctl exited with status 1: Failed to open {tmp_path / 'later'}: "
                "No such file or directory",
                1.0,
            ) == (first["error"], first["retry_seconds"])
            Journal(tmp_path / "later").append(denial("n0"))
            assert [denial("n0")] == h.read_until(1)  # at a later attempt
            assert 1 == len(h.logs("journal_reader_exited"))
        finally:
            h.close()

    def test_close_leaves_no_process_and_no_thread(self, harness):
        """close() stops the reader process and joins its thread (conftest checks threads)."""
        harness.journal.append(denial("f0"))
        harness.start()
        harness.read_until(1)
        assert 1 == len(journalctl_children())
        harness.stop()
        assert [] == journalctl_children()

    def test_nothing_is_handed_on_while_paused(self, harness):
        """While a sink fails (out.paused), read hands on nothing; after, everything."""
        harness.journal.append(denial("g0"), denial("g1"))
        harness.start()
        harness.out.paused = True
        wait_for(lambda: harness.wakes > 0, "the reader to fetch entries")
        assert harness.source is not None
        harness.source.read(None, harness.out)
        assert [] == harness.out.handed
        harness.out.paused = False
        assert [denial("g0"), denial("g1")] == harness.read_until(2)

    def test_a_message_over_4_kib_arrives_whole(self, harness):
        """journalctl nulls fields over 4 KiB unless told not to; a 10 KiB blob line is whole."""
        long_message = "Encoded authorization failure message: " + "A" * 10_240
        harness.journal.append(long_message)
        harness.start()
        assert [long_message] == harness.read_until(1)

    def test_units_and_identifiers_select_entries(self, tmp_path):
        """Only entries of the configured units or identifiers are handed on."""
        h = Harness(tmp_path, start_at="beginning", units=("app",), identifiers=("sudo",))
        try:
            h.journal.append(
                Entry("from app"),
                Entry("from other", unit="other.service", identifier="other"),
                Entry("from sudo", unit=None, identifier="sudo"),
            )
            h.start()
            assert ["from app", "from sudo"] == h.read_until(2)
        finally:
            h.close()


def _key(h: Harness) -> str:
    return source_key(JournaldSource(**h.options))


# -- the daemon -----------------------------------------------------------------------------


def journald_config(w: Watcher, directory: Path, sinks: str = "", options: str = "") -> None:
    w.config.write_text(
        f"state_dir: {w.root / 'state'}\n"
        "sources:\n"
        f"  - type: journald\n    directory: {directory}\n    start_at: beginning\n"
        + options
        + "decode:\n  enabled: false\n"
        f"sinks:\n  - type: file\n    path: {w.events_path}\n" + sinks
    )


@pytest.fixture
def journald_watcher(tmp_path: Path) -> Iterator[tuple[Watcher, Journal]]:
    w = Watcher(tmp_path)
    journal = Journal(tmp_path / "journal")
    journald_config(w, journal.directory)
    yield w, journal
    w.kill()


def users(events: list[dict[str, Any]]) -> Counter[str]:
    return Counter(str(e["principal_arn"]).rsplit("/", 1)[1] for e in events)


@needs_journal
class TestJournaldInTheDaemon:
    def test_denials_in_the_journal_become_events(self, journald_watcher):
        """A denial logged before the start and one logged while running (not UTF-8) each
        become one event: source_kind journald, source_path the unit, time of the entry."""
        w, journal = journald_watcher
        journal.append(Entry(denial("h0"), realtime_us=1795930734023915))
        w.start()
        wait_for(lambda: len(w.events()) == 1, "the first event")
        journal.append(Entry(b"\xfe\xff " + denial("h1").encode(), unit="worker.service"))
        wait_for(lambda: len(w.events()) == 2, "the second event")
        first, second = w.events()
        assert (
            ("journald", "app.service", "2026-11-29T05:38:54.023Z"),
            ("journald", "worker.service"),
        ) == (
            (first["source_kind"], first["source_path"], first["timestamp"]),
            (second["source_kind"], second["source_path"]),
        )
        assert Counter({"h0": 1, "h1": 1}) == users(w.events())

    def test_a_stop_repeats_nothing_and_a_kill_9_repeats_with_the_same_ids(self, journald_watcher):
        """SIGTERM then start: nothing twice. kill -9: its journalctl goes too (its pipe
        closed); then start: every denial at least once, any repeat with the same event_id."""
        w, journal = journald_watcher
        journal.append(*(denial(f"i{n}") for n in range(5)))
        w.start()
        wait_for(lambda: len(w.events()) == 5, "5 events")
        assert 0 == w.stop()
        journal.append(denial("i5"))
        w.start()
        wait_for(lambda: len(w.events()) == 6, "the 6th event")
        assert Counter({f"i{n}": 1 for n in range(6)}) == users(w.events())
        assert 1 == len(journalctl_reading(journal.directory))
        w.kill()
        wait_for(lambda: not journalctl_reading(journal.directory), "journalctl to exit")
        journal.append(*(denial(f"i{n}") for n in range(6, 10)))
        w.start()
        wait_for(lambda: set(users(w.events())) == {f"i{n}" for n in range(10)}, "all 10")
        ids_by_user: dict[str, set[str]] = {}
        for event in w.events():
            user = str(event["principal_arn"]).rsplit("/", 1)[1]
            ids_by_user.setdefault(user, set()).add(event["event_id"])
        assert dict.fromkeys(ids_by_user, 1) == {u: len(i) for u, i in ids_by_user.items()}

    def test_a_crash_with_the_commit_held_repeats_each_denial_with_its_id(self, tmp_path, tmpfs):
        """A second file sink's disk is full, so the cursor is not committed though the first
        sink has the events; kill -9, space returns, start: every denial is there, those not
        committed before the crash twice, with the same event_id both times."""
        full = tmpfs(tmp_path / "full", "size=16k")
        w = Watcher(tmp_path)
        journal = Journal(tmp_path / "journal")
        journald_config(w, journal.directory, f"  - type: file\n    path: {full}/events.jsonl\n")
        try:
            journal.append(*(denial(f"m{n}") for n in range(100)))
            w.start()
            wait_for(lambda: "sink_retry" in w.stderr(), "the full sink to hold the commit")
            before = users(w.events())
            w.kill()
            remount(full, "size=8m")
            w.start()
            journal.append(denial("after-restart"))  # arrives after everything read again
            wait_for(lambda: "after-restart" in users(w.events()), "the denial after restart")
        finally:
            w.kill()
        after = users(w.events())
        ids = {(str(e["principal_arn"]), e["event_id"]) for e in w.events()}
        repeated = sorted(u for u, n in after.items() if n > 1)
        assert (True, 101, True) == (sum(before.values()) > 0, len(ids), len(repeated) > 0)
        assert set(repeated) <= set(before), "only what was emitted before the crash repeats"

    def test_a_reload_that_changes_the_source_resumes_at_its_cursor(self, journald_watcher):
        """SIGHUP with the journald source changed (its aws_profile): it is built anew and
        opens the journal again at its committed cursor; nothing is lost or repeated."""
        w, journal = journald_watcher
        journal.append(denial("p0"))
        w.start()
        wait_for(lambda: len(w.events()) == 1, "the first event")
        journald_config(w, journal.directory, options="    aws_profile: other\n")
        w.signal(signal.SIGHUP)
        wait_for(lambda: "config_reloaded" in w.stderr(), "the reload")
        journal.append(denial("p1"))
        wait_for(lambda: len(w.events()) == 2, "the event after the reload")
        assert 0 == w.stop()
        opened = [e["start"] for e in w.log_events() if e["event"] == "journal_opened"]
        assert (Counter({"p0": 1, "p1": 1}), ["at the oldest entry", "at its cursor"]) == (
            users(w.events()),
            opened,
        )

    def test_rotation_and_vacuum_while_running_lose_nothing(self, journald_watcher):
        """The journal rotates (a new file) and the old file is vacuumed while the daemon
        reads: every denial arrives once."""
        w, journal = journald_watcher
        w.start()
        for generation in range(3):
            journal.append(*(denial(f"j{generation}-{n}") for n in range(20)))
            finished = journal.rotate()
            wait_for(lambda g=generation: len(w.events()) == 20 * (g + 1), "the generation")
            journal.vacuum(finished)
        expected = Counter({f"j{g}-{n}": 1 for g in range(3) for n in range(20)})
        assert expected == users(w.events())

    def test_a_burst_of_100000_entries_and_a_restart_lose_nothing(self, journald_watcher):
        """100,000 entries at once (one in ten a denial), a restart in the middle of reading
        them: every denial arrives, none twice (the stop was graceful)."""
        w, journal = journald_watcher
        entries = [
            denial(f"k{n}") if n % 10 == 0 else f"GET /health 200 request {n}"
            for n in range(100_000)
        ]
        journal.append(*entries)
        w.start()
        wait_for(lambda: len(w.events()) >= 2_000, "the first part of the burst")
        assert 0 == w.stop()
        w.start()
        wait_for(lambda: len(w.events()) >= 10_000, "the whole burst", deadline=120)
        assert Counter({f"k{n}": 1 for n in range(0, 100_000, 10)}) == users(w.events())
