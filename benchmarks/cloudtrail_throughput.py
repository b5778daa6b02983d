"""CloudTrail throughput in records/s, against `zcat FILES | jq -c '.Records[] | select(...)'`.

Generates an S3-style export of >= 200,000 records in `.json.gz` files (about 3% denials, plus
throttling and not-found errors that are not denials) from the corpus' real records, then times,
interleaved, the jq pipeline and `authz-watcher scan --no-decode` over the same files, and
reports records per second for each (median of several runs). Target: at least 2x jq's.

    python benchmarks/cloudtrail_throughput.py [--records 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bytecode import compile_package

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "cloudtrail"
RECORDS_PER_FILE = 2000
TARGET_RATIO = 2.0


def write_export(root: Path, total: int, seed: int = 5) -> tuple[int, int]:
    """Files of RECORDS_PER_FILE records drawn from the real trail; returns (records, errors)."""
    records = []
    for path in sorted(CORPUS.glob("*.json")):
        records.extend(json.loads(path.read_text())["Records"])
    denials = [
        r for r in records if r.get("errorCode") in ("AccessDenied", "Client.UnauthorizedOperation")
    ]
    others = [r for r in records if r not in denials]
    rng = random.Random(seed)
    day = root / "AWSLogs" / "123837392027" / "CloudTrail" / "us-east-1" / "2023" / "07" / "10"
    day.mkdir(parents=True)
    written = errors = 0
    file_number = 0
    while written < total:
        batch = []
        for _ in range(min(RECORDS_PER_FILE, total - written)):
            record = dict(rng.choice(denials) if rng.random() < 0.03 else rng.choice(others))
            record["eventID"] = f"{rng.getrandbits(128):032x}"
            errors += "errorCode" in record
            batch.append(record)
        written += len(batch)
        name = f"123837392027_CloudTrail_us-east-1_20230710T1200Z_{file_number:06d}.json.gz"
        (day / name).write_bytes(gzip.compress(json.dumps({"Records": batch}).encode(), 6))
        file_number += 1
    return written, errors


def timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{command[0]} failed: {proc.stderr[-500:]}")
    return time.perf_counter() - started, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for tool in ("zcat", "jq"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (apt-get install {'gzip' if tool == 'zcat' else tool})")
    compile_package()
    with tempfile.TemporaryDirectory(prefix="authz-ct-") as tmp:
        root = Path(tmp)
        total, errors = write_export(root, args.records)
        files = sorted(str(p) for p in root.rglob("*.json.gz"))
        jq_times, scan_times = [], []
        jq_count = scan_count = 0
        for _ in range(args.runs):
            started = time.perf_counter()
            cat = subprocess.Popen(["zcat", *files], stdout=subprocess.PIPE)
            jq = subprocess.run(
                ["jq", "-c", ".Records[] | select(.errorCode)"],
                stdin=cat.stdout, capture_output=True, text=True, check=True,
            )  # fmt: skip
            cat.wait()
            jq_times.append(time.perf_counter() - started)
            jq_count = jq.stdout.count("\n")
            seconds, out = timed(
                [sys.executable, "-m", "watcher", "scan", "--no-decode", str(root / "AWSLogs")]
            )
            scan_times.append(seconds)
            scan_count = out.count("\n")
    jq_rate = total / statistics.median(jq_times)
    scan_rate = total / statistics.median(scan_times)
    print(
        f"{total} records in {len(files)} .json.gz files; {errors} with an errorCode\n"
        f"zcat | jq (every errorCode):  median {statistics.median(jq_times):.2f} s, "
        f"{jq_rate:,.0f} records/s, {jq_count} records out\n"
        f"scan --no-decode (denials):   median {statistics.median(scan_times):.2f} s, "
        f"{scan_rate:,.0f} records/s, {scan_count} denials out\n"
        f"scan/jq throughput: {scan_rate / jq_rate:.1f}x (target >= {TARGET_RATIO:g}x)"
    )
    return 0 if scan_rate >= TARGET_RATIO * jq_rate else 1


if __name__ == "__main__":
    sys.exit(main())
