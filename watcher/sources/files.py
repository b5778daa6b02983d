"""sources: log files followed like ``tail -F``, by identity, each line handed on exactly once.

A file is known by its identity, (device, inode), confirmed by a fingerprint of its first bytes
(a hash of the first ``min(size, 1 KiB)`` bytes, retaken as a small file grows, so inode reuse
is caught). Paths are only how files are found: every configured pattern is expanded, each path
is resolved (symlinks followed) to the file it names, and a file reached by several paths is
followed once.

- A file that leaves every configured path (renamed by rotation, deleted) is read to its end
  and kept open while the writer may still append to it; it is closed, and its checkpoint
  forgotten, once it has been idle for ``rotate_wait_seconds``.
- A file found under another configured name (``app.log`` -> ``app.log.1`` with ``app.log*``)
  simply continues at its offset.
- Copy-truncate: when a file shrinks below the offset (or its first bytes change), the copy
  that logrotate left beside it (a name starting with the file's name, or one in
  ``rotated_paths``, with the same first bytes) is read from the offset to its end, then the
  truncated file from 0. Only lines written between the copy and the truncation are lost. A
  copy no pattern reaches is then kept like a renamed file (read until idle, its checkpoint
  saved), so a restart knows it was read.
- At start, a checkpoint whose file is no longer at its path is looked for by identity beside
  that path and in ``rotated_paths``, and finished from its offset.
- Only regular files are opened (never blocking: O_NONBLOCK), and gzip files are skipped.

Each file gets a random base key, saved with its first checkpoint before any of its lines is
handed on; its ``file_key`` is derived from that base and the file's first line, and a truncated
file's next life derives its own from the old key and its new first line. With the line's offset
the key makes ``event_id``s unique across generations of a path, and stable when the same line
is read again after a crash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import glob
import hashlib
import itertools
import os
import re
import secrets
import sqlite3
import stat
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from watcher.config import FileSource
from watcher.extract import SECOND_WORDS_BYTES
from watcher.log import Logger
from watcher.model import Origin
from watcher.sources.base import Output, Progress, Save, Wake
from watcher.sources.lines import Candidate, iter_candidates
from watcher.state import FileCheckpoint, RetiredFile, StateStore

FINGERPRINT_BYTES = 1024
# The last bytes of a file seen (read, or there at the first look), kept with its offset: a life
# rewritten with the same first KiB (a banner a postrotate script writes) is told by them. Up
# to TAIL_BYTES before each of its last TAIL_MARKS line ends (and its end seen) are hashed, so
# that a copy made before the last of them is judged too.
TAIL_BYTES = 512
TAIL_MARKS = 16
# Further back, the first line that begins in each SPARSE_BYTES block is marked too (its first
# TAIL_BYTES), fewer the further from both ends (about one for each doubling of the
# distance): copy-truncate's copy ends where
# logrotate stopped copying, and a follower may read many more lines before the truncation (a
# slow fsync); such a copy is told by the marks that end within it. Not in the first block:
# there lives that begin alike (a banner up to that size) share every byte.
SPARSE_BYTES = 4096
LINE_START_BYTES = 64
TAIL_READ_BYTES = 16 * 1024  # read back from a file's end to take its tail
# At most this much is read per file and per poll; then the loop commits, pings the watchdog
# and looks at signals before reading on (150,000 denial lines read in one go once kept it
# away for 46 s, past the unit's WatchdogSec).
MAX_BYTES_PER_POLL = 1024 * 1024  # per file
POLL_BUDGET_BYTES = 4 * 1024 * 1024  # every file together
READ_CHUNK_BYTES = 4 * 1024 * 1024
COMPARED_BYTES = 64 * 1024  # of a copy past where its original was read, against the original
RETRY_MIN_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0
GLOB_CHARACTERS = frozenset("*?[")
GZIP_MAGIC = b"\x1f\x8b"
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".lzo", ".Z", ".zip")
GZIP_HEAD_CHUNK = 16 * 1024
GZIP_HEAD_INPUT_MAX = 1024 * 1024  # compressed bytes read to find a file's first KiB
# How far into a compressed file its last bytes seen are looked for (decompressed): further
# in, its first bytes alone tell whose copy it is
GZIP_TAIL_MAX = 8 * 1024 * 1024
# A key not bound to a first message yet (a new file, a truncated one): "after:<base>", saved so.
PENDING_KEY_PREFIX = "after:"
HOLD_SECONDS = 0.5  # a message that may go on waits this long for its next line, then goes out
MAX_RETIRED = 4096  # closed files remembered (saved too), so none passes for a copy or a generation
# A file's mtime comes from the kernel's coarse clock, a tick behind the wall clock a save
# reads: "written after the last run" is judged with this much to spare.
MTIME_LAG_NS = 1_000_000_000
# What rotation appends: a number (``.1``) or a date or time (``-20261129``,
# ``-20261129-1795985426``, kubelet's ``.20261129-101010``: four digits at least, then only
# digits and separators), maybe compressed (``.1.gz``). A live name's own number is no
# rotation suffix when the name goes on after it: ``app-0.log``, ``server-8080.log`` and a
# rotated ``app-20261129.log`` are each a name of their own, not rotations of ``app``.
SEARCHES_WHILE_ROTATED = 3  # a search whose files rotation renamed meanwhile is done again
DATE_DIGITS = 8  # a date rotation puts before the extension: a day at least
_COMPRESSION = r"(?:\.(?:gz|bz2|xz|zst|zstd|lz4|lzo|Z|zip))?"
_DATE = r"[.-]\d{4}[\dTZ_.-]*?"
# logrotate renames a rotated file in its way to ``<name>-<YYYYMMDDHH>.backup``
_BACKUP = r"(?:-\d{10}\.backup)?"
_ROTATION_SUFFIX_RE = re.compile(rf"^(.+?)(?:(?:\.\d+|{_DATE}){_COMPRESSION}{_BACKUP})?$")


@dataclass(frozen=True, slots=True)
class Identity:
    device: int
    inode: int


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A hash of a file's first ``length`` bytes."""

    length: int
    digest: str

    @staticmethod
    def of(fd: int, length: int) -> Fingerprint:
        return Fingerprint(length, _digest(os.pread(fd, length, 0)) if length else "")

    def matches(self, fd: int) -> bool:
        return self.length == 0 or _digest(os.pread(fd, self.length, 0)) == self.digest


@dataclass(frozen=True, slots=True)
class Mark:
    """A hash of the ``length`` bytes before ``end`` (a line's end, or the end seen)."""

    end: int
    length: int
    digest: str

    def matches(self, data: bytes) -> bool:
        return _digest(data)[:MARK_DIGEST] == self.digest


@dataclass(frozen=True, slots=True)
class Tail:
    """The last bytes seen of a file's life: marks before its last line ends and the end
    seen. A life only grows, so a file that no longer holds them is another life (or was
    cut); a copy of it, made whenever, holds those that end within its size."""

    marks: tuple[Mark, ...] = ()

    @property
    def end(self) -> int:
        return self.marks[-1].end if self.marks else 0

    @staticmethod
    def of(data: bytes, end: int) -> Tail:
        """The tail of ``data``, bytes that end at ``end`` in the file."""
        return NO_TAIL.extended(data, end)

    @staticmethod
    def at(fd: int, end: int) -> Tail:
        """The bytes of ``fd`` before ``end`` as they are now."""
        length = min(end, TAIL_READ_BYTES)
        data = os.pread(fd, length, end - length)
        return Tail.of(data, end) if len(data) == length else NO_TAIL

    @staticmethod
    def decode(text: str) -> Tail:
        """As ``encode`` wrote it; anything else (a damaged row) is no tail: the first bytes
        alone tell that file, as they did before tails were kept."""
        marks = []
        for part in filter(None, text.split(";")):
            end, _, rest = part.partition(":")
            length, _, digest = rest.partition(":")
            if not (end.isdigit() and length.isdigit() and digest):
                return NO_TAIL
            marks.append(Mark(int(end), int(length), digest))
        return Tail(tuple(marks))

    def encode(self) -> str:
        return ";".join(f"{m.end}:{m.length}:{m.digest}" for m in self.marks)

    def extended(self, data: bytes, end: int, passed: Sequence[Mark] = ()) -> Tail:
        """This tail, then ``data``: the bytes before ``end``, read since (``passed``: the
        marks of the blocks a read passed before ``data``). Marked: the bytes before each of
        the last line ends, and the first bytes of each of those lines (a long line's start
        tells lives apart in a copy that ends within it)."""
        start = end - len(data)
        ends = [len(data)]
        at = len(data) - 1 if data.endswith(b"\n") else len(data)
        while len(ends) <= TAIL_MARKS and (at := data.rfind(b"\n", 0, at)) >= 0:
            ends.append(at + 1)
        if len(ends) <= TAIL_MARKS:
            ends.append(0)  # (any bytes of the life may be marked; a line's are the telling)
        ends.reverse()
        pieces = []
        for line_start, line_end in itertools.pairwise(ends):
            pieces.append((line_start, min(line_end, line_start + LINE_START_BYTES)))
            pieces.append((max(0, line_end - TAIL_BYTES), line_end))
        # In order of (end, length), as the marks kept (all before ``start``) are; a short
        # first line's two pieces may be one.
        new = _marked(data, start, list(dict.fromkeys(pieces)))
        ordered = [m for m in self.marks if m.end <= start] + new
        dense = ordered[-2 * TAIL_MARKS :]
        # Blocks with dense marks are marked by those once they are older.
        sparse = [*passed, *_marked(data, start, _sparse_pieces(data, start, end))]
        first_dense = dense[0].end if dense else end
        older = ordered[: -2 * TAIL_MARKS] + [m for m in sparse if m.end < first_dense]
        return Tail(tuple(_thinned(older, end) + dense))

    def holds(self, fd: int) -> bool:
        """``fd`` holds the last bytes seen, where they were (none: nothing to tell)."""
        if not self.marks:
            return True
        last = self.marks[-1]
        return last.matches(os.pread(fd, last.length, last.end - last.length))

    def verdict(self, size: int, read: Callable[[int, int], bytes | None]) -> bool | None:
        """Whether a file of ``size`` bytes (``read`` gives its bytes) holds this life as seen,
        up to its size: the marks that end within it, near the last. None: no mark does (or
        it cannot be read)."""
        within = [m for m in self.marks if m.end <= size]
        if not within:
            return None
        last = within[-1].end
        near = [m for m in within if m.end - m.length >= last - TAIL_READ_BYTES]
        first = min(m.end - m.length for m in near)
        data = read(first, last)
        if data is None:
            return None
        return all(m.matches(data[m.end - m.length - first : m.end - first]) for m in near)

    def changed(self, fd: int, size: int) -> bool:
        """``fd`` (``size`` bytes) holds other bytes than this life where a mark ends within it."""
        return self.verdict(size, _pread(fd)) is False


NO_TAIL = Tail()


def _marked(data: bytes, start: int, pieces: list[tuple[int, int]]) -> list[Mark]:
    """Marks of ``pieces`` ((first, last) offsets in ``data``, which begins at ``start``)."""
    return [
        Mark(start + last, last - first, _digest(data[first:last])[:MARK_DIGEST])
        for first, last in pieces
        if last > first
    ]


def _sparse_pieces(data: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """Where the first line that begins in each SPARSE_BYTES block of ``data`` (the bytes
    before ``end``, from ``start`` in the file) is, as (first, last) offsets in ``data`` of
    the TAIL_BYTES from its start (a line's start, a time or a number, tells it from others
    that end alike), for the blocks a tail keeps (``_thinned``). Not the first block: lives
    that begin alike (a banner) share its bytes."""
    pieces = []
    top = end // SPARSE_BYTES
    for block in range(max(1, -(-start // SPARSE_BYTES)), top + 1):
        if block % _sparse_spacing(block, top):
            continue
        first = data.find(b"\n", max(0, block * SPARSE_BYTES - start - 1)) + 1
        if not first:
            break
        pieces.append((first, min(first + TAIL_BYTES, len(data))))  # (the next lines' too)
    return pieces


def _thinned(marks: list[Mark], end: int) -> list[Mark]:
    """Of older marks (sorted), the first that begins in each SPARSE_BYTES block a tail keeps,
    seen from ``end``: every block near it (and near the start), every second, fourth, ...
    further away. A block dropped is never kept again later (its spacing only grows), so the
    marks kept never thin out more than that."""
    top = end // SPARSE_BYTES
    kept: dict[int, Mark] = {}
    for mark in marks:
        block = (mark.end - mark.length) // SPARSE_BYTES
        if block and block not in kept and not block % _sparse_spacing(block, top):
            kept[block] = mark
    return list(kept.values())


def _sparse_spacing(block: int, top: int) -> int:
    """Keep a block's mark when its number is a multiple of this: 1 near the end (block
    ``top``) and near the start, then a power of two that grows with the distance from the
    nearer of the two (a copy may end anywhere: far from the end, not far from its start)."""
    return 1 << max(0, min(top - block, block).bit_length() - 1)


MARK_DIGEST = 32  # hex digits of a mark's hash kept


def _pread(fd: int) -> Callable[[int, int], bytes | None]:
    def read(start: int, end: int) -> bytes | None:
        try:
            return os.pread(fd, end - start, start)
        except OSError:
            return None

    return read


# A file read and closed, or a life of one before a truncation: its identity, first bytes and
# last bytes seen (lives of one inode that begin alike are kept apart by the last)
_PastLife = tuple[Identity, Fingerprint, Tail]


@dataclass(frozen=True, slots=True)
class LineContext:
    """What a line handler needs to know of the file a line came from."""

    path: str  # the configured path that reaches the file (its last one, once it left them)
    file_key: str
    source: FileSource


LineHandler = Callable[[Candidate, LineContext], None]
Clock = Callable[[], float]


class FollowedFile:
    """One open file, followed through appends, renames and truncation."""

    def __init__(
        self,
        fd: int,
        identity: Identity,
        checkpoint: FileCheckpoint,
        source: FileSource,
        *,
        now: float,
    ) -> None:
        self.fd = fd
        self.identity = identity
        self.source = source
        self.path = checkpoint.path
        self.file_key = checkpoint.file_key
        self.offset = checkpoint.offset
        self.fingerprint = Fingerprint(checkpoint.fingerprint_bytes, checkpoint.fingerprint)
        self.tail = Tail.decode(checkpoint.tail)
        self.left_paths_at: float | None = None  # when it stopped being at a configured path
        self.last_growth = now
        self.mtime_ns = checkpoint.mtime_ns  # of the last read; a copy made since is newer
        self.copy_of: Identity | None = None  # a rotation's copy of another followed file
        self.more_pending = False  # stopped at MAX_BYTES_PER_POLL with data left
        self.looked_at = False  # read or found empty by this process, or saved empty here
        self.read_end = checkpoint.offset  # end of the last range read (>= offset when held)
        self.head = b""  # its first bytes (up to FINGERPRINT_BYTES) as last read here
        self.rewritten_under_read = False  # a read found it truncated or rewritten under it
        self.former_path: str | None = None  # its path before its last rename in the patterns
        # A copy holding less than its key's life was read to (the lines after it were read
        # from the original): no later life takes that key on from its end
        self.key_read_past = False
        # The directories its rotations go to and their mtimes when last listed, and the
        # rotated names then written since it was read (maybe its copy: looked at again)
        self.rotation_directories: list[str] = []
        self.rotations_listed_at: tuple[int, ...] | None = None
        self.fresh_rotations: list[str] = []
        # Compressed ones among them looked at, with the offset and time of the file then: each
        # is unzipped once while both stay as they were
        self.compressed_judged: dict[CompressedFile, tuple[int, int]] = {}

    def unchanged(self) -> bool:
        """It still holds the first and last bytes read, where they were."""
        return self.fingerprint.matches(self.fd) and self.tail.holds(self.fd)

    @property
    def holding(self) -> bool:
        """Lines after the offset were read but held: a message there may still go on."""
        return self.offset < self.read_end

    def flush_due(self, now: float) -> bool:
        return self.holding and now - self.last_growth >= HOLD_SECONDS

    @property
    def context(self) -> LineContext:
        return LineContext(self.path, self.file_key, self.source)

    def checkpoint(self) -> FileCheckpoint:
        return FileCheckpoint(
            device=self.identity.device,
            inode=self.identity.inode,
            fingerprint=self.fingerprint.digest,
            fingerprint_bytes=self.fingerprint.length,
            offset=self.offset,
            path=self.path,
            file_key=self.file_key,
            mtime_ns=self.mtime_ns,
            tail=self.tail.encode(),
        )

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def close(self) -> None:
        os.close(self.fd)


class FileSources:
    """Every configured file source: the files they reach, followed by identity."""

    def __init__(
        self,
        sources: tuple[FileSource, ...],
        store: StateStore,
        log: Logger,
        *,
        first_start: bool,
        clock: Clock = time.monotonic,
    ) -> None:
        self._sources = sources
        self._store = store
        self._log = log
        self._clock = clock
        self._start_at_end = first_start  # only files found at the very first start
        # Said in the state database once the first look's decisions (where each file begins,
        # history) are saved: until then, every start is a first start.
        self._first_look_due = first_start
        self.files: dict[Identity, FollowedFile] = {}
        self._by_path: dict[str, Identity] = {}  # configured paths and real paths -> file
        self._directories: set[str] = set()  # where the files of _by_path are
        self._link_targets: set[str] = set()  # what symlinks in the patterns point to
        self._reported: set[tuple[str, str]] = set()  # (path, problem) logged once
        self._retry_at: dict[str, tuple[float, float]] = {}  # path -> (when, delay)
        self._orphans_checked = False
        self._starting = True  # until the first look at the patterns is done
        # Files rotation made after this were made while we were stopped (None: no last run)
        self._last_run_ns: int | None = None
        with contextlib.suppress(sqlite3.Error):
            if not first_start and (saved_at := store.files_last_saved_at()) is not None:
                self._last_run_ns = int(saved_at * 1e9) - MTIME_LAG_NS
        # Files read to their end and closed ((identity, first bytes) -> size then): never
        # taken for a copy while they are unchanged, and their compressed copies never named.
        # An inode used again is another file: both are kept.
        self._retired: dict[_PastLife, int] = {}
        # Rotated files beside a live one at the very first start (never followed): as if read
        # to their end, by identity only; none of their first bytes makes a file pass for read.
        self._history: dict[_PastLife, int] = {}
        with contextlib.suppress(sqlite3.Error):
            for retired in store.retired_files():
                identity = Identity(retired.device, retired.inode)
                fingerprint = Fingerprint(retired.fingerprint_bytes, retired.fingerprint)
                table = self._history if retired.history else self._retired
                table[identity, fingerprint, Tail.decode(retired.tail)] = retired.size
        self._unsaved: dict[Identity, FollowedFile] = {}  # read on, checkpoint not saved yet
        # Checkpoints of gone files: at a save, each gives way to a record of how far its file
        # was read (a compressed copy of it, found later, is named only for what is after)
        self._gone_rows: dict[Identity, FileCheckpoint] = {}
        # compressed files named: (device, inode, offset read or None), in order; and those
        # named by the runs before (not named again, though found under another name)
        self._named_compressed: dict[tuple[CompressedFile, int | None], None] = {}
        self._named_before: set[tuple[CompressedFile, int | None]] = set()
        with contextlib.suppress(sqlite3.Error):
            self._named_before = set(store.compressed_named())
        self._compressed_seen: dict[CompressedFile, None] = {}  # looked at once
        # During a truncated file's search for its copy: compressed files that begin as a file
        # followed (its identity, their name)
        self._compressed_copies: list[tuple[Identity, str]] | None = None
        # Lives of followed files before a truncation, kept with the closed files (how far each
        # was read); saved with the next checkpoints, once the sinks have what was read
        self._lives_unsaved: list[RetiredFile] = []
        # A copy being opened when its original's truncation is seen: (original, path, fd)
        self._copy_in_hand: tuple[Identity, str, int] | None = None

    # -- the public face ---------------------------------------------------------------------

    @property
    def more_pending(self) -> bool:
        return any(f.more_pending for f in self.files.values())

    def poll(self, changed: Iterable[str] | None, handle: LineHandler) -> int:
        """Read what is new. ``changed`` names paths that changed (None: check every file).

        Returns the number of bytes consumed. The offsets reached are saved by
        ``save_checkpoints``, which the caller runs once every sink has the events.
        """
        reader = _Reader(self, handle)
        changed_paths = None if changed is None else set(changed)
        first = not self._orphans_checked
        if first or changed_paths is None or self._layout_may_have_changed(changed_paths):
            self._reconcile(reader)
        due = self._due(None if first else changed_paths)
        for index, followed in enumerate(due):
            if reader.consumed >= POLL_BUDGET_BYTES:
                for waiting in due[index:]:
                    waiting.more_pending = True  # read on at the next poll, in the same order
                break
            reader.read(followed)
        if any(not self._still_reachable(f) for f in due):
            self._reconcile(reader)  # a path now names another file: read the new one too
            for followed in self._due(None):
                reader.read(followed)
        self._close_idle(reader)
        return reader.consumed

    def save_checkpoints(self) -> int:
        """Save the checkpoints reached by the polls so far; call it only once every sink has
        taken every event handed on. Returns how many were saved; raises sqlite3.Error (a full
        disk), keeping the rest for the next call."""
        saved = 0
        while self._gone_rows:
            identity, gone = self._gone_rows.popitem()
            with contextlib.suppress(sqlite3.Error):  # forgotten at a later start instead
                if identity in self.files:  # its inode taken by a file followed now
                    self._store.keep_read([_read_as_saved(gone)], keep_at_most=MAX_RETIRED)
                else:
                    self._store.retire_file(_read_as_saved(gone), keep_at_most=MAX_RETIRED)
        while self._unsaved:
            identity, followed = next(iter(self._unsaved.items()))
            # A copy whose lines are still read from its original has no checkpoint of its
            # own: its offset is its size when first seen, maybe inside a line of a copy in
            # the making. After a restart it is a copy again, or takes its gone original's.
            if identity in self.files and followed.copy_of is None:
                self._store.save_checkpoint(followed.checkpoint())
                saved += 1
            del self._unsaved[identity]
        if self._lives_unsaved:
            self._store.keep_read(self._lives_unsaved, keep_at_most=MAX_RETIRED)
            self._lives_unsaved = []
        if self._first_look_due and not self._start_at_end:
            self._first_look_saved()
        return saved

    def _first_look_saved(self) -> None:
        """Where each file found at the very first look begins, and its history, are on disk:
        a later start is no first start, even after a crash before any line is saved."""
        self._store.files_first_look_saved()
        self._first_look_due = False

    def seconds_to_next_flush(self) -> float | None:
        """When a held message (one that may still go on) is next due to go out as it is."""
        waits = [
            HOLD_SECONDS - (self._clock() - f.last_growth) for f in self.files.values() if f.holding
        ]
        return max(0.0, min(waits)) if waits else None

    def directories(self) -> Iterator[tuple[str, bool]]:
        """(directory, recursive) to watch: the patterns' roots and every symlink target's."""
        roots = {_watch_root(pattern) for source in self._sources for pattern in source.paths}
        yield from roots
        real_paths = [_real_path(followed) for followed in self.files.values()]
        for real_directory in {os.path.dirname(p) for p in [*real_paths, *self._link_targets]}:
            if not any(_covers(root, real_directory) for root in roots):
                yield real_directory, False

    def replace_sources(self, sources: tuple[FileSource, ...]) -> None:
        """After a reload: files of a source whose patterns are still configured, or whose path
        (a rotated file's: where it was) a source reaches now, are kept (one just renamed away
        is still read to its end); the others are closed, their checkpoints kept, so adding the
        source back resumes where it stopped."""
        self._sources = sources
        by_paths = {source.paths: source for source in sources}
        for followed in list(self.files.values()):
            source = by_paths.get(followed.source.paths) or self._source_reaching(followed.path)
            if source is None:
                self._drop(followed, forget=False)
            else:
                followed.source = source

    def bytes_behind(self) -> int:
        behind = 0
        for followed in self.files.values():
            try:
                behind += max(0, followed.size() - followed.offset)
            except OSError:
                continue
        return behind

    def close(self) -> None:
        """Close every file (``save_checkpoints`` first, once the sinks have everything)."""
        for followed in list(self.files.values()):
            self._drop(followed, forget=False)

    # -- the source protocol (sources/base.py) -----------------------------------------------

    kind = "file"

    def start(self, wake: Wake) -> None:
        del wake  # read when the watched directories change

    def read(self, changed: set[str] | None, out: Output) -> int:
        def hand_on(candidate: Candidate, file: LineContext) -> None:
            origin = Origin(
                source_kind="file",
                source_path=file.path,
                source_offset=candidate.line_offset,
                text_offset=candidate.text_offset if candidate.windowed else None,
                file_key=file.file_key,
            )
            out.text(
                candidate.text,
                origin,
                profile=file.source.aws_profile,
                timestamp=candidate.timestamp,
            )

        return self.poll(changed, hand_on)

    def checkpoint(self) -> Save:
        return self._save_checkpoints

    def _save_checkpoints(self) -> None:
        self.save_checkpoints()

    @property
    def more_ready(self) -> bool:
        return self.more_pending

    def seconds_to_next_read(self) -> float | None:
        return self.seconds_to_next_flush()

    def progress(self) -> Progress:
        return Progress(followed=len(self.files), bytes_behind=self.bytes_behind())

    def reconfigure(self, configs: tuple[object, ...]) -> bool:
        self.replace_sources(tuple(c for c in configs if isinstance(c, FileSource)))
        return True

    # -- finding files -----------------------------------------------------------------------

    def _layout_may_have_changed(self, changed: set[str]) -> bool:
        """A changed path we do not follow yet, or one that may now name another file."""
        for path in changed:
            identity = self._by_path.get(path)
            if identity is None:
                if (
                    path in self._link_targets
                    or self._matches_pattern(path)
                    or self._watched_directory(path)
                ):
                    return True
            elif path == self.files[identity].path and not self._at(path, identity):
                return True
        return False

    def _watched_directory(self, path: str) -> bool:
        return path in self._directories or any(
            _watch_root(pattern)[0] == path for s in self._sources for pattern in s.paths
        )

    def _matches_pattern(self, path: str) -> bool:
        return self._source_reaching(path) is not None

    def _source_reaching(self, path: str) -> FileSource | None:
        for source in self._sources:
            if not _excluded(path, source) and any(
                _pattern_matches(pattern, path) for pattern in source.paths
            ):
                return source
        return None

    def _expand(self) -> Iterator[tuple[Identity, str, FileSource]]:
        """(identity, path, source) of every regular file the patterns reach; each file once."""
        seen: set[Identity] = set()
        for source in self._sources:
            for pattern in source.paths:
                for path in _expand_pattern(pattern):
                    if _excluded(path, source):
                        continue
                    if os.path.islink(path):  # its target's directory is watched too
                        self._link_targets.add(os.path.realpath(path))
                    info = self._stat_regular(path)
                    if info is None:
                        continue
                    identity = Identity(info.st_dev, info.st_ino)
                    if identity not in seen:
                        seen.add(identity)
                        yield identity, path, source

    def _stat_regular(self, path: str) -> os.stat_result | None:
        try:
            info = os.stat(path)
        except OSError:
            return None
        if stat.S_ISDIR(info.st_mode):
            return None
        if not stat.S_ISREG(info.st_mode):
            self._report_once(path, "not_regular", "not a regular file (FIFO, socket or device)")
            return None
        return info

    def _reconcile(self, reader: _Reader) -> None:
        """Match the files the patterns reach now against the followed ones."""
        reachable: dict[Identity, tuple[str, FileSource]] = {}
        self._link_targets = set()
        for identity, path, source in self._expand():
            reachable[identity] = (path, source)
        now = self._clock()
        gone: dict[Identity, FileCheckpoint] = {}
        if self._start_at_end:
            self._remember_history(reachable)
        if not self._orphans_checked:
            self._orphans_checked = True
            gone = self._finish_orphans(reachable, reader)
        paths = {path for path, _ in reachable.values()}
        # Rotated names last (app-20261129.log sorts before app.log): a copy is known as one
        # by its first bytes only once the file it is a copy of is followed.
        in_order = sorted(reachable.items(), key=lambda item: _named_as_rotation(item[1][0], paths))
        moved: set[Identity] = set()  # listed, then another file at its path when opened
        for identity, (path, source) in in_order:
            if identity not in self.files:
                self._start_following(identity, path, source, reader, gone, moved=moved)
            if identity in moved:  # rotated between the listing and the open: a checkpoint
                # of it is an orphan's, known as gone before its copy is looked at
                still = {i: place for i, place in reachable.items() if i not in moved}
                gone.update(self._finish_orphans(still, reader, only={identity}))
                if identity not in self.files and identity not in gone:
                    self._follow_listed_and_rotated(identity, path, source, gone, reader)
        # Then the new names of files followed: a copy made before a rename of its original
        # is named after the name the original had (app.log.1 of app.log, now app-2026....log).
        for identity, (path, source) in in_order:
            followed = self.files.get(identity)
            if followed is None:
                continue
            if followed.path != path or followed.left_paths_at is not None:
                if followed.left_paths_at is None and followed.path != path:
                    self._log.info("source_renamed", path=followed.path, new_path=path)
                    followed.former_path = followed.path
                followed.path, followed.left_paths_at, followed.source = path, None, source
        for followed in list(self.files.values()):
            if followed.identity not in reachable and followed.left_paths_at is None:
                looked_at_ns = followed.mtime_ns  # what rotation made since: newer than this
                # The last words written before it left, read as the file at its path it was
                # at our last look: one looked at empty and written, copied and emptied since
                # is finished from its copy (_changed_before_read)
                reader.read(followed)
                followed.left_paths_at = now
                self._log.info(
                    "source_removed" if _deleted(followed) else "source_rotated",
                    path=followed.path,
                    offset=followed.offset,
                    detail="read until idle for rotate_wait_seconds, then closed",
                )
                # Not the time it has now: written, copied and emptied before it was deleted,
                # it is newer than the copy that holds those lines.
                self._follow_missed_generations(
                    followed.path, looked_at_ns, followed.source, {}, reader
                )
            elif followed.identity not in reachable and followed.copy_of is None:
                # Still held after it left: a file made at its path since the last look and
                # rotated away before this one (a stalled process, rotation faster than the
                # polls) is a generation missed after it all the same.
                self._follow_missed_generations(
                    followed.path, followed.mtime_ns, followed.source, {}, reader, again=True
                )
        # Retired with the next save, not now: after a crash before it, the next start finds
        # them gone again and looks again for what rotation made after them.
        self._gone_rows.update(gone)
        self._rebuild_index()
        if self._start_at_end and not self._unsaved and not self._lives_unsaved:
            with contextlib.suppress(sqlite3.Error):  # else with the next save_checkpoints
                self._first_look_saved()
        self._start_at_end = False
        self._starting = False

    def _start_following(
        self,
        identity: Identity,
        path: str,
        source: FileSource,
        reader: _Reader,
        gone: dict[Identity, FileCheckpoint],
        *,
        moved: set[Identity],
    ) -> FollowedFile | None:
        fd = self._open(path)
        if fd is None:
            return None
        info = os.fstat(fd)
        compressed = _compressed(path, fd)
        if Identity(info.st_dev, info.st_ino) != identity:
            moved.add(identity)
        if Identity(info.st_dev, info.st_ino) != identity or compressed:
            if compressed:
                self._note_compressed(path, fd, gone)
            os.close(fd)
            return None
        row = self._store.checkpoint_of(identity.device, identity.inode)
        saved = self._own_checkpoint(row, path, fd, info.st_size, gone)
        if saved is None and info.st_size == 0 and self._sibling_followed(path):
            # Maybe a copy copy-truncate has just begun: followed now, its lines would be its
            # own once copied. Its first bytes tell, at a later poll.
            os.close(fd)
            return None
        copy_of = None
        if saved is not None:  # the first read sees whether it was truncated meanwhile
            checkpoint = dataclasses.replace(saved, path=path)
        else:
            offset = info.st_size if self._start_at_end and source.start_at == "end" else 0
            original = self._copied_from(fd, path, info.st_size)
            if original is not None:
                self._copy_in_hand = (original.identity, path, fd)
                try:
                    reader.read(original)  # the lines the copy shares with it come from there
                finally:
                    self._copy_in_hand = None
                if identity in self.files:  # that read found the original truncated: done
                    os.close(fd)
                    return self.files[identity]
                if original.identity in self.files and original.fingerprint.length:
                    offset, copy_of = info.st_size, original.identity
                    self._log.info("source_copy_seen", path=path, original=original.path)
            checkpoint = _first_checkpoint(fd, identity, path, offset, info.st_size)
            if row is not None and _empty_elsewhere(row, path):
                # Maybe that file renamed and written since: the key its next life would get,
                # so what was read of it before a crash keeps its ids (another file that took
                # the inode binds that key to other lines: other ids).
                checkpoint = dataclasses.replace(checkpoint, file_key=_pending(row.file_key))
            predecessor = None if copy_of else _copy_of_gone(fd, path, info.st_size, gone)
            if predecessor is not None:  # its original is gone: the copy takes its place
                checkpoint = self._continue(predecessor, identity, path, info.st_size, gone)
            elif copy_of is None and self._starting and self._last_run_ns is not None:
                # New at its path since the last run, so read from 0: what rotation moved out
                # of it while we were stopped (a copy-truncate copy) is read first, as for a
                # followed file that left its path.
                self._follow_missed_generations(
                    path, self._last_run_ns, source, gone, reader, again=True, unreached=True
                )
                if identity in self.files:  # renamed away since listed: read as one of them
                    os.close(fd)
                    return self.files[identity]
        followed = FollowedFile(fd, identity, checkpoint, source, now=self._clock())
        followed.copy_of = copy_of
        # Saved empty, here: a life written, copied and emptied while we were stopped is looked
        # for in a copy made since, as for a file this process found empty.
        followed.looked_at = saved is not None and saved.fingerprint_bytes == 0
        self.files[identity] = followed
        if copy_of is None:
            self._save(followed)  # the file's key is on disk before any of its lines is handed
        self._log.info("source_opened", path=path, offset=followed.offset, size=info.st_size)
        return followed

    def _own_checkpoint(
        self,
        saved: FileCheckpoint | None,
        path: str,
        fd: int,
        size: int,
        gone: dict[Identity, FileCheckpoint],
    ) -> FileCheckpoint | None:
        """``saved``, the checkpoint saved for the inode of ``fd`` (at ``path``), if it is this
        file's."""
        if saved is None or Identity(saved.device, saved.inode) in gone:
            return None  # gone: its inode was found holding another file (_finish_orphans)
        if _empty_elsewhere(saved, path):
            return None
        told = saved.fingerprint_bytes and _begins_and_goes_on_as(fd, size, *_known_life(saved))
        gone_copy = None if told else _copy_of_gone(fd, path, size, gone)
        if not told and (
            (gone_copy is not None and _seen_end(gone_copy) >= _seen_end(saved))
            or self._copied_from(fd, path, size) is not None
        ):
            # The inode was freed and taken by a copy of a file we know (other first bytes, or
            # other last bytes where it holds them: lives that begin alike); or it was empty
            # when saved (a copy copy-truncate had just begun) and its first bytes are now a
            # file's we read: that file's checkpoint goes on in it. (Not one seen less far
            # than this inode's own file, which was rather rewritten since: a copy of every
            # life read while it held only a banner begins as a file with that banner.)
            return None
        if saved.fingerprint_bytes and size == 0 and self._sibling_followed(path):
            # Emptied since, at a rotated name beside a file followed: rather a copy begun in
            # an inode used again (the checkpoint's file deleted) than that file truncated.
            return None
        if told and self._copy_past_what_was_known(fd, path, size, saved):
            return None
        return saved

    def _copy_past_what_was_known(
        self, fd: int, path: str, size: int, saved: FileCheckpoint
    ) -> bool:
        """``fd`` (``size`` bytes), at a rotated name, holds what the live file holds (as it
        is followed, or as it is at its path, or as a checkpoint of it gone saw it), past the
        last bytes ``saved`` knew of its life: a copy of that file made in the inode used
        again (the checkpoint's file deleted), not that file, when the two lives begin alike
        (a banner) as far as ``saved`` knew. (Rotation never makes the live file a copy of a
        rotated one.)"""
        directory, name = os.path.split(path)
        live = os.path.join(directory, _rotation_stem(name))
        if live == path or size <= _seen_end(saved):
            return False
        original = self._copied_from(fd, path, size)
        if (
            original is not None
            and original.left_paths_at is None
            and _in_the_making_of(original.fd, fd, size)
        ):
            return True
        return _starts_the_file_at(live, fd, size) or self._holds_a_life_seen_further(
            fd, path, size, saved
        )

    def _holds_a_life_seen_further(
        self, fd: int, path: str, size: int, saved: FileCheckpoint
    ) -> bool:
        """``fd`` holds all that was seen of another live file's life, seen further than
        ``saved``'s: that file's copy (in the inode used again), the live file gone since."""
        try:
            rows = self._store.followed_files()
        except sqlite3.Error:
            return False
        return any(
            (row.device, row.inode) != (saved.device, saved.inode)
            and _seen_end(row) > _seen_end(saved)
            and os.path.dirname(row.path) == os.path.dirname(path)
            and _rotation_stem(os.path.basename(row.path)) == os.path.basename(row.path)
            and _named_as_rotation_of(path, row.path)
            and row.fingerprint_bytes > 0
            and _holds_all_seen(fd, size, row)
            for row in rows
        )

    def _note_compressed(self, path: str, fd: int, gone: dict[Identity, FileCheckpoint]) -> None:
        """A compressed file the patterns match is not read. At the very first start it is
        history: said once a run. Later, once per file: quiet when it is a file we hold open
        or read to its end, ``source_compressed_unread`` when it holds more than we read of it,
        ``source_skipped`` when its first bytes are none we know."""
        if self._start_at_end:
            self._report_once(path, "compressed", "compressed; rotated files are not read")
            return
        info = os.fstat(fd)
        if _compressed_file(info) in self._compressed_seen or info.st_size == 0:  # being written
            return
        self._mark_compressed_seen(_compressed_file(info))
        live = os.path.join(os.path.dirname(path), _rotation_stem(os.path.basename(path)))
        if not self._report_compressed(live, path, fd, gone, newer=False):
            self._warn_compressed(live, path, fd, None, skipped=True)

    def _starts_as_a_file_read(self, fd: int, size: int, among: set[Identity]) -> bool:
        """The first bytes of ``fd`` are those of a file followed (of ``among``), or of a file
        closed once read, or of a followed file's life before a truncation, read as far as
        ``fd`` goes (one longer holds more of that life, unread: ``_read_of_a_life_closed``)."""
        head = os.pread(fd, min(size, FINGERPRINT_BYTES), 0)
        followed = any(
            _fingerprint_of(f.fingerprint, head)
            and _may_hold_life(fd, size, f.tail, f.offset)
            and not self._unread_and_gone_past(f.identity, fd, size)
            for f in self.files.values()
            if f.identity in among
        )
        return followed or 0 < size <= self._read_of_a_life_closed(fd, size)

    def _read_of_a_life_closed(self, fd: int, size: int) -> int:
        """How far the life ``fd`` is a copy of (its first bytes, its last bytes seen) was read,
        of the files closed once read and the lives before a truncation; 0 if none."""
        head = os.pread(fd, min(size, FINGERPRINT_BYTES), 0)

        def holds(tail: Tail, read: int) -> bool:
            return _may_hold_life(fd, size, tail, read)

        return min(max(self._past_reads(head, holds=holds), default=0), size)

    def _past_reads(
        self,
        head: bytes,
        *,
        history: bool = False,
        holds: Callable[[Tail, int], bool] = lambda _tail, _read: True,
    ) -> list[int]:
        """How far files no longer followed were read, of those that began with ``head``:
        closed once read to their end (their size then), or lives before a truncation; and
        with ``history``, the rotated files found at the very first start (as if read).
        ``holds``: whether the file asked about may hold one's last bytes seen (given them and
        how far that life was read); those it does not are other lives that began alike."""
        tables = (self._retired, self._history) if history else (self._retired,)
        return [
            size
            for table in tables
            for (_, fingerprint, tail), size in table.items()
            if _fingerprint_of(fingerprint, head) and holds(tail, size)
        ]

    def _read_before(self, identity: Identity, saved: FileCheckpoint) -> None:
        """A gone file's checkpoint: how far it was read is known at once, and on disk before
        a file that takes its inode in this look saves its own checkpoint over the row (a
        crash before the next save would lose it; the row itself goes at that save)."""
        if saved.fingerprint_bytes:
            fingerprint, tail = _known_life(saved)
            _remember(self._retired, (identity, fingerprint, tail), saved.offset)
            with contextlib.suppress(sqlite3.Error):  # else with the next save_checkpoints
                self._store.keep_read([_read_as_saved(saved)], keep_at_most=MAX_RETIRED)

    def remember_life(
        self,
        identity: Identity,
        fingerprint: Fingerprint,
        offset: int,
        *,
        history: bool = False,
        tail: Tail = NO_TAIL,
    ) -> None:
        """A followed file's past life (before a truncation), read up to ``offset``, its last
        bytes seen ``tail``: its compressed copy, found later (after a restart too), is not
        named for what was read. ``history``: a rotated file at the very first start, as if
        read to its end."""
        if fingerprint.length:
            table = self._history if history else self._retired
            _remember(table, (identity, fingerprint, tail), offset)
            life = RetiredFile(
                identity.device, identity.inode, fingerprint.digest, fingerprint.length, offset,
                history=history, tail=tail.encode(),
            )  # fmt: skip
            self._lives_unsaved.append(life)

    def _mark_compressed_seen(self, compressed: CompressedFile) -> None:
        _remember(self._compressed_seen, compressed, None)

    def _siblings(self, path: str) -> Iterator[FollowedFile]:
        """Followed files beside ``path`` whose names share its rotation stem, or whose dated
        rotation keeping the extension ``path`` is named as (app-20261129.log of app.log)."""
        directory, name = os.path.split(path)
        stem = _rotation_stem(name)
        for followed in self.files.values():
            other_directory, other = os.path.split(followed.path)
            if (
                other != name
                and other_directory == directory
                and (_rotation_stem(other) == stem or _dated_keeping_extension(name, other))
            ):
                yield followed

    def _sibling_followed(self, path: str) -> bool:
        """``path`` is named as rotation names a file followed beside it (``app.log.1``,
        ``app-20261129.log``)."""
        name = os.path.basename(path)
        rotated = _rotation_stem(name) != name
        return any(
            rotated or _dated_keeping_extension(name, os.path.basename(followed.path))
            for followed in self._siblings(path)
        )

    def _copied_from(self, fd: int, path: str, size: int) -> FollowedFile | None:
        """The followed file ``path`` is a rotation's copy of: a name that extends the
        original's, and the original's first bytes as we read them (its fingerprint) or as
        they are now (rewritten since, not read yet); a copy still being written may hold
        fewer of them than a fingerprint."""
        if size == 0:
            return None
        # The file at its path first: rotation copies that one, and a copy still being written
        # may hold no more than the first bytes every life begins with (a banner). Of several
        # whose last bytes seen it holds (lives that begin alike), the one it holds furthest:
        # it holds the others' first bytes too.
        best: tuple[int, FollowedFile] | None = None
        for followed in sorted(self._siblings(path), key=lambda f: not _at_its_path(f)):
            name = os.path.basename(followed.path)
            if _rotation_stem(name) != name:
                continue  # rotation copies the live file, never a rotated one (app.log.1)
            fingerprint = followed.fingerprint
            as_read = 0 < fingerprint.length <= size and fingerprint.matches(fd)
            holds = followed.tail.verdict(size, _pread(fd)) if as_read else None
            if as_read and holds:
                # Holds what we saw of it too, up to its size: a copy
                told = max(m.end for m in followed.tail.marks if m.end <= size)
                if best is None or told > best[0]:
                    best = (told, followed)
                continue
            if best is not None:
                continue
            if as_read and holds is not None:
                as_read = False  # another life that begins alike (a banner), or its next
            elif as_read and not followed.tail.holds(followed.fd):
                # The original lost that life (truncated): its copy is complete and holds the
                # lines read, unless it ends before them (another life that begins alike)
                as_read = _may_hold(None, followed.tail, size, followed.offset)
            as_now = _same_first_bytes(followed.fd, fd, min(size, FINGERPRINT_BYTES))
            if as_now and (_ends_otherwise(followed.fd, fd, size) or followed.size() < size):
                # Begins as the file does now, not a copy of it (one is no longer than the file,
                # and ends as it does there): another life alike. (A copy of the life we read
                # may be longer: told by its first bytes and the last bytes we read, above.)
                continue
            if as_read or as_now:
                return followed
        return None if best is None else best[1]

    def _open(self, path: str) -> int | None:
        now = self._clock()
        retry = self._retry_at.get(path)
        if retry is not None and now < retry[0]:
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            delay = RETRY_MIN_SECONDS if retry is None else min(retry[1] * 2, RETRY_MAX_SECONDS)
            self._retry_at[path] = (now + delay, delay)
            if retry is None:
                self._log.error(
                    "source_error",
                    stage="source",
                    path=path,
                    error=exc.strerror or str(exc),
                    retry_seconds=delay,
                )
            return None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced between stat and open
            os.close(fd)
            return None
        self._retry_at.pop(path, None)
        return fd

    def _finish_orphans(
        self,
        reachable: dict[Identity, tuple[str, FileSource]],
        reader: _Reader,
        *,
        only: set[Identity] | None = None,
    ) -> dict[Identity, FileCheckpoint]:
        """At start: checkpoints of files that left their path while we were stopped are
        finished where rotation put them, with the files rotation made after them that we
        never saw (``only``: of those files, not followed, rotated since the listing).
        Returns the checkpoints whose file is gone."""
        found: list[tuple[FileCheckpoint, FileSource, int, str]] = []
        gone: dict[Identity, FileCheckpoint] = {}
        for saved in self._store.followed_files():
            identity = Identity(saved.device, saved.inode)
            if only is not None and (identity not in only or identity in self.files):
                continue
            if identity in reachable and not self._taken_by_another(saved, reachable[identity][0]):
                continue
            source = self._source_reaching(saved.path)
            if source is None:
                continue  # not configured now; kept in case the source comes back
            rotated = self._find_rotated(saved, source)
            if rotated is None:
                gone[identity] = saved
                self._read_before(identity, saved)
            else:
                found.append((saved, source, *rotated))
        former = dict(gone)  # the rows as they were: a copy that continues one takes it out
        for saved, source, fd, path in found:
            identity = Identity(saved.device, saved.inode)
            followed = FollowedFile(fd, identity, saved, source, now=self._clock())
            followed.left_paths_at = self._clock()
            self.files[identity] = followed
            self._log.info("source_rotated", path=saved.path, new_path=path, offset=saved.offset)
            reader.read(followed)
            self._follow_missed_generations(
                saved.path, saved.mtime_ns, source, gone, reader, former=former
            )
        for saved in list(gone.values()):  # deleted or compressed: what rotation made after it
            source = self._source_reaching(saved.path)
            if source is not None and Identity(saved.device, saved.inode) in gone:
                self._follow_missed_generations(
                    saved.path, saved.mtime_ns, source, gone, reader, former=former
                )
        return gone

    def _unread_and_gone_past(self, identity: Identity, fd: int, size: int) -> bool:
        """``identity`` is a file followed of which nothing was read yet, and ``fd`` goes on
        past it otherwise: no copy of it to be read from its offset (a file only grows until
        truncated, and nothing of it was read to lose), but lines new to us either way (a
        rotated banner-only life's late lines, beside a new file with the banner alone)."""
        followed = self.files.get(identity)
        return (
            followed is not None
            and followed.read_end == 0
            and _holds_what_the_original_lost(fd, size, followed)
        )

    def _life_known_of(
        self, saved: FileCheckpoint, fd: int, size: int
    ) -> tuple[Fingerprint, Tail, int] | None:
        """What is known of the life of ``saved``'s file: its row, or, for a file followed
        that left its path, as read since (its row may be older). None: ``fd`` goes on past
        where that file was read with bytes it does not hold there: no copy to be read when
        its truncation is seen (its last read, as it left, saw none), but lines never read (a
        life read while it held only a banner, deleted, the next renamed away unseen)."""
        followed = self.files.get(Identity(saved.device, saved.inode))
        if followed is None or followed.left_paths_at is None:
            return (*_known_life(saved), saved.offset)
        if _holds_what_the_original_lost(fd, size, followed):
            return None
        return (followed.fingerprint, followed.tail, followed.offset)

    def _taken_by_another(self, saved: FileCheckpoint, path: str) -> bool:
        """The inode of ``saved``, now at ``path``, is another file: under another name, with
        other first bytes or shorter than what was read (freed while we were stopped and taken
        by, say, a gzipped copy or the next copy-truncate's copy). At its own path the file may
        just have been truncated: its first read sees to that; not at a rotated name, though
        (rotation truncates no rotated file: app.log.1 shorter than its row is the next copy
        made there, rotation having moved that file on and deleted it)."""
        if _truncated_there_maybe(saved, path):
            return False
        if saved.fingerprint_bytes == 0:
            return _empty_elsewhere(saved, path)
        fd = self._open(path)
        if fd is None:
            return False
        try:
            return _compressed(path, fd) or not _renamed_and_still_the_same(fd, saved)
        finally:
            os.close(fd)

    def _missed_candidates(
        self,
        path: str,
        since_ns: int,
        source: FileSource,
        *,
        former: dict[Identity, FileCheckpoint] | None,
        again: bool,
        unreached: bool = False,
    ) -> list[tuple[int, str, Identity, bool, FileCheckpoint | None]]:
        """(mtime, name, identity, newer than ``since_ns``, its saved checkpoint) of the files
        rotation may have made of ``path`` that we do not know, oldest first (``unreached``:
        only those the patterns do not reach, the others being followed on their own)."""
        missed = []
        for candidate in _rotation_candidates(path, source):
            if candidate == path or not _named_as_rotation_of(candidate, path):
                continue  # in rotated_paths, another file's rotations (olddir/web.log.1)
            if unreached and self._matches_pattern(candidate):
                continue
            if _rotation_stem(os.path.basename(candidate)) != _rotation_stem(
                os.path.basename(path)
            ) and (self._source_reaching(candidate) or _dated_of_another(candidate, path)):
                # Dated before its extension and in the patterns: followed on its own (a live
                # app-2026.log beside app.log, never a generation of it; a copy of app.log so
                # named is known by its first bytes). Or the rotation of a file beside ``path``
                # whose name it extends further (old/app-2026-20261129.log is app-2026.log's).
                continue
            info = self._stat_regular(candidate)
            if info is None:
                continue
            identity = Identity(info.st_dev, info.st_ino)
            newer = info.st_mtime_ns > since_ns or _saved_empty(former, identity)
            if not newer and not candidate.endswith(COMPRESSED_SUFFIXES):
                continue  # read before (a compressed one may hold what a gone one had unread)
            if again and _compressed_file(info) in self._compressed_seen:
                continue  # a compressed file looked at before: a search at every poll is cheap
            if again and candidate.endswith(COMPRESSED_SUFFIXES) and info.st_size > 0:
                self._mark_compressed_seen(_compressed_file(info))
            if identity in self.files or self._unchanged_since_retired(identity, candidate):
                continue
            row = self._store.checkpoint_of(identity.device, identity.inode)
            compressed = candidate.endswith(COMPRESSED_SUFFIXES)
            if (
                row is not None
                and not compressed
                and (former is None or identity not in former)
                and self._describes(row, candidate)
            ):
                continue  # a file we know by its own checkpoint (a compressed file is known by
                # its first bytes, and a checkpoint of a gone file whose inode this one took
                # describes another)
            missed.append((info.st_mtime_ns, candidate, identity, newer, row))
        return sorted(missed, key=lambda found: found[:2])

    def _describes(self, saved: FileCheckpoint, path: str) -> bool:
        fd = self._open(path)
        if fd is None:
            return True  # gone again: nothing to read there
        try:
            return _still_the_same(fd, saved, os.fstat(fd).st_size)
        finally:
            os.close(fd)

    def _remember_history(self, reachable: dict[Identity, tuple[str, FileSource]]) -> None:
        """At the very first start, the rotated files of each live path that no pattern
        reaches are history: each is remembered as a file read to its end, as if followed and
        closed, so that a later search for missed generations never reads one from its start
        once a late writer or ``touch`` makes it look newer (only what is added is read)."""
        live_paths = [*reachable.values(), *self._live_paths_absent(reachable)]
        for path, source in live_paths:
            if _rotation_stem(os.path.basename(path)) != os.path.basename(path):
                continue
            for candidate in _rotation_candidates(path, source):
                try:
                    info = os.stat(candidate)
                except OSError:
                    continue
                rotated = Identity(info.st_dev, info.st_ino)
                if (
                    not stat.S_ISREG(info.st_mode)
                    or info.st_size == 0
                    or rotated in reachable
                    or not _named_as_rotation_of(candidate, path)
                ):
                    continue
                fd = self._open(candidate)
                if fd is None:
                    continue
                try:
                    if _identity(fd) != rotated:
                        continue
                    if _compressed(candidate, fd):
                        self._remember_compressed_history(rotated, fd)
                    elif not _starts_the_file_at(path, fd, os.fstat(fd).st_size):
                        # (one the live file begins with is its copy, maybe in the making
                        # (copy-truncate under way): known as one by its first bytes, not
                        # history, which a late writer's lines would be read on from)
                        size = os.fstat(fd).st_size
                        fingerprint = Fingerprint.of(fd, min(size, FINGERPRINT_BYTES))
                        tail = Tail.at(fd, size)
                        self.remember_life(rotated, fingerprint, size, history=True, tail=tail)
                finally:
                    os.close(fd)
        # Saved now, as a file's first checkpoint is: a start after a crash before the first
        # save is no first start; knowing no history, it would read it whole as missed.
        history = [life for life in self._lives_unsaved if life.history]
        if history:
            with contextlib.suppress(sqlite3.Error):  # else with the next save_checkpoints
                self._store.keep_read(history, keep_at_most=MAX_RETIRED)
                self._lives_unsaved = [life for life in self._lives_unsaved if not life.history]

    def _live_paths_absent(
        self, reachable: dict[Identity, tuple[str, FileSource]]
    ) -> list[tuple[str, FileSource]]:
        """Paths the patterns would reach that no file is at, whose rotated files are there
        (beside them, or in ``rotated_paths``): app.log rotated away, the next not written yet.
        Their rotated files are history all the same. (Not under a ``**`` pattern.)"""
        present = {path for path, _ in reachable.values()}
        absent: dict[str, FileSource] = {}
        for source in self._sources:
            for given in source.paths:
                pattern = os.path.abspath(given)
                if "**" in pattern:
                    continue
                rotated = [
                    name
                    for directory in glob.glob(os.path.dirname(pattern))
                    for name in _listed(directory)
                ]
                rotated += [
                    os.path.basename(path)
                    for rotated_pattern in source.rotated_paths
                    for path in glob.glob(rotated_pattern)
                ]
                for directory in glob.glob(os.path.dirname(pattern)):
                    for name in rotated:
                        live = os.path.join(directory, _rotation_stem(name))
                        if (
                            _rotation_stem(name) != name
                            and live not in present
                            and _pattern_matches(pattern, live)
                            and not _excluded(live, source)
                            and not os.path.lexists(live)
                        ):
                            absent.setdefault(live, source)
        return list(absent.items())

    def _remember_compressed_history(self, identity: Identity, fd: int) -> None:
        """A compressed rotated file at the very first start is history too, by what it
        holds (its first bytes, its trailer's size, its last bytes within GZIP_TAIL_MAX):
        quiet when a later search finds it, though a backup tool or ``touch`` made it look
        newer than the last read."""
        head = _gzip_head(fd, FINGERPRINT_BYTES)
        size = _gzip_size(fd)
        if head and size is not None:
            fingerprint = Fingerprint(len(head), _digest(head))
            tail = _Unzipped(fd, size).tail()
            self.remember_life(identity, fingerprint, size, history=True, tail=tail)

    def _follow_listed_and_rotated(
        self,
        identity: Identity,
        path: str,
        source: FileSource,
        gone: dict[Identity, FileCheckpoint],
        reader: _Reader,
    ) -> None:
        """A file with no checkpoint, listed at ``path`` and renamed by rotation before it was
        opened (a file new since the last look, under a stalled process or rotation faster
        than the looks): followed where rotation put it, from its start, as a missed
        generation, before the file now at ``path``. At a start, with the generations rotation
        made before it since the last run; a name the patterns reach is left to its own look."""
        if _rotation_stem(os.path.basename(path)) != os.path.basename(path):
            return  # a rotated name the patterns matched, renamed on: its new name is too
        if self._starting and self._last_run_ns is not None:
            self._follow_missed_generations(
                path, self._last_run_ns, source, gone, reader, again=True, unreached=True
            )
        if identity in self.files:
            return
        for candidate in _rotation_candidates(path, source):
            info = self._stat_regular(candidate)
            if (
                candidate == path
                or info is None
                or Identity(info.st_dev, info.st_ino) != identity
                or self._matches_pattern(candidate)
            ):
                continue
            fd = self._open(candidate)
            if fd is None:
                return
            if _identity(fd) != identity or _compressed(candidate, fd):
                os.close(fd)
                return
            size = os.fstat(fd).st_size
            offset = size if self._start_at_end and source.start_at == "end" else 0
            checkpoint = _first_checkpoint(fd, identity, path, offset, size)
            self._follow_generation(fd, checkpoint, source, candidate, reader)
            return

    def _follow_generation(
        self, fd: int, checkpoint: FileCheckpoint, source: FileSource, at: str, reader: _Reader
    ) -> None:
        """A generation of ``checkpoint.path`` rotation put at ``at``, found by a search:
        followed until idle, read now (its lines before those of later generations)."""
        identity = Identity(checkpoint.device, checkpoint.inode)
        followed = FollowedFile(fd, identity, checkpoint, source, now=self._clock())
        followed.left_paths_at = self._clock()
        self.files[identity] = followed
        self._save(followed)
        self._log.info("source_missed_generation", path=checkpoint.path, rotated_to=at)
        reader.read(followed)

    def _follow_missed_generations(
        self,
        path: str,
        since_ns: int,
        source: FileSource,
        gone: dict[Identity, FileCheckpoint],
        reader: _Reader,
        *,
        former: dict[Identity, FileCheckpoint] | None = None,
        again: bool = False,
        unreached: bool = False,
    ) -> None:
        """Files rotation made of ``path`` after the one that just left it, while we were not
        looking (stopped, or slower than rotation): beside it or in ``rotated_paths``, newer
        than our last read of that one, and unknown to us. Read from 0, then closed. One whose
        inode a saved checkpoint had (``former``: truncated and rewritten, then renamed) gets
        the key a truncated file's next life gets, so lines read before a crash keep their ids.
        ``again``: the one that left is still held, searched after at every look (a compressed
        file is then looked at once)."""
        if _rotation_stem(os.path.basename(path)) != os.path.basename(path):
            # A rotated name the patterns matched (app.log.2 under app.log*): what rotation
            # makes is the live file's generations, found for it or by the patterns, each
            # under its own path.
            return
        for _ in range(SEARCHES_WHILE_ROTATED):
            if not self._follow_missed(
                path, since_ns, source, gone, reader, former=former, again=again,
                unreached=unreached,
            ):  # fmt: skip
                return

    def _follow_missed(
        self,
        path: str,
        since_ns: int,
        source: FileSource,
        gone: dict[Identity, FileCheckpoint],
        reader: _Reader,
        *,
        former: dict[Identity, FileCheckpoint] | None,
        again: bool,
        unreached: bool,
    ) -> bool:
        """One search of ``_follow_missed_generations``; returns whether a file listed was at
        its name no more when opened (rotation renamed them meanwhile: search again)."""
        moved = False
        # Two generations may begin alike (lines without a time): one found in this search
        # is no file read before
        followed_before = set(self.files)
        missed = self._missed_candidates(
            path, since_ns, source, former=former, again=again, unreached=unreached
        )
        for _, candidate, identity, newer, row in missed:
            if identity in self.files:
                continue  # another name of a file followed now (a hard link)
            fd = self._open(candidate)
            if fd is None:
                moved = moved or not self._at(candidate, identity)  # renamed on since listed
                continue
            if _identity(fd) != identity:
                os.close(fd)
                moved = True
                continue
            if _compressed(candidate, fd):
                if os.fstat(fd).st_size > 0:  # empty: logrotate is still writing it
                    self._report_compressed(path, candidate, fd, gone, newer=newer)
                os.close(fd)
                continue
            if not newer:
                os.close(fd)
                continue
            size = os.fstat(fd).st_size
            if (
                size == 0
                or self._copy_of_file_at(path, fd, size, gone, followed_before, at=candidate)
                or (
                    (again or _saved_empty(former, identity))
                    and self._starts_as_a_file_read(fd, size, followed_before)
                )
            ):
                # Empty: no line to miss (a copy copy-truncate has just begun, say; followed
                # now it would read that copy's lines as its own). A copy: read from the live
                # file's checkpoint once its truncation is seen. Searching again: a file whose
                # first bytes we read (a copy-truncate copy of a life read before) is no
                # generation we missed.
                os.close(fd)
                continue
            # Followed and closed before, written since by a late writer: read on from there;
            # searching again, a copy of a life read, holding more of it: read on from there.
            closed_at = min(self._closed_at(identity, fd) or 0, size)
            if not closed_at and (again or _saved_empty(former, identity)):
                closed_at = self._read_of_a_life_closed(fd, size)
            checkpoint = _first_checkpoint(fd, identity, path, closed_at, size)
            predecessor = _copy_of_gone(fd, candidate, size, gone, source.rotated_paths)
            if predecessor is not None:  # a copy of a file gone meanwhile: it takes its place
                checkpoint = self._continue(predecessor, identity, path, size, gone)
            elif former is not None and identity in former:
                key = _pending(former[identity].file_key)
                checkpoint = dataclasses.replace(checkpoint, file_key=key)
            elif (saved := _saved_at(row, identity, path, gone)) is not None:
                # The file we followed at ``path``, emptied and written anew since, then
                # renamed: its checkpoint goes on, so that its first read sees the truncation
                # and reads what we had not read of its last life from that life's copy.
                checkpoint = dataclasses.replace(saved, path=path)
            self._follow_generation(fd, checkpoint, source, candidate, reader)
        return moved

    def _report_compressed(
        self,
        path: str,
        compressed: str,
        fd: int,
        gone: dict[Identity, FileCheckpoint],
        *,
        newer: bool,
    ) -> bool:
        """A compressed generation of ``path``: compressed files are not read, so whatever only
        it holds is named, never skipped without a word. Its first bytes tell whose it is: a
        file we still hold open (read there: nothing to say); a file we read up to an offset
        and can no longer read (gone, or its inode now another file's): the lines after that
        offset, if it holds more (its gzip trailer's size; logrotate keeps the time, so a file
        still being copied or read in slices when we stopped looks no newer); or, ``newer``
        than our last read, none we know: a generation never read. Returns whether it holds
        nothing or its first bytes are a file we read."""
        mtime_ns = os.fstat(fd).st_mtime_ns
        head = _gzip_head(fd, FINGERPRINT_BYTES)
        if head == b"" and _gzip_size(fd) == 0:
            return True  # holds no line (the compressed copy of an empty file)
        if head is None:
            if newer:
                self._warn_compressed(path, compressed, fd, None)
            return False
        read: list[tuple[int, int]] = []  # (offset, mtime_ns) of each read of these first bytes
        packed = (_gzip_size(fd), mtime_ns)

        unzipped = _Unzipped(fd, packed[0])

        def holds(tail: Tail, read: int) -> bool:
            return _may_hold(unzipped.holds(tail), tail, packed[0], read)

        def copy_of(fingerprint: Fingerprint, tail: Tail, read: int) -> bool:
            """Its first bytes, and its last bytes seen as far as it holds them (lives that
            begin alike: a banner)."""
            return _fingerprint_of(fingerprint, head) and holds(tail, read)

        for followed in self.files.values():
            if _compressed_from(followed.fd, head, *packed):
                return True  # a file held open, written anew since our last read: read there
            if copy_of(followed.fingerprint, followed.tail, followed.offset):
                if (
                    followed.unchanged()
                    and not _holds_more(packed[0], followed.fd)
                    and not unzipped.tail().changed(followed.fd, followed.size())
                ):
                    return True  # open, holding those bytes (its last ones too): read there
                read.append((followed.offset, followed.mtime_ns))
                if self._compressed_copies is not None:
                    self._compressed_copies.append((followed.identity, compressed))
        # Gone files, and saved checkpoints of files not opened yet in this start (a file
        # truncated since, whose copy this is: its row says how far that copy was read).
        try:
            saved_rows = [*gone.values(), *self._store.followed_files()]
        except sqlite3.Error:
            saved_rows = list(gone.values())
        read += [
            (saved.offset, saved.mtime_ns)
            for saved in saved_rows
            if copy_of(*_known_life(saved), saved.offset)
        ]
        past = self._past_reads(head, history=True, holds=holds)
        read += [(at, mtime_ns) for at in past]
        if read:
            offset, read_mtime_ns = max(read)
            if _holds_unread(fd, offset, mtime_ns, read_mtime_ns):
                self._warn_compressed(path, compressed, fd, offset)
            return True
        if newer or _dated_as_a_life_seen_empty(gone, mtime_ns):
            self._warn_compressed(path, compressed, fd, None)
        return False

    def _warn_compressed(
        self, path: str, compressed: str, fd: int, offset: int | None, *, skipped: bool = False
    ) -> None:
        """Name a compressed file once a run (for each offset): as a generation never read,
        as one read up to ``offset``, or (``skipped``: the patterns match it, its first bytes
        are none we know) as a compressed file not read."""
        named = (_compressed_file(os.fstat(fd)), offset)
        if named in self._named_compressed:
            return  # found again in the same run (the copy left, then its original's truncation)
        _remember(self._named_compressed, named, None)
        if named in self._named_before:
            return  # by a run before, maybe under another name (renamed by rotation since)
        with contextlib.suppress(sqlite3.Error):
            self._store.remember_compressed_named(*named, keep_at_most=MAX_RETIRED)
        if skipped:
            self._log.warning(
                "source_skipped", path=compressed, reason="compressed; rotated files are not read"
            )
            return
        if offset is None:
            detail = (
                "a generation rotation made and compressed before the watcher read it: "
                "compressed files are not followed, so its lines are not emitted "
                "(`authz-watcher scan` reads it)"
            )
        else:
            detail = (
                "rotation compressed this file before the watcher read it to its end: "
                "the lines written after `offset` are only in the compressed file and are not "
                "emitted (`authz-watcher scan` reads it, the lines before `offset` again)"
            )
        self._log.warning(
            "source_compressed_unread", path=path, compressed=compressed, offset=offset,
            detail=detail,
        )  # fmt: skip

    def _copy_of_file_at(
        self,
        path: str,
        fd: int,
        size: int,
        gone: dict[Identity, FileCheckpoint],
        followed_before: set[Identity],
        *,
        at: str,
    ) -> bool:
        """Whether ``fd`` (at ``at``) has the first bytes of the file now at ``path``
        (or at the live name ``path`` is a rotation of) as we know it (followed, or saved), or
        as it is: a copy copy-truncate made of that file, or is still making (one shorter than
        any fingerprint), not a generation of its own."""
        directory, name = os.path.split(path)
        places = {path, os.path.join(directory, _rotation_stem(name))}
        known = [
            (f.identity, (f.fingerprint, f.tail, f.offset))
            for f in self.files.values()
            if f.left_paths_at is None and f.path in places
        ]
        for place in places:
            with contextlib.suppress(OSError):
                info = os.stat(place)
                saved = self._store.checkpoint_of(info.st_dev, info.st_ino)
                if saved is not None:
                    identity = Identity(info.st_dev, info.st_ino)
                    known.append((identity, (*_known_life(saved), saved.offset)))
        with contextlib.suppress(sqlite3.Error):
            # Saved as at that path and not gone: listed there at this look, not opened yet
            # (renamed away since, a copy of it made before: that copy is no generation). Not
            # a generation found in this search, saved under the path it was made of.
            for saved in self._store.followed_files():
                identity = Identity(saved.device, saved.inode)
                found_now = identity in self.files and identity not in followed_before
                if saved.path in places and identity not in gone and not found_now:
                    life = self._life_known_of(saved, fd, size)
                    if life is not None:
                        known.append((identity, life))
        # (One shorter than a life read and holding none of its last marks is told by its first
        # bytes alone, a banner's maybe: not that life's copy. Still being made, it begins as
        # the file at ``path`` does now: below.)
        if any(
            0 < head.length <= size
            and head.matches(fd)
            and _may_hold_life(fd, size, tail, read)
            and not self._unread_and_gone_past(identity, fd, size)
            and not self._rotated_away_before(identity, at)  # (last: it lists the names)
            for identity, (head, tail, read) in known
        ):
            return True
        return any(_starts_the_file_at(place, fd, size) for place in places)

    def _rotated_away_before(self, identity: Identity, candidate: str) -> bool:
        """The file ``identity`` is followed under a rotated name older than ``candidate``'s
        (app.log.2 against app.log.1): it had left the live path when ``candidate`` got its
        name. A copy of a life is made while its file is at the live path and rotated on
        with it since, so it is always under an older name than that file: ``candidate`` is
        a later life (lives alike line for line: the same denial at every run)."""
        followed = self.files.get(identity)
        other = _rotation_number(candidate)
        if followed is None or other is None:
            return False
        for name in _rotation_candidates(candidate, followed.source):
            own = _rotation_number(name)
            if own is not None and own > other and _identity_at(name) == identity:
                return os.path.dirname(name) == os.path.dirname(candidate)
        return False

    def _continue(
        self,
        predecessor: FileCheckpoint,
        identity: Identity,
        path: str,
        size: int,
        gone: dict[Identity, FileCheckpoint],
    ) -> FileCheckpoint:
        """The checkpoint of a gone file, carried over to its copy (same offsets, same key)."""
        original = Identity(predecessor.device, predecessor.inode)
        del gone[original]
        if original not in self.files:  # else its row is the next life's, followed now
            with contextlib.suppress(sqlite3.Error):
                self._store.forget_file(predecessor.device, predecessor.inode)
        self._log.info("source_copy_continued", path=path, original=predecessor.path)
        carried = dataclasses.replace(
            predecessor,
            device=identity.device,
            inode=identity.inode,
            path=path,
            offset=min(predecessor.offset, size),
        )
        tail = Tail.decode(predecessor.tail)
        if tail.end > size:  # copied before those bytes were written: the marks within it
            kept = Tail(tuple(m for m in tail.marks if m.end <= size))
            carried = dataclasses.replace(carried, tail=kept.encode())
        return carried

    def _unchanged_since_retired(self, identity: Identity, path: str) -> bool:
        if all(retired != identity for retired, _, _ in (*self._retired, *self._history)):
            return False
        fd = self._open(path)
        if fd is None:
            return True
        try:
            return self._finished(identity, fd)
        finally:
            os.close(fd)

    def _finished(self, identity: Identity, fd: int) -> bool:
        """Read to its end and closed, and unchanged since (not an inode used again)."""
        size = os.fstat(fd).st_size
        fingerprint = Fingerprint.of(fd, min(size, FINGERPRINT_BYTES))
        return any(
            closed == identity and read == size and held == fingerprint
            and tail.verdict(size, _pread(fd)) is not False
            for (closed, held, tail), read in (*self._retired.items(), *self._history.items())
        )  # fmt: skip

    def _find_rotated(self, saved: FileCheckpoint, source: FileSource) -> tuple[int, str] | None:
        """The file of ``saved`` by identity, beside its old path or in ``rotated_paths``."""
        for path in _rotation_candidates(saved.path, source):
            try:
                info = os.stat(path)
            except OSError:
                continue
            if (info.st_dev, info.st_ino) != (saved.device, saved.inode):
                continue
            if _empty_elsewhere(saved, path) and not _untouched(info, saved):
                # Saved empty: nothing tells it from another file that took its inode (a
                # copy in the making, say); it is looked at as a generation we missed. Still
                # empty and untouched since, it is that file renamed: followed, so a writer
                # that still holds it is read.
                return None
            fd = self._open(path)
            if fd is None:
                return None
            if _identity(fd) != Identity(saved.device, saved.inode):
                os.close(fd)  # renamed on since the stat: maybe at a name further on
                continue
            size = os.fstat(fd).st_size
            if (
                not _compressed(path, fd)
                and (
                    _still_the_same(fd, saved, size)
                    if _truncated_there_maybe(saved, path)
                    else _renamed_and_still_the_same(fd, saved)
                )
                and not self._copy_past_what_was_known(fd, path, size, saved)
            ):
                return fd, path
            os.close(fd)  # the inode now holds another file (a copy that took it, say)
            return None
        return None

    def _still_reachable(self, followed: FollowedFile) -> bool:
        return followed.left_paths_at is not None or self._at(followed.path, followed.identity)

    def _at(self, path: str, identity: Identity) -> bool:
        try:
            info = os.stat(path)
        except OSError:
            return False
        return Identity(info.st_dev, info.st_ino) == identity

    def _rebuild_index(self) -> None:
        self._by_path = {}
        for followed in self.files.values():  # those that left are read at every poll anyway
            if followed.left_paths_at is None:
                self._by_path[followed.path] = followed.identity
                self._by_path[_real_path(followed)] = followed.identity
        self._directories = {os.path.dirname(path) for path in self._by_path}

    def _due(self, changed: set[str] | None) -> list[FollowedFile]:
        """Files to read now; those that left their path first, for each path's order."""
        if changed is None:
            due = list(self.files.values())
        else:
            wanted = {self._by_path[p] for p in changed if p in self._by_path}
            due = [
                f
                for f in self.files.values()
                if f.identity in wanted
                or f.more_pending
                or f.holding
                or f.left_paths_at is not None
            ]
        return sorted(due, key=_reading_order)

    def _close_idle(self, reader: _Reader) -> None:
        """Close files that left every configured path and have been idle long enough."""
        now = self._clock()
        for followed in list(self.files.values()):
            if followed.left_paths_at is None:
                continue
            idle_since = max(followed.left_paths_at, followed.last_growth)
            if now - idle_since < followed.source.rotate_wait_seconds:
                continue
            reader.read(followed, closing=True)
            if followed.more_pending or followed.last_growth > idle_since:
                continue  # the writer was still at it after all
            if followed.identity not in self._unsaved:  # else once its last lines are safe
                self._log.info("source_closed", path=followed.path, offset=followed.offset)
                self._drop(followed, forget=True)

    def _drop(self, followed: FollowedFile, *, forget: bool) -> None:
        if forget:
            self._retire(followed.identity, followed.fd)
        followed.close()
        self.files.pop(followed.identity, None)
        self._unsaved.pop(followed.identity, None)
        self._rebuild_index()

    def _retire(self, identity: Identity, fd: int) -> None:
        """Read to its end (every line of it saved) and closed: its checkpoint goes, and what
        it is stays known, in the state database too, so that no later search (after a
        restart either) takes it for a generation it missed while it is unchanged."""
        try:
            size = os.fstat(fd).st_size
        except OSError:
            with contextlib.suppress(sqlite3.Error):  # a stale row is forgotten at a restart
                self._store.forget_file(identity.device, identity.inode)
            return
        fingerprint = Fingerprint.of(fd, min(size, FINGERPRINT_BYTES))
        tail = Tail.at(fd, size)
        _remember(self._retired, (identity, fingerprint, tail), size)
        retired = RetiredFile(
            identity.device, identity.inode, fingerprint.digest, fingerprint.length, size,
            tail=tail.encode(),
        )  # fmt: skip
        with contextlib.suppress(sqlite3.Error):  # a stale row is forgotten at a restart
            self._store.retire_file(retired, keep_at_most=MAX_RETIRED)

    def _save(self, followed: FollowedFile) -> None:
        """Save now (a file's first checkpoint: its key on disk before any of its lines); if
        the database cannot take it, it goes with the next ``save_checkpoints``."""
        try:
            self._store.save_checkpoint(followed.checkpoint())
        except sqlite3.Error:
            self._unsaved[followed.identity] = followed

    def _report_once(self, path: str, problem: str, detail: str) -> None:
        if (path, problem) not in self._reported:
            self._reported.add((path, problem))
            self._log.warning("source_skipped", path=path, reason=detail)

    # -- copy-truncate -----------------------------------------------------------------------

    def finish_from_copy(
        self, followed: FollowedFile, reader: _Reader
    ) -> tuple[str | None, str | None]:
        """``followed`` was truncated: read what we had not read from the copy rotation left.
        Returns the copy's name (None when no copy was found) and, without one, the name of
        a compressed copy of it (named if it holds what we had not read)."""
        best, later = self._newest_copy(followed)
        if best is None:
            best = self._copy_in_hand_of(followed)
        # Its copy may be gone from every name (compressed) and still open; or a name holds a
        # shorter file that begins alike (the next life's copy, a banner) while the copy held
        # holds every last byte seen: that one.
        copies = [
            f
            for f in self.files.values()
            if f.copy_of == followed.identity
            and _may_hold_life(f.fd, f.size(), followed.tail, followed.offset)
        ]  # (not one written since with other lines: a rotated life that began alike)
        whole = [f for f in copies if f.size() >= followed.tail.end]
        if best is not None and whole and os.fstat(best[2]).st_size < followed.tail.end:
            os.close(best[2])
            best = (0, whole[-1].path, os.dup(whole[-1].fd))
        elif best is None and copies:
            best = (0, copies[-1].path, os.dup(copies[-1].fd))
        copy = None
        if best is not None:
            _, copy, fd = best
            rest = self._finish_from(followed, copy, fd, reader)
            if rest is not None and rest.more_pending:
                reader.read(rest)  # a slice now: older than the generations found below
        for path, fd in later:
            self.follow_later_life(followed, path, fd, reader)
        # Generations rotation made since our last read, while we were away: a second
        # copy-truncate's copy; with no copy of what we read, those after its inode was taken by
        # a new file (rename rotation, the old file deleted or compressed) or after a
        # copy-truncate whose copy was compressed. Read before the file's new life.
        # A generation read here can find another file's copy in turn (this runs again inside).
        outer, named = self._compressed_copies, list[tuple[Identity, str]]()
        self._compressed_copies = named
        try:
            self._follow_missed_generations(
                followed.path, followed.mtime_ns, followed.source, {}, reader
            )
        finally:
            self._compressed_copies = outer
            if outer is not None:
                outer.extend(named)
        found = [name for of, name in named if of == followed.identity]
        return copy, None if copy is not None or not found else found[0]

    def _newest_copy(
        self, followed: FollowedFile
    ) -> tuple[tuple[int, str, int] | None, list[tuple[str, int]]]:
        """(mtime_ns, path, fd) of the newest file named as a rotation of ``followed`` that
        begins as it does, and the later lives that began alike (``_search_copies``);
        searched again when rotation renames them meanwhile."""
        for _ in range(SEARCHES_WHILE_ROTATED):
            with contextlib.suppress(_RenamedWhileSearchedError):
                return self._search_copies(followed)
        return None, []

    def name_compressed_life(
        self, followed: FollowedFile, compressed: str, fd: int, *, offset: int | None = None
    ) -> None:
        """A compressed copy of a life of ``followed``'s file, not read: of the life read up
        to ``offset``, or (None) of a later life (``follow_later_life``)."""
        self._warn_compressed(followed.path, compressed, fd, offset)

    def follow_later_life(
        self, followed: FollowedFile, path: str, fd: int, reader: _Reader
    ) -> None:
        """``path`` (``fd``, taken over) holds a later life of ``followed``'s file that began
        as the life read did (a banner), copied by a later copy-truncate while we were away:
        never read, so read whole, before the life at the path now, as a generation missed."""
        info = os.fstat(fd)
        identity = Identity(info.st_dev, info.st_ino)
        if identity in self.files:
            os.close(fd)
            return
        closed_at = min(self._closed_at(identity, fd) or 0, info.st_size)
        checkpoint = _first_checkpoint(fd, identity, followed.path, closed_at, info.st_size)
        self._follow_generation(fd, checkpoint, followed.source, path, reader)

    @staticmethod
    def _copy_places(followed: FollowedFile) -> Iterator[str]:
        """Where a copy of ``followed`` may be: named after its path, or after the path it had
        before a rename seen since the copy was made (app-1.log.1 of app-1.log, renamed to
        app-1-20261129.log before its truncation was seen)."""
        seen = list(_rotation_candidates(followed.path, followed.source))
        yield from seen
        if followed.former_path is not None:
            for path in _rotation_candidates(followed.former_path, followed.source):
                if path not in seen and path != followed.former_path:
                    yield path

    def _search_copies(
        self, followed: FollowedFile
    ) -> tuple[tuple[int, str, int] | None, list[tuple[str, int]]]:
        """The newest copy; one that holds every last byte seen first: a life only grows, so
        a shorter one made since is another life's copy that begins alike (in the making).
        Several written since the read that hold all seen (all that was seen is what lives
        begin with, a banner): the copy of the life read is the oldest, and the others that
        went on otherwise are later lives, returned opened (``_copy_and_later_lives``)."""
        found: list[tuple[str, int]] = []
        listed = _names_and_identities(self._copy_places(followed))
        renamed = False
        try:
            for path in listed:
                fd = self._copy_candidate(path, followed)
                if fd is not None:
                    found.append((path, fd))
        except _RenamedWhileSearchedError:
            renamed = True
        # Renamed by rotation meanwhile, though each name checked alone looked right (a name
        # looked at may hold the file searched for by then, its copy under a new one): again
        if renamed or _names_and_identities(self._copy_places(followed)) != listed:
            for _, fd in found:
                os.close(fd)
            raise _RenamedWhileSearchedError
        if not found:
            return None, []

        def rank(candidate: tuple[str, int]) -> tuple[bool, int]:
            info = os.fstat(candidate[1])
            return info.st_size >= followed.tail.end, info.st_mtime_ns

        path, fd = max(found, key=rank)
        later: list[tuple[str, int]] = []
        fresh = [
            (name, opened)
            for name, opened in found
            if rank((name, opened)) >= (True, followed.mtime_ns)
            and not self._known_as_itself(opened)
        ]  # (one with a checkpoint of its own that still tells it is no later life: touched)
        if len(fresh) > 1:
            (path, fd), later = _copy_and_later_lives(fresh)
            later = [
                (name, opened)
                for name, opened in later
                if not _holds_as_its_start(followed.fd, opened, os.fstat(opened).st_size)
            ]  # (one the file at the path holds all of is its copy: read there)
        for candidate in found:
            if candidate != (path, fd) and candidate not in later:
                os.close(candidate[1])
        return (os.fstat(fd).st_mtime_ns, path, fd), later

    def _known_as_itself(self, fd: int) -> bool:
        """``fd`` is a file we followed (or follow) under a checkpoint of its own that still
        describes it (its first bytes, its last bytes seen): its lines are its own."""
        return self._own_row(fd, os.fstat(fd).st_size) is not None

    def _own_row(self, fd: int, size: int) -> FileCheckpoint | None:
        """The checkpoint saved for ``fd``'s inode, if it has first bytes and still describes
        the file (``size`` bytes)."""
        info = os.fstat(fd)
        try:
            saved = self._store.checkpoint_of(info.st_dev, info.st_ino)
        except sqlite3.Error:
            return None
        if saved is None or not saved.fingerprint_bytes or not _still_the_same(fd, saved, size):
            return None
        return saved

    def _copy_of_another(self, fd: int, size: int, followed: FollowedFile) -> bool:
        """``fd`` (``size`` bytes) is what another file followed, or the file now at
        ``followed``'s path, holds as far as it goes: its copy, complete or in the making."""
        itself = _identity(fd)
        return _in_the_making_of_next_at(followed, fd, size) or any(
            other.identity not in (followed.identity, itself)
            and other.copy_of != followed.identity
            and _in_the_making_of(other.fd, fd, size)
            for other in self.files.values()
        )

    def _read_as_itself(self, fd: int, size: int) -> int:
        """How far ``fd`` (``size`` bytes) was read under a checkpoint of its own that still
        describes it, its last bytes seen all within it; 0 if none."""
        saved = self._own_row(fd, size)
        if saved is None or saved.offset > size:
            return 0
        tail = Tail.decode(saved.tail)
        return saved.offset if tail.marks and tail.end <= size else 0

    def _copy_in_hand_of(self, followed: FollowedFile) -> tuple[int, str, int] | None:
        """The copy being opened when ``followed``'s truncation was seen, if it holds the life
        we read: taken up also when no name finds it now (logrotate compressed and unlinked
        it meanwhile) or it holds nothing unread (its original was read on past the copy's
        end); followed as a file of its own instead, it gave that life's lines again."""
        if self._copy_in_hand is None:
            return None
        original, path, fd = self._copy_in_hand
        info = os.fstat(fd)
        if (
            original != followed.identity
            or self._finished(Identity(info.st_dev, info.st_ino), fd)
            or not followed.fingerprint.matches(fd)
            or (followed.fingerprint.length == 0 and _begins_as(fd, followed.fd))
            or _not_a_copy_of(followed, info.st_size, fd)
        ):
            return None  # (read empty: one that begins as the file does now copies this life)
        return (info.st_mtime_ns, path, os.dup(fd))

    def _finish_from(
        self, followed: FollowedFile, path: str, fd: int, reader: _Reader
    ) -> FollowedFile | None:
        """Read what ``followed`` had not read from ``path`` (``fd``), its copy: the file
        that reads it, from where ``followed`` was read, in slices (None: nothing left)."""
        size = os.fstat(fd).st_size
        tracked = self.files.get(Identity(os.fstat(fd).st_dev, os.fstat(fd).st_ino))
        if tracked is not None:  # in a pattern too: read what neither it nor we have read
            os.close(fd)
            stale = size < tracked.offset or not tracked.fingerprint.matches(tracked.fd)
            fresh = tracked.copy_of is not None or stale  # nothing of it read as it is now
            start = followed.offset if fresh else max(tracked.offset, followed.offset)
            if start < size:
                # The rest holds the original's lines at the original's offsets: read on under
                # its key, in slices like any backlog (not in one go).
                tracked.file_key = followed.file_key
                tracked.offset = tracked.read_end = start
                tracked.more_pending = True
            else:
                tracked.offset = max(tracked.offset, size)
            tracked.copy_of = None
            tracked.fingerprint = Fingerprint.of(tracked.fd, min(size, FINGERPRINT_BYTES))
            tracked.tail = Tail.at(tracked.fd, size)
            tracked.mtime_ns = os.fstat(tracked.fd).st_mtime_ns
            reader.defer_save(tracked)  # what it holds now is read: a stale past is forgotten
            return tracked
        self._log.info(
            "source_copy_read", path=path, original=followed.path, offset=followed.offset
        )
        info = os.fstat(fd)
        identity = Identity(info.st_dev, info.st_ino)
        # Followed as the original's rotated file, from where the original was read, under its
        # key, in slices like any backlog (a big copy read in one go kept the loop from
        # committing, pinging the watchdog and seeing signals); its checkpoint saved, so a
        # restart reads on (or knows it was read). A pattern that reaches the copy takes it
        # over at the next look; otherwise it is closed once idle.
        start = min(followed.offset, size)  # smaller: its lines and more were read there
        # Followed on its own before (a pattern reaches it), renamed since and not opened yet
        # at this look: what it was read to under its own checkpoint is not read again.
        start = max(start, self._read_as_itself(fd, size))
        checkpoint = _first_checkpoint(fd, identity, _name_copied(followed, path), start, size)
        source = self._source_reaching(path) or followed.source
        copy = FollowedFile(fd, identity, checkpoint, source, now=self._clock())
        copy.file_key = followed.file_key
        copy.key_read_past = size < followed.offset
        copy.left_paths_at, copy.more_pending = self._clock(), start < size
        copy.mtime_ns = info.st_mtime_ns
        self.files[copy.identity] = copy
        reader.defer_save(copy)
        self._rebuild_index()
        return copy

    def _copy_candidate(self, path: str, followed: FollowedFile) -> int | None:
        if path in (followed.path, os.path.realpath(followed.path)):
            return None  # the file now at its path (through a symlink too) is not its copy
        if not any(
            _named_as_rotation_of(path, name)
            for name in (followed.path, followed.former_path)
            if name is not None
        ):
            return None  # in rotated_paths, another file's rotation (old/app-2026.log.1)
        try:
            info = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        identity = Identity(info.st_dev, info.st_ino)
        if identity == followed.identity:
            return None
        if info.st_size == 0:
            return None  # one smaller than what we read is taken up all the same: the lines
            # after the copy and before the truncation were read from the original
        if followed.fingerprint.length == 0 and (
            not _written_between(info, followed)
            or self._followed_not_as_copy_of(identity, followed)
            or _dated_of_another(path, followed.path)
        ):
            # Nothing but its age tells an empty file's copy from other files, so no name that
            # is another file's too (old/app-2026-20261129.log is app-2026.log's), and no file
            # followed as another file's copy in the making (its lines are that file's)
            return None
        fd = self._open(path)
        if fd is None:
            return None
        if _identity(fd) != identity:
            os.close(fd)
            raise _RenamedWhileSearchedError  # rotation renamed the copies meanwhile
        size = os.fstat(fd).st_size
        if followed.fingerprint.length == 0 and (
            _begins_as(fd, followed.fd)
            or self._closed_at(identity, fd) is not None
            or self._copy_of_another(fd, size, followed)
        ):
            # A copy of what the file holds now (logrotate's `copy`, or one copy-truncate is
            # still writing), or of what another file followed (or the next at its path) holds,
            # or a file we followed and closed (renamed away, then written by a late writer):
            # not the copy of a life the file lost.
            os.close(fd)
            return None
        if (
            self._finished(identity, fd)
            or _compressed(path, fd)
            or not followed.fingerprint.matches(fd)
            or _not_a_copy_of(followed, size, fd)  # other last bytes, or none to tell
        ):
            os.close(fd)
            return None
        return fd

    def unfollowed_copies(
        self, followed: FollowedFile
    ) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """Files under ``followed``'s rotated names that no pattern reaches, written since it
        was last read and beginning as the life it read: maybe its copy-truncate copy, made
        while we were away or stopped, which a look at the file itself cannot tell when its
        next life begins as this one did (a banner) and grew past where it was read. The names
        are listed again only when a directory they are in changed (a copy was created there);
        those written since the read are looked at again at each read (a copy in the making).
        Returns (path, fd) pairs, opened (the caller closes them): such files, and compressed
        ones that hold what the file no longer holds (``_packed_holds_what_was_lost``)."""
        if followed.fingerprint.length == 0 or followed.left_paths_at is not None:
            return [], []  # an empty life lost lines only if it changed before a read (seen
            # there); a file rotated away is not copy-truncated
        listed_at = tuple(_mtime_ns(d) for d in followed.rotation_directories)
        if followed.rotations_listed_at is None or listed_at != followed.rotations_listed_at:
            followed.rotation_directories = _rotation_directories(followed)
            followed.rotations_listed_at = tuple(
                _mtime_ns(d) for d in followed.rotation_directories
            )  # (before the listing: a change made during it lists them again next time)
            followed.fresh_rotations = [
                path for path in self._copy_places(followed) if not self._matches_pattern(path)
            ]  # (one a pattern reaches is followed: a copy there is told by its copy_of)
        fresh: list[str] = []
        copies: list[tuple[str, int]] = []
        compressed: list[tuple[str, int]] = []
        listed_packed: set[CompressedFile] = set()
        for path in followed.fresh_rotations:
            try:
                info = os.stat(path)
            except OSError:
                continue
            identity = Identity(info.st_dev, info.st_ino)
            if info.st_mtime_ns < followed.mtime_ns or identity in self.files:
                continue  # last written before the file was last read: it holds nothing
                # unread; or followed (its lines are its own, or it is a copy followed as one)
            fresh.append(path)
            if path.endswith(COMPRESSED_SUFFIXES):
                listed_packed.add(_compressed_file(info))
                if (packed := self._compressed_copy(path, info, followed)) is not None:
                    compressed.append((path, packed))
                continue
            if not _written_between(info, followed):
                continue  # written after the file last changed: no copy of it yet (in the making)
            try:
                fd = self._copy_candidate(path, followed)
            except _RenamedWhileSearchedError:
                continue  # renamed again: the directory changed, so it is listed again
            if fd is not None and self._closed_at(identity, fd) is None:
                copies.append((path, fd))  # (one we followed and closed is no copy: late writes)
            elif fd is not None:
                os.close(fd)
        followed.fresh_rotations = fresh
        followed.compressed_judged = {  # (of those still there as they were)
            packed: read
            for packed, read in followed.compressed_judged.items()
            if packed in listed_packed
        }
        return copies, compressed

    def _compressed_copy(
        self, path: str, info: os.stat_result, followed: FollowedFile
    ) -> int | None:
        """``path`` opened, if it is a compressed copy of the life ``followed`` read that
        holds what the file no longer holds (``_packed_holds_what_was_lost``); looked at once
        while both stay as they are."""
        packed, read = _compressed_file(info), (followed.offset, followed.mtime_ns)
        if (
            followed.compressed_judged.get(packed) == read
            or info.st_size == 0  # logrotate is still writing it
            or any(named == packed for named, _ in self._named_compressed)
        ):
            return None  # (named already: a truncation seen found it, or a search)
        followed.compressed_judged[packed] = read
        fd = self._open(path)
        if fd is None:
            return None
        if (
            _compressed_file(os.fstat(fd)) != packed
            or not _packed_holds_what_was_lost(fd, followed)
            or self._read_to_its_end(fd, besides=followed)
        ):
            os.close(fd)
            return None
        return fd

    def _read_to_its_end(self, compressed: int, *, besides: FollowedFile) -> bool:
        """``compressed`` holds a life read to its end (a file closed, history, or one followed
        other than ``besides``, held after it left its path): no copy of a life that lost
        lines, though it begins alike (a banner)."""
        size = _gzip_size(compressed)
        head = _gzip_head(compressed, FINGERPRINT_BYTES)
        if size is None or not head:
            return False
        unzipped = _Unzipped(compressed, size)

        def holds(tail: Tail, read: int) -> bool:
            return _may_hold(unzipped.holds(tail), tail, size, read)

        mtime_ns = os.fstat(compressed).st_mtime_ns
        return any(
            read >= size for read in self._past_reads(head, history=True, holds=holds)
        ) or any(
            other is not besides
            and (
                _compressed_from(other.fd, head, size, mtime_ns)
                or (
                    _fingerprint_of(other.fingerprint, head)
                    and max(other.offset, other.read_end) >= size
                    and holds(other.tail, other.offset)
                )
            )
            for other in self.files.values()
        )

    def committed_offset(self, followed: FollowedFile) -> int:
        """How far ``followed`` was read as its saved checkpoint says (its offset in memory
        may be ahead: lines handed on that the sinks have not confirmed)."""
        try:
            saved = self._store.checkpoint_of(followed.identity.device, followed.identity.inode)
        except sqlite3.Error:
            saved = None
        if saved is None or saved.file_key != followed.file_key:
            return followed.offset
        return min(saved.offset, followed.offset)

    def save_take_over(
        self, original: FollowedFile, copy: FollowedFile | None, committed: int
    ) -> None:
        """A copy took over the rest of ``original``'s life (its key, from its offset) and
        ``original`` goes on under a new key: both saved at once, before a line of either is
        handed on, so that after a crash the copy's lines keep their ids (a restart may not
        see the take-over again: both renamed on, no live file) and the original's new lines
        take none of them. The copy from what the sinks have of the original (it holds the
        lines read but unconfirmed too), the original from where the copy takes over (the
        bytes before belong to the life the copy holds). A full disk: with the next commit."""
        if copy is None or copy.copy_of is not None:
            return  # (no copy holds the original's lines before its offset: with the commit)
        with contextlib.suppress(sqlite3.Error):
            self._store.save_checkpoint(
                dataclasses.replace(copy.checkpoint(), offset=min(committed, copy.offset))
            )
            self._store.save_checkpoint(original.checkpoint())

    def _closed_at(self, identity: Identity, fd: int) -> int | None:
        """How far ``fd`` was read when we closed it, if we followed and closed it before and
        it still begins (and goes on) as it did then."""
        size = os.fstat(fd).st_size
        sizes = [
            read
            for (closed, head, tail), read in (*self._retired.items(), *self._history.items())
            if closed == identity
            and head.length > 0
            and read <= size  # (shorter: emptied and written anew since, a life not read)
            and _begins_and_goes_on_as(fd, size, head, tail)
        ]
        return max(sizes, default=None)

    def _followed_not_as_copy_of(self, identity: Identity, followed: FollowedFile) -> bool:
        """Followed already, and not as a copy of ``followed``: its lines are its own, or
        those of the file it copies (another file's copy in the making)."""
        tracked = self.files.get(identity)
        return tracked is not None and tracked.copy_of != followed.identity


class _Reader:
    """One poll's reading: hands lines on, then asks the sinks before saving checkpoints."""

    def __init__(self, sources: FileSources, handle: LineHandler) -> None:
        self._sources = sources
        self._handle = handle
        self.consumed = 0

    def read(self, followed: FollowedFile, *, closing: bool = False) -> None:
        """Read what is new in ``followed``; a truncated file is finished from its copy first.
        ``closing``: the file is about to be closed, so a last line without newline is read."""
        try:
            info = os.fstat(followed.fd)
        except OSError:
            return
        size = info.st_size
        followed.more_pending = False
        copy_of = followed.copy_of
        if copy_of is not None and not self._read_as_copy(followed, copy_of, size):
            return
        self._take_over_copies_of(followed)
        info = self._notice_start_changes(followed, info)
        size = info.st_size
        if size == 0 == followed.offset and info.st_mtime_ns != followed.mtime_ns:
            # An empty file's row keeps its time: renamed away while we are stopped, it is
            # known by it under its new name (_untouched), so a late writer's lines are read.
            self.defer_save(followed)
        followed.mtime_ns = info.st_mtime_ns
        followed.looked_at = True
        capped = size > followed.offset + MAX_BYTES_PER_POLL
        end = min(size, followed.offset + MAX_BYTES_PER_POLL)
        cut = _after_last_newline(followed.fd, followed.offset, end)
        if cut == followed.offset and capped:  # one line longer than a whole poll's worth
            cut = _after_next_newline(followed.fd, end, size, default=followed.offset)
        if closing and not capped:
            cut = size  # its unterminated last line will never be finished now
        now = self._sources._clock()
        seen_end = max(followed.read_end, followed.offset)
        if cut > seen_end:
            followed.last_growth = now
        elif not closing and not followed.flush_due(now):
            return  # nothing new, and no held message due for its flush
        if cut <= followed.offset:
            return
        followed.more_pending = capped and cut < size
        final = closing or now - followed.last_growth >= HOLD_SECONDS
        start = followed.offset
        try:
            followed.offset = self.read_range(followed, start, cut, followed.context, final=final)
        except _RewrittenWhileReadError as rewritten:
            # Truncated between our look at its first bytes and the read (a stopped process,
            # a busy machine): what the read got may be the next life's lines at our offsets.
            # None of them was handed on (each read is checked before its lines are); the next
            # read sees the truncation and reads the rest from the copy.
            followed.offset = rewritten.handed_to
            followed.read_end = max(followed.read_end, followed.offset)
            followed.rewritten_under_read = True
            followed.more_pending = True
            self.defer_save(followed)
            return
        followed.read_end = cut
        self.defer_save(followed)
        self.consumed += max(0, cut - seen_end)

    def _read_as_copy(self, followed: FollowedFile, copy_of: Identity, size: int) -> bool:
        """``followed`` is a copy of another followed file: read there while that one holds its
        lines; once the original's truncation handed it over, True: read it on here."""
        original = self._sources.files.get(copy_of)
        if original is not None and original.unchanged():
            if (
                original.fingerprint.length
                and not original.key_read_past
                and _holds_what_the_original_lost(followed.fd, size, original)
            ):  # (a life seen empty lost lines only if it changed before a read: seen there)
                self._take_over_from(original, followed.path, followed.fd)
                return followed.copy_of is None
            if not _went_on_otherwise(followed, size, original):
                return False  # its lines are the original's: read there (after a truncation, here)
            return self._release(followed, original)
        life_read = None if original is None else original.tail
        if original is not None:
            # Truncated since it was read (maybe while this poll read it): its truncation is
            # seen first, so this copy is read on from where the original was read, not
            # from the copy's size when the glob first found it, part-written.
            self.read(original)
        if (
            followed.copy_of is not None
            and original is not None
            and life_read is not None
            and life_read.changed(followed.fd, size)
        ):
            # Not handed over, and other bytes than the life read where it held them: no copy
            # of it (a rotated life alike, written by a late writer since)
            return self._release(followed, original)
        if followed.copy_of is not None:
            # Not handed over: nothing in it was unread (the original was read past its
            # end, or to its end before it was closed). Reading on from its size at first
            # sight would give those lines again under this file's key.
            followed.copy_of = None
            followed.offset = followed.read_end = max(followed.offset, size)
            followed.fingerprint = Fingerprint.of(followed.fd, min(size, FINGERPRINT_BYTES))
            followed.tail = Tail.at(followed.fd, size)
            self.defer_save(followed)
            return False
        return True

    def _release(self, followed: FollowedFile, original: FollowedFile) -> bool:
        """``followed``, taken for ``original``'s copy in the making, grew with bytes the
        original does not (or did not) hold there: no copy of it, but a file of its own that
        began alike (a rotated life that held only the banner, then a late writer's lines),
        read on from where it was taken up, under its own key. True: read it on."""
        self._sources._log.info(
            "source_copy_released", path=followed.path, original=original.path,
            offset=followed.offset,
            detail="written since with other bytes than the file it was taken to copy: "
            "read as a file of its own",
        )  # fmt: skip
        followed.copy_of = None
        self._sources._save(followed)  # its key on disk before any of its lines
        return True

    def _take_over_copies_of(self, original: FollowedFile) -> None:
        """Before ``original`` is read on: a copy of it (followed, being opened, or under a
        rotated name no pattern reaches) that holds what it lost, though it looks unchanged
        (lives that begin alike), is read first. This runs before every read: the file's bytes
        are looked at only when it has such a copy."""
        copies = [
            (f.path, f.fd) for f in self._sources.files.values() if f.copy_of == original.identity
        ]
        in_hand = self._sources._copy_in_hand
        if in_hand is not None and in_hand[0] == original.identity:
            copies.append((in_hand[1], in_hand[2]))
        unfollowed, compressed = self._sources.unfollowed_copies(original)
        try:
            if (
                not copies + unfollowed + compressed
                or not original.unchanged()
                or not original.fingerprint.length
                or original.key_read_past
            ):
                return  # (changed: its truncation is seen by its own look; seen empty: a
                # life seen empty lost lines only if it changed before a read, seen there)
            lost = [
                (path, fd)
                for path, fd in copies + unfollowed
                if _holds_what_the_original_lost(fd, os.fstat(fd).st_size, original)
            ]
            # The oldest is the copy of the life read; the others are later lives (a second
            # copy-truncate while we were away), read whole, or named when compressed.
            lives = _copy_and_later_lives(lost) if lost else None
            packed = sorted(compressed, key=lambda candidate: _age(*candidate))
            later = [] if lives is None else [lives[0], *lives[1]]
            if packed and (not lost or _age(*packed[0]) < min(_age(*c) for c in lost)):
                self._compressed_took_over(original, *packed.pop(0))
            elif lives is not None:
                self._take_over_from(original, *later.pop(0))
            for path, fd in later:  # (a copy a pattern reaches is taken over in its turn)
                if (path, fd) in unfollowed:
                    self._sources.follow_later_life(original, path, os.dup(fd), self)
            for path, fd in packed:
                self._sources.name_compressed_life(original, path, fd)
        finally:
            for _, fd in unfollowed + compressed:
                os.close(fd)

    def _compressed_took_over(self, original: FollowedFile, compressed: str, fd: int) -> None:
        """As ``_take_over_from``, the copy compressed before we looked (copytruncate with
        ``compress``): what ``original`` had not read is named, not read; the file is read on
        from the same offset as a new life, under a new key."""
        self._sources._log.info(
            "source_truncated", path=original.path, offset=original.offset,
            compressed=compressed,
            detail="copy-truncate, seen by its compressed copy: the new content begins as the "
            "old did up to where it was read (a banner); what it held after is named by "
            "source_compressed_unread; the new content read on after the lines it shares",
        )  # fmt: skip
        self._sources.name_compressed_life(original, compressed, fd, offset=original.offset)
        self._sources.remember_life(
            original.identity, original.fingerprint, original.offset, tail=original.tail
        )
        original.file_key = _pending(original.file_key)
        self.defer_save(original)

    def _take_over_from(self, original: FollowedFile, path: str, fd: int) -> None:
        """``original`` was truncated after its copy (``path``, ``fd``) was made and grew back
        past where it was read with the same bytes up to there (a banner), so no look at it
        can tell: the copy is read on from there under its key (the rest of the life read),
        and the original from the same offset as a new life, under a new key."""
        self._sources._log.info(
            "source_truncated", path=original.path, offset=original.offset, copy=path,
            detail="copy-truncate, seen by its copy: the new content begins as the old did up to "
            "where it was read (a banner); the rest read from the copy, the new content after it",
        )  # fmt: skip
        self._sources.remember_life(
            original.identity, original.fingerprint, original.offset, tail=original.tail
        )
        committed = self._sources.committed_offset(original)
        rest = self._sources._finish_from(original, path, os.dup(fd), self)
        original.file_key = _pending(original.file_key)
        self.defer_save(original)
        self._sources.save_take_over(original, rest, committed)
        if rest is not None and rest.more_pending:
            self.read(rest)

    def _notice_start_changes(self, followed: FollowedFile, info: os.stat_result) -> os.stat_result:
        """Truncation, rewrite or cut-back, seen by the size and the first bytes; returns the
        file's state to read on from. One read of the first bytes both checks
        the fingerprint and extends it: a file truncated and rewritten between two reads would
        make the new content the reference."""
        size = info.st_size
        head = os.pread(followed.fd, min(size, FINGERPRINT_BYTES), 0)
        if self._changed_before_read(followed, info):
            self._sources.finish_from_copy(followed, self)
        elif self._truncated(followed, size, head):
            if kept := min(_kept_lines(followed.head, head), followed.offset):
                self._cut_back(followed, size, head[:kept])
            else:
                self._start_again(followed, size)
                info = os.fstat(followed.fd)  # the file's new life, as it is now
                head = os.pread(followed.fd, min(info.st_size, FINGERPRINT_BYTES), 0)
        followed.rewritten_under_read = False
        if followed.fingerprint.length < len(head):
            followed.fingerprint = Fingerprint(len(head), _digest(head))
        followed.head = head
        return info

    def _cut_back(self, followed: FollowedFile, size: int, kept: bytes) -> None:
        """The file kept its first lines (``kept``, all read) and lost or replaced the rest:
        what it lost unread is read from a copy rotation left, if any (copy-truncate of files
        that each begin with the same banner)."""
        copy, _ = self._sources.finish_from_copy(followed, self)
        if copy is None:
            self._sources._log.warning(
                "source_truncated", path=followed.path, offset=followed.offset, size=size,
                detail="cut back to lines already read; going on after them",
            )  # fmt: skip
        else:
            self._sources._log.info(
                "source_truncated", path=followed.path, offset=followed.offset, size=size,
                copy=copy, detail="copy-truncate: the rest read from its copy; the new content "
                "begins as the old did (a banner): going on after the lines it shares",
            )  # fmt: skip
        # The life cut back was read this far: its compressed copy, found later, is not named
        # as a file never read.
        self._sources.remember_life(
            followed.identity, followed.fingerprint, followed.offset, tail=followed.tail
        )
        followed.offset = followed.read_end = len(kept)
        followed.fingerprint = Fingerprint(len(kept), _digest(kept))
        followed.tail = Tail.of(kept, len(kept))
        # What comes after the cut is new: a new key, or a line there could take the id of the
        # one it replaced at the same offset.
        followed.file_key = _pending(followed.file_key)
        self.defer_save(followed)

    def _start_again(self, followed: FollowedFile, size: int) -> None:
        """Emptied (or rewritten): finish from the copy rotation left, then read from 0. A
        warning only without a copy: every copy-truncate rotation is one of these."""
        copy, compressed = self._sources.finish_from_copy(followed, self)
        if compressed is not None:
            self._sources._log.info(
                "source_truncated", path=followed.path, offset=followed.offset, size=size,
                compressed=compressed,
                detail="copy-truncate: its copy was compressed before the watcher looked "
                "(what it holds after `offset`, if anything, is named by "
                "source_compressed_unread); reading from the start",
            )  # fmt: skip
        elif copy is None:
            self._sources._log.warning(
                "source_truncated", path=followed.path, offset=followed.offset, size=size,
                detail="file truncated or rewritten, no copy of it found (lines written after "
                "the offset and before the truncation are lost); reading from the start",
            )  # fmt: skip
        else:
            self._sources._log.info(
                "source_truncated", path=followed.path, offset=followed.offset, size=size,
                copy=copy,
                detail="copy-truncate: the rest read from its copy; reading from the start",
            )  # fmt: skip
        self._sources.remember_life(
            followed.identity, followed.fingerprint, followed.offset, tail=followed.tail
        )
        followed.offset = followed.read_end = 0
        followed.fingerprint = Fingerprint(0, "")
        followed.tail = NO_TAIL
        followed.file_key = _pending(followed.file_key)
        self.defer_save(followed)

    @staticmethod
    def _truncated(followed: FollowedFile, size: int, head: bytes) -> bool:
        """Smaller than what was read, or other first bytes (``head``: the first bytes now) or
        last bytes read, or found truncated or rewritten by a read since (one cut short: the
        file may have grown back since to where the look before that read had seen it end,
        with first and last bytes alike)."""
        fingerprint = followed.fingerprint
        if followed.rewritten_under_read:
            return True
        if size < max(followed.offset, followed.tail.end) or len(head) < fingerprint.length:
            return True
        if followed.tail.changed(followed.fd, size):
            return True
        return fingerprint.length > 0 and _digest(head[: fingerprint.length]) != fingerprint.digest

    @staticmethod
    def _changed_before_read(followed: FollowedFile, info: os.stat_result) -> bool:
        """Changed since we last looked, before we read a byte of it, and emptied since or
        empty then (no first bytes to compare): maybe written, copied, emptied (and written
        again) meanwhile; only a copy rotation made since can hold those lines. Only for a
        file looked at by this process, or saved empty at its own path: a checkpoint of an
        empty file elsewhere says nothing (its inode may be another file's now)."""
        return (
            followed.looked_at
            and followed.offset == 0
            and (info.st_size == 0 or followed.fingerprint.length == 0)
            and info.st_mtime_ns != followed.mtime_ns
            and followed.left_paths_at is None
        )

    def read_range(
        self,
        followed: FollowedFile,
        start: int,
        end: int,
        context: LineContext,
        *,
        final: bool = True,
    ) -> int:
        """Hand on the messages of ``[start, end)``; return where the next read must start
        (``end``, or the first line of a message that may go on: see ``sources.lines``).
        Raises ``_RewrittenWhileReadError`` when the file's first bytes changed under the read."""
        reader = _RangeReader(followed.fd, start, end, followed.fingerprint, followed.tail)
        scan = iter_candidates(
            reader,
            max_line_bytes=followed.source.max_line_bytes,
            chunk_bytes=READ_CHUNK_BYTES,
            on_long_line=lambda offset: self._report_long_line(followed, start + offset),
            also_one_of=SECOND_WORDS_BYTES,
            framing=followed.source.format,
            final=final,
        )
        handed_to = start
        try:
            for candidate in scan:
                shifted = _shifted(candidate, start)
                if followed.file_key.startswith(PENDING_KEY_PREFIX):
                    line = reader.line_at(shifted.line_offset)
                    followed.file_key = _key_bound_to(followed.file_key, shifted, line)
                    context = dataclasses.replace(context, file_key=followed.file_key)
                self._handle(shifted, context)
                handed_to = shifted.end_offset
        except _RewrittenWhileReadError as rewritten:
            rewritten.handed_to = handed_to
            raise
        if (data := reader.kept_before(end)) is not None:
            followed.tail = followed.tail.extended(data, end, reader.passed_marks)
        return start + scan.resume_offset

    def _report_long_line(self, followed: FollowedFile, offset: int) -> None:
        self._sources._log.warning(
            "line_too_long",
            path=followed.path,
            offset=offset,
            max_line_bytes=followed.source.max_line_bytes,
            detail="searched in windows around each match",
        )

    def defer_save(self, followed: FollowedFile) -> None:
        """Save ``followed`` with the others, once the sinks have what was read."""
        self._sources._unsaved[followed.identity] = followed


class _RenamedWhileSearchedError(Exception):
    """A name listed in a search held another file when opened: rotation renamed meanwhile."""


class _RewrittenWhileReadError(Exception):
    """A file's first or last bytes changed between the look at them and a read after it, or
    it ended before the size the look saw: the bytes read may be its next life's.
    ``handed_to``: the end of the last message handed on."""

    def __init__(self) -> None:
        super().__init__("file truncated or rewritten while being read")
        self.handed_to = 0


class _RangeReader:
    """Reads ``[start, end)`` of a file descriptor with pread: no shared file position. Each
    read is checked against the file's ``fingerprint`` and ``tail`` after it, and for ending
    before ``end``: bytes read from a file that was truncated and written again since the
    caller looked are never scanned.
    The last bytes read are kept, to take the tail before where the next read starts, and
    the blocks read before them are marked as they go."""

    KEEP_BYTES = 64 * 1024

    def __init__(self, fd: int, start: int, end: int, fingerprint: Fingerprint, tail: Tail) -> None:
        self._fd = fd
        self._position = start
        self._end = end
        self._fingerprint = fingerprint
        self._tail = tail
        self._kept = b""  # the bytes read last, up to _position
        self._next_block = max(1, -(-start // SPARSE_BYTES))  # (as _sparse_pieces)
        # The first line in each SPARSE_BYTES block read before the bytes kept, marked as the
        # read passes it: a copy may end anywhere in a backlog read in one go
        self.passed_marks: list[Mark] = []

    def readinto(self, view: memoryview) -> int:
        wanted = min(len(view), self._end - self._position)
        if wanted <= 0:
            return 0
        count = os.preadv(self._fd, [view[:wanted]], self._position)
        self._check(count < wanted)
        self._keep(view[:count])
        self._position += count
        return count

    def read(self, size: int = -1, /) -> bytes:
        wanted = max(0, min(self._end - self._position if size < 0 else size,
                            self._end - self._position))  # fmt: skip
        data = os.pread(self._fd, wanted, self._position)
        self._check(len(data) < wanted)
        self._keep(memoryview(data))
        self._position += len(data)
        return data

    def line_at(self, offset: int) -> bytes:
        """The physical line at ``offset`` (up to a fingerprint's bytes of it), checked as
        every read is."""
        data = os.pread(self._fd, FINGERPRINT_BYTES, offset)
        self._check()
        return data[: data.find(b"\n") + 1] or data

    def kept_before(self, end: int) -> bytes | None:
        """The bytes read last, up to ``end`` (None: not read up to there)."""
        kept_from = self._position - len(self._kept)
        if not kept_from <= end <= self._position:
            return None
        return self._kept[: end - kept_from]

    def _keep(self, data: memoryview) -> None:
        """Keep the last bytes read (``data``, from ``_position``); the blocks of those that go
        are marked first."""
        self._mark_passed(data)
        self._kept = (self._kept + bytes(data[-self.KEEP_BYTES :]))[-self.KEEP_BYTES :]

    def _mark_passed(self, data: memoryview) -> None:
        """Mark the first line of each block that goes from the bytes kept with ``data`` and
        that the tail keeps seen from the read's end (``_thinned``); a block within a line
        longer than a block has none."""
        dropped_to = self._position + len(data) - self.KEEP_BYTES
        top = self._end // SPARSE_BYTES
        while (at := self._next_block * SPARSE_BYTES) < dropped_to:
            spacing = _sparse_spacing(self._next_block, top)
            if self._next_block % spacing:  # not kept: on to the next multiple
                self._next_block += spacing - self._next_block % spacing
                continue
            self._next_block += 1
            since = max(at - 1, self._position - len(self._kept))
            window = self._between(data, since, since + SPARSE_BYTES + TAIL_BYTES)
            first = window.find(b"\n", 0, SPARSE_BYTES) + 1
            if first:
                piece = window[first : first + TAIL_BYTES]
                self.passed_marks += _marked(piece, since + first, [(0, len(piece))])

    def _between(self, data: memoryview, first: int, last: int) -> bytes:
        """Bytes ``[first, last)`` of the file, from the bytes kept and ``data`` after them."""
        kept_from = self._position - len(self._kept)
        kept = self._kept[max(0, first - kept_from) : max(0, last - kept_from)]
        return kept + data[max(0, first - self._position) : max(0, last - self._position)]

    def _check(self, short: bool = False) -> None:
        """``short``: the file ended before ``end``, which it reached when the caller looked at
        it: it was truncated since, and what was read may be its next life's (at offsets where
        the copy-truncate's copy holds other lines, with first bytes and marks alike)."""
        if short or not self._fingerprint.matches(self._fd) or not self._tail.holds(self._fd):
            raise _RewrittenWhileReadError


def _shifted(candidate: Candidate, start: int) -> Candidate:
    return dataclasses.replace(
        candidate,
        line_offset=candidate.line_offset + start,
        text_offset=candidate.text_offset + start,
        end=None if candidate.end is None else candidate.end + start,
    )


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _copy_of_gone(
    fd: int,
    path: str,
    size: int,
    gone: dict[Identity, FileCheckpoint],
    rotated_paths: tuple[str, ...] = (),
) -> FileCheckpoint | None:
    """The checkpoint of a file gone while we were stopped whose copy ``fd`` is: a rotated
    name of it, beside it or in ``rotated_paths`` (logrotate's olddir), with its first
    bytes and all it was seen to hold. Of several (lives that begin alike: one read while it
    held only a banner), the one seen furthest: a copy of it holds the others' bytes too."""
    directory = os.path.dirname(path)
    in_olddir = any(_pattern_matches(pattern, path) for pattern in rotated_paths)
    held = []
    for saved in gone.values():
        beside = directory in {
            os.path.dirname(saved.path),
            os.path.dirname(os.path.realpath(saved.path)),
        }
        name = os.path.basename(saved.path)
        if (
            (beside or in_olddir)
            and _rotation_stem(name) == name  # rotation copies the live file, not app.log.3
            and _named_as_rotation_of(path, saved.path)  # app.log.1, app-20261129.log
            and saved.fingerprint_bytes > 0
            # Made after we saw that file (it was there then): it holds all we saw of it, or
            # (copied before the lines we read last) the marks of that life within it.
            and (_holds_all_seen(fd, size, saved) or _shorter_copy_of(fd, size, saved))
        ):
            held.append(saved)
    return max(held, key=_seen_end, default=None)


def _seen_end(saved: FileCheckpoint) -> int:
    """How far into its life ``saved``'s file was seen: read, or its last bytes marked."""
    return max(saved.offset, Tail.decode(saved.tail).end, saved.fingerprint_bytes)


def _first_checkpoint(
    fd: int, identity: Identity, path: str, offset: int, size: int
) -> FileCheckpoint:
    fingerprint = Fingerprint.of(fd, min(size, FINGERPRINT_BYTES))
    tail = Tail.at(fd, size)
    mtime_ns = os.fstat(fd).st_mtime_ns
    return FileCheckpoint(
        device=identity.device,
        inode=identity.inode,
        fingerprint=fingerprint.digest,
        fingerprint_bytes=fingerprint.length,
        offset=offset,
        path=path,
        file_key=PENDING_KEY_PREFIX + secrets.token_hex(8),
        mtime_ns=mtime_ns,
        tail=tail.encode(),
    )


def _kept_lines(before: bytes, now: bytes) -> int:
    """How many bytes of whole lines a file kept from ``before`` (its first bytes as we last
    read them) when it now begins with ``now``: a file cut back (``truncate -s``) keeps its
    first lines; one emptied and written anew keeps none (0)."""
    same = len(os.path.commonprefix([before, now]))  # noqa: RUF071 - bytes, not paths
    return before.rfind(b"\n", 0, same) + 1


def _pending(file_key: str) -> str:
    """The key of a file's next life: derived from this one and its first line once read."""
    return PENDING_KEY_PREFIX + file_key.removeprefix(PENDING_KEY_PREFIX)


def _key_bound_to(file_key: str, candidate: Candidate, line: bytes) -> str:
    """A pending key bound to the first message handed under it: its offset and its first
    physical line (``line``). Read again after a crash, the same content gets the same key;
    another (a truncated file's next life, an inode used again) another one, though both
    begin alike (a banner: the file's first line tells no life from the next)."""
    base = file_key.removeprefix(PENDING_KEY_PREFIX)
    return _digest(f"{base}/{candidate.line_offset}/".encode() + line)[:16]


def _holds_what_the_original_lost(copy: int, size: int, original: FollowedFile) -> bool:
    """``copy`` (``size`` bytes), taken for a rotation's copy of ``original``, goes on past
    where ``original`` was read, beyond its end now or with other bytes than it holds there
    (compared over a chunk): a copy is never longer than its original, nor other than it, unless
    the original was truncated since it was made."""
    start = original.offset
    if size <= start or original.tail.changed(copy, size):
        return False  # (other bytes where the life read ends: no copy of it, another life)
    try:
        original_size = os.fstat(original.fd).st_size
    except OSError:
        return False
    if original_size < size:
        return True
    length = min(size - start, COMPARED_BYTES)
    return not _same_bytes_at(original.fd, copy, start, length)


def _packed_holds_what_was_lost(fd: int, original: FollowedFile) -> bool:
    """``fd``, a compressed file, begins as ``original``'s life read (its first bytes, its
    last bytes seen as far as it holds them) and goes on past where it was read, beyond
    ``original``'s end now or with other bytes than it holds where its last lines end: as
    ``_holds_what_the_original_lost``, for a copy rotation compressed."""
    size = _gzip_size(fd)
    head = _gzip_head(fd, FINGERPRINT_BYTES)
    if size is None or head is None or size <= original.offset:
        return False
    unzipped = _Unzipped(fd, size)
    if not _fingerprint_of(original.fingerprint, head) or unzipped.holds(original.tail) is False:
        return False
    try:
        original_size = os.fstat(original.fd).st_size
    except OSError:
        return False
    return original_size < size or unzipped.tail().changed(original.fd, original_size)


def _went_on_otherwise(copy: FollowedFile, size: int, original: FollowedFile) -> bool:
    """``copy`` (``size`` bytes), taken for a copy of ``original`` in the making, holds other
    bytes than ``original`` past where it was taken up (compared over a chunk): a copy only
    ever gets its original's bytes."""
    length = min(size - copy.offset, COMPARED_BYTES)
    return length > 0 and not _same_bytes_at(original.fd, copy.fd, copy.offset, length)


def _same_first_bytes(original: int, copy: int, size: int) -> bool:
    """The copy's first ``size`` bytes begin the original."""
    return _same_bytes_at(original, copy, 0, size)


def _ends_otherwise(original: int, copy: int, size: int) -> bool:
    """``original`` is no shorter than ``copy`` (``size`` bytes), yet does not hold the copy's
    last bytes (up to a fingerprint's) where the copy ends: ``copy`` is no copy of it as it
    is now, complete or in the making, though both may begin alike."""
    try:
        if os.fstat(original).st_size < size:
            return False
    except OSError:
        return False
    length = min(size, FINGERPRINT_BYTES)
    if not _same_bytes_at(original, copy, size - length, length):
        return True
    # Long lines alike but for their first bytes (a line number, a time) may leave the last KiB
    # the same: the copy's own last line ends and line starts tell.
    return Tail.at(copy, size).verdict(size, _pread(original)) is False


def _at_its_path(followed: FollowedFile) -> bool:
    """Still the file at its path: not deleted or renamed away since."""
    try:
        info = os.stat(followed.path)
    except OSError:
        return False
    return Identity(info.st_dev, info.st_ino) == followed.identity


def _in_the_making_of(original: int, copy: int, size: int) -> bool:
    """``copy`` (``size`` bytes) is what ``original`` holds now, as far as it goes."""
    try:
        longer = os.fstat(original).st_size >= size
    except OSError:
        return False
    return longer and _begins_as(copy, original) and not _ends_otherwise(original, copy, size)


def _in_the_making_of_next_at(followed: FollowedFile, copy: int, size: int) -> bool:
    """``_in_the_making_of`` the file now at ``followed``'s path, if another one."""
    try:
        fd = os.open(followed.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        another = Identity(info.st_dev, info.st_ino) != followed.identity
        return another and stat.S_ISREG(info.st_mode) and _in_the_making_of(fd, copy, size)
    finally:
        os.close(fd)


def _same_bytes_at(original: int, copy: int, offset: int, size: int) -> bool:
    try:
        return os.pread(original, size, offset) == os.pread(copy, size, offset)
    except OSError:
        return False


def _saved_at(
    saved: FileCheckpoint | None,
    identity: Identity,
    path: str,
    gone: dict[Identity, FileCheckpoint],
) -> FileCheckpoint | None:
    """``saved``, if it is a checkpoint (with first bytes) of the file at ``path``, not gone."""
    if saved is None or identity in gone or saved.path != path or saved.fingerprint_bytes == 0:
        return None
    return saved


def _starts_the_file_at(path: str, fd: int, size: int) -> bool:
    """``fd`` (``size`` bytes) is a copy, complete or in the making, of the file now at
    ``path``: that file is no shorter and holds the same first bytes and the same bytes where
    the copy ends. Lives that begin alike (lines without a time) are told apart by their ends."""
    if size == 0:
        return False
    try:
        live = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # never blocks on a FIFO
    except OSError:
        return False
    try:
        info = os.fstat(live)
        return (
            stat.S_ISREG(info.st_mode)
            and _holds_as_its_start(live, fd, size)
            and not _written_before_all_of(info, fd, size)
        )
    except OSError:
        return False
    finally:
        os.close(live)


def _written_before_all_of(live: os.stat_result, fd: int, size: int) -> bool:
    """``fd`` (``size`` bytes, as long as the file ``live`` describes) was last written
    before that file was (by more than the clocks' spread: one file's time may come from the
    kernel's coarse clock, the other's from its fine one): no copy of it, which is written
    after all it copies, but an older life that ended as the file now does (lives alike line
    for line: a denial written at every run, with no time in it)."""
    info = os.fstat(fd)
    return live.st_size == size and info.st_mtime_ns + MTIME_LAG_NS < live.st_mtime_ns


def _holds_as_its_start(longer: int, fd: int, size: int) -> bool:
    """``longer`` is no shorter than ``fd`` (``size`` bytes, not empty) and holds the same
    first bytes and the same bytes where ``fd`` ends: ``fd`` is a copy of it, complete or in
    the making, or ``longer`` a later copy of the same life."""
    try:
        if os.fstat(longer).st_size < size:
            return False
    except OSError:
        return False
    length = min(size, FINGERPRINT_BYTES)
    return _same_first_bytes(longer, fd, length) and not _ends_otherwise(longer, fd, size)


def _copy_and_later_lives(
    candidates: list[tuple[str, int]],
) -> tuple[tuple[str, int], list[tuple[str, int]]]:
    """Of files (name, fd) written since a life was read that each hold all that was seen of
    it: that life's copy, and the later lives among them. Rotation copies a life once it is
    over, so the oldest is that life's copy, and a newer one that holds all of it is a later
    copy of the same life (logrotate's ``copy``: it holds more). Any other began alike (a
    banner) and went on otherwise: a later life, copied by a later copy-truncate while we
    were away, never read. (A newer one that the copy holds all of is in the making: left to
    the looks that follow.)"""
    lives: list[tuple[str, int]] = []  # the newest copy of each life, the oldest life first
    for path, fd in sorted(candidates, key=lambda candidate: _age(*candidate)):
        size = os.fstat(fd).st_size
        for n, (_, newest) in enumerate(lives):
            if _holds_as_its_start(fd, newest, os.fstat(newest).st_size):
                lives[n] = (path, fd)
                break
            if size > 0 and _holds_as_its_start(newest, fd, size):
                break
        else:
            lives.append((path, fd))
    return lives[0], lives[1:]


def _age(path: str, fd: int) -> tuple[int, int, str]:
    """Sorts files rotation made oldest first: by time, then (within the clock's resolution,
    rotations in a row) by number (app.log.2 before app.log.1), then by name (dates)."""
    return (os.fstat(fd).st_mtime_ns, -(_rotation_number(path) or 0), path)


def _names_and_identities(paths: Iterable[str]) -> dict[str, Identity | None]:
    return {path: _identity_at(path) for path in paths}


def _identity_at(path: str) -> Identity | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return Identity(info.st_dev, info.st_ino)


def _rotation_number(path: str) -> int | None:
    """N of a name rotation numbered (app.log.N, maybe compressed); None for any other."""
    name = os.path.basename(path)
    for suffix in COMPRESSED_SUFFIXES:
        name = name.removesuffix(suffix)
    stem, _, number = name.rpartition(".")
    numbered = bool(stem) and number.isdigit() and len(number) < 8  # (not app.log.20261129)
    return int(number) if numbered else None


def _known_life(saved: FileCheckpoint) -> tuple[Fingerprint, Tail]:
    """What ``saved`` knows of its file's life: its first bytes and the last bytes read."""
    return (
        Fingerprint(saved.fingerprint_bytes, saved.fingerprint),
        Tail.decode(saved.tail),
    )


def _begins_and_goes_on_as(fd: int, size: int, head: Fingerprint, tail: Tail) -> bool:
    """``fd`` (``size`` bytes) holds a life with this first and last bytes read: a copy of it
    (one that ends before every mark of them is told by its first bytes alone)."""
    return head.matches(fd) and not tail.changed(fd, size)


def _may_hold(verdict: bool | None, tail: Tail, size: int | None, read: int) -> bool:
    """Whether a file of ``size`` bytes, whose ``verdict`` on a life's last bytes seen
    (``tail``, read up to ``read``) is given, may be a copy of that life: it holds the marks
    within it; or none lies within it and it is no shorter than what was read (shorter, only
    its first bytes would tell, and lives that begin alike share those; a copy of that life
    holds its last lines, unless more than TAIL_MARKS lines came between copy and cut)."""
    if verdict is not None:
        return verdict
    return not tail.marks or size is None or size >= read


def _may_hold_life(fd: int, size: int, tail: Tail, read: int) -> bool:
    """``_may_hold`` for ``fd`` (``size`` bytes), its verdict read from it."""
    return _may_hold(tail.verdict(size, _pread(fd)), tail, size, read)


def _not_a_copy_of(followed: FollowedFile, size: int, fd: int) -> bool:
    """``fd`` (``size`` bytes) cannot be a copy of the life ``followed`` read (and lost):
    other last bytes, or none to tell and shorter than what was read; or shorter than the
    life seen, with what the file (or the file now at its path) holds beginning with all of
    it: a copy of the new life in the making (lives that begin alike: a banner)."""
    return not _may_hold_life(fd, size, followed.tail, followed.offset) or (
        size < followed.tail.end
        and (
            _in_the_making_of(followed.fd, fd, size)
            or _in_the_making_of_next_at(followed, fd, size)
        )
    )


def _saved_empty(former: dict[Identity, FileCheckpoint] | None, identity: Identity) -> bool:
    """``identity`` is the inode of a gone file whose checkpoint was saved empty: whatever
    it holds now was written after that save (an inode holds no older file's bytes), however
    far back its mtime was set since (`cp -p`, `touch -d`, a clock step back)."""
    return former is not None and identity in former and former[identity].fingerprint_bytes == 0


def _still_the_same(fd: int, saved: FileCheckpoint, size: int) -> bool:
    """The file at ``fd`` is the one ``saved`` describes (not an inode reused by another): its
    first bytes, and its last bytes seen as far as it holds them (lives that begin alike)."""
    if size < saved.fingerprint_bytes:
        return False
    return _begins_and_goes_on_as(fd, size, *_known_life(saved))


def _empty_elsewhere(saved: FileCheckpoint, path: str) -> bool:
    """``saved`` is the row of an empty file at another path than ``path``: nothing tells its
    inode's file is that one (a copy in the making may have taken it)."""
    return saved.fingerprint_bytes == 0 and saved.path != path


def _truncated_there_maybe(saved: FileCheckpoint, path: str) -> bool:
    """The file of ``saved``, found at ``path``, may have been truncated there since: at its
    own path, unless that is a rotated name (rotation truncates no rotated file; one shorter
    there is rather the next copy made at that name, rotation having moved the file on)."""
    name = os.path.basename(path)
    return path == saved.path and _rotation_stem(name) == name


def _renamed_and_still_the_same(fd: int, saved: FileCheckpoint) -> bool:
    """The inode of ``saved``, found under another name (or at the rotated name it was saved
    under), holds that file. Renamed, a file does not shrink: one shorter than what was read
    or seen is another file that took the freed inode (the next copy-truncate's copy, say,
    with the same first lines: a banner)."""
    return _holds_all_seen(fd, os.fstat(fd).st_size, saved)


def _shorter_copy_of(fd: int, size: int, saved: FileCheckpoint) -> bool:
    """``fd`` (``size`` bytes) is a copy-truncate copy of the life ``saved`` describes that
    ends before where it was read (what was written between the copy and the cut was read
    from the file): its first bytes, and that life's marks within it, the last past the
    first block (whose bytes lives that begin alike share: a banner)."""
    fingerprint, tail = _known_life(saved)
    within = [m for m in tail.marks if m.end <= size]
    return (
        size < max(saved.offset, tail.end)
        and bool(within)
        and within[-1].end - within[-1].length >= SPARSE_BYTES
        and fingerprint.length > 0
        and fingerprint.matches(fd)
        and tail.verdict(size, _pread(fd)) is True
    )


def _holds_all_seen(fd: int, size: int, saved: FileCheckpoint) -> bool:
    """``fd`` (``size`` bytes) holds all that was read and seen of the file ``saved``
    describes: as long, with its first and last bytes seen. (A shorter file may hold the marks
    within it as a banner's, which every life of the file shares.)"""
    seen = max(saved.offset, Tail.decode(saved.tail).end)
    return size >= seen and _still_the_same(fd, saved, size)


def _untouched(info: os.stat_result, saved: FileCheckpoint) -> bool:
    """The file of ``info`` is empty with the time ``saved`` (of an empty file) has."""
    return info.st_size == 0 and info.st_mtime_ns == saved.mtime_ns


def _is_gzip(fd: int) -> bool:
    return os.pread(fd, 2, 0) == GZIP_MAGIC


def _begins_as(fd: int, live_fd: int) -> bool:
    """Whether ``fd`` begins with the bytes ``live_fd`` (a non-empty file) begins with, as
    far as both go."""
    try:
        length = min(os.fstat(fd).st_size, os.fstat(live_fd).st_size, FINGERPRINT_BYTES)
    except OSError:
        return False
    return length > 0 and os.pread(fd, length, 0) == os.pread(live_fd, length, 0)


def _name_copied(followed: FollowedFile, copy: str) -> str:
    """The name ``followed`` had when ``copy`` was made of it: the copy's lines are named so.
    Renamed since (app.log, its copy app.log.1, then renamed to app-20261129.log), that is
    the name before the rename, which the copy is named after."""
    former = followed.former_path
    if (
        former is not None
        and not _named_as_rotation_of(copy, followed.path)
        and _named_as_rotation_of(copy, former)
    ):
        return former
    return followed.path


def _written_between(copy: os.stat_result, followed: FollowedFile) -> bool:
    """Whether ``copy`` was last written between our last look at ``followed`` (an empty
    file, so no first bytes tell its copy) and now, before what changed the file last: a copy
    is written before its original's truncation, and a truncation, a write, a rename or a
    deletion all move the original's ctime on. A file written after that (the next live
    file's copy, begun after the original was deleted) is not its copy."""
    try:
        info = os.fstat(followed.fd)
    except OSError:
        return followed.mtime_ns <= copy.st_mtime_ns
    # (Its mtime too: set by a tool, or by a clock finer than the kernel's coarse one for
    # ctime, a truncation's mtime can be later than its ctime.)
    changed_ns = max(info.st_ctime_ns, info.st_mtime_ns)
    return followed.mtime_ns <= copy.st_mtime_ns <= changed_ns


def _compressed(path: str, fd: int) -> bool:
    """gzip by its first bytes, or any compressor's file by its name: one logrotate is still
    writing is empty, and bz2, xz or zstd files have no gzip header."""
    return path.endswith(COMPRESSED_SUFFIXES) or _is_gzip(fd)


def _dated_as_a_life_seen_empty(gone: dict[Identity, FileCheckpoint], mtime_ns: int) -> bool:
    """A gone file last seen empty has the time a compressed file (which holds bytes) keeps:
    that file, written after our look (logrotate dates what it compresses as it was when
    rotated, not by a late writer's lines added since): none of its lines was read."""
    return any(
        saved.fingerprint_bytes == 0 and saved.offset == 0 and saved.mtime_ns == mtime_ns
        for saved in gone.values()
    )


def _holds_unread(fd: int, offset: int, mtime_ns: int, read_mtime_ns: int) -> bool:
    """Whether a compressed copy of a file read up to ``offset`` holds more than that: by the
    size its gzip trailer gives (modulo 4 GiB), else by its time."""
    size = _gzip_size(fd)
    if size is not None and offset < 1 << 32:
        return size > offset
    return mtime_ns > read_mtime_ns


CompressedFile = tuple[int, int, int, int]  # device, inode, size, mtime: one file's content


_K = TypeVar("_K")
_V = TypeVar("_V")


def _remember(table: dict[_K, _V], key: _K, value: _V) -> None:
    """Add to a table kept in memory, bounded: the oldest entries go past MAX_RETIRED."""
    table[key] = value
    while len(table) > MAX_RETIRED:
        del table[next(iter(table))]


def _compressed_file(info: os.stat_result) -> CompressedFile:
    """A compressed file as it is: an inode used again, or written anew, is another one."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _gzip_size(fd: int) -> int | None:
    """The size a gzip file's trailer gives (modulo 4 GiB); None when it is not gzip."""
    if not _is_gzip(fd):
        return None
    size = os.fstat(fd).st_size
    trailer = os.pread(fd, 4, size - 4) if size >= 18 else b""
    return int.from_bytes(trailer, "little") if len(trailer) == 4 else None


def _holds_more(unzipped_size: int | None, fd: int) -> bool:
    """A compressed copy longer than the open file it begins as: another life, or one the open
    file is a shorter copy of (copy-truncate in the making), not the same life read there (a
    life only grows). Sizes past 4 GiB (the trailer's modulo) are not told apart."""
    size = os.fstat(fd).st_size
    return unzipped_size is not None and size < (1 << 32) and unzipped_size > size


def _gzip_head(
    fd: int, length: int, *, input_max: int | None = GZIP_HEAD_INPUT_MAX
) -> bytes | None:
    """The first ``length`` bytes a gzip file holds (fewer if it holds fewer), reading at most
    ``input_max`` compressed bytes (None: no limit); None when it cannot be decompressed."""
    unzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pieces: list[bytes] = []
    produced = position = 0
    try:
        while produced < length and (input_max is None or position < input_max):
            chunk = os.pread(fd, GZIP_HEAD_CHUNK, position)
            if not chunk:
                break
            position += len(chunk)
            data = unzip.decompress(chunk, length - produced)
            while unzip.unconsumed_tail and produced + len(data) < length:
                pieces.append(data)
                produced += len(data)
                data = unzip.decompress(unzip.unconsumed_tail, length - produced)
            pieces.append(data)
            produced += len(data)
            if unzip.eof:
                break
    except (OSError, zlib.error):
        return None
    return b"".join(pieces)[:length]


class _Unzipped:
    """What a gzip file holds (its trailer's ``size``), decompressed once, as far as
    GZIP_TAIL_MAX, when first asked."""

    def __init__(self, fd: int, size: int | None) -> None:
        self._fd = fd
        self._size = size
        self._data: bytes | None = None
        self._unzipped = False

    def holds(self, tail: Tail) -> bool | None:
        """Whether it holds ``tail`` as far as it goes; None: cannot tell (no mark within
        it, or too far in, or not gzip)."""
        if self._size is None:
            return None
        return tail.verdict(min(self._size, GZIP_TAIL_MAX), self._read)

    def tail(self) -> Tail:
        """Its last bytes, if it holds no more than GZIP_TAIL_MAX."""
        size = self._size
        if size is None or size > GZIP_TAIL_MAX:
            return NO_TAIL
        data = self._read(max(0, size - TAIL_READ_BYTES), size)
        return (
            Tail.of(data, size)
            if data is not None and len(data) == min(size, TAIL_READ_BYTES)
            else NO_TAIL
        )

    def _read(self, start: int, end: int) -> bytes | None:
        if not self._unzipped:
            length = min(self._size or 0, GZIP_TAIL_MAX)
            self._data = _gzip_head(self._fd, length, input_max=None)
            self._unzipped = True
        return None if self._data is None else self._data[start:end]


def _reading_order(followed: FollowedFile) -> tuple[bool, bool, int]:
    """Files that left their path first; then rotated names (``app.log.2``, ``app.log.1``
    under ``app.log*``), oldest first, before live ones: a start that finds generations
    rotation made while it was stopped reads them in the order they were written."""
    name = os.path.basename(followed.path)
    live = _rotation_stem(name) == name
    return (followed.left_paths_at is None, live, 0 if live else followed.mtime_ns)


def _compressed_from(fd: int, head: bytes, size: int | None, mtime_ns: int) -> bool:
    """Whether a compressed file is the file at ``fd`` as it is now: the same first bytes
    (``head``), size (``size``, its gzip trailer's, modulo 4 GiB) and mtime (which logrotate
    and gzip keep). Two lives that begin alike are told apart by size and time."""
    if not head or size is None:
        return False
    try:
        info = os.fstat(fd)
        if info.st_size % 2**32 != size or info.st_mtime_ns != mtime_ns:
            return False
        return os.pread(fd, len(head), 0) == head
    except OSError:
        return False


def _fingerprint_of(fingerprint: Fingerprint, head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) starts as the file ``fingerprint`` was taken of.
    An empty fingerprint says nothing, so it matches nothing here."""
    return 0 < fingerprint.length <= len(head) and (
        _digest(head[: fingerprint.length]) == fingerprint.digest
    )


def _read_as_saved(saved: FileCheckpoint) -> RetiredFile:
    """What a gone file's checkpoint says was read of it."""
    return RetiredFile(
        saved.device, saved.inode, saved.fingerprint, saved.fingerprint_bytes, saved.offset,
        tail=saved.tail,
    )  # fmt: skip


def _identity(fd: int) -> Identity:
    info = os.fstat(fd)
    return Identity(info.st_dev, info.st_ino)


def _deleted(followed: FollowedFile) -> bool:
    try:
        return os.fstat(followed.fd).st_nlink == 0
    except OSError:
        return True


def _real_path(followed: FollowedFile) -> str:
    """Where the file is now: /proc knows even after a rename (falls back to its path)."""
    try:
        real = os.readlink(f"/proc/self/fd/{followed.fd}")
    except OSError:
        return os.path.realpath(followed.path)
    return real.removesuffix(" (deleted)")


def _rotation_directories(followed: FollowedFile) -> list[str]:
    """The directories ``followed``'s rotated names are in (see ``_rotation_places``)."""
    directories = {os.path.dirname(followed.path), os.path.dirname(os.path.realpath(followed.path))}
    for pattern in followed.source.rotated_paths:
        directory = os.path.dirname(pattern)
        if GLOB_CHARACTERS & set(directory):
            directories.update(glob.glob(directory))
        else:
            directories.add(directory)
    return sorted(d or "." for d in directories)


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _rotation_candidates(path: str, source: FileSource) -> Iterator[str]:
    """Where a rotated ``path`` may be now: beside it under a longer name, or in
    ``rotated_paths``; each name once (``rotated_paths`` may match names beside it). Names
    only; the caller checks identity or content."""
    seen: set[str] = set()
    for candidate in _rotation_places(path, source):
        if os.path.abspath(candidate) not in seen:
            seen.add(os.path.abspath(candidate))
            yield candidate


def _rotation_places(path: str, source: FileSource) -> Iterator[str]:
    places = [path]
    real = os.path.realpath(path)
    if real != path:
        places.append(real)  # a symlink's target rotates beside itself, not beside the link
    for place in places:
        directory, name = os.path.split(place)
        stem = _rotation_stem(name)
        try:
            entries = sorted(os.listdir(directory or "."))
        except OSError:
            continue
        for entry in entries:
            if _rotation_stem(entry) == stem or _dated_keeping_extension(entry, name):
                yield os.path.join(directory, entry)
    for pattern in source.rotated_paths:
        yield from sorted(glob.glob(pattern))


def _named_as_rotation_of(candidate: str, path: str) -> bool:
    """``candidate``'s name is ``path``'s (or its symlink target's) with what rotation appends
    (``olddir/app.log.1`` for ``app.log``): no name of a sibling's rotations."""
    rotated = os.path.basename(candidate)
    stem = _rotation_stem(rotated)
    names = {os.path.basename(path), os.path.basename(os.path.realpath(path))}
    return any(
        _rotation_stem(name) == stem or _dated_keeping_extension(rotated, name) for name in names
    )


def _dated_of_another(rotated: str, path: str) -> bool:
    """``rotated`` is named as a dated rotation of a file whose name it extends further than
    ``path``'s (old/app-2026-20261129.log is app-2026.log's, not app.log's), whether that
    file is there now or not."""
    originals = list(_dated_originals(os.path.basename(rotated)))
    return bool(originals) and originals[-1] != os.path.basename(path)


def _named_as_rotation(path: str, paths: set[str]) -> bool:
    """``path`` is named as a rotation appends (app.log.1), or as a dated rotation keeping the
    extension of another of ``paths`` beside it (app-20261129.log beside app.log)."""
    directory, name = os.path.split(path)
    if _rotation_stem(name) != name:
        return True
    return any(os.path.join(directory, original) in paths for original in _dated_originals(name))


def _dated_originals(rotated: str) -> Iterator[str]:
    """The names ``rotated`` is a dated rotation keeping the extension of, shortest first:
    app-2026-20261129.log -> app.log, app-2026.log. The date holds a day at least (eight
    digits: %Y%m%d, %Y-%m-%d), so a live app-2026.log or server-8080.log is no such name."""
    for match in re.finditer(r"[.-]\d{4}", rotated):
        root, rest = rotated[: match.start()], rotated[match.start() :]
        dated = re.fullmatch(rf"({_DATE})(\.[^.\d][^.]*){_COMPRESSION}", rest)
        if root and dated and sum(c.isdigit() for c in dated.group(1)) >= DATE_DIGITS:
            yield root + dated.group(2)


def _dated_keeping_extension(rotated: str, name: str) -> bool:
    """``rotated`` is ``name`` dated before its extension (logrotate's ``dateext`` with
    ``extension .log``: app.log -> app-20261129.log, maybe compressed)."""
    return name in _dated_originals(rotated)


def _listed(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []


def _rotation_stem(name: str) -> str:
    """A name without what rotation appends: app.log.1, app.log-20261129.gz -> app.log;
    0.log.20261129-101010 (kubelet) -> 0.log."""
    match = _ROTATION_SUFFIX_RE.match(name)
    return match.group(1) if match else name


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


# -- patterns --------------------------------------------------------------------------------


def _expand_pattern(pattern: str) -> list[str]:
    """The paths ``pattern`` matches, in order. ``**`` matches any number of directories;
    a directory reached twice (a symlink loop) is walked once."""
    pattern = os.path.abspath(pattern)
    if "**" not in pattern:
        return sorted(glob.glob(pattern))
    root, _ = _watch_root(pattern)
    found: list[str] = []
    visited: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            info = os.stat(directory)
        except OSError:
            continue
        if (info.st_dev, info.st_ino) in visited:
            continue
        visited.add((info.st_dev, info.st_ino))
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            try:
                is_directory = entry.is_dir()
            except OSError:
                continue
            if is_directory:
                stack.append(entry.path)
            elif _pattern_matches(pattern, entry.path):
                found.append(entry.path)
    return sorted(found)


def _pattern_matches(pattern: str, path: str) -> bool:
    """glob's rules: ``*`` stays within a name, ``**`` spans any number of directories."""
    return _parts_match(tuple(os.path.abspath(pattern).split(os.sep)), tuple(path.split(os.sep)))


def _parts_match(pattern: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_parts_match(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    return (
        bool(parts)
        and fnmatch.fnmatchcase(parts[0], pattern[0])
        and _parts_match(pattern[1:], parts[1:])
    )


def _excluded(path: str, source: FileSource) -> bool:
    name = os.path.basename(path)
    return any(
        fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(name, pattern)
        for pattern in source.exclude
    )


def _covers(root: tuple[str, bool], directory: str) -> bool:
    path, recursive = root
    if directory == path:
        return True
    return recursive and directory.startswith(path.rstrip("/") + "/")


def _watch_root(pattern: str) -> tuple[str, bool]:
    """The directory above the first glob character of ``pattern``, and whether to recurse."""
    parts = os.path.abspath(pattern).split(os.sep)
    static: list[str] = []
    for part in parts[:-1]:
        if GLOB_CHARACTERS & set(part):
            return os.sep.join(static) or os.sep, True
        static.append(part)
    return os.sep.join(static) or os.sep, False
