"""Scan throughput against `grep -F -c` on the same 1 GiB log, measured in the same run.

Writes a log of realistic noise lines with sparse denials (and a few decoy lines that contain
the word "authorized" but are not denials), then times, interleaved, `grep -F -c 'Encoded
authorization failure message'` and `authz-watcher scan --no-decode` over it. Prints each run,
the medians and their ratio, and checks that both found the same number of denials.

    python benchmarks/scan_throughput.py [--size-mib 1024] [--runs 5] [--keep] [--cri]

With ``--cri`` every line is framed as a Kubernetes CRI runtime writes it, and one in
``--cri-partial-every`` (1,000) is split into a ``P`` and an ``F`` line: each partial costs a
few microseconds of Python, so the ratio grows with their density.
"""

from __future__ import annotations

import argparse
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

PREFIX = "Encoded authorization failure message: "
TARGET_RATIO = 2.0
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
DENIAL_EVERY_LINES = 20_000
DECOY_EVERY_LINES = 2000
BLOCK_BYTES = 8 * 1024 * 1024


def noise_line(rng: random.Random, n: int) -> str:
    kind = rng.randrange(4)
    ts = f"2026-11-28T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z"
    if kind == 0:
        return (
            f'{ts} INFO 10.0.{rng.randrange(256)}.{rng.randrange(256)} - - "GET /api/v1/items/'
            f'{rng.randrange(10**6)}?page={rng.randrange(50)} HTTP/1.1" 200 {rng.randrange(9999)} '
            f'"-" "Mozilla/5.0 (X11; Linux x86_64)" rt={rng.random():.3f}'
        )
    if kind == 1:
        return (
            f'{ts} DEBUG worker-{rng.randrange(16)} {{"job_id":"{rng.getrandbits(64):016x}",'
            f'"queue":"default","attempt":{rng.randrange(5)},"duration_ms":{rng.randrange(5000)}}}'
        )
    if kind == 2:
        return f"{ts} WARN cache miss for key user:{rng.randrange(10**7)} (shard {n % 32})"
    return (
        f"{ts} INFO reconcile finished for namespace team-{rng.randrange(40)} "
        f"in {rng.randrange(900)}ms, {rng.randrange(30)} objects updated"
    )


def denial_line(rng: random.Random) -> str:
    blob = "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(400, 1200)))
    return (
        f"2026-11-28T10:00:00Z ERROR An error occurred (UnauthorizedOperation) when calling the "
        f"RunInstances operation: You are not authorized to perform this operation. {PREFIX}{blob}"
    )


def cri_framed(line: str, n: int, partial_every: int) -> str:
    """The line as a Kubernetes CRI runtime writes it; one in ``partial_every`` is split into
    a P and an F line (runtimes split lines over 16 KiB: rare in most logs)."""
    time_ = f"2026-11-28T10:00:{n % 60:02d}.{n % 1_000_000:06d}000Z"
    stream = "stderr" if n % 7 == 0 else "stdout"
    if n % partial_every == 0 and len(line) > 40:
        return f"{time_} {stream} P {line[:40]}\n{time_} {stream} F {line[40:]}"
    return f"{time_} {stream} F {line}"


def write_log(
    path: Path, size_bytes: int, denial_every: int, seed: int = 7, *, cri_partial_every: int = 0
) -> None:
    """The log; with ``cri_partial_every`` > 0 every line in CRI framing."""
    rng = random.Random(seed)
    lines: list[str] = []
    written = 0
    n = 0
    while written < BLOCK_BYTES:
        n += 1
        if n % denial_every == 0:
            line = denial_line(rng)
        elif n % DECOY_EVERY_LINES == 0:
            line = (
                f"2026-11-28T10:00:01Z INFO request {n} authorized for tenant {rng.randrange(99)}"
            )
        else:
            line = noise_line(rng, n)
        if cri_partial_every:
            line = cri_framed(line, n, cri_partial_every)
        lines.append(line)
        written += len(line) + 1
    block = ("\n".join(lines) + "\n").encode()
    with path.open("wb") as handle:
        total = 0
        while total < size_bytes:
            handle.write(block)
            total += len(block)


def timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):  # grep -c exits 1 when it counts 0
        sys.exit(f"{command[0]} failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the generated log")
    parser.add_argument(
        "--denial-every",
        type=int,
        default=DENIAL_EVERY_LINES,
        help="one denial line per this many lines (default %(default)s)",
    )
    parser.add_argument(
        "--cri",
        action="store_true",
        help="write the log as a container runtime does (CRI framing, some P+F partials)",
    )
    parser.add_argument(
        "--cri-partial-every",
        type=int,
        default=1000,
        help="with --cri, one line in this many is split into P+F (default %(default)s)",
    )
    args = parser.parse_args()

    grep = shutil.which("grep")
    if grep is None:
        sys.exit("grep not found")
    compile_package()
    workdir = Path(tempfile.mkdtemp(prefix="authz-bench-"))
    log = workdir / "app.log"
    try:
        print(
            f"writing {args.size_mib} MiB log to {log}: one denial per {args.denial_every} lines, "
            f"one decoy ('... authorized ...', not a denial) per {DECOY_EVERY_LINES} lines",
            flush=True,
        )
        partial_every = args.cri_partial_every if args.cri else 0
        write_log(
            log, args.size_mib * 1024 * 1024, args.denial_every, cri_partial_every=partial_every
        )
        size = log.stat().st_size
        grep_cmd = [grep, "-F", "-c", PREFIX.rstrip(": "), str(log)]
        scan_cmd = [
            sys.executable,
            "-c",
            "import sys; from watcher.cli import main; sys.exit(main(sys.argv[1:]))",
            "scan",
            "--no-decode",
            str(log),
        ]
        timed(grep_cmd)  # warm the page cache so both read from memory
        grep_times, scan_times = [], []
        grep_count = scan_count = -1
        for run in range(1, args.runs + 1):
            g, out = timed(grep_cmd)
            grep_count = int(out.strip())
            s, out = timed(scan_cmd)
            scan_count = out.count("\n")
            grep_times.append(g)
            scan_times.append(s)
            print(f"run {run}: grep {g:.3f}s  scan {s:.3f}s  ratio {s / g:.2f}", flush=True)
        grep_median = statistics.median(grep_times)
        scan_median = statistics.median(scan_times)
        ratio = scan_median / grep_median
        print(
            f"\nfile: {size / 2**20:.0f} MiB, denials: grep {grep_count}, scan {scan_count}\n"
            f"median: grep {grep_median:.3f}s ({size / 2**20 / grep_median:.0f} MiB/s), "
            f"scan {scan_median:.3f}s ({size / 2**20 / scan_median:.0f} MiB/s)\n"
            f"scan/grep ratio: {ratio:.2f} (target <= {TARGET_RATIO})"
        )
        if grep_count != scan_count:
            print("FAIL: counts differ")
            return 1
        return 0 if ratio <= TARGET_RATIO else 1
    finally:
        if args.keep:
            print(f"kept {log}")
        else:
            shutil.rmtree(workdir)


if __name__ == "__main__":
    sys.exit(main())
