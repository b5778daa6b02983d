"""An application writing its log, for the follow tests: a real process at a steady pace.

Each line is one unique denial (principal ``user/<prefix><N>``), written with a single
``write`` on an ``O_APPEND`` descriptor. On SIGUSR1 (a logrotate ``postrotate``, a container
runtime's reopen) it reopens its path, after ``--reopen-delay`` seconds of still writing to the
old file (a graceful reload); without SIGUSR1 it keeps its descriptor (``copytruncate``). At
exit it writes its ledger, a JSON object: line number -> ``time.monotonic()`` after its write.

    python -m tests.app_writer PATH --count 3000 --rate 450 --ledger FILE [--prefix u] [--cri]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime
from types import FrameType

OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


def denial_line(prefix: str, number: int, *, cri: bool) -> bytes:
    """One unique denial, in CRI framing (as a container runtime writes it) when asked."""
    message = (
        f"request failed: User: arn:aws:iam::111122223333:user/{prefix}{number} is not "
        f"authorized to perform: s3:GetObject on resource: arn:aws:s3:::bucket/key-{number}"
    )
    if cri:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"{stamp} stdout F {message}\n".encode()
    return f"{datetime.now(UTC).isoformat()} ERROR {message}\n".encode()


class Writer:
    """Writes lines to ``path``; reopens it ``reopen_delay_seconds`` after a SIGUSR1."""

    def __init__(self, path: str, reopen_delay_seconds: float) -> None:
        self.path = path
        self.reopen_delay_seconds = reopen_delay_seconds
        self.reopen_at: float | None = None
        signal.signal(signal.SIGUSR1, self._reopen_requested)  # before the file exists
        self.fd = os.open(path, OPEN_FLAGS, 0o644)

    def _reopen_requested(self, _signum: int, _frame: FrameType | None) -> None:
        if self.reopen_at is None:
            self.reopen_at = time.monotonic() + self.reopen_delay_seconds

    def write(self, line: bytes) -> None:
        if self.reopen_at is not None and time.monotonic() >= self.reopen_at:
            self.reopen_at = None
            os.close(self.fd)
            self.fd = os.open(self.path, OPEN_FLAGS, 0o644)
        os.write(self.fd, line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="lines per second")
    parser.add_argument("--prefix", default="u")
    parser.add_argument("--cri", action="store_true")
    parser.add_argument("--reopen-delay", type=float, default=0.0)
    parser.add_argument("--ledger", required=True, help="where to write the ledger at exit")
    args = parser.parse_args()
    writer = Writer(args.path, args.reopen_delay)
    written: dict[int, float] = {}
    started = time.monotonic()
    for number in range(args.count):
        due = started + number / args.rate
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)  # the application's pace
        writer.write(denial_line(args.prefix, number, cri=args.cri))
        written[number] = time.monotonic()
    # A reopen asked for as we finish is moot. Ignored, not handled: at exit the interpreter
    # puts a handled signal back to its default action (SIGUSR1's ends the process, exit -10).
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    os.close(writer.fd)
    with open(args.ledger, "w", encoding="utf-8") as ledger:
        json.dump(written, ledger)
    return 0


if __name__ == "__main__":
    sys.exit(main())
