"""Start `authz-watcher run` for a benchmark: a temporary config, stdout captured by a thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ISOLATED_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/authz-watcher-bench/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/authz-watcher-bench/credentials",
    "AWS_REGION": "us-east-1",
}


def follow_empty_log(root: Path) -> tuple[Path, RunningDaemon]:
    """An empty ``logs/app.log`` under ``root`` and a daemon following ``logs/*.log``."""
    logs = root / "logs"
    logs.mkdir()
    log = logs / "app.log"
    log.touch()
    return log, RunningDaemon(root, [str(logs / "*.log")])


class RunningDaemon:
    """The daemon with a stdout sink; ``arrivals`` holds (monotonic time, event) per line."""

    def __init__(self, root: Path, patterns: list[str], *, decode: bool = False) -> None:
        config = root / "config.yaml"
        globs = ", ".join(json.dumps(p) for p in patterns)
        config.write_text(
            f"state_dir: {root / 'state'}\n"
            f"sources:\n  - type: file\n    paths: [{globs}]\n    start_at: beginning\n"
            f"decode:\n  enabled: {'true' if decode else 'false'}\n"
            "sinks:\n  - type: stdout\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(ISOLATED_ENV)
        self.stderr_path = root / "daemon.stderr"
        self.arrivals: list[tuple[float, dict[str, object]]] = []
        self._lock = threading.Lock()
        with self.stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "watcher", "run", "-c", str(config)],
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
                cwd=REPO,
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for(lambda: "daemon_started" in self.stderr_path.read_text(), 60)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            arrived = time.monotonic()
            with self._lock:
                self.arrivals.append((arrived, json.loads(line)))

    def count(self) -> int:
        with self._lock:
            return len(self.arrivals)

    @staticmethod
    def wait_for(condition, deadline: float) -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if condition():
                return
            time.sleep(0.005)
        sys.exit("benchmark timed out")

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
