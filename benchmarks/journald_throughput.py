"""journald source throughput in entries/s, against `journalctl --output=json` alone.

Writes a journal of ENTRIES entries (PERCENT of them denials, the rest ordinary service lines)
with systemd-journal-remote, then times, interleaved: the reference, journalctl printing the
same JSON the source reads (what any journald reader pays), and `authz-watcher run` with a
journald source (start_at: beginning) and a file sink, from its start until the state database
holds the last entry's cursor (every event written and committed). Median of RUNS runs each.

    python benchmarks/journald_throughput.py [--entries 100000] [--percent 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.journal import Entry, Journal, denial, why_journal_cannot_be_written  # noqa: E402
from watcher.config import JournaldSource  # noqa: E402
from watcher.sources.journald import journalctl_command, source_key  # noqa: E402

DEADLINE_SECONDS = 600.0


def write_journal(directory: Path, entries: int, percent: int) -> tuple[JournaldSource, str]:
    """The journal and its last entry's cursor."""
    every = max(1, round(100 / percent)) if percent else entries + 1
    journal = Journal(directory)
    journal.append(
        *(
            Entry(denial(f"user{n}") if n % every == 0 else f"GET /health 200 request {n}")
            for n in range(entries)
        )
    )
    source = JournaldSource(directory=str(directory), start_at="beginning")
    last = subprocess.run(
        [*journalctl_command(source, None, follow=False), "--lines=1"],
        capture_output=True,
        check=True,
    ).stdout
    return source, json.loads(last)["__CURSOR"]


def time_reference(source: JournaldSource) -> float:
    started = time.perf_counter()
    subprocess.run(
        journalctl_command(source, None, follow=False), stdout=subprocess.DEVNULL, check=True
    )
    return time.perf_counter() - started


def time_daemon(root: Path, source: JournaldSource, last_cursor: str) -> float:
    state = root / "state"
    config = root / "config.yaml"
    config.write_text(
        f"state_dir: {state}\nsources:\n  - type: journald\n    directory: {source.directory}\n"
        "    start_at: beginning\ndecode:\n  enabled: false\n"
        f"sinks:\n  - type: file\n    path: {root / 'events.jsonl'}\n"
    )
    started = time.perf_counter()
    with open(root / "stderr.log", "ab") as stderr:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=ROOT,
        )
    try:
        while committed(state, source_key(source)) != last_cursor:
            if time.perf_counter() - started > DEADLINE_SECONDS or daemon.poll() is not None:
                raise SystemExit(f"the daemon did not commit the last entry; see {root}")
            time.sleep(0.01)  # polling the state database, not a synchronisation guess
        return time.perf_counter() - started
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)


def committed(state: Path, key: str) -> str | None:
    database = state / "state.sqlite3"
    if not database.exists():
        return None
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            row = connection.execute(
                "SELECT cursor FROM journal_cursors WHERE source_key = ?", (key,)
            ).fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--percent", type=int, default=10, help="denials, in percent")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    reason = why_journal_cannot_be_written()
    if reason:
        raise SystemExit(reason)
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        source, last = write_journal(root / "journal", args.entries, args.percent)
        reference, daemon = [], []
        for run in range(args.runs):
            reference.append(time_reference(source))
            run_root = root / f"run{run}"
            run_root.mkdir()
            daemon.append(time_daemon(run_root, source, last))
            os.sync()
    ref_rate = args.entries / statistics.median(reference)
    our_rate = args.entries / statistics.median(daemon)
    print(f"{args.entries:,} entries, {args.percent}% denials, median of {args.runs} runs")
    print(f"  journalctl --output=json alone: {ref_rate:12,.0f} entries/s")
    print(f"  authz-watcher run (committed):  {our_rate:12,.0f} entries/s")
    print(f"  ratio: {our_rate / ref_rate:.2f} of journalctl's own rate")


if __name__ == "__main__":
    main()
