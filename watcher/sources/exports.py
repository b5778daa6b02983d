"""sources: directories of CloudTrail exports, each file processed exactly once.

The daemon's side of ``sources/cloudtrail.py``. A file's denials are collected in full before
any is emitted: a file still being written (truncated gzip, unclosed JSON) is reported and
retried when its size or mtime changes, so it is never half-emitted twice. A processed file is
recorded with its size, mtime and content hash; it is read again only when it changes, and its
events are emitted again only when its content did.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import takewhile
from typing import BinaryIO, cast

from watcher.config import CloudTrailSource
from watcher.events import utc_now
from watcher.log import Logger
from watcher.pipeline import Denial
from watcher.sources.base import Output, Progress, Save, Wake
from watcher.sources.cloudtrail import (
    SKIPPED_DIRECTORIES,
    CloudTrailFormatError,
    iter_records,
    looks_like_cloudtrail,
    record_denials,
)
from watcher.sources.lines import Readable
from watcher.state import ExportState, StateStore

_GZIP_MAGIC = b"\x1f\x8b"
# Files read per call of ``read``; then the loop commits, pings the watchdog and looks at
# signals before reading on (a backlog of thousands of files must not keep it away).
MAX_FILES_PER_READ = 20
_SNIFF_BYTES = 4096


class _HashingReader:
    """Reads a file while hashing every byte, so the content hash costs no second pass."""

    def __init__(self, handle: object) -> None:
        self._read: Callable[[int], bytes] = handle.read  # type: ignore[attr-defined]
        self.digest = hashlib.sha256()

    def read(self, size: int = -1, /) -> bytes:
        data = self._read(size)
        self.digest.update(data)
        return data


class CloudTrailExports:
    """Every configured CloudTrail source: its files found, read, and recorded in the state."""

    def __init__(
        self, sources: tuple[CloudTrailSource, ...], store: StateStore, log: Logger
    ) -> None:
        self._sources = sources
        self._store = store
        self._log = log
        self._held: dict[str, Callable[[], None]] = {}  # path -> mark it done, once saved
        self._more = False  # the last read stopped with files left: the next looks at all
        self.stopped_early = False  # the last ``process`` reached ``max_files``

    # -- the source protocol (sources/base.py) -----------------------------------------------

    kind = "cloudtrail"

    def start(self, wake: Wake) -> None:
        del wake  # read when the watched directories change

    def read(self, changed: set[str] | None, out: Output) -> int:
        whole = changed is None or self._more
        files = self.all_files() if whole else self._changed_files(changed or set())
        self.process(
            takewhile(lambda _: not out.paused, files), utc_now, out.denials, self._hold,
            max_files=MAX_FILES_PER_READ,
        )  # fmt: skip
        self._more = self.stopped_early or out.paused  # then every file is looked at again
        return 0

    def checkpoint(self) -> Save | None:
        """Marks done every file whose events were all handed on since the last save ran."""
        held = dict(self._held)
        if not held:
            return None

        def save() -> None:
            for path, mark_done in held.items():
                if self._held.get(path) is mark_done:
                    mark_done()
                    del self._held[path]

        return save

    @property
    def more_ready(self) -> bool:
        return self._more

    def seconds_to_next_read(self) -> float | None:
        return None

    def progress(self) -> Progress:
        return Progress()

    def reconfigure(self, configs: tuple[object, ...]) -> bool:
        del configs
        return False

    def close(self) -> None:
        """Nothing is open; a save made before still marks its files done when it runs."""

    def _hold(self, path: str, mark_done: Callable[[], None]) -> None:
        self._held[path] = mark_done

    def _changed_files(self, changed: set[str]) -> Iterator[tuple[str, CloudTrailSource]]:
        for path in sorted(changed):
            source = self.owner(path)
            if source is not None and os.path.isfile(path):
                yield path, source

    def directories(self) -> Iterator[tuple[str, bool]]:
        for source in self._sources:
            for path in source.paths:
                yield (os.path.abspath(path), True)

    def owner(self, path: str) -> CloudTrailSource | None:
        """The source whose tree holds ``path``."""
        for source in self._sources:
            for configured in source.paths:
                root = os.path.abspath(configured)
                if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
                    return source
        return None

    def all_files(self) -> Iterator[tuple[str, CloudTrailSource]]:
        for source in self._sources:
            for configured in source.paths:
                root = os.path.abspath(configured)
                if os.path.isfile(root):
                    yield root, source
                for directory, subdirectories, files in os.walk(root):
                    subdirectories[:] = sorted(
                        d for d in subdirectories if d not in SKIPPED_DIRECTORIES
                    )
                    for name in sorted(files):
                        yield os.path.join(directory, name), source

    def process(
        self,
        files: Iterable[tuple[str, CloudTrailSource]],
        now: Callable[[], datetime],
        add_denials: Callable[[list[Denial]], int],
        commit: Callable[[str, Callable[[], None]], None],
        *,
        max_files: int | None = None,
    ) -> int:
        """Process the files that are new or changed; return the number of denials emitted.
        With ``max_files``, stop before the next new file once that many were read
        (``stopped_early``).

        ``commit(path, save)`` runs ``save`` (which marks the file done) once every sink has
        the file's events."""
        emitted = 0
        read = 0
        self.stopped_early = False
        for path, source in files:
            try:
                info = os.stat(path)
            except OSError:
                continue
            seen = self._store.export_state(path)
            if seen is not None and (seen.size, seen.mtime_ns) == (info.st_size, info.st_mtime_ns):
                continue
            if max_files is not None and read >= max_files:
                self.stopped_early = True
                break
            read += 1
            emitted += self._process_file(
                path, source, info, seen=seen, observed_at=now(), add=add_denials, commit=commit
            )
        return emitted

    def _process_file(
        self,
        path: str,
        source: CloudTrailSource,
        info: os.stat_result,
        *,
        seen: ExportState | None,
        observed_at: datetime,
        add: Callable[[list[Denial]], int],
        commit: Callable[[str, Callable[[], None]], None],
    ) -> int:
        try:
            denials, digest, is_export = self._read(path, source, observed_at)
        except (CloudTrailFormatError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            self._log.warning(
                "source_error",
                stage="source",
                path=path,
                error=f"not a complete CloudTrail export: {exc}",
                detail="retried when the file changes",
            )
            self._record(path, info, None, "failed")
            return 0
        except OSError as exc:
            self._log.error("source_error", stage="source", path=path, error=exc.strerror)
            return 0
        if not is_export:
            self._log.info("source_ignored", path=path, detail="not a CloudTrail export")
            self._record(path, info, digest, "ignored")
            return 0
        if seen is not None and seen.status == "done" and seen.sha256 == digest:
            self._record(path, info, digest, "done")  # touched, not changed
            return 0
        count = add(denials)
        commit(path, lambda: self._record(path, info, digest, "done"))
        self._log.info("export_processed", path=path, denials=count)
        return count

    def _read(
        self, path: str, source: CloudTrailSource, observed_at: datetime
    ) -> tuple[list[Denial], str, bool]:
        with open(path, "rb") as raw:
            hashing = _HashingReader(raw)
            head = raw.peek(_SNIFF_BYTES)[:_SNIFF_BYTES]
            stream: Readable = hashing
            inner = head
            if head.startswith(_GZIP_MAGIC):
                unzipped = gzip.GzipFile(fileobj=cast("BinaryIO", hashing), mode="rb")
                stream, inner = unzipped, unzipped.peek(_SNIFF_BYTES)[:_SNIFF_BYTES]
            if not looks_like_cloudtrail(inner):
                return [], "", False
            records = iter_records(stream, only_errors=True)
            denials = list(
                record_denials(records, path, observed_at, source.error_codes, source.aws_profile)
            )
            while hashing.read(1 << 20):  # hash what the parser did not need (gzip trailer)
                pass
        return denials, hashing.digest.hexdigest(), True

    def _record(self, path: str, info: os.stat_result, digest: str | None, status: str) -> None:
        self._store.save_export_state(
            path, ExportState(info.st_size, info.st_mtime_ns, digest, status)
        )
