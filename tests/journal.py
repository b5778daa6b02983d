"""Helpers for the journald tests: real journal files, written as systemd writes them.

Debian's ``systemd-journal-remote`` turns entries in the journal export format on its stdin
into a journal file (``--output=DIR/NAME.journal -``), appending when the file exists; this is
what ``journalctl --directory=DIR`` then reads and follows. ``Journal`` writes entries that way,
"rotates" (later entries go to a new file) and "vacuums" (deletes a file), as journald does.
"""

from __future__ import annotations

import itertools
import os
import shutil
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

JOURNAL_REMOTE = Path("/lib/systemd/systemd-journal-remote")
BOOT_ID = "0123456789abcdef0123456789abcdef"
_clock = itertools.count(time.time_ns() // 1000)  # strictly increasing microseconds


def why_journal_cannot_be_written() -> str | None:
    """Why these tests cannot run here, or None."""
    if not JOURNAL_REMOTE.exists():
        return f"{JOURNAL_REMOTE} is missing (Debian package systemd-journal-remote)"
    if shutil.which("journalctl") is None:
        return "journalctl is missing (Debian package systemd)"
    return None


def denial(user: str) -> str:
    return f"User: arn:aws:iam::111122223333:user/{user} is not authorized to perform: s3:GetObject"


@dataclass(frozen=True)
class Entry:
    """One journal entry to write; ``realtime_us`` None: now."""

    message: bytes | str
    unit: str | None = "app.service"
    identifier: str | None = "app"
    realtime_us: int | None = None
    boot_id: str = BOOT_ID


def export_format(entries: list[Entry]) -> bytes:
    """The journal export format: one ``FIELD=value`` per line, binary-safe ``FIELD\\n<le64
    size><bytes>\\n`` for MESSAGE (any bytes, newlines included), a blank line per entry."""
    out = bytearray()
    for entry in entries:
        now = next(_clock)
        realtime = entry.realtime_us if entry.realtime_us is not None else now
        out += f"__REALTIME_TIMESTAMP={realtime}\n__MONOTONIC_TIMESTAMP={now}\n".encode()
        out += f"_BOOT_ID={entry.boot_id}\n".encode()
        if entry.unit is not None:
            out += f"_SYSTEMD_UNIT={entry.unit}\n".encode()
        if entry.identifier is not None:
            out += f"SYSLOG_IDENTIFIER={entry.identifier}\n".encode()
        message = entry.message.encode() if isinstance(entry.message, str) else entry.message
        out += b"MESSAGE\n" + struct.pack("<Q", len(message)) + message + b"\n\n"
    return bytes(out)


class Journal:
    """A journal directory that entries are appended to through systemd-journal-remote."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.generation = 0

    @property
    def current(self) -> Path:
        return self.directory / f"remote-{self.generation}.journal"

    def append(self, *entries: Entry | str) -> None:
        """Write ``entries`` (a str: a message of app.service) to the current file."""
        given = [e if isinstance(e, Entry) else Entry(e) for e in entries]
        done = subprocess.run(
            [str(JOURNAL_REMOTE), f"--output={self.current}", "-"],
            input=export_format(given),
            capture_output=True,
            check=False,
        )
        assert 0 == done.returncode, done.stderr.decode()

    def rotate(self) -> Path:
        """Later entries go to a new file, as journald starts one when it rotates; returns the
        file just finished."""
        finished = self.current
        self.generation += 1
        return finished

    def vacuum(self, path: Path) -> None:
        """Delete a finished file, as ``journalctl --vacuum-*`` and journald's limits do."""
        os.unlink(path)
