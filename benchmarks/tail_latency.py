"""Append-to-event latency of the daemon: p50 and p99 over appended denials, with a rotation.

Starts `authz-watcher run` with a stdout sink, appends one denial every 10 ms to a followed
file (renaming it away and starting a new one half-way), and measures for each denial the
time from its append to its event on the daemon's stdout. Target: p99 <= 50 ms.

    python benchmarks/tail_latency.py [--denials 400]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _daemon import follow_empty_log

TARGET_P99_MS = 50.0
DENIAL = "User: arn:aws:iam::111122223333:user/bench is not authorized to perform: s3:GetObject"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--denials", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="authz-latency-") as tmp:
        log, daemon = follow_empty_log(Path(tmp))
        appended: dict[str, float] = {}
        try:
            for i in range(args.denials):
                if i == args.denials // 2:
                    log.rename(log.with_name("app.log.1"))  # rename rotation half-way
                marker = f"bench-{i:06d}"
                with log.open("a") as handle:
                    handle.write(f"{DENIAL} {marker}\n")
                appended[marker] = time.monotonic()
                time.sleep(0.01)  # the pace of the writer, not a synchronisation
            daemon.wait_for(lambda: daemon.count() >= args.denials, 60)
        finally:
            daemon.stop()
        latencies = []
        for arrived, event in daemon.arrivals:
            marker = str(event["raw"]).rsplit(" ", 1)[-1]
            latencies.append((arrived - appended[marker]) * 1000)
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"{len(latencies)} denials appended 10 ms apart, one rename rotation\n"
        f"append-to-event latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms"
        f" (target p99 <= {TARGET_P99_MS:g} ms)"
    )
    return 0 if p99 <= TARGET_P99_MS and len(latencies) == args.denials else 1


if __name__ == "__main__":
    sys.exit(main())
