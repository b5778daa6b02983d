"""sinks: events -> a JSONL file that log shippers tail (appended, flushed per batch).

A crash can leave half a line at the end; it is cut off when the file is opened again (the
events behind it were never committed, so they are written again in full). ``reopen`` follows
logrotate's rename: the next write goes to a new file at the configured path.
"""

from __future__ import annotations

import os
from typing import TextIO

from watcher.model import Event
from watcher.sinks.stdout import render

_REPAIR_SCAN_BYTES = 1 << 20


class FileSink:
    def __init__(
        self, path: str, events: tuple[str, ...] = ("authz_denial", "authz_alert")
    ) -> None:
        self.path = path
        self._events = frozenset(events)
        self._stream = self._open()

    def _open(self) -> TextIO:
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
        _cut_torn_last_line(fd)
        return os.fdopen(fd, "a", encoding="utf-8")

    def write(self, event: Event) -> None:
        if event["event"] in self._events:
            self._stream.write(render(event) + "\n")

    def flush(self) -> None:
        self._stream.flush()
        os.fsync(self._stream.fileno())

    def reopen(self) -> None:
        self.flush()
        self._stream.close()
        self._stream = self._open()

    def close(self) -> None:
        self.flush()
        self._stream.close()


def _cut_torn_last_line(fd: int) -> None:
    """If the file does not end with a newline, drop the partial line a crash left behind."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    start = max(0, size - _REPAIR_SCAN_BYTES)
    tail = os.pread(fd, size - start, start)
    last_newline = tail.rfind(b"\n")
    os.ftruncate(fd, start + last_newline + 1 if last_newline >= 0 else start)
