"""Sustained ingest of an appended log: the daemon against `tail -F | grep -F --line-buffered`.

Both follow the same file, in the same run, while a writer appends a generated log (realistic
noise, one denial per 20,000 lines) as fast as it can. For each consumer the throughput is the
bytes appended divided by the time from the first append to its last denial. Target: the
daemon at least as fast as the pipeline.

    python benchmarks/tail_throughput.py [--size-mib 512]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _daemon import RunningDaemon
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    args = parser.parse_args()
    block, denials_per_block = make_block()
    blocks = max(1, args.size_mib * 1024 * 1024 // len(block))
    expected = blocks * denials_per_block
    with tempfile.TemporaryDirectory(prefix="authz-throughput-") as tmp:
        root = Path(tmp)
        logs = root / "logs"
        logs.mkdir()
        log = logs / "app.log"
        log.touch()
        daemon = RunningDaemon(root, [str(logs / "*.log")])
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
            time.sleep(0.5)  # let tail open the file; both consumers then start from byte 0
            started = time.monotonic()
            with log.open("ab") as handle:
                for _ in range(blocks):
                    for offset in range(0, len(block), 1 << 20):
                        handle.write(block[offset : offset + (1 << 20)])
                        handle.flush()
            written = time.monotonic()
            daemon.wait_for(lambda: daemon.count() >= expected and counter.count >= expected, 300)
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
    print(
        f"appended {total_mib:.0f} MiB in {written - started:.2f} s, {expected} denials\n"
        f"daemon:                 {daemon_seconds:.2f} s to its last event, "
        f"{daemon_rate:.0f} MiB/s\n"
        f"tail -F | grep -F:      {pipeline_seconds:.2f} s to its last line, "
        f"{pipeline_rate:.0f} MiB/s\n"
        f"daemon/pipeline throughput: {daemon_rate / pipeline_rate:.2f} (target >= 1)"
    )
    return 0 if daemon_rate >= pipeline_rate else 1


if __name__ == "__main__":
    sys.exit(main())
