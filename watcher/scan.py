"""scan: one pass over files, directories, ``.gz`` files and stdin -> denial events.

The source stage of the ``scan`` command. Each input is read once, in order (with
``order_by_time``, the files of a directory oldest first, by their first timestamp, so that
alert windows replay rotated logs as they were written); an input that
cannot be read completely is named on stderr with the reason, what could be read is still
processed, and the other inputs continue. The caller learns from ``ScanResult`` whether every
input was read (exit status 0) or not (1). ``Outbox`` is the command's sink stage for the
configuration's webhook and SNS sinks: it delivers before the command exits.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import sqlite3
import stat
import sys
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from watcher.errors import StateDirectoryBusyError
from watcher.events import utc_now
from watcher.extract import (
    SECOND_WORDS_BYTES,
    might_contain_denial_bytes,
    parse_leading_timestamp,
)
from watcher.log import Logger
from watcher.model import DEFAULT_CLOUDTRAIL_ERROR_CODES, Origin
from watcher.pipeline import OrderedDecodingEmitter
from watcher.sources.cloudtrail import (
    SKIPPED_DIRECTORIES,
    CloudTrailFormatError,
    iter_records,
    looks_like_cloudtrail,
    record_denials,
)
from watcher.sources.framing import Framing
from watcher.sources.lines import DEFAULT_MAX_LINE_BYTES, Readable, iter_candidates

if TYPE_CHECKING:
    from watcher.config import Config
    from watcher.model import Event
    from watcher.sinks.delivery import DeliveringSink
    from watcher.state import StateDirectoryLock, StateStore

DRAIN_POLL_SECONDS = 0.05
STDIN_NAME = "-"
STDIN_PATH = "<stdin>"
_GZIP_MAGIC = b"\x1f\x8b"
_SNIFF_BYTES = 8192
_ORDERING_HEAD_BYTES = 65536


def _first_time_key(path: str) -> tuple[bool, str]:
    """Files whose first lines give a time sort by it; the others go after them."""
    stamp = first_timestamp(path)
    return (stamp is None, stamp or "")


def first_timestamp(path: str) -> str | None:
    """The time of the first line among the first 64 KiB (gzip opened) that starts with one."""
    try:
        with open(path, "rb") as raw:
            head = raw.read(_ORDERING_HEAD_BYTES)
            if head.startswith(_GZIP_MAGIC):
                raw.seek(0)
                with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                    head = unzipped.read(_ORDERING_HEAD_BYTES)
    except (OSError, EOFError, zlib.error):
        return None  # the scan itself reports what is wrong with the file
    for line in head.decode("utf-8", "replace").splitlines():
        stamp = parse_leading_timestamp(line)
        if stamp is not None:
            return stamp
    return None


@dataclass(slots=True)
class ScanResult:
    inputs_read: int = 0
    inputs_failed: int = 0
    denials: int = 0

    @property
    def complete(self) -> bool:
        return self.inputs_failed == 0


def _sniff(raw: io.FileIO) -> tuple[BinaryIO, bytes]:
    """The first bytes of a file without consuming them; pipes get a buffer to peek into."""
    if raw.seekable():
        return raw, os.pread(raw.fileno(), _SNIFF_BYTES, 0)
    buffered = io.BufferedReader(raw)
    return buffered, buffered.peek(_SNIFF_BYTES)[:_SNIFF_BYTES]


class Scanner:
    """Reads inputs and hands every candidate line to the pipeline's ``denials`` stage."""

    def __init__(
        self,
        denials: OrderedDecodingEmitter,
        log: Logger,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        error_codes: tuple[str, ...] = DEFAULT_CLOUDTRAIL_ERROR_CODES,
        order_by_time: bool = False,
        framing: Framing = "auto",
    ) -> None:
        self._order_by_time = order_by_time
        self._error_codes = error_codes
        self._framing = framing
        self._denials = denials
        self._log = log
        self._max_line_bytes = max_line_bytes
        self.result = ScanResult()

    def scan(self, inputs: Iterable[str]) -> ScanResult:
        for name in inputs:
            if name == STDIN_NAME:
                stdin = io.BufferedReader(io.FileIO(sys.stdin.fileno(), closefd=False))
                self._scan_opened(STDIN_PATH, stdin, stdin.peek(_SNIFF_BYTES)[:_SNIFF_BYTES])
            else:
                self._scan_path(name)
        return self.result

    def _scan_path(self, path: str) -> None:
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            self._failed(path, exc)
            return
        if stat.S_ISDIR(mode):
            files = list(self._walk(path))
            if self._order_by_time:
                files.sort(key=_first_time_key)  # stable: undated files keep their name order
            for file_path in files:
                self._scan_file(file_path)
        elif stat.S_ISSOCK(mode):
            self._failed(path, "a socket cannot be scanned")
        else:  # regular files, and pipes such as `scan <(zcat old.log.gz)`
            self._scan_file(path)

    def _walk(self, directory: str) -> Iterable[str]:
        def on_error(exc: OSError) -> None:
            self._failed(exc.filename or directory, exc)

        for root, dirs, files in os.walk(directory, onerror=on_error):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRECTORIES)
            for name in sorted(files):
                path = os.path.join(root, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    yield path

    def _scan_file(self, path: str) -> None:
        # Only opening and sniffing are guarded here; read errors are the reader's to report,
        # and a failing sink (a closed pipe) is not this file's fault.
        try:
            # Unbuffered: the reader reads large chunks straight into its own buffer.
            raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            self._failed(path, exc)
            return
        with raw:
            try:
                handle, head = _sniff(raw)
            except OSError as exc:
                self._failed(path, exc)
                return
            self._scan_opened(path, handle, head)

    def _scan_opened(self, path: str, handle: BinaryIO, head: bytes) -> None:
        """Dispatch by content: gzip (then look inside), a CloudTrail export, or a log."""
        if head.startswith(_GZIP_MAGIC):
            with gzip.GzipFile(fileobj=handle, mode="rb") as unzipped:
                try:
                    inner_head = unzipped.peek(_SNIFF_BYTES)[:_SNIFF_BYTES]
                except (EOFError, OSError, zlib.error) as exc:
                    self._failed(path, f"compressed data is truncated or corrupt ({exc})")
                    return
                if looks_like_cloudtrail(inner_head):
                    self._scan_cloudtrail(path, unzipped)
                else:
                    self._scan_stream(path, unzipped)
            return
        if looks_like_cloudtrail(head):
            self._scan_cloudtrail(path, handle)
            return
        if b"\x00" in head:
            self._log.info(
                "source_binary",
                path=path,
                detail="file holds NUL bytes; searched as text anyway",
            )
        self._scan_stream(path, handle)

    def _scan_stream(self, path: str, stream: Readable) -> None:
        def on_long_line(offset: int) -> None:
            self._log.warning(
                "line_too_long",
                path=path,
                offset=offset,
                max_line_bytes=self._max_line_bytes,
                detail="searched in windows around each match",
            )

        candidates = iter_candidates(
            stream,
            max_line_bytes=self._max_line_bytes,
            on_long_line=on_long_line,
            also_one_of=SECOND_WORDS_BYTES,
            framing=self._framing,
            final=True,  # one pass: a message still open at the end of an input is flushed
        )
        while True:
            # Only reading is guarded here: a failing sink is not this input's fault.
            try:
                candidate = next(candidates, None)
            except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                self._failed(
                    path,
                    f"compressed data is truncated or corrupt ({exc}); "
                    "denials before that point were written",
                )
                return
            except OSError as exc:
                self._failed(path, exc)
                return
            if candidate is None:
                break
            if not might_contain_denial_bytes(candidate.text):
                continue
            text = self._decode_text(path, candidate.text_offset, candidate.text)
            origin = Origin(
                source_kind="file",
                source_path=path,
                source_offset=candidate.line_offset,
                text_offset=candidate.text_offset if candidate.windowed else None,
            )
            self.result.denials += self._denials.add(
                text, origin, utc_now(), timestamp=candidate.timestamp
            )
        self.result.inputs_read += 1

    def _scan_cloudtrail(self, path: str, stream: Readable) -> None:
        """A CloudTrail export: its denial records become events, with the record's context."""
        denials = record_denials(
            iter_records(stream, only_errors=True), path, utc_now(), self._error_codes
        )
        while True:
            try:  # as for logs, only reading is this input's fault
                denial = next(denials, None)
            except (CloudTrailFormatError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
                self._failed(path, f"not a complete CloudTrail export: {exc}")
                return
            except OSError as exc:
                self._failed(path, exc)
                return
            if denial is None:
                break
            self.result.denials += self._denials.add_denials([denial])
        self.result.inputs_read += 1

    def _decode_text(self, path: str, offset: int, data: bytes) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._log.warning(
                "invalid_utf8",
                path=path,
                offset=offset + exc.start,
                detail="invalid UTF-8 replaced with U+FFFD; the denial is still reported",
            )
            return data.decode("utf-8", "replace")

    def _failed(self, path: str, reason: OSError | str) -> None:
        if isinstance(reason, OSError):
            reason = reason.strerror or str(reason)
        self.result.inputs_failed += 1
        self._log.error("source_error", stage="source", path=path, error=reason)


@dataclass(slots=True)
class Outbox:
    """The configuration's webhook and SNS sinks as ``scan`` uses them.

    Events go to the outbox in the state database and a worker per sink delivers them, as in
    the daemon; ``drain`` waits for that before the command exits. While a daemon holds the
    state directory, it delivers instead (two deliverers would send each event twice).
    """

    state_dir: str = ""
    sinks: list[DeliveringSink] = field(default_factory=list)
    store: StateStore | None = None
    lock: StateDirectoryLock | None = None

    @classmethod
    def open(cls, config: Config | None, log: Logger) -> Outbox:
        remote = [s for s in config.sinks if s.type in ("webhook", "sns")] if config else []
        if config is None or not remote:
            return cls()
        from watcher.sinks.remote import check_remote_sinks, remote_sink  # noqa: PLC0415
        from watcher.state import StateDirectoryLock, StateStore  # noqa: PLC0415 - same

        check_remote_sinks(config)  # before the state directory is locked or a sink built
        outbox = cls(config.state_dir)
        try:
            outbox.lock = StateDirectoryLock(config.state_dir)
        except StateDirectoryBusyError as exc:
            log.info("outbox_left_to_daemon", error=str(exc), detail="the daemon delivers")
        outbox.store = StateStore(config.state_dir, log)
        for settings in remote:
            sink = remote_sink(settings, outbox.store, log, start_worker=outbox.lock is not None)
            if sink is not None:
                outbox.sinks.append(sink)
        return outbox

    def write(self, event: Event) -> None:
        for sink in self.sinks:
            sink.write(event)

    def drain(self, timeout_seconds: float) -> dict[str, int]:
        """Wait until every sink delivered; the sinks with events left, and how many."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            left: dict[str, int] = {}
            for sink in self.sinks:
                with contextlib.suppress(sqlite3.Error):  # still waiting: counted below
                    sink.flush()
                count = sink.outbox_count()
                if count:
                    left[sink.name] = count
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(DRAIN_POLL_SECONDS)  # the workers deliver meanwhile

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
        if self.store is not None:
            self.store.close()
        if self.lock is not None:
            self.lock.release()
