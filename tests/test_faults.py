"""Faults cost no event and no duplicate: full disks, a second daemon, bad state directories.

Real faults only: a small tmpfs mounted by the test (as root) that really fills up, a real
second daemon process, real read-only mounts. Where mounting is impossible (not root) the
tests that need it are skipped with the reason; in CI (``CI`` set) that is a failure instead.
"""

from __future__ import annotations

import io
import json
import signal
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import run_cli, validate_event
from tests.receiver import Receiver
from tests.test_daemon import DEADLINE_SECONDS, DENIAL, Watcher, append, wait_for
from tests.test_sinks import FastClock, webhook
from tests.test_systemd import NotifySocket
from tests.tmpfs import fill, remount
from watcher.errors import StateError
from watcher.log import configure_logging
from watcher.sinks.delivery import DeliveringSink
from watcher.state import StateStore

MiB = 1 << 20


def events_in(path: Path) -> list[dict]:
    """The complete event lines of a JSONL file, validated against the schema."""
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")[:-1]  # a torn last line is not an event yet
    return [validate_event(json.loads(line)) for line in lines]


def refusing_webhook(receiver: Receiver, max_outbox: int | None = None) -> str:
    """The config lines of a webhook sink for denials at ``receiver``, which answers 503 until
    its ``answers`` are cleared."""
    receiver.answers.extend([503] * 100_000)
    hook = f"  - type: webhook\n    url: {receiver.url}\n    events: [authz_denial]\n"
    return hook + (f"    max_outbox: {max_outbox}\n" if max_outbox is not None else "")


def saved_offset(state_dir: Path, log: Path) -> int:
    """The committed offset of ``log`` in the state database (0 when none yet)."""
    connection = sqlite3.connect(f"file:{state_dir / 'state.sqlite3'}?mode=ro", uri=True)
    try:
        row = connection.execute(
            "SELECT offset FROM followed_files WHERE path = ?", (str(log),)
        ).fetchone()
    finally:
        connection.close()
    return 0 if row is None else int(row[0])


def logged(watcher: Watcher, name: str, **fields: object) -> list[dict]:
    return [
        e
        for e in watcher.log_events()
        if e["event"] == name and all(e.get(k) == v for k, v in fields.items())
    ]


def denial_lines(count: int) -> list[str]:
    return [f"{DENIAL} {i:05d}" for i in range(count)]


class TestFileSinkDiskFull:
    def test_full_disk_pauses_and_every_denial_reaches_every_sink_once(self, tmp_path, tmpfs):
        """The file sink's 1 MiB tmpfs fills with 2,000 denials: the daemon keeps running,
        holds the offset back, logs ``sink_retry`` once; when space returns every denial is in
        both sinks exactly once, and a restart adds nothing."""
        out = tmpfs(tmp_path / "out", "size=1m")
        other = tmp_path / "other.jsonl"
        w = Watcher(tmp_path, extra_config=f"  - type: file\n    path: {other}\n")
        log = w.logs / "app.log"
        try:
            w.start()
            append(log, *denial_lines(2000))
            wait_for(lambda: logged(w, "sink_retry"), "the full disk to be noticed")
            assert w.proc is not None
            assert w.proc.poll() is None, "the daemon keeps running"
            written = len(events_in(w.events_path))
            assert 0 < written < 2000
            committed_lines = log.read_bytes()[: saved_offset(w.root / "state", log)].count(b"\n")
            assert committed_lines <= written, "no offset committed past what the file sink has"
            remount(out, "size=8m")
            wait_for(lambda: len(events_in(w.events_path)) == 2000, "all 2,000 in the file")
            wait_for(lambda: logged(w, "sink_recovered"), "the recovery to be logged")
            wait_for(lambda: saved_offset(w.root / "state", log) == log.stat().st_size, "commit")
            assert 0 == w.stop()
            w.start()
            append(log, f"{DENIAL} after restart")
            wait_for(lambda: len(events_in(w.events_path)) == 2001, "the event after restart")
            assert 0 == w.stop()
        finally:
            w.kill()
        for path in (w.events_path, other):
            ids = [e["event_id"] for e in events_in(path)]
            assert (2001, 2001) == (len(ids), len(set(ids))), path
        (retry,) = logged(w, "sink_retry")  # once per state change, not per event
        assert (f"file:{w.events_path}", "No space left on device") == (
            retry["sink"],
            retry["error"],
        )

    def test_sigterm_with_a_failing_sink_exits_in_bounded_time_and_loses_nothing(
        self, tmp_path, tmpfs
    ):
        """SIGTERM while the file sink's disk is full: exit 0 within the shutdown bound,
        ``sink_not_drained`` names the sink; after space returns a restart writes the rest."""
        out = tmpfs(tmp_path / "out", "size=1m")
        w = Watcher(tmp_path)
        log = w.logs / "app.log"
        try:
            w.start()
            append(log, *denial_lines(2000))
            wait_for(lambda: logged(w, "sink_retry"), "the full disk to be noticed")
            started = time.monotonic()
            assert 0 == w.stop()
            assert time.monotonic() - started < 10 + 5  # SHUTDOWN_SINK_TIMEOUT_SECONDS + margin
            (undrained,) = logged(w, "sink_not_drained")
            assert f"file:{w.events_path}" == undrained["sink"]
            remount(out, "size=8m")
            w.start()
            wait_for(
                lambda: {e["raw"] for e in events_in(w.events_path)} >= set(denial_lines(2000)),
                "every denial after the restart",
            )
            assert 0 == w.stop()
        finally:
            w.kill()

    def test_paused_daemon_says_so_in_status_and_keeps_the_watchdog_fed(
        self, tmp_path, tmpfs, monkeypatch
    ):
        """While paused, STATUS= names the failing sink and WATCHDOG=1 pings go on, so
        systemd does not kill a daemon that is only waiting for disk space."""
        tmpfs(tmp_path / "out", "size=256k")
        notify = NotifySocket(tmp_path / "notify.sock")
        monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
        monkeypatch.setenv("WATCHDOG_USEC", "400000")  # ping every 0.2 s
        w = Watcher(tmp_path)
        try:
            w.start()
            append(w.logs / "app.log", *denial_lines(1000))
            wait_for(lambda: logged(w, "sink_retry"), "the full disk to be noticed")
            paused = f"paused: file:{w.events_path} failing"
            wait_for(
                lambda: any(m.startswith("STATUS=") and paused in m for m in notify.collect()),
                "STATUS= naming the failing sink",
            )
            pings = sum(m == "WATCHDOG=1" for m in notify.collect())
            wait_for(
                lambda: sum(m == "WATCHDOG=1" for m in notify.collect()) >= pings + 3,
                "watchdog pings while paused",
            )
            assert 0 == w.stop()
        finally:
            w.kill()
            notify.close()


class TestStateDiskFull:
    def test_full_state_filesystem_holds_the_commit_and_never_re_emits(self, tmp_path, tmpfs):
        """The state database's tmpfs fills: events still reach the sink, the commit is
        retried (``sink_retry`` for ``state``) and saved once space returns; a restart then
        emits nothing twice."""
        state = tmpfs(tmp_path / "state", "size=1m")
        w = Watcher(tmp_path)
        log = w.logs / "app.log"
        try:
            w.start()
            append(log, f"{DENIAL} first")
            wait_for(lambda: saved_offset(state, log) == log.stat().st_size, "the first commit")
            filler = fill(state)
            lines = denial_lines(300)
            for index, line in enumerate(lines):  # one commit each, until one fails
                append(log, line)
                # The commit that fails comes after its event: the line after it may wait
                # for the disk (a pause), so either ends the wait
                wait_for(
                    lambda i=index: (
                        len(events_in(w.events_path)) == i + 2
                        or logged(w, "sink_retry", sink="state")
                    ),
                    "the event",
                )
                if logged(w, "sink_retry", sink="state"):
                    break
            wait_for(lambda: logged(w, "sink_retry", sink="state"), "the failed commit")
            assert w.proc is not None
            assert w.proc.poll() is None, "the daemon keeps running"
            assert saved_offset(state, log) < log.stat().st_size
            filler.unlink()
            wait_for(lambda: saved_offset(state, log) == log.stat().st_size, "the late commit")
            wait_for(lambda: logged(w, "sink_recovered", sink="state"), "the recovery")
            assert 0 == w.stop()
            before = len(events_in(w.events_path))
            w.start()
            append(log, f"{DENIAL} after restart")
            wait_for(lambda: len(events_in(w.events_path)) == before + 1, "the next event")
            assert 0 == w.stop()
        finally:
            w.kill()
        ids = [e["event_id"] for e in events_in(w.events_path)]
        assert len(ids) == len(set(ids)), "nothing emitted twice"
        assert 1 == len(logged(w, "sink_retry", sink="state"))

    def test_a_stop_on_a_full_state_disk_exits_0_and_says_what_was_not_saved(self, tmp_path, tmpfs):
        """An outside tester filled the state filesystem while a webhook's receiver was down:
        SIGTERM ended in "internal error: OperationalError: database or disk is full" (exit
        1, no daemon_stopped). Saving the alert windows at the stop is now one warning, and the
        stop goes on; so is the checkpoint it could not save (what the next start reads
        again)."""
        state = tmpfs(tmp_path / "state", "size=1m")
        with Receiver() as receiver:
            w = Watcher(tmp_path, extra_config=refusing_webhook(receiver))
            log = w.logs / "app.log"
            try:
                w.start()
                append(log, f"{DENIAL} first")
                wait_for(lambda: len(events_in(w.events_path)) == 1, "the first event")
                fill(state)
                append(log, *denial_lines(300))
                wait_for(lambda: len(events_in(w.events_path)) == 301, "every event")
                wait_for(lambda: logged(w, "sink_retry", error="database or disk is full"), "full")
                # A refused write empties the write-ahead log: take back the room that freed,
                # or a retry may yet save the checkpoint before the stop (seen in CI).
                fill(state, "filler-2")
                assert 0 == w.stop()
            finally:
                w.kill()
        assert "internal error" not in w.stderr()
        assert logged(w, "daemon_stopped")
        (warning,) = logged(w, "alert_windows_not_saved")
        assert "full" in warning["error"]
        if saved_offset(state, log) < log.stat().st_size:  # the usual case: still full
            (unsaved,) = logged(w, "checkpoints_not_saved")  # an outside tester missed this
            assert "full" in unsaved["error"]
        else:  # a retry saved it before the second filler took the room back
            assert not logged(w, "checkpoints_not_saved")

    def test_a_commit_the_full_disk_refused_leaves_no_transaction_open(self, tmp_path, tmpfs):
        """After a write the full disk refused, later ones work once there is room again (a
        refused COMMIT may leave SQLite's transaction open: it is rolled back if so; here
        SQLite had rolled it back itself, so this passes with and without that)."""
        state = tmpfs(tmp_path / "state", "size=1m")
        store = StateStore(state, configure_logging(io.StringIO()))
        try:
            filler = fill(state)
            rows = [("rule", f"key {n}", 0.0, "[" + "1.0, " * 200 + "1.0]") for n in range(2000)]
            with pytest.raises(sqlite3.Error):
                store.save_alert_groups(rows)
            filler.unlink()
            store.save_alert_groups(rows[:10])
            assert 10 == len(store.alert_groups())
        finally:
            store.close()

    def test_many_small_commits_fit_a_small_state_disk(self, tmp_path, tmpfs):
        """Found by an outside attack: on a 3 MiB state disk and nothing else on it, the
        write-ahead log grew to fill it (SQLite copies it into the database only at about
        4 MiB), so commits failed for good. Copied back every 64 pages and cut back after, it
        stays small: 2,000 commits of a few rows each fit a 1 MiB disk."""
        state = tmpfs(tmp_path / "state", "size=1m")
        store = StateStore(state, configure_logging(io.StringIO()))
        try:
            for n in range(2000):
                store.count_releases([f"message-{n % 50}"], float(n))
            wal = state / "state.sqlite3-wal"
            assert wal.stat().st_size <= 600 * 1024
        finally:
            store.close()

    def test_a_delivery_the_full_disk_cannot_record_is_not_sent_again(self, tmp_path, tmpfs):
        """An outside tester filled the state filesystem with a healthy receiver: the worker
        re-sent the event at the head of the outbox every 5 s (one event 8 times in 29 s), as it
        could not delete its row. Now such a delivery is remembered and the sink waits for
        room; every event reaches the receiver once. The worker's turns are driven here."""
        state = tmpfs(tmp_path / "state", "size=8m")
        logs = io.StringIO()
        store = StateStore(state, configure_logging(logs))
        try:
            with Receiver() as receiver:
                sink = DeliveringSink(
                    "hook", webhook(receiver.url), store, configure_logging(logs),
                    events=("authz_denial",), start_worker=False,
                )  # fmt: skip
                for n in range(100):
                    sink.write({"event": "authz_denial", "event_id": f"{n:03d}"})
                # The write-ahead log cut back to nothing: how much room it kept otherwise
                # depends on the pages written before, and a row deleted there needs none.
                other = sqlite3.connect(state / "state.sqlite3")
                other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                other.close()
                filler = fill(state)
                for _ in range(5):  # turns while full: each stops at the first refused row
                    sink._deliver_due()
                assert "sink_outbox_not_updated" in logs.getvalue()
                filler.unlink()
                end = time.monotonic() + DEADLINE_SECONDS
                while store.outbox_count("hook"):
                    assert time.monotonic() < end, "the rest delivered once there is room"
                    sink._deliver_due()
                ids = [event["event_id"] for event in receiver.received]
        finally:
            store.close()
        assert [f"{n:03d}" for n in range(100)] == ids  # each once, in order

    def test_decode_cache_write_on_a_full_disk_is_skipped(self, tmp_path, tmpfs):
        """A decode-cache write the full database refuses is skipped with one warning."""
        state = tmpfs(tmp_path / "state", "size=1m")
        logs = io.StringIO()
        store = StateStore(state, configure_logging(logs))
        try:
            fill(state)
            for index in range(2000):  # the WAL grows until the disk refuses a page
                store.store_decode(f"{index:064x}", json.dumps({"n": "x" * 1000}), 0.0, 60.0)
        finally:
            store.close()
        warnings = [json.loads(line)["event"] for line in logs.getvalue().splitlines()]
        assert ["decode_cache_write_failed"] == warnings


class TestOneDaemonPerStateDir:
    def test_second_daemon_refuses_naming_the_directory_and_the_holder(self, tmp_path):
        """A second ``run`` on the same state_dir exits 2 at once, naming the directory and
        the PID that holds it; the first goes on, and each denial is emitted once."""
        w = Watcher(tmp_path)
        try:
            w.start()
            assert w.proc is not None
            second = run_cli("run", "-c", str(w.config), timeout=DEADLINE_SECONDS)
            expected = (
                f"authz-watcher: {w.root / 'state'}: the state directory is in use by another "
                f"authz-watcher (PID {w.proc.pid}); run one daemon per state_dir\n"
            )
            assert (2, expected) == (second.returncode, second.stderr)
            append(w.logs / "app.log", f"{DENIAL} once")
            wait_for(lambda: len(w.events()) == 1, "the event")
            assert 0 == w.stop()
        finally:
            w.kill()
        assert 1 == len(w.events())

    def test_the_lock_goes_with_the_process(self, tmp_path):
        """After ``kill -9`` no stale lock remains: the next daemon starts."""
        w = Watcher(tmp_path)
        try:
            w.start()
            w.kill()
            w.stderr_path.unlink()  # start() waits for this run's daemon_started
            w.start()
            assert 0 == w.stop()
        finally:
            w.kill()


class TestUnusableStateDir:
    def test_state_dir_under_a_regular_file_exits_2_without_traceback(self, tmp_path):
        """systemd's RestartPreventExitStatus=2 stops the restart loop; the message says why."""
        (tmp_path / "file").write_text("not a directory")
        config = tmp_path / "w.yaml"
        config.write_text(f"state_dir: {tmp_path / 'file' / 'state'}\nsources: []\n")
        result = run_cli("run", "-c", str(config))
        expected = (
            f"authz-watcher: {tmp_path / 'file' / 'state'}: cannot use the state directory: "
            f"Not a directory ({tmp_path / 'file' / 'state'})\n"
        )
        assert (2, expected) == (result.returncode, result.stderr)

    def test_state_dir_on_a_read_only_filesystem_exits_2(self, tmp_path, tmpfs):
        """A read-only mount: exit 2, naming the directory and the reason."""
        readonly = tmpfs(tmp_path / "ro", "size=1m,ro")
        config = tmp_path / "w.yaml"
        config.write_text(f"state_dir: {readonly / 'state'}\nsources: []\n")
        result = run_cli("run", "-c", str(config))
        assert 2 == result.returncode
        assert result.stderr.startswith(f"authz-watcher: {readonly / 'state'}: ")
        assert "Read-only file system" in result.stderr
        assert "Traceback" not in result.stderr


def scan_config(tmp_path: Path, url: str) -> Path:
    """A config whose alert rule fires on two denials and goes to a webhook only."""
    config = tmp_path / "scan.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        f"sinks:\n  - type: webhook\n    url: {url}\n    events: [authz_alert]\n"
        "alerts:\n  - name: twice\n    threshold: 2\n    window: 10m\n    cooldown: 30m\n"
    )
    return config


class TestScanDrainsTheOutbox:
    def test_alert_reaches_a_flapping_webhook_before_scan_exits(self, tmp_path):
        """The receiver answers 503 first: ``scan`` retries within its drain and exits 0."""
        log = tmp_path / "app.log"
        log.write_text(f"{DENIAL} 1\n{DENIAL} 2\n")
        with Receiver() as receiver:
            receiver.answers.append(503)
            result = run_cli(
                "scan", "--no-decode", "-c", str(scan_config(tmp_path, receiver.url)), str(log)
            )
            received = list(receiver.received)
            attempts = receiver.attempts
        messages = [line for line in result.stderr.splitlines() if not line.startswith("{")]
        assert (0, []) == (result.returncode, messages)
        assert (["twice"], 2) == ([validate_event(a)["rule"] for a in received], attempts)

    def test_undelivered_alert_is_named_stays_in_the_outbox_and_exits_1(self, tmp_path):
        """Nobody listens: after ``--drain-timeout`` the count is named on stderr, exit 1;
        the next ``scan`` with a receiver up delivers it."""
        with Receiver() as probe:
            url, port = probe.url, probe.port  # closed once the probe is
        config = scan_config(tmp_path, url)
        log = tmp_path / "app.log"
        log.write_text(f"{DENIAL} 1\n{DENIAL} 2\n")
        started = time.monotonic()
        result = run_cli("scan", "--no-decode", "--drain-timeout", "1", "-c", str(config), str(log))
        assert time.monotonic() - started < 20
        assert 1 == result.returncode
        (message,) = [line for line in result.stderr.splitlines() if not line.startswith("{")]
        assert message.startswith("authz-watcher: 1 events not delivered to webhook:")
        assert message.endswith(
            f"within 1 s; they stay in the outbox in {tmp_path / 'state'} and go out with "
            "the next run or scan"
        )
        assert 2 == len(result.stdout.splitlines()) - 1  # two denials, then the alert
        empty = tmp_path / "empty.log"
        empty.write_text("")
        with Receiver(port=port) as receiver:
            again = run_cli("scan", "--no-decode", "-c", str(config), str(empty))
            received = list(receiver.received)
        assert 0 == again.returncode
        assert ["twice"] == [a["rule"] for a in received]

    def test_drain_timeout_must_be_a_number_of_seconds(self, tmp_path):
        """A usage error, exit 2."""
        result = run_cli("scan", "--drain-timeout", "soon", str(tmp_path))
        assert 2 == result.returncode
        assert "expected a number of seconds, 0 or more: 'soon'" in result.stderr


class TestRemoteSinkRetryLog:
    def test_a_receiver_outage_logs_one_sink_retry_and_one_recovery(self, tmp_path):
        """Five events refused with the same 503: one ``sink_retry``, not five; then one
        ``sink_recovered`` when deliveries work again, and each event arrives once."""
        logs = io.StringIO()
        store = StateStore(tmp_path / "state", configure_logging(io.StringIO()))
        clock = FastClock()
        try:
            with Receiver() as receiver:
                receiver.answers.extend([503] * 5)
                sink = DeliveringSink(
                    "hook", webhook(receiver.url), store, configure_logging(logs),
                    events=("authz_denial",), clock=clock,
                )  # fmt: skip
                for n in range(5):
                    sink.write({"event": "authz_denial", "event_id": str(n)})
                wait_for(lambda: receiver.attempts >= 5, "five refused attempts")
                clock.skip = 10_000  # past every backoff
                sink._wake.set()
                wait_for(lambda: len(receiver.received) == 5, "the five deliveries")
                sink.close()
                received = [event["event_id"] for event in receiver.received]
        finally:
            store.close()
        names = [json.loads(line)["event"] for line in logs.getvalue().splitlines()]
        assert (["sink_retry", "sink_recovered"], sorted(received)) == (
            names,
            ["0", "1", "2", "3", "4"],
        )


class TestOutboxFull:
    def test_full_counts_queued_events_against_max_outbox_and_clears_once_delivered(self, tmp_path):
        """``full`` names the sink's waiting events once they reach ``max_outbox`` (counted
        from the database, so events another process delivered are seen), None below it."""
        store = StateStore(tmp_path / "state", configure_logging(io.StringIO()))
        log = configure_logging(io.StringIO())
        try:
            with Receiver() as receiver:
                queuing = DeliveringSink(
                    "hook", webhook(receiver.url), store, log, events=("authz_denial",),
                    start_worker=False, max_outbox=3,
                )  # fmt: skip
                for n in range(2):
                    queuing.write({"event": "authz_denial", "event_id": str(n)})
                assert queuing.full is None
                queuing.write({"event": "authz_denial", "event_id": "2"})
                assert "3 events wait for the receiver (max_outbox 3)" == queuing.full
                delivering = DeliveringSink(
                    "hook", webhook(receiver.url), store, log, events=("authz_denial",)
                )
                wait_for(lambda: len(receiver.received) == 3, "the three deliveries")
                delivering.close()
                assert queuing.full is None
        finally:
            store.close()

    def test_once_full_it_waits_for_a_tenth_to_go_and_sees_every_delivery(self, tmp_path):
        """No flapping at the limit: full at max_outbox (10), clear again only below 9 (the
        size counted afresh at each look while full, so deliveries are seen)."""
        store = StateStore(tmp_path / "state", configure_logging(io.StringIO()))
        try:
            sink = DeliveringSink(
                "hook", webhook("http://127.0.0.1:9/"), store, configure_logging(io.StringIO()),
                events=("authz_denial",), start_worker=False, max_outbox=10,
            )  # fmt: skip
            for n in range(10):
                sink.write({"event": "authz_denial", "event_id": str(n)})
            states = [sink.full is not None]
            for _ in range(2):  # what the worker does when the receiver takes one
                ((delivery_id, _, _),) = store.due("hook", time.time() + 1, limit=1)
                store.delivered(delivery_id)
                states.append(sink.full is not None)
            for n in range(2):
                sink.write({"event": "authz_denial", "event_id": f"again-{n}"})
                states.append(sink.full is not None)
        finally:
            store.close()
        assert [True, True, False, False, True] == states  # 10, 9, 8, then 9 and 10

    def test_a_receiver_outage_pauses_reading_at_max_outbox_and_loses_nothing(self, tmp_path):
        """Denials go to a webhook that answers 503: at max_outbox waiting events the daemon
        reads nothing more (sink_outbox_full); once the receiver takes them it reads again
        (sink_outbox_drained), and every denial reaches both sinks once."""
        with Receiver() as receiver:
            extra = refusing_webhook(receiver, max_outbox=3)
            w = Watcher(tmp_path, extra_config=extra)
            log = w.logs / "app.log"
            try:
                w.start()
                append(log, *denial_lines(3))
                wait_for(lambda: logged(w, "sink_outbox_full"), "the outbox full")
                append(log, *(f"{DENIAL} after {i}" for i in range(3)))
                assert 3 == len(w.events())  # read before it filled (the first three lines)
                receiver.answers.clear()
                wait_for(lambda: len(w.events()) == 6, "the lines written while it was full")
                wait_for(lambda: len(receiver.received) == 6, "every denial delivered")
                assert 0 == w.stop()
            finally:
                w.kill()
            received = sorted(event["raw"] for event in receiver.received)
        (drained,) = logged(w, "sink_outbox_drained")
        (full,) = logged(w, "sink_outbox_full")
        assert "3 events wait for the receiver (max_outbox 3)" == full["reason"]
        assert sorted(event["raw"] for event in w.events()) == received
        after = [e for e in w.events() if " after " in e["raw"]]
        assert 3 == len(after)
        resumed = datetime.fromisoformat(drained["timestamp"])
        assert all(datetime.fromisoformat(e["observed_at"]) >= resumed for e in after)

    def test_a_restart_while_an_outbox_is_full_says_nothing_is_read_yet(
        self, tmp_path, monkeypatch
    ):
        """An outside tester restarted the daemon while a webhook's outbox was full: STATUS=
        said "0 files, 0 bytes behind" for the whole pause, as if there were nothing to read.
        It now says the pause came before the first read; once drained, the file is counted."""
        with Receiver() as receiver:
            extra = refusing_webhook(receiver, max_outbox=3)
            w = Watcher(tmp_path, extra_config=extra)
            notify = NotifySocket(tmp_path / "notify.sock")
            try:
                w.start()
                append(w.logs / "app.log", *denial_lines(3))
                wait_for(lambda: logged(w, "sink_outbox_full"), "the outbox full")
                assert 0 == w.stop()
                monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
                w.start()
                statuses = lambda: [m for m in notify.collect() if m.startswith("STATUS=")]  # noqa: E731
                before = "paused before the first read: webhook:"
                wait_for(lambda: any(before in m for m in statuses()), "STATUS= of the pause")
                receiver.answers.clear()
                wait_for(
                    lambda: any("1 files" in m and "paused" not in m for m in statuses()),
                    "STATUS= counting the file once drained",
                )
                assert 0 == w.stop()
            finally:
                w.kill()
                notify.close()
        assert 3 == len(receiver.received)

    def test_removing_a_webhook_whose_outbox_is_full_resumes_reading_without_drained(
        self, tmp_path
    ):
        """An outside tester removed a paused webhook by a reload: the log said
        sink_outbox_drained ("reading again") though nothing was delivered, and the STATUS= of
        the reload still said paused. Now only sink_outbox_stranded names it."""
        with Receiver() as receiver:
            w = Watcher(tmp_path, extra_config=refusing_webhook(receiver, max_outbox=3))
            log = w.logs / "app.log"
            try:
                w.start()
                append(log, *denial_lines(3))
                wait_for(lambda: logged(w, "sink_outbox_full"), "the outbox full")
                w.write_config()
                w.signal(signal.SIGHUP)
                wait_for(lambda: logged(w, "config_reloaded"), "the reload")
                append(log, f"{DENIAL} after the reload")
                wait_for(lambda: len(w.events()) == 4, "reading again")
                assert 0 == w.stop()
            finally:
                w.kill()
        assert [] == logged(w, "sink_outbox_drained")
        (stranded,) = logged(w, "sink_outbox_stranded")
        assert 3 == stranded["events"]

    def test_events_left_for_a_removed_webhook_are_named_and_go_out_if_it_comes_back(
        self, tmp_path
    ):
        """A reload that removes a webhook whose receiver was down left its queued events in
        the outbox without a word: now sink_outbox_stranded names the sink and the count, at
        that reload and at each start; the same URL configured again delivers them."""
        with Receiver() as receiver:
            hook = refusing_webhook(receiver)
            w = Watcher(tmp_path, extra_config=hook)
            log = w.logs / "app.log"
            try:
                w.start()
                append(log, *denial_lines(3))
                wait_for(lambda: receiver.attempts >= 1, "a refused delivery")
                w.write_config()
                w.signal(signal.SIGHUP)
                wait_for(lambda: logged(w, "config_reloaded"), "the reload")
                assert 0 == w.stop()
                w.start()
                wait_for(lambda: len(logged(w, "daemon_started")) == 2, "the restart")
                receiver.answers.clear()
                w.write_config(hook)
                w.signal(signal.SIGHUP)
                wait_for(lambda: len(receiver.received) == 3, "the kept events delivered")
                assert 0 == w.stop()
            finally:
                w.kill()
        stranded = logged(w, "sink_outbox_stranded")
        assert 2 == len(stranded)  # the reload that removed it, the start without it
        assert {3} == {line["events"] for line in stranded}
        assert all(line["sink"].startswith("webhook:") for line in stranded)
        assert receiver.url not in json.dumps(stranded)  # a webhook URL can hold a secret
        assert sorted(e["raw"] for e in w.events()) == sorted(e["raw"] for e in receiver.received)


class TestLongBacklog:
    def test_a_backlog_is_read_in_slices_each_committed_before_the_next(self, tmp_path):
        """An outside tester's 150,000-line backlog was read in one go: no commit, no
        watchdog ping and no signal handled for 46-213 s (systemd would have killed it and
        it would have started over). A file is now read 1 MiB per poll: a 6 MiB backlog is
        committed at least six times, and every denial in it comes out once."""
        w = Watcher(tmp_path)
        log = w.logs / "app.log"
        filler = "x" * 90
        lines = [
            f"{DENIAL} {n:06d}" if n % 1000 == 0 else f"{n:06d} nothing to see {filler}"
            for n in range(64_000)
        ]
        log.write_text("\n".join(lines) + "\n")
        assert log.stat().st_size > 6 * MiB
        try:
            w.start()
            wait_for(lambda: len(w.events()) == 64, "every denial of the backlog")
            assert 0 == w.stop()
        finally:
            w.kill()
        (stopped,) = logged(w, "daemon_stopped")
        assert stopped["commits"] >= 6
        assert 64 == len({e["raw"] for e in w.events()})


class TestReloadDuringRotation:
    def test_lines_written_just_before_a_rename_survive_a_sighup(self, tmp_path):
        """Found by ``make soak``: a SIGHUP handled before the rename was noticed dropped the
        renamed file's last lines (the reload closed the tailer of a path no longer there).
        The daemon is stopped (SIGSTOP) so both happen before it runs again."""
        w = Watcher(tmp_path)
        log = w.logs / "app.log"
        try:
            w.start()
            append(log, f"{DENIAL} before")
            wait_for(lambda: len(w.events()) == 1, "the first event")
            w.signal(signal.SIGSTOP)
            append(log, *(f"{DENIAL} last words {i}" for i in range(5)))
            log.rename(w.logs / "app.log.1")
            w.signal(signal.SIGHUP)
            w.signal(signal.SIGCONT)
            wait_for(lambda: logged(w, "config_reloaded"), "the reload")
            append(log, f"{DENIAL} new file")
            wait_for(lambda: any("new file" in e["raw"] for e in w.events()), "the new file")
            assert 0 == w.stop()
        finally:
            w.kill()
        expected = ["before", *(f"last words {i}" for i in range(5)), "new file"]
        assert expected == [e["raw"].removeprefix(f"{DENIAL} ") for e in w.events()]


class TestScanBesideADaemon:
    def test_scan_leaves_delivery_to_the_daemon_holding_the_state_dir(self, tmp_path):
        """Two deliverers would send each alert twice: scan queues, the daemon delivers, the
        receiver gets the alert once and scan exits 0."""
        with Receiver() as receiver:
            extra = (
                f"  - type: webhook\n    url: {receiver.url}\n    events: [authz_alert]\n"
                "alerts:\n  - name: twice\n    threshold: 2\n    window: 10m\n    cooldown: 30m\n"
            )
            w = Watcher(tmp_path, extra_config=extra)
            history = tmp_path / "history.log"
            history.write_text(f"{DENIAL} 1\n{DENIAL} 2\n")
            try:
                w.start()
                result = run_cli("scan", "--no-decode", "-c", str(w.config), str(history))
                assert 0 == w.stop()
            finally:
                w.kill()
            received = [a["rule"] for a in receiver.received]
        assert (0, ["twice"]) == (result.returncode, received)
        assert ["outbox_left_to_daemon"] == [
            e["event"] for e in result.logs() if e["event"] == "outbox_left_to_daemon"
        ]


class TestStateNotCorrupt:
    def test_a_database_sqlite_reads_but_our_schema_cannot_use_is_kept_not_moved_aside(
        self, tmp_path
    ):
        """Only a file SQLite cannot read as a database is corrupt. One it reads, whose tables
        our statements cannot use (another version's schema), is an error that names the
        reason, and the file and its checkpoints stay where they are."""
        state_dir = tmp_path / "state"
        state_dir.mkdir()
        database = state_dir / "state.sqlite3"
        with sqlite3.connect(database) as connection:
            connection.execute("CREATE TABLE s3_objects_seen (bucket TEXT)")  # no seen_at
        with pytest.raises(StateError) as info:
            StateStore(state_dir, configure_logging(io.StringIO()))
        assert "no such column: seen_at" in str(info.value)
        assert [] == [p.name for p in state_dir.iterdir() if "corrupt" in p.name]
        with sqlite3.connect(database) as connection:
            columns = connection.execute("PRAGMA table_info(s3_objects_seen)").fetchall()
        assert ["bucket"] == [column[1] for column in columns]
