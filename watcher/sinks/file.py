"""sinks: events -> a JSONL file that log shippers tail (appended, flushed per batch).

``write`` only queues the line; ``flush`` writes and fsyncs, and raises ``OSError`` when it
cannot (a full disk). What was written stays written and the rest waits for the next
``flush``, so a disk that fills up and frees again leaves every event in the file once.
A crash can leave half a line at the end; it is cut off when the file is opened again (the
events behind it were never committed, so they are written again in full). ``reopen`` follows
logrotate's rename: the next write goes to a new file at the configured path.

The watcher may run as root, so the path is opened with ``O_NOFOLLOW``: a symbolic link
planted there is refused with a clear error unless the sink says ``follow_symlinks: true``.
And it never deletes bytes it did not write: a last line without a newline is cut only when
it is the start of one of our events; anything else is kept and our first line starts on a
new line.
"""

from __future__ import annotations

import contextlib
import errno
import os

from watcher.errors import ConfigError
from watcher.model import Event
from watcher.sinks.stdout import LineWriter, render

_REPAIR_SCAN_BYTES = 1 << 20
_OUR_LINE_START = b'{"event":"authz_'  # how every line render() writes begins


class FileSink:
    def __init__(
        self,
        path: str,
        events: tuple[str, ...] = ("authz_denial", "authz_alert"),
        *,
        follow_symlinks: bool = False,
    ) -> None:
        self.path = path
        self.name = f"file:{path}"
        self._events = frozenset(events)
        self._follow_symlinks = follow_symlinks
        self._lines = LineWriter()
        self._unsynced = False
        self._fd: int | None = self._open()

    def _open(self) -> int:
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        if not self._follow_symlinks:
            flags |= os.O_NOFOLLOW
        try:
            fd = os.open(self.path, flags, 0o640)
        except OSError as exc:
            if exc.errno == errno.ELOOP and os.path.islink(self.path):
                raise ConfigError(
                    f"file sink {self.path}: is a symbolic link (to {os.readlink(self.path)}); "
                    "refusing to write through it. Point path at the real file, or set "
                    "follow_symlinks: true on the sink if the link is wanted"
                ) from exc
            raise
        try:
            _repair_last_line(fd)
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
        """The file now at ``path``. A symbolic link planted there is refused (ConfigError)
        and the old file stays in use; any other failure is retried by the next flush."""
        with contextlib.suppress(OSError):  # what cannot be written now goes to the new file
            self.flush()
        try:
            fd = self._open()
        except OSError:
            self._close_fd()  # retried by the next flush, which reports it
            return
        self._close_fd()
        self._fd = fd
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


def _repair_last_line(fd: int) -> None:
    """If the file does not end with a newline: drop the partial event a crash left behind,
    or, when that last line is not ours, end it with a newline and keep it."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    start = max(0, size - _REPAIR_SCAN_BYTES)
    tail = os.pread(fd, size - start, start)
    last_newline = tail.rfind(b"\n")
    torn = tail[last_newline + 1 :]
    if torn.startswith(_OUR_LINE_START) or _OUR_LINE_START.startswith(torn):
        os.ftruncate(fd, start + last_newline + 1 if last_newline >= 0 else start)
    else:
        os.write(fd, b"\n")
