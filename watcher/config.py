"""config: YAML -> frozen, typed configuration; every error names file:line and the key path.

The shape is the whole of ``design.md`` section 4, built once; later stages read it. Unknown
keys are errors with a "did you mean" hint. The YAML is parsed with ``yaml.safe_load``; the
node tree (``yaml.compose`` with the safe loader, which constructs no objects) is read only
to know which line each key sits on.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, uses_netloc

import yaml

from watcher.errors import ConfigError
from watcher.model import DEFAULT_CLOUDTRAIL_ERROR_CODES
from watcher.sources.framing import FRAMINGS, Framing

T = TypeVar("T")

DEFAULT_STATE_DIR = "/var/lib/authz-watcher"
DEFAULT_MAX_OUTBOX = 100_000  # a remote sink's undelivered events; then reading pauses
MAX_SINK_TIMEOUT_SECONDS = 20.0  # a webhook's or SNS sink's timeout_seconds at most
EVENT_TYPES = ("authz_denial", "authz_alert")
DEFAULT_MAX_ALERTS_PER_MINUTE = 20
MAX_PORT = 65535
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_ACCOUNT_RE = re.compile(r"^\d{12}$")
_NO_STRINGS: tuple[str, ...] = ()
_AWS_KEYS = ("type", "region", "aws_profile")
MAX_EXPANDED_NODES = 100_000  # scalars, lists and mappings once aliases are expanded


@dataclass(frozen=True, slots=True)
class FileSource:
    paths: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    start_at: Literal["end", "beginning"] = "end"
    max_line_bytes: int = 1024 * 1024
    aws_profile: str | None = None
    poll_interval_seconds: float = 5.0
    use_polling: bool = False
    rotate_wait_seconds: float = 5.0  # a file that left its path is read until idle this long
    rotated_paths: tuple[str, ...] = ()  # where rotation moves files, if not beside them
    format: Framing = "auto"  # container runtimes' framing: auto | plain | cri | docker
    type: Literal["file"] = "file"


@dataclass(frozen=True, slots=True)
class CloudTrailSource:
    paths: tuple[str, ...]
    error_codes: tuple[str, ...] = DEFAULT_CLOUDTRAIL_ERROR_CODES
    aws_profile: str | None = None
    poll_interval_seconds: float = 30.0
    use_polling: bool = False
    type: Literal["cloudtrail"] = "cloudtrail"


@dataclass(frozen=True, slots=True)
class S3Source:
    """A CloudTrail bucket, listed every ``poll_interval_seconds`` (no queue needed)."""

    bucket: str
    prefix: str = "AWSLogs/"
    region: str | None = None
    aws_profile: str | None = None
    poll_interval_seconds: float = 60.0
    start_at: str = "end"  # end | beginning | YYYY-MM-DD (objects of that day and later)
    error_codes: tuple[str, ...] = DEFAULT_CLOUDTRAIL_ERROR_CODES
    type: Literal["s3"] = "s3"


@dataclass(frozen=True, slots=True)
class S3SqsSource:
    """S3 ObjectCreated notifications (or EventBridge events) on an SQS queue many share."""

    queue_url: str
    region: str | None = None  # default: the queue URL's region
    aws_profile: str | None = None
    visibility_timeout_seconds: float = 300.0
    workers: int = 4  # objects in flight per watcher
    processes: int = 1  # children reading objects into denials; 0: the daemon's threads
    max_receive_count: int = 5  # -1: poison messages are left to a dead-letter queue
    key_pattern: str | None = None  # regex on the object key; None: CloudTrail log objects
    error_codes: tuple[str, ...] = DEFAULT_CLOUDTRAIL_ERROR_CODES
    wait_time_seconds: float = 20.0  # the long poll; a stop waits for it to return
    type: Literal["s3_sqs"] = "s3_sqs"


@dataclass(frozen=True, slots=True)
class JournaldSource:
    units: tuple[str, ...] = ()  # empty: every unit
    identifiers: tuple[str, ...] = ()  # SYSLOG_IDENTIFIER
    directory: str | None = None  # a journal directory other than the system's
    start_at: Literal["end", "beginning"] = "end"
    aws_profile: str | None = None
    type: Literal["journald"] = "journald"


_UNIT_SUFFIXES = (
    ".service", ".socket", ".device", ".mount", ".automount", ".swap", ".target", ".path",
    ".timer", ".slice", ".scope",
)  # fmt: skip


def journal_unit_name(name: str) -> str:
    """``sshd`` -> ``sshd.service``, as ``journalctl -u`` reads a name without a suffix."""
    return name if name.endswith(_UNIT_SUFFIXES) else f"{name}.service"


def journal_overlap(first: JournaldSource, second: JournaldSource) -> str | None:
    """What makes two journald sources read the same entries for certain (the same journal,
    and a filter that takes every entry or a unit or identifier both name); None if nothing
    does (a unit filter and an identifier filter may still meet in one entry)."""
    if first.directory != second.directory:
        return None
    for source in (first, second):
        if not source.units and not source.identifiers:
            return "one of them reads every entry (no units, no identifiers)"
    units = {journal_unit_name(u) for u in first.units}
    units &= {journal_unit_name(u) for u in second.units}
    names = sorted(units) + sorted(set(first.identifiers) & set(second.identifiers))
    return f"both read {', '.join(names)}" if names else None


@dataclass(frozen=True, slots=True)
class CloudWatchLogsSource:
    log_groups: tuple[str, ...]  # names, or prefixes ending in '*'
    region: str | None = None
    aws_profile: str | None = None
    filter_pattern: str | None = None  # None: the words that start a denial
    poll_interval_seconds: float = 10.0
    start_at: Literal["end", "beginning"] = "end"
    type: Literal["cloudwatch_logs"] = "cloudwatch_logs"


Source = (
    FileSource | CloudTrailSource | S3Source | S3SqsSource | JournaldSource | CloudWatchLogsSource
)
SOURCE_TYPES = ("file", "cloudtrail", "s3", "s3_sqs", "journald", "cloudwatch_logs")


@dataclass(frozen=True, slots=True)
class AccountCredentials:
    profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class DecodeSettings:
    enabled: bool = True
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    accounts: Mapping[str, AccountCredentials] = field(default_factory=dict)
    max_concurrency: int = 4
    max_requests_per_second: float = 10.0
    cache_ttl_seconds: float = 7 * 86400.0
    timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class AlertRule:
    name: str
    group_by: tuple[str, ...] = ("principal_arn", "action")
    threshold: int = 5
    window_seconds: float = 600.0
    cooldown_seconds: float = 1800.0
    match: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    exclude: tuple[Mapping[str, str], ...] = ()
    max_alerts_per_minute: int = DEFAULT_MAX_ALERTS_PER_MINUTE  # then one summary a minute


@dataclass(frozen=True, slots=True)
class Sink:
    type: Literal["stdout", "file", "webhook", "sns"]
    events: tuple[str, ...] = EVENT_TYPES
    path: str | None = None
    url: str | None = None
    format: Literal["json", "slack"] = "json"
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 10.0
    topic_arn: str | None = None
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    follow_symlinks: bool = False  # file sinks: write through a symbolic link at path
    max_outbox: int = DEFAULT_MAX_OUTBOX  # webhook, sns: events waiting before reading pauses


@dataclass(frozen=True, slots=True)
class Metrics:
    listen: str | None = None


@dataclass(frozen=True, slots=True)
class Config:
    state_dir: str = DEFAULT_STATE_DIR
    sources: tuple[Source, ...] = ()
    decode: DecodeSettings = field(default_factory=DecodeSettings)
    alerts: tuple[AlertRule, ...] = ()
    sinks: tuple[Sink, ...] = (Sink(type="stdout"),)
    metrics: Metrics = field(default_factory=Metrics)
    path: str | None = None  # the file it was loaded from

    @property
    def local_sources(self) -> tuple[FileSource | CloudTrailSource, ...]:
        """The sources that watch local directories (the rest fetch on their own threads)."""
        return tuple(s for s in self.sources if isinstance(s, FileSource | CloudTrailSource))


def load_config(path: str | Path) -> Config:
    """Read and validate a configuration file; raise ConfigError naming file, line and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration: {_os_reason(exc)}") from exc
    return parse_config(text, str(path))


def parse_config(text: str, filename: str = "<config>") -> Config:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_alias_expansion(root, filename)  # before anything walks the expanded data
        data = yaml.safe_load(text)
        lines = _key_lines(root)
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error_message(exc, filename)) from exc
    except ValueError as exc:  # a scalar YAML resolves to a type it then cannot build
        raise ConfigError(_bad_scalar_message(text, exc, filename)) from exc
    duplicate = _first_duplicate_key(root)
    if duplicate is not None:
        key_path, again, first = duplicate
        raise ConfigError(
            f"{filename}:{again}: {'.'.join(key_path)}: duplicate key (first given on line "
            f"{first}; YAML would silently keep only the last one)"
        )
    reader = _Reader(filename, lines)
    if data is None:
        data = {}
    return reader.config(data)


def _check_alias_expansion(root: yaml.Node | None, filename: str) -> None:
    """Refuse YAML whose aliases expand past ``MAX_EXPANDED_NODES`` ("billion laughs").

    Every walk of the loaded data (ours, and any consumer's) sees an alias as a full copy, so
    six levels of ten aliases each would be a million nodes to walk. Counted on the composed
    node graph, where each anchored node is counted once and reused.
    """
    sizes: dict[int, int] = {}

    def expanded(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = MAX_EXPANDED_NODES + 1  # a node that contains itself is too big
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        total = 1
        for child in children:
            total += expanded(child)
            if total > MAX_EXPANDED_NODES:
                raise ConfigError(
                    f"{filename}:{node.start_mark.line + 1}: YAML aliases here expand to more "
                    f"than {MAX_EXPANDED_NODES:,} values (nested aliases, a 'billion laughs'?); "
                    "write the values out instead"
                )
        sizes[id(node)] = total
        return total

    if root is not None:
        expanded(root)


def _bad_scalar_message(text: str, exc: ValueError, filename: str) -> str:
    """Name the scalar (e.g. the date 2026-13-01) that YAML recognised but could not build."""
    constructor = yaml.SafeLoader("")
    for node in _scalar_nodes(yaml.compose(text, Loader=yaml.SafeLoader)):
        try:
            constructor.construct_object(node, deep=True)
        except ValueError:
            return (
                f"{filename}:{node.start_mark.line + 1}: {node.value!r} is not a valid "
                f"{node.tag.rsplit(':', 1)[-1]} ({exc}); quote it to give a string"
            )
    return f"{filename}: {exc}"


def _scalar_nodes(node: yaml.Node | None) -> Iterator[yaml.ScalarNode]:
    if isinstance(node, yaml.ScalarNode):
        yield node
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _scalar_nodes(item)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _scalar_nodes(key)
            yield from _scalar_nodes(value)


def _yaml_error_message(exc: yaml.YAMLError, filename: str) -> str:
    """``file:line: invalid YAML: ...`` naming the line where the broken construct opens.

    pyyaml reports where parsing stopped (often the end of the file, after the last line); the
    construct that was never closed (``context_mark``) is where a person has to look.
    """
    problem_mark = getattr(exc, "problem_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    problem = str(getattr(exc, "problem", None) or exc)
    context = getattr(exc, "context", None)
    if context_mark is None or problem_mark is None or context is None:
        line = f"{problem_mark.line + 1}:" if problem_mark is not None else ""
        return f"{filename}:{line} invalid YAML: {problem}"
    construct = re.sub(r"^while (?:parsing|scanning) (?:an? )?", "", str(context))
    stopped_at = problem_mark.line + 1
    if "<stream end>" in problem or "end of stream" in problem:
        return (
            f"{filename}:{context_mark.line + 1}: invalid YAML: this {construct} is never closed "
            f"(found the end of the file at line {stopped_at})"
        )
    return (
        f"{filename}:{context_mark.line + 1}: invalid YAML: in the {construct} that starts "
        f"here: {problem} (at line {stopped_at})"
    )


def _key_lines(node: yaml.Node | None, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Map each key path (``("sources", "0", "paths")``) to its 1-based line number."""
    lines: dict[tuple[str, ...], int] = {}
    if node is None:
        return lines
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key_path = (*path, str(key_node.value))
            lines[key_path] = key_node.start_mark.line + 1
            for sub_path, line in _key_lines(value_node, key_path).items():
                lines.setdefault(sub_path, line)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_key_lines(item, (*path, str(index))))
    return lines


def _first_duplicate_key(
    node: yaml.Node | None, path: tuple[str, ...] = ()
) -> tuple[tuple[str, ...], int, int] | None:
    """(key path, line, line of its first occurrence) of the first key given twice."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key, line = str(key_node.value), key_node.start_mark.line + 1
            if key in seen:
                return (*path, key), line, seen[key]
            seen[key] = line
            found = _first_duplicate_key(value_node, (*path, key))
            if found is not None:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found = _first_duplicate_key(item, (*path, str(index)))
            if found is not None:
                return found
    return None


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``"30s"``, ``"10m"``, ``"1h"`` or ``"7d"``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 10m, 1h or 7d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    else:
        raise ValueError(f"expected a duration such as 30s, 10m, 1h or 7d, got {value!r}")
    if seconds <= 0:
        raise ValueError("must be greater than zero")
    return seconds


class _Reader:
    """Walks the loaded YAML, building config objects and naming the place of every error."""

    def __init__(self, filename: str, lines: dict[tuple[str, ...], int]) -> None:
        self._filename = filename
        self._lines = lines

    def error(self, path: tuple[str, ...], message: str) -> ConfigError:
        line = None
        for depth in range(len(path), -1, -1):
            line = self._lines.get(path[:depth])
            if line is not None:
                break
        where = f"{self._filename}:{line}:" if line is not None else f"{self._filename}:"
        key = ".".join(path) if path else "(top level)"
        return ConfigError(f"{where} {key}: {message}")

    def mapping(
        self, value: object, path: tuple[str, ...], allowed: tuple[str, ...]
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping, got {_type_name(value)}")
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise self.error((*path, str(key)), f"unknown key{suffix}")
        return value

    def get(
        self,
        data: Mapping[str, Any],
        path: tuple[str, ...],
        key: str,
        convert: Callable[[Any], T],
        default: T,
    ) -> T:
        if key not in data:
            return default
        try:
            return convert(data[key])
        except (TypeError, ValueError) as exc:
            raise self.error((*path, key), str(exc)) from exc

    def config(self, data: object) -> Config:
        top = self.mapping(
            data, (), ("state_dir", "sources", "decode", "alerts", "sinks", "metrics")
        )
        sources = self.sequence(top.get("sources", []), ("sources",), self.source)
        sinks = (
            self.sequence(top["sinks"], ("sinks",), self.sink) if "sinks" in top else Config().sinks
        )
        self.check_journals(sources)
        self.check_shared_outboxes(sinks)
        alerts = self.sequence(top.get("alerts", []), ("alerts",), self.alert)
        names = [rule.name for rule in alerts]
        for index, name in enumerate(names):
            if names.index(name) != index:
                raise self.error(("alerts", str(index), "name"), f"duplicate rule name {name!r}")
        return Config(
            state_dir=self.get(top, (), "state_dir", _string, DEFAULT_STATE_DIR),
            sources=sources,
            decode=self.decode(top.get("decode", {}), ("decode",)),
            alerts=alerts,
            sinks=sinks,
            metrics=self.metrics(top.get("metrics", {}), ("metrics",)),
            path=self._filename,
        )

    def sequence(
        self, value: object, path: tuple[str, ...], build: Callable[[object, tuple[str, ...]], T]
    ) -> tuple[T, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.error(path, f"expected a list, got {_type_name(value)}")
        return tuple(build(item, (*path, str(index))) for index, item in enumerate(value))

    def check_shared_outboxes(self, sinks: tuple[Sink, ...]) -> None:
        """A remote sink's outbox is keyed by its URL (webhook) or topic (sns): two sinks with
        one key would take each other's events."""
        first_with: dict[tuple[str, str], int] = {}
        for index, sink in enumerate(sinks):
            key = sink.url if sink.type == "webhook" else sink.topic_arn
            if sink.type not in ("webhook", "sns") or key is None:
                continue
            first = first_with.setdefault((sink.type, key), index)
            if first != index:
                name = "url" if sink.type == "webhook" else "topic_arn"
                raise self.error(
                    ("sinks", str(index), name), _shared_outbox_problem(first, sink.type)
                )

    def check_journals(self, sources: tuple[Source, ...]) -> None:
        """Two journald sources that would both emit one entry are a config error."""
        journals = [(n, s) for n, s in enumerate(sources) if isinstance(s, JournaldSource)]
        for later, (index, source) in enumerate(journals):
            for first_index, first in journals[:later]:
                overlap = journal_overlap(first, source)
                if overlap is not None:
                    raise self.error(
                        ("sources", str(index)),
                        f"reads journal entries sources.{first_index} reads too ({overlap}), so "
                        "each would be emitted twice: merge the two, or give them units and "
                        "identifiers that no entry shares",
                    )

    def source(self, value: object, path: tuple[str, ...]) -> Source:
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping, got {_type_name(value)}")
        kind = value.get("type")
        common = ("type", "paths", "aws_profile", "poll_interval_seconds", "use_polling")
        if kind == "file":
            file_keys = ("exclude", "start_at", "max_line_bytes", "rotate_wait_seconds")
            data = self.mapping(value, path, (*common, *file_keys, "rotated_paths", "format"))
            return FileSource(
                paths=self.require_list(data, path, "paths"),
                exclude=self.get(data, path, "exclude", _string_list, ()),
                start_at=self.get(data, path, "start_at", _start_at, "end"),
                max_line_bytes=self.get(data, path, "max_line_bytes", _positive_int, 1024 * 1024),
                aws_profile=self.get(data, path, "aws_profile", _optional_string, None),
                poll_interval_seconds=self.get(
                    data, path, "poll_interval_seconds", parse_duration, 5.0
                ),
                use_polling=self.get(data, path, "use_polling", _bool, False),
                rotate_wait_seconds=self.get(
                    data, path, "rotate_wait_seconds", parse_duration, 5.0
                ),
                rotated_paths=self.get(data, path, "rotated_paths", _string_list, ()),
                format=self.get(data, path, "format", _framing, "auto"),
            )
        if kind == "cloudtrail":
            data = self.mapping(value, path, (*common, "error_codes"))
            return CloudTrailSource(
                paths=self.require_list(data, path, "paths"),
                error_codes=self.get(
                    data, path, "error_codes", _string_list, DEFAULT_CLOUDTRAIL_ERROR_CODES
                ),
                aws_profile=self.get(data, path, "aws_profile", _optional_string, None),
                poll_interval_seconds=self.get(
                    data, path, "poll_interval_seconds", parse_duration, 30.0
                ),
                use_polling=self.get(data, path, "use_polling", _bool, False),
            )
        remote: dict[str, Callable[[dict[str, Any], tuple[str, ...]], Source]] = {
            "s3": self.s3_source,
            "s3_sqs": self.s3_sqs_source,
            "journald": self.journald_source,
            "cloudwatch_logs": self.cloudwatch_logs_source,
        }
        if isinstance(kind, str) and kind in remote:
            return remote[kind](value, path)
        expected = ", ".join(repr(t) for t in SOURCE_TYPES)
        raise self.error((*path, "type"), f"expected one of {expected}, got {kind!r}")

    def s3_source(self, value: dict[str, Any], path: tuple[str, ...]) -> S3Source:
        data = self.mapping(value, path, (*_AWS_KEYS, "bucket", "prefix", "poll_interval",
                                          "start_at", "error_codes"))  # fmt: skip
        return S3Source(
            bucket=self.require_string(data, path, "bucket"),
            prefix=self.get(data, path, "prefix", _string, "AWSLogs/"),
            region=self.get(data, path, "region", _optional_string, None),
            aws_profile=self.get(data, path, "aws_profile", _optional_string, None),
            poll_interval_seconds=self.get(data, path, "poll_interval", parse_duration, 60.0),
            start_at=self.get(data, path, "start_at", _start_at_or_date, "end"),
            error_codes=self.error_codes(data, path),
        )

    def s3_sqs_source(self, value: dict[str, Any], path: tuple[str, ...]) -> S3SqsSource:
        sqs_keys = ("queue_url", "visibility_timeout", "workers", "processes",
                    "max_receive_count", "key_pattern", "error_codes", "wait_time")  # fmt: skip
        data = self.mapping(value, path, (*_AWS_KEYS, *sqs_keys))
        return S3SqsSource(
            queue_url=self.require_string(data, path, "queue_url"),
            region=self.get(data, path, "region", _optional_string, None),
            aws_profile=self.get(data, path, "aws_profile", _optional_string, None),
            visibility_timeout_seconds=self.get(
                data, path, "visibility_timeout", _visibility_timeout, 300.0
            ),
            workers=self.get(data, path, "workers", _positive_int, 4),
            processes=self.get(data, path, "processes", _reader_processes, 1),
            max_receive_count=self.get(data, path, "max_receive_count", _receive_count, 5),
            key_pattern=self.get(data, path, "key_pattern", _optional_regex, None),
            error_codes=self.error_codes(data, path),
            wait_time_seconds=self.get(data, path, "wait_time", _wait_time, 20.0),
        )

    def journald_source(self, value: dict[str, Any], path: tuple[str, ...]) -> JournaldSource:
        keys = ("type", "units", "identifiers", "directory", "start_at", "aws_profile")
        data = self.mapping(value, path, keys)
        return JournaldSource(
            units=self.get(data, path, "units", _string_list, ()),
            identifiers=self.get(data, path, "identifiers", _string_list, ()),
            directory=self.get(data, path, "directory", _optional_string, None),
            start_at=self.get(data, path, "start_at", _start_at, "end"),
            aws_profile=self.get(data, path, "aws_profile", _optional_string, None),
        )

    def cloudwatch_logs_source(
        self, value: dict[str, Any], path: tuple[str, ...]
    ) -> CloudWatchLogsSource:
        keys = ("log_groups", "filter_pattern", "poll_interval", "start_at")
        data = self.mapping(value, path, (*_AWS_KEYS, *keys))
        groups = self.get(data, path, "log_groups", _string_list, _NO_STRINGS)
        if not groups:
            raise self.error((*path, "log_groups"), "must name at least one log group")
        for group in groups:
            if "*" in group[:-1]:
                raise self.error(
                    (*path, "log_groups"),
                    f"{group!r}: '*' may only end a name (a prefix such as '/aws/lambda/*')",
                )
        return CloudWatchLogsSource(
            log_groups=groups,
            region=self.get(data, path, "region", _optional_string, None),
            aws_profile=self.get(data, path, "aws_profile", _optional_string, None),
            filter_pattern=self.get(data, path, "filter_pattern", _optional_string, None),
            poll_interval_seconds=self.get(data, path, "poll_interval", parse_duration, 10.0),
            start_at=self.get(data, path, "start_at", _start_at, "end"),
        )

    def error_codes(self, data: Mapping[str, Any], path: tuple[str, ...]) -> tuple[str, ...]:
        return self.get(data, path, "error_codes", _string_list, DEFAULT_CLOUDTRAIL_ERROR_CODES)

    def require_string(self, data: Mapping[str, Any], path: tuple[str, ...], key: str) -> str:
        if key not in data:
            raise self.error(path, f"missing required key {key!r}")
        return self.get(data, path, key, _string, "")

    def require_list(
        self, data: Mapping[str, Any], path: tuple[str, ...], key: str
    ) -> tuple[str, ...]:
        if key not in data:
            raise self.error(path, f"missing required key {key!r}")
        values = self.get(data, path, key, _string_list, _NO_STRINGS)
        if not values:
            raise self.error((*path, key), "must name at least one path")
        return values

    def decode(self, value: object, path: tuple[str, ...]) -> DecodeSettings:
        data = self.mapping(
            value,
            path,
            (
                "enabled",
                "profile",
                "region",
                "endpoint_url",
                "accounts",
                "max_concurrency",
                "max_requests_per_second",
                "cache_ttl",
                "timeout_seconds",
            ),
        )
        defaults = DecodeSettings()
        return DecodeSettings(
            enabled=self.get(data, path, "enabled", _bool, True),
            profile=self.get(data, path, "profile", _optional_string, None),
            region=self.get(data, path, "region", _optional_string, None),
            endpoint_url=self.get(data, path, "endpoint_url", _optional_string, None),
            accounts=self.accounts(data.get("accounts", {}), (*path, "accounts")),
            max_concurrency=self.get(data, path, "max_concurrency", _positive_int, 4),
            max_requests_per_second=self.get(
                data, path, "max_requests_per_second", _positive_number, 10.0
            ),
            cache_ttl_seconds=self.get(
                data, path, "cache_ttl", parse_duration, defaults.cache_ttl_seconds
            ),
            timeout_seconds=self.get(data, path, "timeout_seconds", parse_duration, 10.0),
        )

    def accounts(self, value: object, path: tuple[str, ...]) -> dict[str, AccountCredentials]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping, got {_type_name(value)}")
        accounts = {}
        for raw_account, entry in value.items():
            account = str(raw_account)
            entry_path = (*path, account)
            if not _ACCOUNT_RE.match(account):
                raise self.error(entry_path, "an account id is 12 digits (quote it in YAML)")
            data = self.mapping(entry, entry_path, ("profile", "role_arn", "external_id"))
            credentials = AccountCredentials(
                profile=self.get(data, entry_path, "profile", _optional_string, None),
                role_arn=self.get(data, entry_path, "role_arn", _optional_string, None),
                external_id=self.get(data, entry_path, "external_id", _external_id, None),
            )
            if (credentials.profile is None) == (credentials.role_arn is None):
                raise self.error(entry_path, "give exactly one of 'profile' or 'role_arn'")
            accounts[account] = credentials
        return accounts

    def alert(self, value: object, path: tuple[str, ...]) -> AlertRule:
        data = self.mapping(
            value,
            path,
            (
                "name",
                "group_by",
                "threshold",
                "window",
                "cooldown",
                "match",
                "exclude",
                "max_alerts_per_minute",
            ),
        )
        if "name" not in data:
            raise self.error(path, "missing required key 'name'")
        return AlertRule(
            name=self.get(data, path, "name", _string, ""),
            group_by=self.get(data, path, "group_by", _event_keys, ("principal_arn", "action")),
            threshold=self.get(data, path, "threshold", _positive_int, 5),
            window_seconds=self.get(data, path, "window", parse_duration, 600.0),
            cooldown_seconds=self.get(data, path, "cooldown", parse_duration, 1800.0),
            match=self.get(data, path, "match", _event_match, {}),
            exclude=self.get(data, path, "exclude", _event_exclude, ()),
            max_alerts_per_minute=self.get(
                data, path, "max_alerts_per_minute", _positive_int, DEFAULT_MAX_ALERTS_PER_MINUTE
            ),
        )

    def sink(self, value: object, path: tuple[str, ...]) -> Sink:
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping, got {_type_name(value)}")
        kind = value.get("type")
        allowed_by_kind: dict[str, tuple[str, ...]] = {
            "stdout": (),
            "file": ("path", "follow_symlinks"),
            "webhook": ("url", "format", "headers", "timeout_seconds", "max_outbox"),
            "sns": (
                "topic_arn",
                "region",
                "profile",
                "endpoint_url",
                "timeout_seconds",
                "max_outbox",
            ),
        }
        if kind not in allowed_by_kind:
            raise self.error(
                (*path, "type"), f"expected one of stdout, file, webhook, sns; got {kind!r}"
            )
        data = self.mapping(value, path, ("type", "events", *allowed_by_kind[kind]))
        required = {"file": "path", "webhook": "url", "sns": "topic_arn"}.get(kind)
        if required is not None and required not in data:
            raise self.error(path, f"missing required key {required!r}")
        problem = _sink_target_problem(kind, data)
        if problem is not None:
            raise self.error((*path, str(required)), problem)
        return Sink(
            type=kind,
            events=self.get(data, path, "events", _event_types, EVENT_TYPES),
            path=self.get(data, path, "path", _optional_string, None),
            url=self.get(data, path, "url", _optional_string, None),
            format=self.get(data, path, "format", _webhook_format, "json"),
            headers=self.get(data, path, "headers", _string_map, {}),
            timeout_seconds=self.get(data, path, "timeout_seconds", _sink_timeout, 10.0),
            topic_arn=self.get(data, path, "topic_arn", _optional_string, None),
            region=self.get(data, path, "region", _optional_string, None),
            profile=self.get(data, path, "profile", _optional_string, None),
            endpoint_url=self.get(data, path, "endpoint_url", _optional_string, None),
            follow_symlinks=self.get(data, path, "follow_symlinks", _bool, False),
            max_outbox=self.get(data, path, "max_outbox", _positive_int, DEFAULT_MAX_OUTBOX),
        )

    def metrics(self, value: object, path: tuple[str, ...]) -> Metrics:
        data = self.mapping(value if value is not None else {}, path, ("listen",))
        listen = self.get(data, path, "listen", _optional_string, None)
        if listen is not None and not re.match(r"^[\w.:\[\]-]+:\d{1,5}$", listen):
            raise self.error((*path, "listen"), "expected host:port, e.g. 127.0.0.1:9464")
        if listen is not None and not 1 <= int(listen.rsplit(":", 1)[1]) <= MAX_PORT:
            raise self.error((*path, "listen"), f"a port is 1 to {MAX_PORT}, e.g. 127.0.0.1:9464")
        return Metrics(listen=listen)


def _type_name(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


_EXTERNAL_ID_RE = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)


def _external_id(value: object) -> str | None:
    """What AssumeRole accepts: 2 to 1,224 characters of letters, digits and ``+=,.@:/-_``."""
    text = _optional_string(value)
    if text is not None and not _EXTERNAL_ID_RE.fullmatch(text):
        raise ValueError(
            f"an external_id is 2 to 1224 characters of letters, digits and +=,.@:/-_ "
            f"(got {len(text)} characters)"
        )
    return text


def _string(value: object) -> str:
    if not isinstance(value, str) or not value:
        got = "an empty one" if value == "" else _type_name(value)
        raise ValueError(f"expected a non-empty string, got {got}")
    return value


def _optional_string(value: object) -> str | None:
    return None if value is None else _string(value)


def _string_list(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise TypeError("expected a list of strings")
    return tuple(value)


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _positive_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"expected a whole number greater than zero, got {value!r}")
    return value


def _reader_processes(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 64:
        raise ValueError(f"expected a whole number from 0 to 64, got {value!r}")
    return value


def _sink_timeout(value: object) -> float:
    """A remote sink's timeout: a reload or a stop waits for the delivery in flight, and
    meanwhile the loop pings no watchdog (the unit's WatchdogSec is 30 s)."""
    seconds = parse_duration(value)
    if seconds > MAX_SINK_TIMEOUT_SECONDS:
        raise ValueError(
            f"at most {MAX_SINK_TIMEOUT_SECONDS:.0f}s, got {value!r}: a reload or a stop waits "
            "for a delivery in flight, and systemd's watchdog (30 s) would kill the daemon"
        )
    return seconds


def _positive_number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"expected a number greater than zero, got {value!r}")
    return float(value)


def _start_at_or_date(value: object) -> str:
    if isinstance(value, date):  # YAML reads an unquoted 2026-11-01 as a date
        return value.isoformat()
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"not a date: {value!r}") from exc
        return value
    return _start_at(value)


def _visibility_timeout(value: object) -> float:
    seconds = parse_duration(value)
    if not 1 <= seconds <= 12 * 3600:
        raise ValueError(f"SQS takes 1 second to 12 hours, got {value!r}")
    return seconds


def _wait_time(value: object) -> float:
    seconds = parse_duration(value)
    if not 0 <= seconds <= 20:
        raise ValueError(f"SQS long-polls 0 to 20 seconds, got {value!r}")
    return seconds


def _receive_count(value: object) -> int:
    if value == -1:
        return -1
    try:
        return _positive_int(value)
    except ValueError:
        raise ValueError(f"expected a whole number > 0, or -1, got {value!r}") from None


def _optional_regex(value: object) -> str | None:
    if value is None:
        return None
    pattern = _string(value)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from exc
    return pattern


def _start_at(value: object) -> Literal["end", "beginning"]:
    if value == "end":
        return "end"
    if value == "beginning":
        return "beginning"
    raise ValueError(f"expected 'end' or 'beginning', got {value!r}")


def _framing(value: object) -> Framing:
    for framing in FRAMINGS:
        if value == framing:
            return framing
    raise ValueError(f"expected one of {', '.join(FRAMINGS)}, got {value!r}")


def _webhook_format(value: object) -> Literal["json", "slack"]:
    if value == "json":
        return "json"
    if value == "slack":
        return "slack"
    raise ValueError(f"expected 'json' or 'slack', got {value!r}")


def _event_types(value: object) -> tuple[str, ...]:
    events = _string_list(value)
    for event in events:
        if event not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event!r}; expected authz_denial or authz_alert")
    return events


def _string_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError("expected a mapping of strings to strings")
    return dict(value)


def _glob_map(value: object) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise TypeError("expected a mapping of field -> glob or list of globs")
    return {str(key): _string_list(globs) for key, globs in value.items()}


def _exclude_list(value: object) -> tuple[dict[str, str], ...]:
    if not isinstance(value, list):
        raise TypeError("expected a list of {field: glob} mappings")
    return tuple(_string_map(item) for item in value)


def _event_key(name: str) -> str:
    """A key of the denial event (``watcher/schema/event.schema.json``), or a suggestion."""
    from watcher.events import schema  # noqa: PLC0415 - read once, only for alert rules

    keys = schema()["$defs"]["denial"]["required"]
    if name not in keys:
        hint = difflib.get_close_matches(name, keys, n=1)
        suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ValueError(f"{name!r} is not a key of the denial event{suffix}")
    return name


def _event_keys(value: object) -> tuple[str, ...]:
    return tuple(_event_key(name) for name in _string_list(value))


def _event_match(value: object) -> dict[str, tuple[str, ...]]:
    globs_by_key = _glob_map(value)
    for key, globs in globs_by_key.items():
        _event_key(key)
        if not globs:
            raise ValueError(f"{key}: an empty list matches no event; give a glob or remove it")
    return globs_by_key


def _event_exclude(value: object) -> tuple[dict[str, str], ...]:
    entries = _exclude_list(value)
    for index, entry in enumerate(entries):
        if not entry:
            raise ValueError(f"entry {index} is empty, which would exclude every event")
        for key in entry:
            _event_key(key)
    return entries


def _sink_target_problem(kind: str, data: Mapping[str, Any]) -> str | None:
    """Why a file sink's path or a webhook's URL cannot work, found before ``run`` starts."""
    target = data.get("path") if kind == "file" else data.get("url")
    if not isinstance(target, str):
        return None
    if kind == "file" and Path(target).is_dir():
        return f"{target} is a directory; give the path of the events file inside it"
    if kind == "webhook":
        return _webhook_template_problem(target)
    return None


ENV_REFERENCE_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # ${VAR}, its name
_URL_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*(?=:)")
_URL_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_QUOTABLE_URL_ERRORS = (  # urlsplit's reasons that quote no part of the URL
    "Invalid IPv6 URL",
    "IPvFuture address is invalid",
    "An IPv4 address cannot be in brackets",
)
_URL_EXAMPLE = "https://hooks.example.com/path"


def webhook_url_problem(url: str) -> str | None:
    """Why a webhook URL (once its ``${VAR}``s are substituted) can never be delivered to, or
    None. The reason never quotes the URL or a part of it: the URL is often the credential."""
    characters = _url_characters_problem(url)
    if characters is not None:
        return characters
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed '[' of an IPv6 address
        reason = str(exc) if str(exc) in _QUOTABLE_URL_ERRORS else "the host is not valid"
        return f"not a valid URL ({reason}); expected e.g. {_URL_EXAMPLE}"
    scheme = _url_scheme_problem(parts.scheme)
    if scheme is not None:
        return scheme
    if "@" in parts.netloc:
        return (
            "has a user name or password before the host (user:password@), which the webhook "
            "sink does not send; remove it and give the credentials in 'headers' instead, e.g. "
            'Authorization: "Basic ${HOOK_CREDENTIALS}"'
        )
    if not parts.hostname:
        return f"has no host; expected e.g. {_URL_EXAMPLE}"
    try:
        port = parts.port
    except ValueError:  # its message quotes the port as written
        port = 0
    if port is not None and not 1 <= port <= MAX_PORT:
        return f"the port is not a number from 1 to {MAX_PORT}"
    if not (parts.path + parts.query + parts.fragment).isascii():
        return (
            "has a character that is not ASCII in its path or query; percent-encode it "
            "(its UTF-8 bytes, e.g. %C3%A4 for an a-umlaut)"
        )
    return None


def _webhook_template_problem(url: str) -> str | None:
    """What can be told of a URL before its ``${VAR}``s are substituted: all of it when it has
    none; else only its own characters and its scheme (``check-config`` and ``run`` check the
    substituted URL once they read the environment)."""
    if not ENV_REFERENCE_RE.search(url):
        return webhook_url_problem(url)
    characters = _url_characters_problem(ENV_REFERENCE_RE.sub("", url))
    if characters is not None or url.startswith("${"):
        return characters
    scheme = _URL_SCHEME_RE.match(url)
    return _url_scheme_problem(scheme.group(0) if scheme else "")


def _url_characters_problem(url: str) -> str | None:
    if _URL_CONTROL_RE.search(url):
        return (
            "contains a control character (a line break or a tab?); remove it (a ${VAR} read "
            "from a file may end with a newline)"
        )
    if any(character.isspace() for character in url):
        return "contains a space; write a space in the path or query as %20"
    return None


def _url_scheme_problem(scheme: str) -> str | None:
    scheme = scheme.lower()
    if scheme in ("http", "https"):
        return None
    if not scheme:
        return "expected an http:// or https:// URL, got a relative one"
    if scheme in uses_netloc:  # a well-known scheme; anything else may be a user name
        return f"expected an http:// or https:// URL, got a {scheme} one"
    return "expected an http:// or https:// URL (it must start with http:// or https://)"


def _shared_outbox_problem(first: int, kind: str) -> str:
    """Why a second webhook with one URL, or SNS sink with one topic, is refused."""
    if kind == "webhook":
        return (
            f"the same url as sinks.{first}; one webhook sink per URL is supported (the two "
            "would share one outbox, and events meant for one would go out with the other's "
            "headers, format and events:): merge their events: into one sink, or give the "
            "receiver two URLs (e.g. a different path or query)"
        )
    return (
        f"the same topic_arn as sinks.{first}; one sns sink per topic is supported (the two "
        "would share one outbox, and events meant for one would go out with the other's "
        "events:): merge their events: into one sink, or publish to two topics"
    )


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)
