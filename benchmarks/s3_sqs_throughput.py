"""s3_sqs throughput and latency against moto's server, with `scan` of the same objects as the
reference measured in the same run.

1. Writes OBJECTS CloudTrail objects (.json.gz, RECORDS records each, ~10% denials) to a local
   directory and times `authz-watcher scan --no-decode` over it: denials/s (the reference).
2. Puts the same objects in a bucket that notifies a queue (moto's server, one process), starts
   one `authz-watcher run` with an s3_sqs source and times the first to the last event out:
   denials/s, and the ratio to scan's (issue #13's target: >= 0.7).
3. The same with two watchers sharing the queue: denials/s, and the ratio to one watcher's.
4. Latency, EventBridge path: one 'AWS API Call via CloudTrail' message at a time, from
   SendMessage to its event on the watcher's stdout (p50, p99; issue #16's target: p99 <= 1 s);
   and the S3 path: from PutObject (one object) to its events.

    python benchmarks/s3_sqs_throughput.py [--objects 200] [--records 500] [--latency 100]

Everything runs on this machine: moto's server (Python, single process) serves S3 and SQS to
the watchers while they run; read the figures as ratios, not as what AWS would give.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bytecode import compile_package

from tests.conftest import ISOLATED_AWS_ENV
from tests.moto_server import MotoServer
from tests.trail_queue import (
    TrailQueue,
    api_call_event,
    trail_key,
    trail_object,
    trail_record,
)

ROOT = Path(__file__).resolve().parent.parent
DEADLINE_SECONDS = 600.0
DENIAL_EVERY = 10  # one record in ten is a denial
TARGET_RATIO = 0.7
TARGET_P99_SECONDS = 1.0


class Watcher:
    """`authz-watcher run` with an s3_sqs source; its stdout read on a thread, timestamped."""

    def __init__(self, root: Path, aws: MotoServer, queue_url: str) -> None:
        root.mkdir(parents=True)
        config = root / "config.yaml"
        config.write_text(
            f"state_dir: {root / 'state'}\n"
            f"sources:\n  - type: s3_sqs\n    queue_url: {queue_url}\n    workers: 8\n"
            "decode:\n  enabled: false\nsinks:\n  - type: stdout\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(ISOLATED_AWS_ENV)
        env.update(aws.env())
        self.stderr = (root / "stderr.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "-c", str(config)],
            stdout=subprocess.PIPE, stderr=self.stderr, env=env, cwd=ROOT,
        )  # fmt: skip
        self.arrivals: list[tuple[float, str]] = []  # (monotonic, event_id)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._stderr_path = root / "stderr.log"

    def wait_started(self) -> Watcher:
        wait_until(lambda: "daemon_started" in self._stderr_path.read_text(), "the start")
        return self

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.arrivals.append((time.monotonic(), json.loads(line)["event_id"]))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self._reader.join(timeout=60)
        self.stderr.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_until(condition, what: str, deadline: float = DEADLINE_SECONDS) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.01)  # polling interval of the check


def make_objects(count: int, records: int) -> list[tuple[str, bytes]]:
    objects, number = [], 0
    for n in range(count):
        batch = []
        for _ in range(records):
            batch.append(trail_record(number, denial=number % DENIAL_EVERY == 0))
            number += 1
        objects.append((trail_key(f"bench{n:06d}"), trail_object(batch)))
    return objects


def scan_rate(objects: list[tuple[str, bytes]], denials: int, tmp: Path) -> tuple[float, float]:
    """scan's denials/s and CPU seconds."""
    for key, body in objects:
        path = tmp / "local" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    command = [sys.executable, "-m", "watcher", "scan", "--no-decode", str(tmp / "local")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | ISOLATED_AWS_ENV
    started, cpu_before = time.perf_counter(), children_cpu_seconds()
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    seconds = time.perf_counter() - started
    assert denials == out.count("\n"), (denials, out.count("\n"))
    return denials / seconds, children_cpu_seconds() - cpu_before


def queue_rate(
    aws: MotoServer, objects: list[tuple[str, bytes]], denials: int, tmp: Path, watchers: int
) -> tuple[float, list[int], float, float]:
    """Objects put (notifications queued) first, then the watchers started together;
    denials/s from their start (process start-up included) to the last event, how many each
    emitted, the watchers' CPU seconds and moto's."""
    aws.reset()
    queue = TrailQueue(aws)
    for key, body in objects:
        queue.put(key, body)
    assert aws.pid is not None
    started, moto_before = time.monotonic(), cpu_seconds(aws.pid)
    running = [Watcher(tmp / f"w{watchers}-{n}", aws, queue.url) for n in range(watchers)]
    for watcher in running:
        watcher.wait_started()
    total = lambda: sum(len(w.arrivals) for w in running)  # noqa: E731
    wait_until(lambda: total() >= denials, f"{denials} denials")
    last = max(w.arrivals[-1][0] for w in running if w.arrivals)
    watchers_cpu = sum(cpu_seconds(w.proc.pid) for w in running)
    moto_cpu = cpu_seconds(aws.pid) - moto_before
    for watcher in running:
        watcher.stop()
    ids = [event_id for w in running for _, event_id in w.arrivals]
    assert len(set(ids)) == denials, "every denial"  # twice only if the queue gave it twice
    return len(ids) / (last - started), [len(w.arrivals) for w in running], watchers_cpu, moto_cpu


def latencies(aws: MotoServer, tmp: Path, count: int) -> tuple[list[float], list[float]]:
    """(EventBridge path, S3 path): seconds from SendMessage / PutObject to the event."""
    aws.reset()
    queue = TrailQueue(aws)
    watcher = Watcher(tmp / "latency", aws, queue.url).wait_started()
    eventbridge, s3 = [], []
    for n in range(count):
        record = trail_record(5_000_000 + n)
        sent = time.monotonic()
        queue.send(api_call_event(record))
        wait_until(lambda n=n: len(watcher.arrivals) > 2 * n, "the EventBridge event", 30)
        eventbridge.append(watcher.arrivals[-1][0] - sent)
        sent = time.monotonic()
        queue.put(trail_key(f"latency{n:06d}"), trail_object([trail_record(6_000_000 + n)]))
        wait_until(lambda n=n: len(watcher.arrivals) > 2 * n + 1, "the S3 object's event", 30)
        s3.append(watcher.arrivals[-1][0] - sent)
    watcher.stop()
    return eventbridge, s3


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--latency", type=int, default=100, help="messages timed one by one")
    args = parser.parse_args()
    compile_package()
    objects = make_objects(args.objects, args.records)
    denials = -(-args.objects * args.records // DENIAL_EVERY)
    tmp = Path(tempfile.mkdtemp(prefix="authz-s3sqs-"))
    try:
        with MotoServer() as aws:
            scan, scan_cpu = scan_rate(objects, denials, tmp)
            one, _, one_cpu, one_moto_cpu = queue_rate(aws, objects, denials, tmp, 1)
            two, split, _, _ = queue_rate(aws, objects, denials, tmp, 2)
            eventbridge, s3 = latencies(aws, tmp, args.latency)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"{args.objects} objects x {args.records} records, {denials} denials, "
        f"{os.cpu_count()} CPUs (moto's server on the same machine)\n"
        f"scan --no-decode (local directory):  {scan:,.0f} denials/s\n"
        f"s3_sqs, one watcher:                 {one:,.0f} denials/s  "
        f"({one / scan:.2f} of scan; target >= {TARGET_RATIO})\n"
        f"CPU seconds: scan {scan_cpu:.2f}; one watcher {one_cpu:.2f} "
        f"(+ moto's server {one_moto_cpu:.2f} on the same cores)\n"
        f"s3_sqs, two watchers:                {two:,.0f} denials/s  "
        f"({two / one:.2f} of one watcher; split {split[0]} / {split[1]}, "
        f"{sum(split) - denials} repeated)\n"
        f"latency, EventBridge message -> event: p50 {statistics.median(eventbridge):.3f} s, "
        f"p99 {percentile(eventbridge, 0.99):.3f} s (target <= {TARGET_P99_SECONDS} s)\n"
        f"latency, PutObject -> event (S3 notification): p50 {statistics.median(s3):.3f} s, "
        f"p99 {percentile(s3, 0.99):.3f} s (on AWS add CloudTrail's ~5 min delivery)"
    )
    return 0 if percentile(eventbridge, 0.99) <= TARGET_P99_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
