"""sources: which class reads each ``type`` of source; built, reloaded and closed together.

A new kind is registered here with the function that builds it from its configured sources;
the daemon loop does not change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from watcher.config import (
    CloudTrailSource,
    CloudWatchLogsSource,
    Config,
    FileSource,
    JournaldSource,
    S3Source,
)
from watcher.errors import ConfigError
from watcher.sources.base import Source, SourceContext, Wake
from watcher.sources.cloudwatch_logs import CloudWatchLogsSources
from watcher.sources.exports import CloudTrailExports
from watcher.sources.files import FileSources
from watcher.sources.journald import JournalSources
from watcher.sources.s3 import S3Buckets
from watcher.sources.s3_sqs import S3SqsSources

Builder = Callable[[tuple[Any, ...], SourceContext], Source]


def _files(configs: tuple[FileSource, ...], context: SourceContext) -> Source:
    first_start = context.store.files_first_look_due()  # where ``start_at`` applies
    return FileSources(configs, context.store, context.log, first_start=first_start)


def _cloudtrail(configs: tuple[CloudTrailSource, ...], context: SourceContext) -> Source:
    return CloudTrailExports(configs, context.store, context.log)


def _journald(configs: tuple[JournaldSource, ...], context: SourceContext) -> Source:
    return JournalSources(configs, context.store, context.log)


def _s3(configs: tuple[S3Source, ...], context: SourceContext) -> Source:
    return S3Buckets(configs, context.store, context.log)


def _cloudwatch_logs(configs: tuple[CloudWatchLogsSource, ...], context: SourceContext) -> Source:
    return CloudWatchLogsSources(configs, context.store, context.log)


BUILDERS: dict[str, Builder] = {
    "file": _files,
    "cloudtrail": _cloudtrail,
    "journald": _journald,
    "s3": _s3,
    "s3_sqs": S3SqsSources,
    "cloudwatch_logs": _cloudwatch_logs,
}


def configs_by_kind(config: Config) -> dict[str, tuple[Any, ...]]:
    """The configured sources grouped by ``type``, in the order each type first appears."""
    grouped: dict[str, list[Any]] = {}
    for source in config.sources:
        grouped.setdefault(source.type, []).append(source)
    return {kind: tuple(configs) for kind, configs in grouped.items()}


def check_available(config: Config) -> None:
    """ConfigError naming a configured ``type`` this build cannot read."""
    for kind in configs_by_kind(config):
        if kind not in BUILDERS:
            known = ", ".join(sorted(BUILDERS))
            raise ConfigError(
                f"{config.path or '<config>'}: sources: type {kind!r} is not available in this "
                f"version (available: {known})"
            )


class Sources:
    """One source per configured kind; a reload keeps, reconfigures or rebuilds each."""

    def __init__(self, context: SourceContext, wake: Wake) -> None:
        self._context = context
        self._wake = wake
        self._by_kind: dict[str, tuple[tuple[Any, ...], Source]] = {}

    def __iter__(self) -> Iterator[Source]:
        return iter([source for _, source in self._by_kind.values()])

    def configure(self, config: Config) -> None:
        """Build what ``config`` names (at start and on SIGHUP); close the kinds it dropped."""
        check_available(config)
        wanted = configs_by_kind(config)
        for kind in [k for k in self._by_kind if k not in wanted]:
            self._by_kind.pop(kind)[1].close()
        for kind, configs in wanted.items():
            current = self._by_kind.get(kind)
            if current is not None:
                if current[0] == configs:
                    continue
                if current[1].reconfigure(configs):
                    self._by_kind[kind] = (configs, current[1])
                    continue
                current[1].close()
            source = BUILDERS[kind](configs, self._context)
            source.start(self._wake)
            self._by_kind[kind] = (configs, source)

    def close(self) -> None:
        for _, source in self._by_kind.values():
            source.close()
        self._by_kind.clear()
