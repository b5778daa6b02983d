"""sinks: events -> a JSONL file that log shippers tail (appended, flushed per batch).

``write`` only queues the line; ``flush`` writes and fsyncs, and raises ``OSError`` when it
cannot (a full disk). What was written stays written and the rest waits for the next
``flush``, so a disk that fills up and frees again leaves every event in the file once.
A crash can leave half a line at the end; it is cut off when the file is opened again (the
events behind it were never committed, so they are written again in full). ``reopen`` follows
logrotate's rename: the next write goes to a new file at the configured path.
"""

from __future__ import annotations

import contextlib
import os

from watcher.model import Event
from watcher.sinks.stdout import LineWriter, render

_REPAIR_SCAN_BYTES = 1 << 20


class FileSink:
    def __init__(
        self, path: str, events: tuple[str, ...] = ("authz_denial", "authz_alert")
    ) -> None:
        self.path = path
        self.name = f"file:{path}"
        self._events = frozenset(events)
        self._lines = LineWriter()
        self._unsynced = False
        self._fd: int | None = self._open()

    def _open(self) -> int:
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        try:
            _cut_torn_last_line(fd)
        except OSError:
            os.close(fd)
            raise
        return fd

    def write(self, event: Event) -> None:
        if event["event"] in self._events:
            self._lines.add(render(event))

    def flush(self) -> None:
        if self._fd is None:  # a reopen that failed: try again
            self._fd = self._open()
            self._lines.restart_line()
        if len(self._lines):
            self._unsynced = True
            self._lines.write_out(self._fd)
        if self._unsynced:
            os.fsync(self._fd)
            self._unsynced = False

    def reopen(self) -> None:
        with contextlib.suppress(OSError):  # what cannot be written now goes to the new file
            self.flush()
        self._close_fd()
        with contextlib.suppress(OSError):  # retried by the next flush, which reports it
            self._fd = self._open()
            self._lines.restart_line()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._close_fd()

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _cut_torn_last_line(fd: int) -> None:
    """If the file does not end with a newline, drop the partial line a crash left behind."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    start = max(0, size - _REPAIR_SCAN_BYTES)
    tail = os.pread(fd, size - start, start)
    last_newline = tail.rfind(b"\n")
    os.ftruncate(fd, start + last_newline + 1 if last_newline >= 0 else start)
