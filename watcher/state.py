"""state: the one SQLite database in ``state_dir`` (WAL, mode 0600).

Holds what must survive a restart: file checkpoints (identity, committed offset, event-id key), the
CloudTrail files already processed, the decode cache, and the outbox of deliveries to remote
sinks. Every write is a transaction, so a ``kill -9`` leaves either the old or the new row. A
database that cannot be opened or is corrupt is reported and replaced by a fresh one (the old
file is kept beside it), never a crash loop.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from watcher.errors import StateDirectoryBusyError, StateDirectoryError, StateError
from watcher.log import Logger

DATABASE_NAME = "state.sqlite3"
_SELECT_CHECKPOINTS = (
    "SELECT device, inode, fingerprint, fingerprint_bytes, offset, path, file_key, mtime_ns,"
    " tail FROM followed_files"
)
LOCK_NAME = "lock"
FILES_FIRST_LOOK = "files_first_look"  # milestone: the very first look at the files is saved
_REACH_MILESTONE = "INSERT OR IGNORE INTO milestones VALUES (?, ?)"
# A full disk passes; restarting does not mend a missing permission or a read-only filesystem.
_TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
WAL_CHECKPOINT_PAGES = 64  # about 256 KiB of 4 KiB pages
WAL_SIZE_LIMIT_BYTES = 512 * 1024

_RETIRED_FILES = """
CREATE TABLE IF NOT EXISTS retired_files (
    device INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    fingerprint_bytes INTEGER NOT NULL,
    size INTEGER NOT NULL,
    retired_at REAL NOT NULL,
    history INTEGER NOT NULL DEFAULT 0,
    tail TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (device, inode, fingerprint, fingerprint_bytes, tail)
);
"""
_RETIRED_COLUMNS = (
    "device",
    "inode",
    "fingerprint",
    "fingerprint_bytes",
    "size",
    "retired_at",
    "history",
    "tail",
)
_SCHEMA = (
    _RETIRED_FILES
    + """
CREATE TABLE IF NOT EXISTS decode_cache (
    blob_sha256 TEXT PRIMARY KEY,
    decoded_json TEXT NOT NULL,
    stored_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS decode_cache_expiry ON decode_cache (expires_at);
CREATE TABLE IF NOT EXISTS cloudtrail_files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT,
    status TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (sink, next_attempt_at);
CREATE TABLE IF NOT EXISTS alert_groups (
    rule TEXT NOT NULL,
    group_key TEXT NOT NULL,
    quiet_until REAL NOT NULL,
    times_json TEXT NOT NULL,
    PRIMARY KEY (rule, group_key)
);
CREATE TABLE IF NOT EXISTS followed_files (
    device INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    fingerprint_bytes INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    path TEXT NOT NULL,
    file_key TEXT NOT NULL,
    mtime_ns INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    tail TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (device, inode)
);
CREATE TABLE IF NOT EXISTS journal_cursors (
    source_key TEXT PRIMARY KEY,
    cursor TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS s3_objects_seen (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    etag TEXT NOT NULL,
    sequencer TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (bucket, key, etag, sequencer)
);
CREATE INDEX IF NOT EXISTS s3_objects_seen_age ON s3_objects_seen (seen_at);
CREATE TABLE IF NOT EXISTS sqs_releases (
    message_id TEXT PRIMARY KEY,
    releases INTEGER NOT NULL,
    released_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS s3_listings (
    bucket TEXT NOT NULL,
    prefix TEXT NOT NULL,
    started_at REAL NOT NULL,
    PRIMARY KEY (bucket, prefix)
);
CREATE TABLE IF NOT EXISTS milestones (
    name TEXT PRIMARY KEY,
    reached_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS s3_start_keys (
    bucket TEXT NOT NULL,
    trail_prefix TEXT NOT NULL,
    start_after TEXT NOT NULL,
    PRIMARY KEY (bucket, trail_prefix)
);
CREATE TABLE IF NOT EXISTS s3_window_bases (
    bucket TEXT NOT NULL,
    trail_prefix TEXT NOT NULL,
    basis TEXT NOT NULL,
    PRIMARY KEY (bucket, trail_prefix)
);
CREATE TABLE IF NOT EXISTS s3_done_keys (
    bucket TEXT NOT NULL,
    trail_prefix TEXT NOT NULL,
    key TEXT NOT NULL,
    done_at REAL NOT NULL,
    PRIMARY KEY (bucket, trail_prefix, key)
);
CREATE TABLE IF NOT EXISTS compressed_named (
    device INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    named_at REAL NOT NULL,
    PRIMARY KEY (device, inode, size, mtime_ns, offset)
);
CREATE TABLE IF NOT EXISTS cloudwatch_logs_positions (
    account TEXT NOT NULL,
    log_group TEXT NOT NULL,
    last_event_ms INTEGER NOT NULL,
    event_ids_json TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (account, log_group)
);
"""
)


class StateDirectoryLock:
    """The exclusive lock on ``state_dir``, held for the life of the process: one daemon each.

    ``fcntl.flock`` on ``state_dir/lock`` (mode 0600), which the kernel releases when the
    process ends however it ends, so a crash never leaves a stale lock. The file holds the PID
    of the holder, for the message the next one prints.
    """

    def __init__(self, state_dir: str | Path) -> None:
        self.directory = Path(state_dir)
        self._fd = self._open_lock_file()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder_pid(self._fd)
            os.close(self._fd)
            raise StateDirectoryBusyError(
                f"{self.directory}: the state directory is in use by another authz-watcher "
                f"(PID {holder}); run one daemon per state_dir"
            ) from None
        with contextlib.suppress(OSError):  # a full disk: the lock holds, the PID goes unnamed
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def _open_lock_file(self) -> int:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            return os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            message = f"{self.directory}: cannot use the state directory: {_reason(exc)}"
            if exc.errno in _TRANSIENT_ERRNOS:
                raise StateError(message) from exc
            raise StateDirectoryError(message) from exc

    def release(self) -> None:
        os.close(self._fd)


def _holder_pid(fd: int) -> str:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return text if text.isdigit() else "unknown"


def _reason(exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


@dataclass(frozen=True, slots=True)
class FileCheckpoint:
    """One followed file: its identity, the offset after the last line whose events every sink
    has written, the configured path it was last seen at, and the key its event ids carry."""

    device: int
    inode: int
    fingerprint: str  # sha256 of the first ``fingerprint_bytes`` bytes
    fingerprint_bytes: int
    offset: int
    path: str
    file_key: str
    mtime_ns: int = 0  # the file's mtime when last read: a copy made later is newer
    # Hashes of the bytes before the last line ends seen in this life (encoded by the file
    # source): a life rewritten with the same first bytes (a banner) is told apart by them
    tail: str = ""


@dataclass(frozen=True, slots=True)
class RetiredFile:
    """A followed file read to its end and closed: its identity, first bytes and size then."""

    device: int
    inode: int
    fingerprint: str
    fingerprint_bytes: int
    size: int
    history: bool = False  # beside a live file at the very first start, never followed
    tail: str = ""  # its last bytes seen, as a checkpoint keeps them


@dataclass(frozen=True, slots=True)
class ExportState:
    """What became of one CloudTrail file at a given size and mtime."""

    size: int
    mtime_ns: int
    sha256: str | None
    status: str  # "done", "failed" (retried when it changes) or "ignored" (not CloudTrail)


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """One version of an S3 object as its notification names it (eTag and sequencer may be
    empty when the notification gives none)."""

    bucket: str
    key: str
    etag: str = ""
    sequencer: str = ""


@dataclass(frozen=True, slots=True)
class LogGroupPosition:
    """How far a CloudWatch Logs group was read: the time of the last event handed on, and
    the ids of the events at that millisecond already handed on (read again from there, they
    are skipped)."""

    last_event_ms: int
    event_ids: frozenset[str] = frozenset()


class StateStore:
    """Thread-safe access to the state database (one connection, one lock)."""

    def __init__(self, state_dir: str | Path, log: Logger) -> None:
        self.path = Path(state_dir) / DATABASE_NAME
        self._lock = threading.Lock()
        self._log = log
        self._cache_writes_failing = False
        self._connection = self._open(log)

    def _open(self, log: Logger) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _create_private(self.path)
            return self._connect()
        except sqlite3.OperationalError as exc:
            # Locked, a full disk, an I/O error, or a statement of ours that SQLite refuses: the
            # file may be fine, so it is never moved aside for that (checkpoints would be lost).
            raise StateError(f"{self.path}: cannot open the state database: {exc}") from exc
        except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed"
            broken = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            log.error(  # noqa: TRY400 - the reason is in `error`; a traceback would not help
                "state_corrupt",
                path=str(self.path),
                error=str(exc),
                moved_to=str(broken),
                detail="starting with an empty state",
            )
            self.path.replace(broken)  # a fresh start: files begin at start_at, as at the first
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{self.path}{suffix}").unlink()
            _create_private(self.path)
            return self._connect()
        except OSError as exc:
            raise StateError(f"{self.path}: cannot open the state database: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            # The write-ahead log is copied into the database every WAL_CHECKPOINT_PAGES and
            # cut back to WAL_SIZE_LIMIT_BYTES after: left at SQLite's default (about 4 MiB),
            # it filled a small state disk by itself and the pause never ended.
            connection.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            connection.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
            had_milestones = _has_table(connection, "milestones")
            connection.executescript(_SCHEMA)
            _migrate_path_offsets(connection)
            _migrate_retired_files(connection)
            _migrate_tails(connection)
            if not had_milestones:
                _migrate_first_look(connection)
            connection.execute("PRAGMA quick_check").fetchone()
            # What opening wrote (the schema, on a new database) is in the database now, and the
            # log empty: a state disk that fills later is seen by the next commits, not hidden
            # until the log has used the room it was given here.
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            connection.close()
            raise
        return connection

    def cached_decode(self, blob_sha256: str, now: float) -> str | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT decoded_json FROM decode_cache WHERE blob_sha256 = ? AND expires_at > ?",
                (blob_sha256, now),
            ).fetchone()
        return None if row is None else str(row[0])

    def store_decode(self, blob_sha256: str, decoded_json: str, now: float, ttl: float) -> None:
        """Cache a decode; a write the database refuses (a full disk) is skipped, not fatal."""
        try:
            with self._lock:
                self._connection.execute(
                    "INSERT OR REPLACE INTO decode_cache VALUES (?, ?, ?, ?)",
                    (blob_sha256, decoded_json, now, now + ttl),
                )
        except sqlite3.Error as exc:
            if not self._cache_writes_failing:
                self._log.warning(
                    "decode_cache_write_failed", path=str(self.path), error=str(exc),
                    detail="decodes are not cached until the database can be written again",
                )  # fmt: skip
            self._cache_writes_failing = True
            return
        self._cache_writes_failing = False

    def expire_decodes(self, now: float) -> int:
        """Drop expired decodes; 0 when the database cannot be written now (tried next time)."""
        try:
            with self._lock:
                cursor = self._connection.execute(
                    "DELETE FROM decode_cache WHERE expires_at <= ?", (now,)
                )
        except sqlite3.Error:
            return 0
        return cursor.rowcount

    def checkpoint_of(self, device: int, inode: int) -> FileCheckpoint | None:
        with self._lock:
            row = self._connection.execute(
                _SELECT_CHECKPOINTS + " WHERE device = ? AND inode = ?",
                (device, inode),
            ).fetchone()
        return None if row is None else FileCheckpoint(*row)

    def followed_files(self) -> list[FileCheckpoint]:
        with self._lock:
            rows = self._connection.execute(_SELECT_CHECKPOINTS + " ORDER BY updated_at").fetchall()
        return [FileCheckpoint(*row) for row in rows]

    def save_checkpoint(self, checkpoint: FileCheckpoint) -> None:
        c = checkpoint
        with self._lock:
            self._connection.execute(
                "INSERT OR REPLACE INTO followed_files (device, inode, fingerprint,"
                " fingerprint_bytes, offset, path, file_key, mtime_ns, updated_at, tail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    c.device, c.inode, c.fingerprint, c.fingerprint_bytes, c.offset, c.path,
                    c.file_key, c.mtime_ns, time.time(), c.tail,
                ),
            )  # fmt: skip

    def forget_file(self, device: int, inode: int) -> None:
        with self._lock:
            self._connection.execute(
                "DELETE FROM followed_files WHERE device = ? AND inode = ?", (device, inode)
            )

    def retire_file(self, retired: RetiredFile, keep_at_most: int) -> None:
        """A followed file read to its end and closed: its checkpoint goes, what it was (first
        bytes and size) stays, the ``keep_at_most`` latest, so a restart never takes it for a
        generation it missed."""
        r = retired
        with self._transaction() as connection:
            connection.execute(
                "DELETE FROM followed_files WHERE device = ? AND inode = ?", (r.device, r.inode)
            )
            _keep_read(connection, [retired], keep_at_most)

    def keep_read(self, retired: Sequence[RetiredFile], keep_at_most: int) -> None:
        """How far files, or lives of one before a truncation, were read (``size``), their
        checkpoints kept if any: a compressed copy, found later (after a restart too), is
        named only for what comes after. One transaction (a first start may record many)."""
        with self._transaction() as connection:
            _keep_read(connection, retired, keep_at_most)

    def retired_files(self) -> list[RetiredFile]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT device, inode, fingerprint, fingerprint_bytes, size, history, tail"
                " FROM retired_files ORDER BY retired_at"
            ).fetchall()
        return [RetiredFile(d, i, f, b, n, bool(h), tail) for d, i, f, b, n, h, tail in rows]

    def compressed_named(self) -> list[tuple[tuple[int, int, int, int], int | None]]:
        """The compressed files named ``source_compressed_unread`` (device, inode, size,
        mtime), each with the offset it was named with (None: a generation never read)."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT device, inode, size, mtime_ns, offset FROM compressed_named"
                " ORDER BY named_at"
            ).fetchall()
        return [((d, i, n, m), None if offset < 0 else offset) for d, i, n, m, offset in rows]

    def remember_compressed_named(
        self, compressed: tuple[int, int, int, int], offset: int | None, keep_at_most: int
    ) -> None:
        """A compressed file named: not named again, same offset, after a restart finds it
        under the name rotation gave it meanwhile. The ``keep_at_most`` latest are kept."""
        with self._transaction() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO compressed_named"
                " (device, inode, size, mtime_ns, offset, named_at) VALUES (?, ?, ?, ?, ?, ?)",
                (*compressed, -1 if offset is None else offset, time.time()),
            )
            connection.execute(
                "DELETE FROM compressed_named WHERE rowid NOT IN"
                " (SELECT rowid FROM compressed_named ORDER BY named_at DESC LIMIT ?)",
                (keep_at_most,),
            )

    def files_first_look_due(self) -> bool:
        """Whether the very first look at the files is still to come: the database is new, or
        every run so far ended before its first look was saved (``start_at`` and history still
        apply then), though some of that look's records may be saved."""
        with self._lock:
            row = self._connection.execute(
                "SELECT 1 FROM milestones WHERE name = ?", (FILES_FIRST_LOOK,)
            ).fetchone()
        return row is None

    def files_first_look_saved(self) -> None:
        with self._lock:
            self._connection.execute(_REACH_MILESTONE, (FILES_FIRST_LOOK, time.time()))

    def files_last_saved_at(self) -> float | None:
        """When a followed or closed file's record was last written (wall clock): at or before
        the last run's last look at its files; None if none was ever saved."""
        with self._lock:
            row = self._connection.execute(
                "SELECT max(t) FROM (SELECT max(updated_at) AS t FROM followed_files"
                " UNION ALL SELECT max(retired_at) FROM retired_files)"
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def export_state(self, path: str) -> ExportState | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT size, mtime_ns, sha256, status FROM cloudtrail_files WHERE path = ?",
                (path,),
            ).fetchone()
        return None if row is None else ExportState(*row)

    def save_export_state(self, path: str, state: ExportState) -> None:
        with self._lock:
            self._connection.execute(
                "INSERT OR REPLACE INTO cloudtrail_files VALUES (?, ?, ?, ?, ?, ?)",
                (path, state.size, state.mtime_ns, state.sha256, state.status, time.time()),
            )

    def s3_listing_started(self, bucket: str, prefix: str) -> bool:
        """Whether the ``s3`` source of ``bucket``/``prefix`` has chosen where it starts."""
        with self._lock:
            row = self._connection.execute(
                "SELECT 1 FROM s3_listings WHERE bucket = ? AND prefix = ?", (bucket, prefix)
            ).fetchone()
        return row is not None

    def start_s3_listing(self, bucket: str, prefix: str, start_after: dict[str, str]) -> None:
        """Mark the listing started, with the key each trail prefix starts after (start_at:
        end), in one transaction."""
        with self._transaction() as connection:
            connection.executemany(
                "INSERT OR REPLACE INTO s3_start_keys VALUES (?, ?, ?)",
                [(bucket, trail_prefix, key) for trail_prefix, key in start_after.items()],
            )
            connection.execute(
                "INSERT OR IGNORE INTO s3_listings VALUES (?, ?, ?)", (bucket, prefix, time.time())
            )

    def s3_start_keys(self, bucket: str) -> dict[str, str]:
        """Trail prefix -> the key at and before which nothing is read."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT trail_prefix, start_after FROM s3_start_keys WHERE bucket = ?", (bucket,)
            ).fetchall()
        return {str(trail_prefix): str(key) for trail_prefix, key in rows}

    def s3_done_keys(self, bucket: str) -> dict[str, set[str]]:
        """Trail prefix -> the keys (of the look-back window) whose events every sink took."""
        done: dict[str, set[str]] = {}
        with self._lock:
            rows = self._connection.execute(
                "SELECT trail_prefix, key FROM s3_done_keys WHERE bucket = ?", (bucket,)
            ).fetchall()
        for trail_prefix, key in rows:
            done.setdefault(str(trail_prefix), set()).add(str(key))
        return done

    def s3_window_bases(self, bucket: str) -> dict[str, str]:
        """Trail prefix -> the key a restart's first listing takes its look-back window from."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT trail_prefix, basis FROM s3_window_bases WHERE bucket = ?", (bucket,)
            ).fetchall()
        return {str(trail_prefix): str(basis) for trail_prefix, basis in rows}

    def save_s3_done_keys(
        self,
        done: dict[tuple[str, str], list[str]],
        forget_before: dict[tuple[str, str], str],
        window_bases: dict[tuple[str, str], str] | None = None,
    ) -> None:
        """Record keys done per (bucket, trail prefix), forget those before the window and
        move each window's basis forward (never back), in one transaction."""
        now = time.time()
        with self._transaction() as connection:
            connection.executemany(
                "INSERT OR IGNORE INTO s3_done_keys VALUES (?, ?, ?, ?)",
                [(b, prefix, key, now) for (b, prefix), keys in done.items() for key in keys],
            )
            connection.executemany(
                "INSERT INTO s3_window_bases VALUES (?, ?, ?) ON CONFLICT (bucket, trail_prefix)"
                " DO UPDATE SET basis = max(basis, excluded.basis)",
                [(b, prefix, basis) for (b, prefix), basis in (window_bases or {}).items()],
            )
            connection.executemany(
                "DELETE FROM s3_done_keys WHERE bucket = ? AND trail_prefix = ? AND key < ?",
                [(b, prefix, key) for (b, prefix), key in forget_before.items()],
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._connection.execute("BEGIN")
            try:
                yield self._connection
                self._connection.execute("COMMIT")
            except BaseException:
                # A COMMIT refused (a full disk) can leave the transaction open: every later
                # BEGIN would then fail, even once there is room again.
                if self._connection.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._connection.execute("ROLLBACK")
                with contextlib.suppress(sqlite3.Error):  # give back what the log holds
                    self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                raise

    def log_group_position(self, account: str, group: str) -> LogGroupPosition | None:
        """Where ``group`` (read with ``account``'s profile and region) was read up to."""
        with self._lock:
            row = self._connection.execute(
                "SELECT last_event_ms, event_ids_json FROM cloudwatch_logs_positions "
                "WHERE account = ? AND log_group = ?",
                (account, group),
            ).fetchone()
        if row is None:
            return None
        return LogGroupPosition(int(row[0]), frozenset(json.loads(row[1])))

    def save_log_group_positions(
        self, account: str, positions: Mapping[str, LogGroupPosition]
    ) -> None:
        """Save the positions of several groups (each row on its own: an older row is only
        read again, never lost)."""
        now = time.time()
        rows = [
            (account, group, p.last_event_ms, json.dumps(sorted(p.event_ids)), now)
            for group, p in positions.items()
        ]
        with self._lock:
            self._connection.executemany(
                "INSERT OR REPLACE INTO cloudwatch_logs_positions VALUES (?, ?, ?, ?, ?)", rows
            )

    def enqueue(self, sink: str, payload: str, now: float) -> None:
        with self._lock:
            self._connection.execute(
                "INSERT INTO outbox (sink, payload, next_attempt_at, created_at) "
                "VALUES (?, ?, ?, ?)",
                (sink, payload, now, now),
            )

    def due(self, sink: str, now: float, limit: int = 50) -> list[tuple[int, str, int]]:
        """(id, payload, attempts) of the deliveries of ``sink`` whose time has come."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT id, payload, attempts FROM outbox WHERE sink = ? AND next_attempt_at <= ? "
                "ORDER BY id LIMIT ?",
                (sink, now, limit),
            ).fetchall()
        return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]

    def next_due_at(self, sink: str) -> float | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE sink = ?", (sink,)
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def outbox_count(self, sink: str) -> int:
        with self._lock:
            row = self._connection.execute(
                "SELECT COUNT(*) FROM outbox WHERE sink = ?", (sink,)
            ).fetchone()
        return int(row[0])

    def outbox_counts(self) -> dict[str, int]:
        """Events waiting in the outbox, by sink."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT sink, COUNT(*) FROM outbox GROUP BY sink"
            ).fetchall()
        return {str(sink): int(count) for sink, count in rows}

    def delivered(self, delivery_id: int) -> None:
        with self._lock:
            self._connection.execute("DELETE FROM outbox WHERE id = ?", (delivery_id,))

    def retry_later(self, delivery_id: int, attempts: int, at: float) -> None:
        with self._lock:
            self._connection.execute(
                "UPDATE outbox SET attempts = ?, next_attempt_at = ? WHERE id = ?",
                (attempts, at, delivery_id),
            )

    def save_alert_group(self, rule: str, key: str, quiet_until: float, times: str) -> None:
        """One group's cooldown and window, written as its cooldown starts."""
        with self._lock:
            self._connection.execute(
                "INSERT OR REPLACE INTO alert_groups VALUES (?, ?, ?, ?)",
                (rule, key, quiet_until, times),
            )

    def save_alert_groups(self, rows: list[tuple[str, str, float, str]]) -> None:
        """Every group's (rule, key, quiet_until, times), replacing what was saved before."""
        with self._transaction() as connection:
            connection.execute("DELETE FROM alert_groups")
            connection.executemany("INSERT OR REPLACE INTO alert_groups VALUES (?, ?, ?, ?)", rows)

    def alert_groups(self) -> list[tuple[str, str, float, str]]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT rule, group_key, quiet_until, times_json FROM alert_groups"
            ).fetchall()
        return [(str(r[0]), str(r[1]), float(r[2]), str(r[3])) for r in rows]

    def journal_cursor(self, source_key: str) -> str | None:
        """The cursor of the last journal entry whose events every sink has (journald)."""
        with self._lock:
            row = self._connection.execute(
                "SELECT cursor FROM journal_cursors WHERE source_key = ?", (source_key,)
            ).fetchone()
        return None if row is None else str(row[0])

    def save_journal_cursor(self, source_key: str, cursor: str) -> None:
        with self._lock:
            self._connection.execute(
                "INSERT OR REPLACE INTO journal_cursors VALUES (?, ?, ?)",
                (source_key, cursor, time.time()),
            )

    def object_seen(self, version: ObjectVersion) -> bool:
        """This version of an S3 object was read and acknowledged here before (s3_sqs)."""
        with self._lock:
            row = self._connection.execute(
                "SELECT 1 FROM s3_objects_seen "
                "WHERE bucket = ? AND key = ? AND etag = ? AND sequencer = ?",
                (version.bucket, version.key, version.etag, version.sequencer),
            ).fetchone()
        return row is not None

    def remember_objects(self, versions: list[ObjectVersion], now: float) -> None:
        with self._lock:
            self._connection.executemany(
                "INSERT OR REPLACE INTO s3_objects_seen VALUES (?, ?, ?, ?, ?)",
                [(v.bucket, v.key, v.etag, v.sequencer, now) for v in versions],
            )

    def forget_objects(self, seen_before: float, keep_at_most: int) -> int:
        """Drop what was seen before ``seen_before``, then the oldest beyond ``keep_at_most``."""
        with self._lock:
            expired = self._connection.execute(
                "DELETE FROM s3_objects_seen WHERE seen_at < ?", (seen_before,)
            ).rowcount
            surplus = self._connection.execute(
                "DELETE FROM s3_objects_seen WHERE rowid IN (SELECT rowid FROM s3_objects_seen "
                "ORDER BY seen_at DESC, rowid DESC LIMIT -1 OFFSET ?)",
                (keep_at_most,),
            ).rowcount
        return int(expired) + int(surplus)

    def count_releases(self, message_ids: list[str], now: float) -> None:
        """These SQS messages were given back at a stop (each counts as a receive in SQS)."""
        with self._lock:
            self._connection.executemany(
                "INSERT INTO sqs_releases VALUES (?, 1, ?) ON CONFLICT (message_id) "
                "DO UPDATE SET releases = releases + 1, released_at = excluded.released_at",
                [(message_id, now) for message_id in message_ids],
            )

    def releases_of(self, message_id: str) -> int:
        with self._lock:
            row = self._connection.execute(
                "SELECT releases FROM sqs_releases WHERE message_id = ?", (message_id,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def forget_releases(self, released_before: float) -> int:
        with self._lock:
            return int(
                self._connection.execute(
                    "DELETE FROM sqs_releases WHERE released_at < ?", (released_before,)
                ).rowcount
            )

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def _create_private(path: Path) -> None:
    """Create the database file (and fix an existing one) with mode 0600 before SQLite opens it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").chmod(0o600)


def _keep_read(
    connection: sqlite3.Connection, retired: Sequence[RetiredFile], keep_at_most: int
) -> None:
    now = time.time()
    connection.executemany(
        "INSERT OR REPLACE INTO retired_files (device, inode, fingerprint, fingerprint_bytes,"
        " size, retired_at, history, tail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (r.device, r.inode, r.fingerprint, r.fingerprint_bytes, r.size, now, r.history, r.tail)
            for r in retired
        ],
    )
    connection.execute(
        "DELETE FROM retired_files WHERE rowid NOT IN"
        " (SELECT rowid FROM retired_files ORDER BY retired_at DESC LIMIT ?)",
        (keep_at_most,),
    )


def _has_table(connection: sqlite3.Connection, name: str) -> bool:
    query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return connection.execute(query, (name,)).fetchone() is not None


def _migrate_first_look(connection: sqlite3.Connection) -> None:
    """A database from before the milestones: its first look is saved if it knows a file."""
    known = connection.execute(
        "SELECT 1 FROM followed_files UNION ALL SELECT 1 FROM retired_files LIMIT 1"
    ).fetchone()
    if known is not None:
        connection.execute(_REACH_MILESTONE, (FILES_FIRST_LOOK, time.time()))


def _migrate_retired_files(connection: sqlite3.Connection) -> None:
    """Closed files were first kept one per inode, then one per inode and first bytes, so a
    file that took a closed one's inode (and began alike: a banner) replaced what was known of
    it: their rows go to a table that keeps each life (by its last bytes seen too)."""
    columns = connection.execute("PRAGMA table_info(retired_files)").fetchall()
    if any(name == "tail" and pk for _, name, _, _, _, pk in columns):
        return
    names = {name for _, name, *_ in columns}
    kept = ", ".join(c for c in _RETIRED_COLUMNS if c in names)
    connection.execute("BEGIN")
    connection.execute("ALTER TABLE retired_files RENAME TO retired_files_before")
    connection.execute(_RETIRED_FILES)
    connection.execute(
        f"INSERT OR REPLACE INTO retired_files ({kept})"  # noqa: S608 - our own columns
        f" SELECT {kept} FROM retired_files_before"
    )
    connection.execute("DROP TABLE retired_files_before")
    connection.execute("COMMIT")


def _migrate_tails(connection: sqlite3.Connection) -> None:
    """Checkpoints and closed files from before their last bytes were kept: those rows have
    none (their first bytes alone tell their file)."""
    for table in ("followed_files", "retired_files"):
        columns = {name for _, name, *_ in connection.execute(f"PRAGMA table_info({table})")}
        if "tail" not in columns:
            connection.execute(f"ALTER TABLE {table} ADD COLUMN tail TEXT NOT NULL DEFAULT ''")


def _migrate_path_offsets(connection: sqlite3.Connection) -> None:
    """Checkpoints of 0.1 were keyed by path; carry them over, each with a key of its own."""
    if not connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'file_offsets'"
    ).fetchone():
        return
    connection.execute("BEGIN")
    for path, device, inode, fingerprint, fingerprint_bytes, offset, _ in connection.execute(
        "SELECT * FROM file_offsets"
    ).fetchall():
        connection.execute(
            "INSERT OR IGNORE INTO followed_files (device, inode, fingerprint,"
            " fingerprint_bytes, offset, path, file_key, mtime_ns, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (device, inode, fingerprint, fingerprint_bytes, offset, path,
             secrets.token_hex(8), 0, time.time()),
        )  # fmt: skip
    connection.execute("DROP TABLE file_offsets")
    connection.execute("COMMIT")
