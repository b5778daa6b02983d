"""sources: log files followed like ``tail -F`` -> candidate lines with their offsets.

A ``FileTailer`` owns one path: the open file, its identity ((device, inode) plus a hash of
its first bytes, so inode reuse is caught) and the offset after the last complete line. Each
``poll`` reads what was appended, hands complete lines on, and notices rename rotation (the
old file is read to its end, then the new one from 0), copy-truncate (a size below the offset,
or different first bytes: restart at 0), deletion and re-creation. A partial last line waits
for its newline. ``FileSources`` expands the configured globs, creates tailers for files that
appear, and commits each tailer's offset only after its events reached every sink.
"""

from __future__ import annotations

import glob
import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatch

from watcher.config import FileSource
from watcher.extract import SECOND_WORDS_BYTES
from watcher.log import Logger
from watcher.sources.lines import Candidate, iter_candidates
from watcher.state import FileCheckpoint, StateStore

FINGERPRINT_BYTES = 1024
MAX_BYTES_PER_POLL = 64 * 1024 * 1024  # then the loop checks for signals before going on
READ_CHUNK_BYTES = 4 * 1024 * 1024
RETRY_MIN_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0
GLOB_CHARACTERS = frozenset("*?[")

LineHandler = Callable[[Candidate, str, FileSource], None]


@dataclass(frozen=True, slots=True)
class Identity:
    device: int
    inode: int


class _RangeReader:
    """Reads ``[start, end)`` of a file descriptor with pread: no shared file position."""

    def __init__(self, fd: int, start: int, end: int) -> None:
        self._fd = fd
        self._position = start
        self._end = end

    def readinto(self, view: memoryview) -> int:
        wanted = min(len(view), self._end - self._position)
        if wanted <= 0:
            return 0
        count = os.preadv(self._fd, [view[:wanted]], self._position)
        self._position += count
        return count

    def read(self, size: int = -1, /) -> bytes:
        wanted = self._end - self._position if size < 0 else size
        data = os.pread(self._fd, max(0, min(wanted, self._end - self._position)), self._position)
        self._position += len(data)
        return data


class FileTailer:
    """Follows one path across appends, rotation and truncation."""

    def __init__(
        self, path: str, source: FileSource, store: StateStore, log: Logger, *, start_at_end: bool
    ) -> None:
        self.path = path
        self.source = source
        self._store = store
        self._log = log
        self._start_at_end = start_at_end
        self._fd: int | None = None
        self._identity: Identity | None = None
        self._fingerprint = ""
        self._fingerprint_bytes = 0
        self.offset = 0
        self._retry_at = 0.0
        self._retry_delay = RETRY_MIN_SECONDS
        self._error_reported = False
        self.more_pending = False  # stopped at MAX_BYTES_PER_POLL with data left

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def poll(self, handle: LineHandler, commit: Callable[[FileTailer], None]) -> int:
        """Read what is new; return the number of bytes consumed."""
        self.more_pending = False
        if self._fd is None and not self._open():
            return 0
        consumed = self._read_new(handle, commit, final=False)
        if not self.more_pending:
            consumed += self._follow_rotation(handle, commit)
        return consumed

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- opening -----------------------------------------------------------------------------

    def _open(self, *, from_start: bool = False) -> bool:
        now = time.monotonic()
        if now < self._retry_at:
            return False
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        except OSError as exc:
            self._backoff(now, exc)
            return False
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            self._backoff(now, OSError(0, "not a regular file"))
            return False
        self._fd = fd
        self._identity = Identity(info.st_dev, info.st_ino)
        self._retry_delay = RETRY_MIN_SECONDS
        self._error_reported = False
        self.offset = self._starting_offset(info, from_start=from_start)
        self._start_at_end = False  # only the file found at first start begins at its end
        self._log.info("source_opened", path=self.path, offset=self.offset, size=info.st_size)
        return True

    def _backoff(self, now: float, exc: OSError) -> None:
        if not self._error_reported:
            self._log.error(
                "source_error",
                stage="source",
                path=self.path,
                error=exc.strerror or str(exc),
                retry_seconds=self._retry_delay,
            )
            self._error_reported = True
        self._retry_at = now + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, RETRY_MAX_SECONDS)

    def _starting_offset(self, info: os.stat_result, *, from_start: bool) -> int:
        self._take_fingerprint(info.st_size)
        if from_start:
            return 0
        saved = self._store.checkpoint(self.path)
        if saved is not None and self._matches(saved, info):
            return saved.offset
        if saved is not None:
            self._log.info("source_replaced", path=self.path, detail="a different file; from 0")
            return 0
        return info.st_size if self._start_at_end else 0

    def _matches(self, saved: FileCheckpoint, info: os.stat_result) -> bool:
        if (saved.device, saved.inode) != (info.st_dev, info.st_ino) or saved.offset > info.st_size:
            return False
        return _fingerprint(self._fd_or_fail(), saved.fingerprint_bytes) == saved.fingerprint

    def _take_fingerprint(self, size: int) -> None:
        self._fingerprint_bytes = min(size, FINGERPRINT_BYTES)
        self._fingerprint = _fingerprint(self._fd_or_fail(), self._fingerprint_bytes)

    def _fd_or_fail(self) -> int:
        if self._fd is None:
            raise RuntimeError("file is not open")
        return self._fd

    # -- reading -----------------------------------------------------------------------------

    def _read_new(
        self, handle: LineHandler, commit: Callable[[FileTailer], None], *, final: bool
    ) -> int:
        fd = self._fd_or_fail()
        size = os.fstat(fd).st_size
        if size < self.offset or self._rewritten(size):
            self._log.warning(
                "source_truncated", path=self.path, offset=self.offset, size=size,
                detail="file truncated or rewritten; reading from the start",
            )  # fmt: skip
            self.offset = 0
        if self._fingerprint_bytes < min(size, FINGERPRINT_BYTES):
            self._take_fingerprint(size)
        # A rotated-away file is read to its very end at once; a live one in slices, so the
        # loop sees signals between them.
        capped = not final and size > self.offset + MAX_BYTES_PER_POLL
        end = size if final else min(size, self.offset + MAX_BYTES_PER_POLL)
        if not final:
            cut = _after_last_newline(fd, self.offset, end)
            if cut == self.offset and capped:  # one line longer than a whole poll's worth
                cut = _after_next_newline(fd, end, size, default=self.offset)
            end = cut
        if end <= self.offset:
            return 0
        self.more_pending = capped and end < size
        start = self.offset
        reader = _RangeReader(fd, start, end)
        for candidate in iter_candidates(
            reader,
            max_line_bytes=self.source.max_line_bytes,
            chunk_bytes=READ_CHUNK_BYTES,
            on_long_line=self._report_long_line,
            also_one_of=SECOND_WORDS_BYTES,
        ):
            handle(_shifted(candidate, start), self.path, self.source)
        self.offset = end
        commit(self)
        return end - start

    def _rewritten(self, size: int) -> bool:
        """Same inode, different first bytes: copy-truncate and rewritten past our offset."""
        if self._fingerprint_bytes == 0 or size < self._fingerprint_bytes:
            return False
        return _fingerprint(self._fd_or_fail(), self._fingerprint_bytes) != self._fingerprint

    def _report_long_line(self, offset: int) -> None:
        self._log.warning(
            "line_too_long",
            path=self.path,
            offset=self.offset + offset,
            max_line_bytes=self.source.max_line_bytes,
            detail="searched in windows around each match",
        )

    def _follow_rotation(self, handle: LineHandler, commit: Callable[[FileTailer], None]) -> int:
        """If the path now names another file (or none), finish the old one and switch."""
        try:
            info = os.stat(self.path)
            current: Identity | None = Identity(info.st_dev, info.st_ino)
        except FileNotFoundError:
            current = None
        except OSError:
            return 0
        if current == self._identity:
            return 0
        consumed = self._read_new(handle, commit, final=True)  # the old file's last words
        self._log.info(
            "source_rotated" if current is not None else "source_removed",
            path=self.path,
            offset=self.offset,
        )
        self.close()
        if current is not None and self._open(from_start=True):
            consumed += self._read_new(handle, commit, final=False)
        return consumed

    def bytes_behind(self) -> int:
        """Bytes appended to the open file and not read yet (0 when not open)."""
        if self._fd is None:
            return 0
        try:
            return max(0, os.fstat(self._fd).st_size - self.offset)
        except OSError:
            return 0

    def checkpoint(self) -> FileCheckpoint | None:
        if self._identity is None:
            return None
        return FileCheckpoint(
            path=self.path,
            device=self._identity.device,
            inode=self._identity.inode,
            fingerprint=self._fingerprint,
            fingerprint_bytes=self._fingerprint_bytes,
            offset=self.offset,
        )


def _shifted(candidate: Candidate, start: int) -> Candidate:
    return Candidate(
        candidate.line_offset + start,
        candidate.text_offset + start,
        candidate.text,
        windowed=candidate.windowed,
    )


def _fingerprint(fd: int, length: int) -> str:
    return hashlib.sha256(os.pread(fd, length, 0)).hexdigest() if length else ""


def _after_next_newline(fd: int, start: int, end: int, *, default: int) -> int:
    """The offset after the first newline in ``[start, end)``, or ``default`` if there is none."""
    position = start
    while position < end:
        data = os.pread(fd, min(1 << 20, end - position), position)
        if not data:
            break
        newline = data.find(b"\n")
        if newline >= 0:
            return position + newline + 1
        position += len(data)
    return default


def _after_last_newline(fd: int, start: int, end: int) -> int:
    """The offset after the last newline in ``[start, end)``, or ``start`` if there is none."""
    position = end
    block = 1 << 16
    while position > start:
        low = max(start, position - block)
        data = os.pread(fd, position - low, low)
        newline = data.rfind(b"\n")
        if newline >= 0:
            return low + newline + 1
        position = low
        block = min(block * 4, 1 << 24)
    return start


class FileSources:
    """Every configured file source: globs expanded, tailers created as files appear."""

    def __init__(
        self,
        sources: tuple[FileSource, ...],
        store: StateStore,
        log: Logger,
        *,
        first_start: bool,
    ) -> None:
        self._store = store
        self._log = log
        self._first_start = first_start
        self._sources = sources
        self.tailers: dict[str, FileTailer] = {}
        self._initial = True

    def replace_sources(self, sources: tuple[FileSource, ...]) -> None:
        """After a reload: keep tailers whose path is still configured, drop the others."""
        self._sources = sources
        wanted = {path for path, _ in self._expand()}
        for path in [p for p in self.tailers if p not in wanted]:
            self.tailers.pop(path).close()

    def directories(self) -> Iterator[tuple[str, bool]]:
        """(directory, recursive) to watch for every configured pattern."""
        for source in self._sources:
            for pattern in source.paths:
                yield _watch_root(pattern)

    def reconcile(self) -> None:
        """Create tailers for files that now match a pattern."""
        start_at_end = self._initial and self._first_start
        for path, source in self._expand():
            if path not in self.tailers:
                self.tailers[path] = FileTailer(
                    path,
                    source,
                    self._store,
                    self._log,
                    start_at_end=start_at_end and source.start_at == "end",
                )
        self._initial = False

    def matches(self, path: str) -> bool:
        return any(
            fnmatch(path, os.path.abspath(pattern)) and not _excluded(path, source)
            for source in self._sources
            for pattern in source.paths
        )

    def _expand(self) -> Iterator[tuple[str, FileSource]]:
        for source in self._sources:
            for pattern in source.paths:
                for path in sorted(glob.glob(pattern, recursive=True)):
                    if not _excluded(path, source) and not os.path.isdir(path):
                        yield os.path.abspath(path), source

    def close(self) -> None:
        for tailer in self.tailers.values():
            tailer.close()


def _excluded(path: str, source: FileSource) -> bool:
    name = os.path.basename(path)
    return any(fnmatch(path, pattern) or fnmatch(name, pattern) for pattern in source.exclude)


def _watch_root(pattern: str) -> tuple[str, bool]:
    """The directory above the first glob character of ``pattern``, and whether to recurse."""
    parts = os.path.abspath(pattern).split(os.sep)
    static: list[str] = []
    for part in parts[:-1]:
        if GLOB_CHARACTERS & set(part):
            return os.sep.join(static) or os.sep, True
        static.append(part)
    return os.sep.join(static) or os.sep, False
