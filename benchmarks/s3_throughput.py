"""``type: s3`` throughput in records/s against ``scan`` of the same objects in a local directory.

Generates the CloudTrail export of cloudtrail_throughput.py (about 3% denials), puts every file
in a bucket of moto's S3 server (a local process, real HTTP), then, interleaved, times
``authz-watcher scan --no-decode`` over the local files and ``authz-watcher run`` with an
``s3`` source over the bucket (``start_at: beginning``, a file sink, a fresh state directory
each run: from the process start until the last denial is written). Also the source alone (the
``S3Buckets`` class listing, fetching and parsing, driven in this process with a fresh state
database: what the daemon's start-up, sinks and commits add is the difference). Reports records
per second for each (median of several runs) and their ratios. The endpoint runs on the same
machine and takes its share of the CPU, which a real S3 does not.

    python benchmarks/s3_throughput.py [--records 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _bytecode import compile_package
from cloudtrail_throughput import timed, write_export

from tests.moto_server import MotoServer
from tests.s3_trail import Driver, RecordingLog
from watcher.config import S3Source
from watcher.state import StateStore

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "bench-trail"
DEADLINE_SECONDS = 600.0


def upload(aws: MotoServer, root: Path) -> int:
    client = aws.client("s3")
    client.create_bucket(Bucket=BUCKET)
    files = sorted(root.rglob("*.json.gz"))
    for path in files:
        client.put_object(Bucket=BUCKET, Key=str(path.relative_to(root)), Body=path.read_bytes())
    return len(files)


def run_daemon(aws: MotoServer, work: Path, denials: int) -> float:
    """Seconds from starting ``run`` until ``denials`` events are in its file sink."""
    events = work / "events.jsonl"
    config = work / "config.yaml"
    config.write_text(
        f"state_dir: {work / 'state'}\n"
        f"sources:\n  - type: s3\n    bucket: {BUCKET}\n    start_at: beginning\n"
        "    poll_interval: 1\n"
        f"decode:\n  enabled: false\nsinks:\n  - type: file\n    path: {events}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(aws.env(AWS_EC2_METADATA_DISABLED="true"))
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "watcher", "run", "-c", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        while _lines(events) < denials:
            if proc.poll() is not None or time.perf_counter() - started > DEADLINE_SECONDS:
                sys.exit(f"the daemon stopped or took too long ({_lines(events)} of {denials})")
            time.sleep(0.01)  # polling interval of the check
        return time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def run_source_alone(aws: MotoServer, work: Path, denials: int) -> float:
    """Seconds for ``S3Buckets`` to hand on ``denials`` denials (no daemon, no sinks)."""
    for name, value in aws.env().items():
        os.environ[name] = value
    log = RecordingLog()
    store = StateStore(work / "state-alone", log)
    started = time.perf_counter()
    driver = Driver((S3Source(bucket=BUCKET, start_at="beginning"),), store, log)
    try:
        driver.read_until(lambda: len(driver.event_ids()) >= denials, "every denial")
        return time.perf_counter() - started
    finally:
        driver.close()
        store.close()


def _lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    compile_package()
    with tempfile.TemporaryDirectory(prefix="authz-s3-") as tmp, MotoServer() as aws:
        root = Path(tmp) / "export"
        total, _ = write_export(root, args.records)
        objects = upload(aws, root)
        scan_times, s3_times, alone_times = [], [], []
        denials = 0
        for run in range(args.runs):
            seconds, out = timed(
                [sys.executable, "-m", "watcher", "scan", "--no-decode", str(root / "AWSLogs")]
            )
            scan_times.append(seconds)
            denials = out.count("\n")
            work = Path(tmp) / f"run-{run}"
            work.mkdir()
            s3_times.append(run_daemon(aws, work, denials))
            alone_times.append(run_source_alone(aws, work, denials))
    scan_rate = total / statistics.median(scan_times)
    s3_rate = total / statistics.median(s3_times)
    alone_rate = total / statistics.median(alone_times)
    print(
        f"{total} records in {objects} objects; {denials} denials\n"
        f"scan --no-decode, local files: median {statistics.median(scan_times):.2f} s, "
        f"{scan_rate:,.0f} records/s\n"
        f"run, type: s3 (moto, local):   median {statistics.median(s3_times):.2f} s, "
        f"{s3_rate:,.0f} records/s (process start to last event)\n"
        f"S3Buckets alone (no daemon):   median {statistics.median(alone_times):.2f} s, "
        f"{alone_rate:,.0f} records/s\n"
        f"s3/scan throughput: daemon {s3_rate / scan_rate:.2f}x, source alone "
        f"{alone_rate / scan_rate:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
