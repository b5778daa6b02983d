"""The daemon as systemd runs it: a real process, real files, real signals, waits with deadlines."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    DATA,
    ISOLATED_AWS_ENV,
    REPO,
    _drop_file_permission_override,
    validate_event,
)
from tests.receiver import Receiver

DENIAL = "User: arn:aws:iam::111122223333:user/ana is not authorized to perform: s3:GetObject"
DEADLINE_SECONDS = 30


def wait_for(
    condition: Callable[[], object], what: str, deadline: float = DEADLINE_SECONDS
) -> None:
    """Poll ``condition`` until it is true; fail with ``what`` after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.02)  # polling interval of the check, not a synchronisation guess
    pytest.fail(f"timed out after {deadline} s waiting for {what}")


class Watcher:
    """One `authz-watcher run` process over a temporary directory."""

    def __init__(
        self,
        root: Path,
        *,
        extra_config: str = "",
        drop_caps: bool = False,
        preexec: Callable[[], None] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.env = env or {}  # added to the isolated environment, e.g. test credentials
        self.logs = root / "logs"
        self.logs.mkdir(exist_ok=True)
        self.events_path = root / "out" / "events.jsonl"
        self.config = root / "config.yaml"
        self.stderr_path = root / "stderr.log"
        self.write_config(extra_config)
        self.preexec = preexec
        if drop_caps and os.geteuid() == 0:
            self.preexec = _drop_file_permission_override
        self.proc: subprocess.Popen[bytes] | None = None

    def write_config(
        self,
        extra: str = "",
        paths: tuple[str, ...] = ("*.log",),
        source_options: str = "",
        start_at: str = "beginning",
    ) -> None:
        patterns = ", ".join(json.dumps(str(self.logs / p)) for p in paths)
        self.config.write_text(
            f"state_dir: {self.root / 'state'}\n"
            "sources:\n"
            f"  - type: file\n    paths: [{patterns}]\n    start_at: {start_at}\n"
            "    poll_interval_seconds: 0.5\n" + source_options + "decode:\n  enabled: false\n"
            f"sinks:\n  - type: file\n    path: {self.events_path}\n" + extra
        )

    def start(self) -> Watcher:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(ISOLATED_AWS_ENV)
        env.update(self.env)
        with self.stderr_path.open("ab") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "watcher", "run", "-c", str(self.config)],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=env,
                cwd=REPO,
                preexec_fn=self.preexec,  # noqa: PLW1509 - set before any thread starts
            )
        wait_for(lambda: "daemon_started" in self.stderr(), "the daemon to start")
        return self

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=DEADLINE_SECONDS)

    def stop(self) -> int:
        self.signal(signal.SIGTERM)
        return self.wait()

    def stderr(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""

    def log_events(self) -> list[dict]:
        return [json.loads(line) for line in self.stderr().splitlines() if line.startswith("{")]

    def events(self) -> list[dict]:
        if not self.events_path.exists():
            return []
        return [
            validate_event(json.loads(line))
            for line in self.events_path.read_text().splitlines()
            if line.endswith("}")
        ]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=DEADLINE_SECONDS)


@pytest.fixture
def watcher(tmp_path) -> Iterator[Watcher]:
    w = Watcher(tmp_path)
    yield w
    w.kill()


def append(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(f"{line}\n" for line in lines))
        handle.flush()


class TestDaemon:
    def test_appended_denials_reach_the_file_sink(self, watcher):
        watcher.start()
        append(watcher.logs / "app.log", "noise", f"{DENIAL} 1", f"{DENIAL} 2")
        wait_for(lambda: len(watcher.events()) == 2, "two events")
        assert 0 == watcher.stop()
        assert [6, 6 + len(DENIAL) + 3] == [e["source_offset"] for e in watcher.events()]
        assert {str(watcher.logs / "app.log")} == {e["source_path"] for e in watcher.events()}

    def test_a_wrapped_denial_whose_rest_comes_late_still_gives_its_event(self, watcher):
        """The writer stops after 'to perform:' for longer than a message is held: the denial
        goes out with what it has (principal, no action) rather than not at all."""
        watcher.start()
        principal = "arn:aws:iam::111122223333:user/late"
        append(watcher.logs / "app.log", f"User: {principal} is not authorized to perform:\n")
        wait_for(lambda: len(watcher.events()) == 1, "the held denial, flushed as it is")
        append(watcher.logs / "app.log", f"s3:PutObject on resource: arn:aws:s3:::b/k\n{DENIAL}\n")
        wait_for(lambda: len(watcher.events()) == 2, "the next denial")
        assert 0 == watcher.stop()
        first, second = watcher.events()
        assert (principal, None) == (first["principal_arn"], first["action"])
        assert "arn:aws:iam::111122223333:user/ana" == second["principal_arn"]

    def test_sigterm_drains_and_a_restart_emits_nothing_twice(self, watcher):
        watcher.start()
        append(watcher.logs / "app.log", *(f"{DENIAL} {i}" for i in range(50)))
        wait_for(lambda: len(watcher.events()) == 50, "50 events")
        assert 0 == watcher.stop()
        watcher.start()
        append(watcher.logs / "app.log", f"{DENIAL} after restart")
        wait_for(lambda: len(watcher.events()) == 51, "the 51st event")
        assert 0 == watcher.stop()
        ids = [e["event_id"] for e in watcher.events()]
        assert len(ids) == len(set(ids))

    def test_kill_9_while_writing_loses_nothing(self, watcher):
        watcher.start()
        log = watcher.logs / "app.log"
        total = 400
        for i in range(total):
            append(log, f"{DENIAL} {i}")
            if i == total // 2:
                wait_for(lambda: len(watcher.events()) > 10, "some events before the kill")
                watcher.kill()  # SIGKILL: no drain, no commit
        watcher.start()
        wait_for(
            lambda: {e["source_offset"] for e in watcher.events()} >= set(line_offsets(log)),
            "every line's event after the restart",
        )
        assert 0 == watcher.stop()
        by_offset: dict[int, set[str]] = {}
        for event in watcher.events():
            by_offset.setdefault(event["source_offset"], set()).add(event["event_id"])
        assert all(len(ids) == 1 for ids in by_offset.values()), "duplicates share their id"

    def test_sighup_applies_a_new_config_and_rejects_a_broken_one(self, watcher):
        watcher.start()
        watcher.write_config(paths=("*.log", "*.txt"))
        watcher.signal(signal.SIGHUP)
        wait_for(
            lambda: any(e["event"] == "config_reloaded" for e in watcher.log_events()), "reload"
        )
        append(watcher.logs / "new.txt", f"{DENIAL} txt")
        wait_for(lambda: len(watcher.events()) == 1, "an event from the newly configured glob")
        watcher.config.write_text("sources: [\n")
        watcher.signal(signal.SIGHUP)
        wait_for(
            lambda: any(e["event"] == "config_reload_failed" for e in watcher.log_events()),
            "the rejected reload",
        )
        append(watcher.logs / "new.txt", f"{DENIAL} still running")
        wait_for(lambda: len(watcher.events()) == 2, "events under the old config")
        assert 0 == watcher.stop()

    def test_sighup_with_a_malformed_webhook_url_keeps_the_daemon_running(self, watcher):
        """A URL urlsplit cannot parse is a config error at reload (the old config is kept),
        not an exception that ends the daemon; the log names the key, never the URL."""
        watcher.start()
        watcher.write_config("  - type: webhook\n    url: 'http://[::1/s3cr3t'\n")
        watcher.signal(signal.SIGHUP)
        wait_for(
            lambda: any(e["event"] == "config_reload_failed" for e in watcher.log_events()),
            "the rejected reload",
        )
        (failed,) = [e for e in watcher.log_events() if e["event"] == "config_reload_failed"]
        assert "sinks.1.url: not a valid URL (Invalid IPv6 URL)" in failed["error"]
        assert "s3cr3t" not in watcher.stderr()
        append(watcher.logs / "app.log", f"{DENIAL} still running")
        wait_for(lambda: len(watcher.events()) == 1, "an event under the old config")
        assert 0 == watcher.stop()

    def test_sighup_reopens_the_event_file_for_logrotate(self, watcher):
        watcher.start()
        append(watcher.logs / "app.log", f"{DENIAL} before rotation")
        wait_for(lambda: len(watcher.events()) == 1, "the first event")
        rotated = watcher.events_path.with_name("events.jsonl.1")
        watcher.events_path.rename(rotated)
        watcher.signal(signal.SIGHUP)
        wait_for(
            lambda: any(e["event"] == "config_reloaded" for e in watcher.log_events()), "reload"
        )
        append(watcher.logs / "app.log", f"{DENIAL} after rotation")
        wait_for(lambda: len(watcher.events()) == 1, "the event in the new file")
        assert 0 == watcher.stop()
        assert watcher.events()[0]["raw"].endswith("after rotation")
        assert 1 == len(rotated.read_text().splitlines())

    def test_source_removed_and_added_again_resumes_at_its_offset(self, watcher):
        watcher.write_config(paths=("*.log", "*.txt"))
        watcher.start()
        append(watcher.logs / "b.txt", f"{DENIAL} 1")
        wait_for(lambda: len(watcher.events()) == 1, "the first event")
        watcher.write_config(paths=("*.log",))
        watcher.signal(signal.SIGHUP)
        wait_for(
            lambda: sum(e["event"] == "config_reloaded" for e in watcher.log_events()) == 1,
            "the first reload",
        )
        append(watcher.logs / "b.txt", f"{DENIAL} 2 while not configured")
        watcher.write_config(paths=("*.log", "*.txt"))
        watcher.signal(signal.SIGHUP)
        wait_for(lambda: len(watcher.events()) == 2, "the line written while not configured")
        assert 0 == watcher.stop()
        raws = [e["raw"] for e in watcher.events()]
        assert [f"{DENIAL} 1", f"{DENIAL} 2 while not configured"] == raws

    def test_unreadable_file_is_reported_once_and_others_continue(self, tmp_path):
        w = Watcher(tmp_path, drop_caps=True)
        secret = w.logs / "secret.log"
        append(secret, f"{DENIAL} secret")
        secret.chmod(0o000)
        try:
            w.start()
            append(w.logs / "open.log", f"{DENIAL} open")
            wait_for(lambda: len(w.events()) == 1, "the readable file's event")
            wait_for(lambda: any(e["event"] == "source_error" for e in w.log_events()), "the error")
            errors = [e for e in w.log_events() if e["event"] == "source_error"]
            assert [(str(secret), "Permission denied")] == [(e["path"], e["error"]) for e in errors]
            assert 0 == w.stop()
        finally:
            w.kill()

    def test_directory_that_appears_later_is_announced_then_followed(self, tmp_path):
        w = Watcher(tmp_path)
        shutil.rmtree(w.logs)
        try:
            w.start()
            wait_for(
                lambda: any(
                    e["event"] == "source_directory_missing" and e["path"] == str(w.logs)
                    for e in w.log_events()
                ),
                "the missing directory to be reported",
            )
            w.logs.mkdir()
            append(w.logs / "app.log", f"{DENIAL} in a late directory")
            wait_for(lambda: len(w.events()) == 1, "the event from the late directory")
            assert 0 == w.stop()
        finally:
            w.kill()

    def test_corrupt_state_means_a_clear_message_and_a_fresh_start(self, watcher):
        watcher.write_config(start_at="end")
        (watcher.root / "state").mkdir()
        (watcher.root / "state" / "state.sqlite3").write_bytes(b"garbage" * 1000)
        append(watcher.logs / "app.log", f"{DENIAL} before the start")
        watcher.start()
        wait_for(lambda: any(e["event"] == "source_opened" for e in watcher.log_events()), "opened")
        append(watcher.logs / "app.log", f"{DENIAL} after the start")
        wait_for(lambda: len(watcher.events()) == 1, "the appended line's event")
        assert 0 == watcher.stop()
        assert watcher.events()[0]["raw"].endswith("after the start")  # start_at: end applied
        assert any(e["event"] == "state_corrupt" for e in watcher.log_events())

    def test_polling_observer_for_filesystems_without_inotify(self, watcher):
        watcher.write_config(source_options="    use_polling: true\n")
        watcher.start()
        append(watcher.logs / "app.log", f"{DENIAL} seen by polling")
        wait_for(lambda: len(watcher.events()) == 1, "the event found by polling")
        assert 0 == watcher.stop()

    def test_torn_last_line_of_the_event_file_is_repaired(self, watcher):
        watcher.events_path.parent.mkdir(parents=True)
        watcher.events_path.write_text('{"event":"authz_denial","half a line')
        watcher.start()
        append(watcher.logs / "app.log", f"{DENIAL} 1")
        wait_for(lambda: len(watcher.events()) == 1, "one event")
        assert 0 == watcher.stop()
        lines = watcher.events_path.read_text().splitlines()
        assert 1 == len(lines)
        json.loads(lines[0])


def line_offsets(path: Path) -> list[int]:
    offsets, position = [], 0
    for line in path.read_bytes().splitlines(keepends=True):
        offsets.append(position)
        position += len(line)
    return offsets


class TestCloudTrailInTheDaemon:
    def config(self, w: Watcher) -> None:
        w.config.write_text(
            f"state_dir: {w.root / 'state'}\n"
            "sources:\n"
            f"  - type: cloudtrail\n    paths: [{json.dumps(str(w.root / 'AWSLogs'))}]\n"
            "    poll_interval_seconds: 0.5\n"
            "decode:\n  enabled: false\n"
            f"sinks:\n  - type: file\n    path: {w.events_path}\n"
        )

    def test_export_appearing_later_is_emitted_once_even_across_restarts(self, tmp_path):
        w = Watcher(tmp_path)
        self.config(w)
        day = tmp_path / "AWSLogs" / "123837392027" / "CloudTrail" / "us-east-1" / "2023" / "07"
        day.mkdir(parents=True)
        try:
            w.start()
            trail = TRAIL_FILE.read_bytes()
            (day / "export.json.gz").write_bytes(gzip.compress(trail))
            wait_for(lambda: len(w.events()) == TRAIL_FILE_DENIALS, "the export's denials")
            assert 0 == w.stop()
            w.start()
            os.utime(day / "export.json.gz")  # touched, not changed: nothing new
            wait_for(
                lambda: sum(e["event"] == "daemon_started" for e in w.log_events()) == 2,
                "the restart",
            )
            assert 0 == w.stop()
            assert TRAIL_FILE_DENIALS == len(w.events())
        finally:
            w.kill()

    def test_export_still_being_written_is_emitted_once_complete(self, tmp_path):
        w = Watcher(tmp_path)
        self.config(w)
        (tmp_path / "AWSLogs").mkdir()
        target = tmp_path / "AWSLogs" / "export.json.gz"
        data = gzip.compress(TRAIL_FILE.read_bytes())
        try:
            w.start()
            target.write_bytes(data[: len(data) // 2])
            wait_for(
                lambda: any(
                    e["event"] == "source_error" and e["path"] == str(target)
                    for e in w.log_events()
                ),
                "the incomplete file's report",
            )
            assert [] == w.events()
            target.write_bytes(data)
            wait_for(lambda: len(w.events()) == TRAIL_FILE_DENIALS, "the complete file's events")
            assert 0 == w.stop()
            assert TRAIL_FILE_DENIALS == len({e["event_id"] for e in w.events()})
        finally:
            w.kill()


TRAIL_FILE = (
    DATA / "cloudtrail" / "218007301253_CloudTrail_us-east-1_20230710T1200Z_iLj9fb7yyUG9X4Bf.json"
)
TRAIL_FILE_DENIALS = 27  # 3 AccessDenied + 24 Client.UnauthorizedOperation (SOURCES.txt)


class TestAlertsInTheDaemon:
    def test_alert_raised_before_a_crash_is_delivered_after_restart(self, tmp_path):
        with Receiver() as probe:
            url = probe.url  # a port that nobody listens on once the probe is closed
        extra = (
            f"  - type: webhook\n    url: {url}\n    events: [authz_alert]\n"
            "alerts:\n  - name: repeated-denials\n    threshold: 3\n    window: 10m\n"
            "    cooldown: 30m\n"
        )
        w = Watcher(tmp_path, extra_config=extra)
        try:
            w.start()
            append(w.logs / "app.log", *(f"{DENIAL} {i}" for i in range(3)))
            wait_for(
                lambda: [e["event"] for e in w.events()] == ["authz_denial"] * 3 + ["authz_alert"],
                "three denials, then the alert in the event file",
            )
            wait_for(
                lambda: any(e["event"] == "sink_retry" for e in w.log_events()),
                "a failed delivery attempt",
            )
            w.kill()  # the alert is raised, not delivered: it must survive in the outbox
            port = int(url.split(":")[2].split("/")[0])
            with Receiver(port=port) as receiver:
                w.start()
                wait_for(lambda: receiver.received, "the alert after the restart", deadline=60)
                assert 0 == w.stop()
            (alert,) = receiver.received
            validate_event(alert)
            assert ("repeated-denials", 3) == (alert["rule"], alert["count"])
        finally:
            w.kill()

    def test_alert_counts_survive_a_reload(self, tmp_path):
        extra = (
            "alerts:\n  - name: repeated-denials\n    threshold: 3\n    window: 10m\n"
            "    cooldown: 30m\n"
        )
        w = Watcher(tmp_path, extra_config=extra)
        try:
            w.start()
            append(w.logs / "app.log", f"{DENIAL} 1", f"{DENIAL} 2")
            wait_for(lambda: len(w.events()) == 2, "two denials")
            w.signal(signal.SIGHUP)
            wait_for(lambda: any(e["event"] == "config_reloaded" for e in w.log_events()), "reload")
            append(w.logs / "app.log", f"{DENIAL} 3")
            wait_for(
                lambda: [e["event"] for e in w.events()][-1:] == ["authz_alert"],
                "the alert counting denials from before the reload",
            )
            assert 0 == w.stop()
            assert 3 == w.events()[-1]["count"]
        finally:
            w.kill()

    def test_a_restart_within_the_cooldown_does_not_alert_again(self, tmp_path):
        """The cooldown is in the state database from the moment the alert is raised."""
        with running_with_rule(tmp_path, "threshold: 3\n    cooldown: 1h") as w:
            append(w.logs / "app.log", *(f"{DENIAL} {i}" for i in range(3)))
            wait_for(lambda: len(w.events()) == 4, "three denials and the alert")
            w.kill()  # no graceful stop: only what was saved as the alert was raised remains
            w.start()
            append(w.logs / "app.log", *(f"{DENIAL} {i}" for i in range(3, 6)))
            denial_ids = lambda: {  # noqa: E731 - after kill -9 the first three may come again
                e["event_id"] for e in w.events() if e["event"] == "authz_denial"
            }
            wait_for(lambda: len(denial_ids()) == 6, "six distinct denials")
            assert 0 == w.stop()
            assert 1 == sum(e["event"] == "authz_alert" for e in w.events())

    def test_a_storm_is_capped_and_its_summary_is_sent_at_the_latest_on_stop(self, tmp_path):
        """Three groups cross at once under a cap of one: one alert, then one summary."""
        options = "threshold: 1\n    cooldown: 1h\n    max_alerts_per_minute: 1"
        with running_with_rule(tmp_path, options) as w:
            append(w.logs / "app.log", *(DENIAL.replace("ana", f"user{i}") for i in range(3)))
            wait_for(lambda: len(w.events()) == 4, "three denials and one alert")
            assert 0 == w.stop()
            alerts = [e for e in w.events() if e["event"] == "authz_alert"]
            assert [None, 2] == [a.get("storm_groups") for a in alerts]


@contextlib.contextmanager
def running_with_rule(tmp_path: Path, options: str) -> Iterator[Watcher]:
    """A started daemon with one alert rule (10 min window) given ``options``."""
    w = Watcher(tmp_path, extra_config=f"alerts:\n  - name: r\n    window: 10m\n    {options}\n")
    try:
        yield w.start()
    finally:
        w.kill()


class TestReloadWithDeliveriesInFlight:
    def test_a_sighup_that_changes_a_sink_sends_no_alert_twice(self, tmp_path):
        """Six alerts, the first still being answered when the reload rebuilds the sink: six
        POSTs, six distinct event ids."""
        with Receiver() as receiver:
            receiver.answers.append("slow")
            rule = "alerts:\n  - name: r\n    threshold: 1\n    cooldown: 1h\n"
            hook = f"  - type: webhook\n    url: {receiver.url}\n    events: [authz_alert]\n"
            w = Watcher(tmp_path, extra_config=hook + rule)
            try:
                w.start()
                principals = (DENIAL.replace("ana", f"user{i}") for i in range(6))
                append(w.logs / "app.log", *principals)
                wait_for(lambda: receiver.attempts >= 1, "the first delivery in flight")
                w.write_config(hook + "    timeout_seconds: 5\n" + rule)
                w.signal(signal.SIGHUP)
                wait_for(lambda: len(receiver.received) >= 6, "six alerts delivered")
                assert 0 == w.stop()
            finally:
                w.kill()
        assert (6, 6) == (receiver.attempts, len({a["event_id"] for a in receiver.received}))
