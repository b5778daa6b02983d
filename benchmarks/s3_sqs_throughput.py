"""s3_sqs throughput and latency against moto's server, with `scan` of the same objects as the
reference measured in the same run.

1. Writes OBJECTS CloudTrail objects (.json.gz, RECORDS records each, ~10% denials) to a local
   directory and times `authz-watcher scan --no-decode` over it: denials/s from its first event
   out to its last (the reference).
2. Puts the same objects in a bucket (moto's server, one process) and starts one
   `authz-watcher run` with an s3_sqs source; denials/s from its first event out to its last
   (start-up, reported apart, is a daemon's once-a-life cost), and the ratio to scan's (issue
   #13's target: >= 0.7). Two ways the notifications reach the queue:
   - steady: the benchmark sends them as the watcher drains the queue, keeping at most
     STEADY_DEPTH waiting, as a trail's queue looks while watchers keep up. The target is
     judged here: moto's ReceiveMessage looks at every message in the queue for each message
     it returns (it recomputes the queue's attributes), so its CPU grows with the square of
     the depth, which SQS's does not;
   - backlog: S3 notified the queue of every object before the watcher starts (a watcher
     coming back after an outage). On moto this measures moto more than the watcher.
3. The same with two watchers sharing the queue: denials/s, and the ratio to one watcher's.
   Steps 1-3 run ``--rounds`` times in turn (this machine's speed drifts by tens of percent
   within minutes: scan alone ran 2,900-7,900 denials/s), and the ratios are the median of the
   rounds' own ratios. In each round scan runs again right after the one-watcher run, and the
   watcher is compared with the geometric mean of the two scans around it.
4. Latency, EventBridge path: one 'AWS API Call via CloudTrail' message at a time, from
   SendMessage to its event on the watcher's stdout (p50, p99; issue #16's target: p99 <= 1 s);
   and the S3 path: from PutObject (one object) to its events.

    python benchmarks/s3_sqs_throughput.py [--objects 200] [--records 500] [--rounds 3]
        [--latency 100] [--workers 16] [--processes N]

Everything runs on this machine: moto's server (Python, single process) serves S3 and SQS to
the watchers while they run; read the figures as ratios, not as what AWS would give.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bytecode import compile_package

from tests.conftest import ISOLATED_AWS_ENV
from tests.moto_server import MotoServer
from tests.trail_queue import (
    BUCKET,
    TrailQueue,
    api_call_event,
    notification,
    trail_key,
    trail_object,
    trail_record,
)

ROOT = Path(__file__).resolve().parent.parent
DEADLINE_SECONDS = 600.0
DENIAL_EVERY = 10  # one record in ten is a denial
TARGET_RATIO = 0.7
TARGET_P99_SECONDS = 1.0
STEADY_DEPTH = 20  # notifications waiting in the queue at most, in the steady run
SQS_BATCH_MAX = 10
SOURCE_OPTIONS = {"workers": 16}  # the s3_sqs source's settings (--workers, --processes)


class Timed:
    """A process whose stdout events are read on a thread and timestamped as they arrive."""

    def __init__(self, command: list[str], env: dict[str, str], stderr_path: Path) -> None:
        self.started = time.monotonic()
        self.stderr = stderr_path.open("wb")
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self.stderr, env=env, cwd=ROOT
        )
        self.arrivals: list[float] = []  # monotonic time each event's line arrived
        self._output: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._stderr_path = stderr_path

    def _read(self) -> None:
        """Timestamps what arrives and keeps the bytes: the events are parsed afterwards, so
        that the harness takes as little as it can of the CPU the processes measured share."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while chunk := os.read(fd, 1 << 20):
            arrived = time.monotonic()
            self._output.append(chunk)
            self.arrivals.extend([arrived] * chunk.count(b"\n"))

    def event_ids(self) -> list[str]:
        lines = b"".join(self._output).splitlines()
        return [json.loads(line)["event_id"] for line in lines[: len(self.arrivals)]]


class Watcher(Timed):
    """`authz-watcher run` with an s3_sqs source."""

    def __init__(self, root: Path, aws: MotoServer, queue_url: str) -> None:
        root.mkdir(parents=True)
        config = root / "config.yaml"
        options = "".join(f"    {key}: {value}\n" for key, value in SOURCE_OPTIONS.items())
        config.write_text(
            f"state_dir: {root / 'state'}\n"
            f"sources:\n  - type: s3_sqs\n    queue_url: {queue_url}\n{options}"
            "decode:\n  enabled: false\nsinks:\n  - type: stdout\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(ISOLATED_AWS_ENV)
        env.update(aws.env())
        command = [sys.executable, "-m", "watcher", "run", "-c", str(config)]
        super().__init__(command, env, root / "stderr.log")

    def wait_started(self) -> Watcher:
        wait_until(lambda: "daemon_started" in self._stderr_path.read_text(), "the start")
        return self

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


@dataclass
class Run:
    rate: float  # denials/s from the first event out to the last
    startup: float  # seconds from the process start to its first event
    split: list[int]  # events each process emitted
    cpu: float  # CPU seconds of the processes timed
    moto_cpu: float = 0.0
    moto_busy: float = 0.0  # moto's CPU seconds per second while the watchers ran


def measured(processes: list[Timed], denials: int) -> Run:
    """Wait for every denial; the rate (events out, repeats included) from the first event to
    the last. A repeat comes from moto: its ReceiveMessage takes no lock, so two watchers'
    receives at the same moment can both be given one message (AWS's SQS also delivers a
    message more than once, rarely); the events carry the same event_id."""
    total = lambda: sum(len(p.arrivals) for p in processes)  # noqa: E731
    unique = lambda: len({event_id for p in processes for event_id in p.event_ids()})  # noqa: E731
    wait_until(lambda: total() >= denials and unique() == denials, f"{denials} denials")
    first = min(p.arrivals[0] for p in processes if p.arrivals)
    last = max(p.arrivals[-1] for p in processes if p.arrivals)
    started = min(p.started for p in processes)
    ids = [event_id for p in processes for event_id in p.event_ids()]
    cpu = sum(cpu_seconds(p.proc.pid) for p in processes if p.proc.poll() is None)
    return Run(
        (len(ids) - 1) / (last - first), first - started, [len(p.arrivals) for p in processes], cpu
    )


@dataclass
class Round:
    scan: Run
    one: Run  # one watcher, steady
    scan_after: Run
    beside: Run  # scan beside a neighbour as busy as moto's server was
    two: Run  # two watchers, steady

    @property
    def reference(self) -> float:
        """scan's rate around the watcher's run: the geometric mean of the scans before and
        after it, as the machine's speed drifts between runs."""
        return math.sqrt(self.scan.rate * self.scan_after.rate)


NEIGHBOUR = """
import json, sys, time
busy, period = float(sys.argv[1]), 0.01
sample = {"Records": [{"eventID": str(n), "eventName": "GetObject", "n": n} for n in range(20)]}
while True:
    end = time.perf_counter() + busy * period
    while time.perf_counter() < end:
        json.loads(json.dumps(sample))
    time.sleep((1 - busy) * period)  # the idle share of each period: this shapes a load
"""


class Neighbour:
    """A Python process using ``busy`` CPU seconds a second, as moto's server does beside the
    watchers: the two CPUs of this machine slow each other (a measured fact, not a guess), so
    the reference `scan` is also timed with such a neighbour."""

    def __init__(self, busy: float) -> None:
        self.busy = min(max(busy, 0.0), 1.0)
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Neighbour:
        self._proc = subprocess.Popen([sys.executable, "-c", NEIGHBOUR, str(self.busy)])
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        self._proc.kill()
        self._proc.wait(timeout=60)


def scan_rate(objects: list[tuple[str, bytes]], denials: int, tmp: Path) -> Run:
    """`scan --no-decode` of the objects in a local directory."""
    shutil.rmtree(tmp / "local", ignore_errors=True)
    for key, body in objects:
        path = tmp / "local" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    command = [sys.executable, "-m", "watcher", "scan", "--no-decode", str(tmp / "local")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | ISOLATED_AWS_ENV
    cpu_before = children_cpu_seconds()
    scan = Timed(command, env, tmp / "scan.stderr")
    run = measured([scan], denials)
    scan.proc.wait(timeout=60)
    scan.stderr.close()
    run.cpu = children_cpu_seconds() - cpu_before
    return run


def queue_rate(
    aws: MotoServer, objects: list[tuple[str, bytes]], denials: int, tmp: Path, watchers: int,
    *, steady: bool,
) -> Run:  # fmt: skip
    """The watchers started together on a queue holding every object's notification
    (backlog), or fed them as they drain it (steady)."""
    aws.reset()
    queue = TrailQueue(aws)
    for key, body in objects:
        queue.put(key, body)  # S3 notifies the queue of each object: the backlog
    queue_url = queue.url
    feeder = None
    if steady:
        queue_url = queue.sqs.create_queue(QueueName="fed")["QueueUrl"]
        feeder = Feeder(queue, queue_url, objects, denials // len(objects))
        feeder.send_while_shallow(lambda: 0)
    assert aws.pid is not None
    moto_before = cpu_seconds(aws.pid)
    moto_since = time.monotonic()
    running = [Watcher(tmp / f"w{watchers}-{n}-{steady}", aws, queue_url) for n in range(watchers)]
    if feeder is not None:
        feeder.start(lambda: sum(len(w.arrivals) for w in running))
    run = measured(running, denials)
    run.moto_cpu = cpu_seconds(aws.pid) - moto_before
    run.moto_busy = run.moto_cpu / (time.monotonic() - moto_since)
    for watcher in running:
        watcher.stop()
    if feeder is not None:
        feeder.join()
    return run


class Feeder:
    """Sends the objects' S3 notifications to a queue, SQS_BATCH_MAX a call, keeping at most
    STEADY_DEPTH waiting (objects sent minus objects whose denials are all out)."""

    def __init__(
        self, queue: TrailQueue, url: str, objects: list[tuple[str, bytes]], per_object: int
    ) -> None:
        self._sqs = queue.sqs
        self._url = url
        self._bodies = [
            json.dumps(
                notification(BUCKET, key, hashlib.md5(body, usedforsecurity=False).hexdigest())
            )
            for key, body in objects
        ]
        self._per_object = per_object
        self._sent = 0
        self._thread: threading.Thread | None = None

    def send_while_shallow(self, events_out: Callable[[], int]) -> None:
        while self._sent < len(self._bodies):
            if self._sent - events_out() // self._per_object > STEADY_DEPTH - SQS_BATCH_MAX:
                return
            batch = self._bodies[self._sent : self._sent + SQS_BATCH_MAX]
            entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(batch)]
            self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
            self._sent += len(batch)

    def start(self, events_out: Callable[[], int]) -> None:
        def feed() -> None:
            while self._sent < len(self._bodies):
                self.send_while_shallow(events_out)
                time.sleep(0.005)  # polling interval of the watchers' progress

        self._thread = threading.Thread(target=feed, daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=60)


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
        eventbridge.append(watcher.arrivals[-1] - sent)
        sent = time.monotonic()
        queue.put(trail_key(f"latency{n:06d}"), trail_object([trail_record(6_000_000 + n)]))
        wait_until(lambda n=n: len(watcher.arrivals) > 2 * n + 1, "the S3 object's event", 30)
        s3.append(watcher.arrivals[-1] - sent)
    watcher.stop()
    return eventbridge, s3


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument(
        "--rounds", type=int, default=3, help="scan / one / two watchers, interleaved"
    )
    parser.add_argument("--latency", type=int, default=100, help="messages timed one by one")
    parser.add_argument("--workers", type=int, default=16, help="the s3_sqs source's workers")
    parser.add_argument(
        "--processes", type=int, default=None, help="its processes (default: the config's)"
    )
    args = parser.parse_args()
    SOURCE_OPTIONS["workers"] = args.workers
    if args.processes is not None:
        SOURCE_OPTIONS["processes"] = args.processes
    compile_package()
    objects = make_objects(args.objects, args.records)
    denials = -(-args.objects * args.records // DENIAL_EVERY)
    tmp = Path(tempfile.mkdtemp(prefix="authz-s3sqs-"))
    rounds: list[Round] = []
    try:
        with MotoServer() as aws:
            for number in range(args.rounds):
                here = tmp / f"round{number}"
                here.mkdir()
                scan = scan_rate(objects, denials, here)
                steady = queue_rate(aws, objects, denials, here, 1, steady=True)
                scan_after = scan_rate(objects, denials, here)
                with Neighbour(steady.moto_busy):
                    scan_beside = scan_rate(objects, denials, here)
                two = queue_rate(aws, objects, denials, here, 2, steady=True)
                rounds.append(Round(scan, steady, scan_after, scan_beside, two))
            backlog = queue_rate(aws, objects, denials, tmp, 1, steady=False)
            eventbridge, s3 = latencies(aws, tmp, args.latency)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"{args.objects} objects x {args.records} records, {denials} denials, "
        f"{os.cpu_count()} CPUs (moto's server on the same machine); s3_sqs with "
        f"{', '.join(f'{k}: {v}' for k, v in SOURCE_OPTIONS.items())}; rates from the first "
        f"event out to the last; {args.rounds} rounds of scan, one watcher, scan again and two "
        "watchers (steady), one after the other, so that each ratio compares runs minutes apart"
        " at most"
    )
    for number, r in enumerate(rounds, 1):
        print(
            f"round {number}: scan {r.scan.rate:7,.0f} denials/s before the watcher and "
            f"{r.scan_after.rate:7,.0f} after it (CPU s {r.scan.cpu:.2f}, {r.scan_after.cpu:.2f});"
            f" one watcher {r.one.rate:7,.0f} ({r.one.rate / r.reference:.2f} of scan around it;"
            f" CPU s {r.one.cpu:.2f}, moto's {r.one.moto_cpu:.2f}, {r.one.moto_busy:.2f} of a "
            f"CPU); scan beside a neighbour as busy {r.beside.rate:7,.0f} "
            f"({r.beside.rate / r.reference:.2f} of scan alone; one watcher "
            f"{r.one.rate / r.beside.rate:.2f} of it); two watchers {r.two.rate:7,.0f} "
            f"({r.two.rate / r.one.rate:.2f} of one; split {r.two.split[0]} / "
            f"{r.two.split[1]}, {sum(r.two.split) - denials} repeated)"
        )
    one_to_scan = statistics.median(r.one.rate / r.reference for r in rounds)
    one_to_beside = statistics.median(r.one.rate / r.beside.rate for r in rounds)
    beside_to_scan = statistics.median(r.beside.rate / r.reference for r in rounds)
    two_to_one = statistics.median(r.two.rate / r.one.rate for r in rounds)
    scan_median = statistics.median(r.reference for r in rounds)
    print(
        f"median of the rounds: one watcher, steady, {one_to_scan:.2f} of scan "
        f"(target >= {TARGET_RATIO}); scan beside a neighbour as busy as moto's server was "
        f"{beside_to_scan:.2f} of scan alone, and one watcher {one_to_beside:.2f} of that scan; "
        f"two watchers {two_to_one:.2f} of one\n"
        f"one watcher, backlog: {backlog.rate:7,.0f} denials/s ({backlog.rate / scan_median:.2f}"
        f" of the median scan; CPU s {backlog.cpu:.2f}, moto's {backlog.moto_cpu:.2f}); "
        f"start-up {backlog.startup:.2f} s\n"
        f"latency, EventBridge message -> event: p50 {statistics.median(eventbridge):.3f} s, "
        f"p99 {percentile(eventbridge, 0.99):.3f} s (target <= {TARGET_P99_SECONDS} s)\n"
        f"latency, PutObject -> event (S3 notification): p50 {statistics.median(s3):.3f} s, "
        f"p99 {percentile(s3, 0.99):.3f} s (on AWS add CloudTrail's ~5 min delivery)"
    )
    return 0 if percentile(eventbridge, 0.99) <= TARGET_P99_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
