"""Memory of the daemon following 1,000 files (decoding enabled, as in production).

Creates 1,000 log files with one denial each, starts `authz-watcher run` over them, waits for
all 1,000 events, then reads the daemon's resident set size (VmRSS). Target: <= 100 MB.

    python benchmarks/tail_rss.py [--files 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _daemon import RunningDaemon

TARGET_MB = 100.0
DENIAL = "User: arn:aws:iam::111122223333:user/bench is not authorized to perform: s3:GetObject"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="authz-rss-") as tmp:
        root = Path(tmp)
        logs = root / "logs"
        logs.mkdir()
        for i in range(args.files):
            (logs / f"app-{i:04d}.log").write_text(f"noise\n{DENIAL} file {i}\n")
        daemon = RunningDaemon(root, [str(logs / "*.log")], decode=True)
        try:
            daemon.wait_for(lambda: daemon.count() >= args.files, 120)
            rss_mb = daemon.rss_kib() / 1024
            open_fds = len(list(Path(f"/proc/{daemon.proc.pid}/fd").iterdir()))
        finally:
            daemon.stop()
    print(
        f"{args.files} followed files, {daemon.count()} events, {open_fds} open descriptors\n"
        f"daemon RSS: {rss_mb:.1f} MB (target <= {TARGET_MB:g} MB)"
    )
    return 0 if rss_mb <= TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
