"""Helpers for the follow tests: the real daemon with a stdout sink, and real writer processes.

`StdoutDaemon` runs `authz-watcher run -c CONFIG` as systemd would and reads its stdout on a
thread, noting when each event line arrives (``time.monotonic()``, comparable with the
writers' clocks). `AppWriter` runs tests/app_writer.py. `Tally` counts what arrived against
what was written.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import ISOLATED_AWS_ENV, REPO, validate_event
from tests.test_daemon import DEADLINE_SECONDS, wait_for

PRINCIPAL_NUMBER = re.compile(r"user/([A-Za-z0-9-]*?)(\d+)$")


def reached(condition: Callable[[], bool], deadline: float) -> bool:
    """Poll ``condition`` until true or ``deadline`` seconds pass; say which happened."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)  # polling interval of the check, not a synchronisation guess
    return condition()


class StdoutDaemon:
    """One `authz-watcher run` with a stdout sink; ``arrivals`` holds (monotonic, event)."""

    def __init__(self, root: Path, patterns: list[str]) -> None:
        self.root = root
        self.patterns = patterns
        self.config = root / "config.yaml"
        self.stderr_path = root / "stderr.log"
        self.write_config()
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    def write_config(self, source_options: str = "") -> None:
        """The file source over ``patterns``, with ``source_options`` (indented YAML) added."""
        globs = ", ".join(json.dumps(p) for p in self.patterns)
        self.config.write_text(
            f"state_dir: {self.root / 'state'}\n"
            f"sources:\n  - type: file\n    paths: [{globs}]\n    start_at: beginning\n"
            + source_options
            + "decode:\n  enabled: false\nsinks:\n  - type: stdout\n"
        )

    def start(self) -> StdoutDaemon:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(ISOLATED_AWS_ENV)
        starts = self.stderr().count("daemon_started")
        with self.stderr_path.open("ab") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "watcher", "run", "-c", str(self.config)],
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
                cwd=REPO,
            )
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        wait_for(lambda: self.stderr().count("daemon_started") > starts, "the daemon to start")
        return self

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            arrived = time.monotonic()
            event = validate_event(json.loads(line))
            with self._lock:
                self.arrivals.append((arrived, event))

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [event for _, event in self.arrivals]

    def stderr(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""

    def log_events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stderr().splitlines() if line.startswith("{")]

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` (SIGTERM: drain and exit; SIGKILL: a crash); wait for the exit."""
        assert self.proc is not None
        assert self._reader is not None
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout=DEADLINE_SECONDS)
        self._reader.join(timeout=DEADLINE_SECONDS)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop(signal.SIGKILL)


class AppWriter:
    """tests/app_writer.py in a process: ``reopen()`` is its SIGUSR1, ``finish()`` its ledger."""

    def __init__(self, path: Path, ledger: Path, count: int, rate: float, *extra: str) -> None:
        self.path = path
        self.ledger = ledger  # outside the followed directories
        options = ["--ledger", str(ledger), "--count", str(count), "--rate", str(rate), *extra]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.app_writer", str(path), *options], cwd=REPO
        )
        wait_for(path.exists, f"the writer to create {path}")

    def running(self) -> bool:
        return self.proc.poll() is None

    def reopen(self) -> None:
        self.proc.send_signal(signal.SIGUSR1)

    def finish(self) -> dict[int, float]:
        """Wait for the writer's last line; line number -> monotonic time of its write."""
        assert 0 == self.proc.wait(timeout=DEADLINE_SECONDS * 4)
        written = json.loads(self.ledger.read_text())
        return {int(number): at for number, at in written.items()}

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=DEADLINE_SECONDS)


def denial_key(event: dict[str, Any]) -> tuple[str, int]:
    """(writer prefix, line number) of an app_writer denial."""
    found = PRINCIPAL_NUMBER.search(str(event["principal_arn"]))
    assert found is not None, event["principal_arn"]
    return found.group(1), int(found.group(2))


@dataclass(frozen=True)
class Tally:
    """What arrived against what was written: the figures each test asserts and reports."""

    written: int
    lost: int
    duplicated_denials: int
    duplicated_ids: int

    @staticmethod
    def of(events: list[dict[str, Any]], written: set[tuple[str, int]]) -> Tally:
        denials = Counter(denial_key(e) for e in events if e["event"] == "authz_denial")
        ids = Counter(e["event_id"] for e in events)
        return Tally(
            written=len(written),
            lost=len(written - set(denials)),
            duplicated_denials=sum(n - 1 for n in denials.values()),
            duplicated_ids=sum(n - 1 for n in ids.values()),
        )

    @property
    def lost_percent(self) -> float:
        return 100.0 * self.lost / self.written
