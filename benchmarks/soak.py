"""Soak: the daemon for minutes under a writer, rename rotation, SIGHUPs and a flapping receiver.

Starts `authz-watcher run` following ``logs/*.log`` with two sinks, a JSONL file and a webhook
to a local receiver (tests/receiver.py) that answers 503 for two seconds in every ten. A
writer appends numbered denials all along; every 15 s the log is renamed away (rotation) and
every 7 s the daemon gets SIGHUP. At the end the daemon is stopped (SIGTERM) and started once
more, one last denial is written, and every sink is counted: lost (a denial missing) and
duplicated (a denial there twice) must both be 0. Not part of `make test`:

    make soak MINUTES=5          # or: python benchmarks/soak.py --minutes 5
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.receiver import Receiver  # noqa: E402 - after the path is set
from tests.test_daemon import Watcher  # noqa: E402 - same

DENIAL = "User: arn:aws:iam::111122223333:user/soak is not authorized to perform: s3:GetObject"
MARKER_RE = re.compile(r"soak-(\d{8})")
DENIALS_PER_SECOND = 50
ROTATE_EVERY_SECONDS = 15.0
SIGHUP_EVERY_SECONDS = 7.0
FLAP_PERIOD_SECONDS = 10.0
FLAP_DOWN_SECONDS = 2.0
SETTLE_DEADLINE_SECONDS = 600.0  # delivery retries back off up to minutes after many failures


class Soak:
    """The daemon (the test suite's ``Watcher``: file sink, ``logs/*.log``) plus a webhook."""

    def __init__(self, root: Path, receiver: Receiver) -> None:
        self.receiver = receiver
        webhook = f"  - type: webhook\n    url: {receiver.url}\n    events: [authz_denial]\n"
        self.daemon = Watcher(root, extra_config=webhook)
        self.logs = self.daemon.logs
        self.log = self.logs / "app.log"
        self.events_path = self.daemon.events_path
        self.runs = 0
        self.written = 0
        self.rotations = 0
        self.sighups = 0

    def start(self) -> None:
        self.runs += 1  # a stderr file per run: start() waits for this run's daemon_started
        self.daemon.stderr_path = self.daemon.root / f"daemon-{self.runs}.stderr"
        self.daemon.start()

    def stop(self) -> int:
        return self.daemon.stop()

    def write(self, count: int) -> None:
        with self.log.open("a") as handle:
            for _ in range(count):
                handle.write(f"{DENIAL} soak-{self.written:08d}\n")
                self.written += 1

    def rotate(self) -> None:
        self.rotations += 1
        self.log.rename(self.logs / f"app.log.{self.rotations}")  # *.log no longer matches

    def sighup(self) -> None:
        self.daemon.signal(signal.SIGHUP)
        self.sighups += 1

    def file_markers(self) -> Counter[int]:
        if not self.events_path.exists():
            return Counter()
        lines = self.events_path.read_bytes().split(b"\n")[:-1]
        return markers(json.loads(line) for line in lines)

    def receiver_markers(self) -> Counter[int]:
        return markers(list(self.receiver.received))


def markers(events: Iterable[dict[str, Any]]) -> Counter[int]:
    """How often each numbered denial appears among ``events``."""
    found: Counter[int] = Counter()
    for event in events:
        match = MARKER_RE.search(event["raw"])
        if match:
            found[int(match.group(1))] += 1
    return found


def wait_until(condition: Callable[[], bool], deadline: float) -> bool:
    """Poll ``condition`` for up to ``deadline`` seconds; whether it became true."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return False


def flap(receiver: Receiver, stop: threading.Event) -> None:
    """Down (503 to everything) for FLAP_DOWN_SECONDS in every FLAP_PERIOD_SECONDS."""
    while not stop.wait(FLAP_PERIOD_SECONDS - FLAP_DOWN_SECONDS):
        receiver.answers.extend([503] * 100_000)
        stop.wait(FLAP_DOWN_SECONDS)
        receiver.answers.clear()


def drive(soak: Soak, seconds: float) -> None:
    """The writer, rotations and SIGHUPs, on one clock, for ``seconds``."""
    start = time.monotonic()
    next_rotation = start + ROTATE_EVERY_SECONDS
    next_sighup = start + SIGHUP_EVERY_SECONDS
    while (now := time.monotonic()) < start + seconds:
        soak.write(DENIALS_PER_SECOND // 10)
        if now >= next_rotation:
            soak.rotate()
            next_rotation += ROTATE_EVERY_SECONDS
        if now >= next_sighup:
            soak.sighup()
            next_sighup += SIGHUP_EVERY_SECONDS
        time.sleep(0.1)  # the writer's pace


def report(name: str, seen: Counter[int], written: int) -> tuple[int, int]:
    lost = sum(1 for n in range(written) if n not in seen)
    duplicated = sum(count - 1 for count in seen.values() if count > 1)
    print(f"{name:<10} {written:>9} {len(seen):>9} {lost:>6} {duplicated:>11}")
    return lost, duplicated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="authz-soak-") as tmp, Receiver() as receiver:
        soak = Soak(Path(tmp), receiver)
        try:
            statuses = run(soak, receiver, args.minutes * 60)
        finally:
            soak.daemon.kill()  # only if something above failed; a no-op after a stop
        print(
            f"soak: {args.minutes:g} min, {soak.written} denials, {soak.rotations} rotations, "
            f"{soak.sighups} SIGHUPs, receiver down {FLAP_DOWN_SECONDS:g} s in every "
            f"{FLAP_PERIOD_SECONDS:g} s ({receiver.attempts} delivery attempts)"
        )
        print(f"{'sink':<10} {'written':>9} {'seen':>9} {'lost':>6} {'duplicated':>11}")
        results = [
            report("file", soak.file_markers(), soak.written),
            report("webhook", soak.receiver_markers(), soak.written),
        ]
        failed = statuses != [0, 0] or any(lost or dup for lost, dup in results)
        print(f"daemon exit statuses: {statuses}; {'FAILED' if failed else 'OK'}")
        return 1 if failed else 0


def run(soak: Soak, receiver: Receiver, seconds: float) -> list[int]:
    """Drive the daemon, stop it, start it again and wait for every sink; the exit statuses."""
    stop_flapping = threading.Event()
    flapper = threading.Thread(target=flap, args=(receiver, stop_flapping), name="flap")
    soak.start()
    flapper.start()
    try:
        drive(soak, seconds)
    finally:
        stop_flapping.set()
        flapper.join()
        receiver.answers.clear()
    statuses = [soak.stop()]  # SIGTERM drains: what was read is written and committed
    soak.start()  # a stop and start must emit nothing twice
    soak.write(1)
    settled = wait_until(
        lambda: (
            len(soak.file_markers()) >= soak.written
            and len(soak.receiver_markers()) >= soak.written
        ),
        SETTLE_DEADLINE_SECONDS,
    )
    if not settled:  # the counts below say what is missing
        print(f"soak: not every denial in every sink after {SETTLE_DEADLINE_SECONDS:.0f} s")
    statuses.append(soak.stop())
    return statuses


if __name__ == "__main__":
    sys.exit(main())
