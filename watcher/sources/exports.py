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
from typing import BinaryIO, cast

from watcher.config import CloudTrailSource
from watcher.log import Logger
from watcher.pipeline import Denial
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
    ) -> int:
        """Process the files that are new or changed; return the number of denials emitted.

        ``commit(path, save)`` runs ``save`` (which marks the file done) once every sink has
        the file's events."""
        emitted = 0
        for path, source in files:
            try:
                info = os.stat(path)
            except OSError:
                continue
            seen = self._store.export_state(path)
            if seen is not None and (seen.size, seen.mtime_ns) == (info.st_size, info.st_mtime_ns):
                continue
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
