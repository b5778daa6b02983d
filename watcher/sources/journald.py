"""sources: the systemd journal, followed by one ``journalctl`` process per configured source.

    journalctl --output=json --follow --cursor=C [--directory=D] [matches]   (reader thread)
        -> bounded queue -> read(): each entry's MESSAGE -> out.text
        -> checkpoint(): the cursor of the last entry handed on, saved once the sinks have it

Why a ``journalctl`` process and not bindings (``systemd-python``, ``cysystemd``): every
systemd host has it, it reads every journal format and compression the host's systemd writes
(bindings built against another libsystemd may not), it follows rotation and vacuuming on its
own, and it needs nothing compiled into the venv. It runs without a shell; its JSON output
gives a non-UTF-8 ``MESSAGE`` as an array of bytes, and ``--all`` keeps fields over 4 KiB
(a blob is up to 10 KiB) instead of nulling them.

Why ``--cursor`` and not ``--after-cursor``: after seeking, ``--after-cursor`` skips one entry
assuming it is the cursor's own, so when that entry was vacuumed it silently skips an entry
never read. With ``--cursor`` the first entry printed is the cursor's own when it still exists
(dropped: it was handed on before); any other first entry means it is gone, which is said once,
and reading starts again at the oldest entry (at-least-once: ids repeat, nothing is lost).
``--merge`` because ``--follow`` alone shows only the latest boot (entries logged before a
reboot and not yet read would be lost) and, on the system journal, needs the boot id that
``ProcSubset=pid`` hides; with it the system journal includes the other machines' journals
stored on the host (containers, remote).

The checkpoint is per configured source (its directory, units and identifiers). A source with
no saved cursor starts at ``start_at``: for ``end`` the cursor of the current last entry is
saved before anything is read, so a crash before the first commit resumes there. A reader
process that exits is logged and started again, with backoff, after the last entry it fetched.
Entries of the service the watcher itself runs in are skipped (its stdout events would loop).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import queue
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from watcher.config import JournaldSource, journal_unit_name
from watcher.events import iso_utc
from watcher.log import Logger
from watcher.model import Origin
from watcher.sources.base import Output, Progress, RemoteSource, Save, Wake
from watcher.state import StateStore

JOURNALCTL = "journalctl"
QUEUE_ENTRIES = 1_000  # per source: the reader process blocks on its pipe beyond this
ENTRIES_PER_READ = 5_000  # per source and call: the loop commits and pings between batches
RETRY_MIN_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 5.0
_PUT_WAIT_SECONDS = 0.2  # how often a reader blocked on a full queue looks for a stop
_STDERR_TAIL_BYTES = 2048
_FIELDS = "MESSAGE,_SYSTEMD_UNIT,SYSLOG_IDENTIFIER,_COMM"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """What the pipeline needs of one journal entry."""

    cursor: str
    message: bytes | str | None  # None: the entry has no MESSAGE
    source_path: str  # the unit, else the syslog identifier, else the command
    timestamp: str | None  # __REALTIME_TIMESTAMP as ISO-8601 UTC


class EntryError(ValueError):
    """A line of journalctl's output that is not an entry."""


def parse_entry(line: bytes) -> JournalEntry:
    """One line of ``journalctl --output=json`` -> the entry; EntryError says why not."""
    try:
        fields = json.loads(line)
    except ValueError as exc:
        raise EntryError(f"not JSON: {exc}") from None
    if not isinstance(fields, dict) or not isinstance(fields.get("__CURSOR"), str):
        raise EntryError("no __CURSOR field")
    source_path = next(
        (
            value
            for key in ("_SYSTEMD_UNIT", "SYSLOG_IDENTIFIER", "_COMM")
            if (value := _first_text(fields.get(key))) is not None
        ),
        "journal",
    )
    return JournalEntry(
        cursor=fields["__CURSOR"],
        message=message_of(fields.get("MESSAGE")),
        source_path=source_path,
        timestamp=_realtime(fields.get("__REALTIME_TIMESTAMP")),
    )


def message_of(value: object) -> bytes | str | None:
    """MESSAGE as journalctl gives it: a string, an array of bytes (not UTF-8), or an array
    of those when the entry has the field more than once (joined by newlines)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(b, int) for b in value):
        return bytes(value)
    if isinstance(value, list):
        parts = [message_of(item) for item in value]
        chunks = [p.encode() if isinstance(p, str) else p for p in parts if p is not None]
        return b"\n".join(chunks) if chunks else None
    return None


def _first_text(value: object) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, list):  # the bytes of a non-UTF-8 value
        return bytes(v for v in value if isinstance(v, int)).decode("utf-8", "replace")
    return value if isinstance(value, str) and value else None


def _realtime(value: object) -> str | None:
    if not isinstance(value, str) or not value.isdigit():
        return None
    return iso_utc(datetime.fromtimestamp(int(value) / 1_000_000, UTC))


def matches(source: JournaldSource) -> list[str]:
    """journalctl match arguments: entries of any of the units OR any of the identifiers.

    Not ``-u``/``-t``: journalctl ANDs those two, and both lists are meant as one union."""
    units = [f"_SYSTEMD_UNIT={journal_unit_name(unit)}" for unit in source.units]
    identifiers = [f"SYSLOG_IDENTIFIER={name}" for name in source.identifiers]
    return [*units, "+", *identifiers] if units and identifiers else [*units, *identifiers]


def journalctl_command(
    source: JournaldSource, cursor: str | None, *, follow: bool = True
) -> list[str]:
    """The reader's command: from ``cursor`` (included) or the oldest entry, then follows."""
    command = [JOURNALCTL, "--output=json", "--all", "--quiet", "--no-pager"]
    command.append(f"--output-fields={_FIELDS}")
    if source.directory is not None:
        command.append(f"--directory={source.directory}")
    if follow:  # without --merge, --follow reads only the latest boot
        command += ["--follow", "--no-tail", "--merge"]
    if cursor is not None:
        command.append(f"--cursor={cursor}")
    return command + matches(source)


def own_unit(cgroups: str) -> str | None:
    """The service this process runs in, from ``/proc/self/cgroup``'s text, or None.

    Its entries are never handed on: under systemd a stdout sink's events are journal entries
    of that unit, and each one read back (it quotes the denial) would make another."""
    for line in cgroups.splitlines():
        name = line.rsplit("/", 1)[-1]
        if line.count(":") >= 2 and name.endswith(".service"):
            return name
    return None


def _read_own_unit() -> str | None:
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as cgroups:
            return own_unit(cgroups.read())
    except OSError:
        return None


def source_key(source: JournaldSource) -> str:
    """What a saved cursor belongs to: the journal read and the filters on it."""
    return json.dumps(
        [source.directory, sorted(source.units), sorted(source.identifiers)], separators=(",", ":")
    )


def describe(source: JournaldSource) -> str:
    """How the logs name a source."""
    where = source.directory or "the system journal"
    filters = [*map(journal_unit_name, source.units), *source.identifiers]
    return f"{where} ({', '.join(filters)})" if filters else where


class JournalReader:
    """One configured source: its ``journalctl`` process, the thread reading it, its queue."""

    def __init__(self, source: JournaldSource, store: StateStore, log: Logger) -> None:
        self.source = source
        self.key = source_key(source)
        self._store = store
        self._log = log
        self._queue: queue.Queue[JournalEntry] = queue.Queue(maxsize=QUEUE_ENTRIES)
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._process_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._lost_cursor_reported = False
        self._own_unit = _read_own_unit()
        self.committed = store.journal_cursor(self.key)  # daemon thread only, with `handed`
        self.handed = self.committed
        self._fetched = self.committed  # reader thread only: where a new process starts

    def start(self, wake: Wake) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(wake,), name=f"journald {describe(self.source)}", daemon=True
        )
        self._thread.start()

    def take(self) -> JournalEntry | None:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    @property
    def has_more(self) -> bool:
        return not self._queue.empty()

    def close(self) -> None:
        self._stopping.set()
        with self._process_lock:
            process = self._process
        if process is not None:
            _terminate(process)  # its pipe is the thread's to close: it may be reading it
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_SECONDS * 2)

    # -- the reader thread -------------------------------------------------------------------

    def _run(self, wake: Wake) -> None:
        delay = RETRY_MIN_SECONDS
        reported: str | None = None  # the failure last logged
        needs_tail = self._fetched is None and self.source.start_at == "end"
        while not self._stopping.is_set():
            try:
                if needs_tail:
                    self._start_at_tail()
                    needs_tail = False
                outcome, error = self._follow(wake)
            except ReaderError as exc:
                outcome, error = "nothing", str(exc)
            except Exception as exc:  # noqa: BLE001 - logged; it must never end the thread
                outcome, error = "nothing", f"{type(exc).__name__}: {exc}"
            if self._stopping.is_set() or outcome == "restart":
                continue
            if outcome == "read":
                delay, reported = RETRY_MIN_SECONDS, None
            if error != reported:  # once per reason, not at every retry of the backoff
                self._log.error(
                    "journal_reader_exited", stage="source", source=describe(self.source),
                    error=error, retry_seconds=delay,
                    detail="started again after the last entry it read; retried with backoff",
                )  # fmt: skip
                reported = error
            delay = self._back_off(delay)

    def _start_at_tail(self) -> None:
        """``start_at: end`` with no saved cursor: save the last entry's cursor before reading
        on from it (none: the journal is empty so far, and everything in it is new)."""
        command = [*journalctl_command(self.source, None, follow=False), "--lines=1"]
        with self._running(command) as (process, stderr):
            last = process.stdout.read().splitlines()[-1:] if process.stdout else []
            if self._stopping.is_set():
                return
            _reap(process)
            if process.returncode != 0:
                raise ReaderError(_exit_message(process, stderr))
        if last:
            try:
                cursor = parse_entry(last[0]).cursor
            except EntryError as exc:
                raise ReaderError(f"the last entry: {exc}") from None
            self._store.save_journal_cursor(self.key, cursor)
            self._fetched = cursor

    def _follow(self, wake: Wake) -> tuple[str, str]:
        """Run one reader process to its end: ("read" if it handed on entries, "restart" when
        its cursor was gone, "nothing" otherwise; why it ended)."""
        cursor = self._fetched
        with self._running(journalctl_command(self.source, cursor)) as (process, stderr):
            self._log.info(
                "journal_opened",
                source=describe(self.source),
                start="at its cursor" if cursor else "at the oldest entry",
            )
            try:
                outcome = self._consume(process, cursor, wake)
            except (OSError, ValueError) as exc:
                raise ReaderError(f"reading its output: {exc}") from None
            if outcome == "restart":
                return outcome, ""
            _reap(process)
            return outcome, _exit_message(process, stderr)

    @contextlib.contextmanager
    def _running(self, command: list[str]) -> Iterator[tuple[subprocess.Popen[bytes], IO[bytes]]]:
        """A journalctl process that close() can stop; finished and forgotten on the way out."""
        with tempfile.TemporaryFile() as stderr:
            with self._process_lock:
                if self._stopping.is_set():
                    raise ReaderError("stopping")
                try:
                    process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                        command,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=stderr,
                        start_new_session=True,  # a terminal's Ctrl-C is the daemon's to handle
                    )
                except OSError as exc:
                    raise ReaderError(f"cannot run {command[0]}: {exc}") from None
                self._process = process
            try:
                yield process, stderr
            finally:
                _finish(process)
                with self._process_lock:
                    self._process = None

    def _consume(self, process: subprocess.Popen[bytes], cursor: str | None, wake: Wake) -> str:
        if process.stdout is None:  # not with stdout=PIPE; for the type checker
            return "nothing"
        expected = cursor
        outcome = "nothing"
        for number, line in enumerate(process.stdout, start=1):
            try:
                entry = parse_entry(line)
            except EntryError as exc:
                self._log.warning(
                    "journal_entry_unreadable", source=describe(self.source),
                    line=number, error=str(exc), detail="skipped",
                )  # fmt: skip
                continue
            if entry.source_path == self._own_unit:
                entry = dataclasses.replace(entry, message=None)  # our own events
            if expected is not None:
                first, expected = expected, None
                if entry.cursor == first:
                    continue  # the last entry read before: already handed on
                self._report_lost_cursor(first)
                self._fetched = None
                return "restart"
            if not self._put(entry):
                break
            self._fetched = entry.cursor
            outcome = "read"
            if self._queue.qsize() == 1:  # it was empty: the loop may be waiting
                wake()
        return outcome

    def _put(self, entry: JournalEntry) -> bool:
        while not self._stopping.is_set():
            try:
                self._queue.put(entry, timeout=_PUT_WAIT_SECONDS)
            except queue.Full:
                continue
            return True
        return False

    def _report_lost_cursor(self, cursor: str) -> None:
        if self._lost_cursor_reported:
            return
        self._lost_cursor_reported = True
        self._log.warning(
            "journal_cursor_not_found",
            source=describe(self.source),
            cursor=cursor,
            detail="its entry was vacuumed or rotated away: reading again from the oldest entry",
        )

    def _back_off(self, delay: float) -> float:
        self._stopping.wait(delay)
        return min(delay * 2, RETRY_MAX_SECONDS)


class ReaderError(Exception):
    """Why a reader process ended, or could not start."""


def _exit_message(process: subprocess.Popen[bytes], stderr: IO[bytes]) -> str:
    """How it ended, and the end of what it said on stderr."""
    stderr.seek(0)
    said = stderr.read()[-_STDERR_TAIL_BYTES:].decode("utf-8", "replace").strip()
    code = process.returncode
    ended = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
    return f"journalctl {ended}" + (f": {said}" if said else "")


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _reap(process: subprocess.Popen[bytes]) -> None:
    """Its output ended: let it exit on its own (so its status is its own), else stop it."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(STOP_TIMEOUT_SECONDS)
    _finish(process)


def _finish(process: subprocess.Popen[bytes]) -> None:
    """Stop it and close its pipe (the reader thread's, which reads it)."""
    _terminate(process)
    if process.stdout is not None:
        with contextlib.suppress(OSError):
            process.stdout.close()


class JournalSources(RemoteSource):
    """Every configured journald source; the kind ``journald`` of ``sources/base.py``."""

    kind = "journald"

    def __init__(self, sources: Sequence[JournaldSource], store: StateStore, log: Logger) -> None:
        self._store = store
        self._readers = [JournalReader(source, store, log) for source in sources]
        self._more_ready = False

    def start(self, wake: Wake) -> None:
        for reader in self._readers:
            reader.start(wake)

    def read(self, changed: set[str] | None, out: Output) -> int:
        del changed
        read_bytes = 0
        more = False
        for reader in self._readers:
            profile = reader.source.aws_profile
            for _ in range(ENTRIES_PER_READ):
                if out.paused:
                    break
                entry = reader.take()
                if entry is None:
                    break
                if entry.message is not None:
                    # The cursor is the entry's own key: the same entry read again (after a
                    # crash) gets the same event ids, and no two entries share one.
                    origin = Origin("journald", entry.source_path, file_key=entry.cursor)
                    out.text(entry.message, origin, profile=profile, timestamp=entry.timestamp)
                    read_bytes += len(entry.message)
                reader.handed = entry.cursor
            more = more or (reader.has_more and not out.paused)
        self._more_ready = more
        return read_bytes

    def checkpoint(self) -> Save | None:
        """Saves each source's cursor of the last entry handed on (it covers all before it)."""
        pending = [(r, r.handed) for r in self._readers if r.handed != r.committed]
        if not pending:
            return None

        def save() -> None:
            for reader, cursor in pending:
                if cursor is not None:
                    self._store.save_journal_cursor(reader.key, cursor)
                    reader.committed = cursor

        return save

    @property
    def more_ready(self) -> bool:
        return self._more_ready

    def progress(self) -> Progress:
        return Progress(followed=len(self._readers))

    def close(self) -> None:
        """Stops every reader process and thread; entries not committed come again."""
        for reader in self._readers:
            reader.close()
