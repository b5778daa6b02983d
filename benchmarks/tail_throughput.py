"""Sustained ingest of an appended log: the daemon against `tail -F | grep -F --line-buffered`.

Both follow the same file, in the same run, while a writer appends a generated log (realistic
noise, one denial per 20,000 lines) as fast as it can. Two figures per consumer:

* wall clock: bytes appended over the time from the first append to its last denial. Both
  usually keep pace with the writer, so this shows who falls behind, not top speed;
* capacity: bytes over the CPU time the consumer used (user + system, from /proc; tail and
  grep added up), i.e. how fast it would go with a core to itself.

Target: the daemon at least as fast as the pipeline (capacity ratio >= 1).

    python benchmarks/tail_throughput.py [--size-mib 512]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _daemon import follow_empty_log
from scan_throughput import DECOY_EVERY_LINES, DENIAL_EVERY_LINES, denial_line, noise_line

PATTERN = "Encoded authorization failure message"
BLOCK_BYTES = 8 * 1024 * 1024


def make_block(seed: int = 3) -> tuple[bytes, int]:
    rng = random.Random(seed)
    lines, written, n, denials = [], 0, 0, 0
    while written < BLOCK_BYTES:
        n += 1
        if n % DENIAL_EVERY_LINES == 0:
            line, denials = denial_line(rng), denials + 1
        elif n % DECOY_EVERY_LINES == 0:
            line = f"2026-11-28T10:00:01Z INFO request {n} authorized for tenant 7"
        else:
            line = noise_line(rng, n)
        lines.append(line)
        written += len(line) + 1
    return ("\n".join(lines) + "\n").encode(), denials


class LineCounter:
    """Counts lines from a stream on a thread, remembering when the last one arrived."""

    def __init__(self, stream) -> None:
        self.count = 0
        self.last_arrival = 0.0
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for _ in stream:
            self.count += 1
            self.last_arrival = time.monotonic()


def _has_open(pid: int, path: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) == str(path) for fd in fds.iterdir())
    except OSError:
        return False


def _cpu_seconds(pid: int) -> float:
    """user + system CPU time of a running process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    args = parser.parse_args()
    block, denials_per_block = make_block()
    blocks = max(1, args.size_mib * 1024 * 1024 // len(block))
    expected = blocks * denials_per_block
    with tempfile.TemporaryDirectory(prefix="authz-throughput-") as tmp:
        log, daemon = follow_empty_log(Path(tmp))
        tail = subprocess.Popen(
            ["tail", "-F", "-n", "+1", str(log)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        grep = subprocess.Popen(
            ["grep", "-F", "--line-buffered", PATTERN], stdin=tail.stdout, stdout=subprocess.PIPE
        )
        assert tail.stdout is not None
        tail.stdout.close()  # grep owns the read end now
        counter = LineCounter(grep.stdout)
        try:
            # Both consumers start from byte 0: wait until tail has the file open.
            daemon.wait_for(lambda: _has_open(tail.pid, log), 30)
            # CPU already spent (start-up, imports) is not ingest: count from here.
            daemon_cpu_before = _cpu_seconds(daemon.proc.pid)
            pipeline_cpu_before = _cpu_seconds(tail.pid) + _cpu_seconds(grep.pid)
            started = time.monotonic()
            with log.open("ab") as handle:
                for _ in range(blocks):
                    for offset in range(0, len(block), 1 << 20):
                        handle.write(block[offset : offset + (1 << 20)])
                        handle.flush()
            written = time.monotonic()
            daemon.wait_for(lambda: daemon.count() >= expected and counter.count >= expected, 300)
            daemon_cpu = _cpu_seconds(daemon.proc.pid) - daemon_cpu_before
            pipeline_cpu = _cpu_seconds(tail.pid) + _cpu_seconds(grep.pid) - pipeline_cpu_before
        finally:
            daemon.stop()
            tail.terminate()
            grep.wait(timeout=30)
            tail.wait(timeout=30)
        total_mib = blocks * len(block) / 2**20
        daemon_seconds = daemon.arrivals[-1][0] - started
        pipeline_seconds = counter.last_arrival - started
    daemon_rate = total_mib / daemon_seconds
    pipeline_rate = total_mib / pipeline_seconds
    capacity_ratio = (total_mib / daemon_cpu) / (total_mib / pipeline_cpu)
    print(
        f"appended {total_mib:.0f} MiB in {written - started:.2f} s, {expected} denials\n"
        f"wall clock: daemon {daemon_seconds:.2f} s to its last event ({daemon_rate:.0f} MiB/s), "
        f"tail|grep {pipeline_seconds:.2f} s ({pipeline_rate:.0f} MiB/s)\n"
        f"CPU used while ingesting: daemon {daemon_cpu:.2f} s "
        f"({total_mib / daemon_cpu:.0f} MiB per CPU-second), tail+grep {pipeline_cpu:.2f} s "
        f"({total_mib / pipeline_cpu:.0f} MiB per CPU-second)\n"
        f"daemon/pipeline capacity: {capacity_ratio:.2f} (target >= 1)"
    )
    return 0 if capacity_ratio >= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
