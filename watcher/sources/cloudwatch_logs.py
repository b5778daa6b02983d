"""sources: CloudWatch Logs groups read with FilterLogEvents (the ``cloudwatch_logs`` kind).

    fetch thread, one per (aws_profile, region)              daemon thread
    DescribeLogGroups (prefixes) -> FilterLogEvents pages -> bounded queue -> read() -> out.text
    paced, spread over the poll interval, backed off                         checkpoint() -> state

A group's position is the time of the last event handed on plus the ids already handed on at
that millisecond (``LogGroupPosition``). A poll asks for events from that millisecond on and
skips those ids, so an event is handed on once across restarts. Positions reach the state
database only through ``checkpoint()``, i.e. after every sink has the events (at-least-once;
a SIGTERM repeats nothing). Events come in time order within a group (FilterLogEvents
interleaves its streams by time); an event ingested late with a time before the position is
not seen (see the README).

Throttling and an unreachable endpoint back off every request of that profile and region
(exponential, with jitter); a missing or deleted group is reported once and retried slowly.
"""

from __future__ import annotations

import functools
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from watcher.config import CloudWatchLogsSource
from watcher.log import Logger
from watcher.sources.base import Output, Progress, RemoteSource, Save, Wake
from watcher.sources.log_events import log_event
from watcher.state import LogGroupPosition, StateStore

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

KIND = "cloudwatch_logs"
# The phrases a denial holds: before a blob, and in the plain sentence (case-sensitive in AWS).
DEFAULT_FILTER_PATTERN = '?"Encoded authorization failure message" ?"not authorized to perform"'
MIN_REQUEST_INTERVAL_SECONDS = 0.25  # at most 4 requests a second per profile and region
PAGE_EVENTS = 1000  # FilterLogEvents' ``limit`` (the API allows up to 10,000)
QUEUE_PAGES = 8  # pages fetched and not yet handed on, per kind: bounds memory
MAX_EVENTS_PER_READ = 2000  # per ``read``: the daemon loop stays responsive
RESOLVE_EVERY_POLLS = 6  # prefixes are listed again every 6 poll intervals (60 s by default)
RETRY_MISSING_EVERY_POLLS = 30  # a missing group or a refused call: every 5 min by default
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 30.0
_THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
_MISSING_CODE = "ResourceNotFoundException"


def advanced(position: LogGroupPosition, event_ms: int, event_id: str) -> LogGroupPosition:
    """The position once the event at ``event_ms`` with ``event_id`` has been handed on."""
    if event_ms > position.last_event_ms:
        return LogGroupPosition(event_ms, frozenset({event_id}))
    if event_ms == position.last_event_ms:
        return LogGroupPosition(event_ms, position.event_ids | {event_id})
    return position  # out of time order: handed on, and the position stays where it is


def account_label(profile: str | None, region: str) -> str:
    """The key of a profile and region's positions in the state database."""
    return f"{profile or 'default'}@{region}"


@dataclass(slots=True)
class _Page:
    """Events of one group to hand on, each with the group's position once it is handed on;
    an event of None only moves the position (a group starting at ``start_at: end``)."""

    account: str
    group: str
    profile: str | None
    items: deque[tuple[Mapping[str, Any] | None, LogGroupPosition]]


@dataclass(slots=True)
class _Group:
    """A group as its fetch thread polls it."""

    name: str
    source: CloudWatchLogsSource
    position: LogGroupPosition  # after the last event fetched
    poll_start: LogGroupPosition  # where the poll under way began (its startTime)
    due_at: float
    next_token: str | None = None
    failing: str | None = None  # what was reported about it, until it reads again
    fresh: bool = False  # no saved position: the first fetch hands on the position too


@dataclass(slots=True)
class _Backoff:
    """Exponential backoff with jitter for every request of one profile and region."""

    streak: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        self.streak += 1
        ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2.0 ** (self.streak - 1))
        return ceiling / 2 + self.rng.random() * ceiling / 2  # never less than half


class _AccountReader:
    """The fetch thread of one profile and region: lists groups, pages through them."""

    def __init__(
        self,
        profile: str | None,
        region: str | None,
        sources: list[CloudWatchLogsSource],
        *,
        store: StateStore,
        log: Logger,
        pages: queue.Queue[_Page],
        min_request_interval_seconds: float,
        page_events: int,
    ) -> None:
        self.profile = profile
        self.region = region
        self.account = account_label(profile, region or "default")
        self.sources = sources
        self.groups: dict[str, _Group] = {}
        self._store = store
        self._log = log
        self._pages = pages
        self._min_interval = min_request_interval_seconds
        self._page_events = page_events
        self._poll_seconds = min(s.poll_interval_seconds for s in sources)
        self._client: CloudWatchLogsClient | None = None
        self._resolved_once = False
        self._resolve_due = 0.0
        self._next_request_at = 0.0
        self._backoff = _Backoff()
        self._unreachable: str | None = None
        self._answered = False  # the last _request had an answer from the API
        self._stopping = threading.Event()
        self._wake: Wake = lambda: None
        self._thread = threading.Thread(target=self._run, name=f"cloudwatch-logs {self.account}")

    def start(self, wake: Wake) -> None:
        self._wake = wake
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._client is not None:
            self._client.close()  # its pooled connections, now rather than when collected

    # -- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self._client is None:
                self._client = self._connect()
                continue
            now = time.monotonic()
            wait = max(self._next_request_at, self._next_due()) - now
            if wait > 0:
                self._stopping.wait(wait)
                continue
            self._next_request_at = now + self._min_interval
            group = min(self.groups.values(), key=lambda g: g.due_at, default=None)
            if group is None or self._resolve_due <= group.due_at:  # whichever waited longest
                self._request(None, self._resolve)
            else:
                self._request(group, functools.partial(self._fetch_page, group))

    def _next_due(self) -> float:
        return min([self._resolve_due, *(g.due_at for g in self.groups.values())])

    def _connect(self) -> CloudWatchLogsClient | None:
        try:
            session = boto3.Session(profile_name=self.profile, region_name=self.region)
            self.account = account_label(self.profile, session.region_name or "default")
            return session.client(
                "logs",
                config=BotoConfig(
                    retries={"mode": "standard", "total_max_attempts": 1},  # backoff is ours
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    read_timeout=READ_TIMEOUT_SECONDS,
                ),
            )
        except BotoCoreError as exc:
            self._report_unreachable(None, str(exc), type(exc).__name__)
            self._stopping.wait(self._backoff.next_delay())
            return None

    def _request(self, group: _Group | None, call: Callable[[], None]) -> None:
        """API calls, with throttling and connection failures turned into backoff."""
        self._answered = False
        try:
            call()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = str(error.get("Code", "")), str(error.get("Message", ""))
            if code in _THROTTLING_CODES:
                self._throttled(group, code)
            elif group is not None and code == _MISSING_CODE:
                self._group_failed(group, "missing", "the log group does not exist (deleted?)")
            elif group is not None:
                self._group_failed(group, code, f"{code}: {message}")
            else:
                self._report_unreachable(None, f"{code}: {message}", code)
                self._resolve_due = time.monotonic() + self._slow_retry_seconds()
            return
        except BotoCoreError as exc:
            self._report_unreachable(group, str(exc), type(exc).__name__)
            self._next_request_at = time.monotonic() + self._backoff.next_delay()
            return
        except Exception as exc:  # noqa: BLE001 - botocore's parser on an odd answer; the thread lives
            self._report_unreachable(group, f"unexpected answer: {exc}", type(exc).__name__)
            self._next_request_at = time.monotonic() + self._backoff.next_delay()
            return
        if not self._answered:
            return  # nothing was asked (names need no listing): no sign of recovery
        if self._backoff.streak or self._unreachable:
            self._log.info("source_recovered", kind=KIND, account=self.account)
        self._backoff.streak = 0
        self._unreachable = None

    def _throttled(self, group: _Group | None, code: str) -> None:
        delay = self._backoff.next_delay()
        self._next_request_at = time.monotonic() + delay
        report = self._log.warning if self._backoff.streak == 1 else self._log.debug
        report(
            "source_throttled", kind=KIND, account=self.account,
            path=group.name if group else None, error_type=code,
            retry_in_seconds=round(delay, 2),
            detail="every request of this profile and region waits, doubling up to "
            f"{BACKOFF_MAX_SECONDS:.0f} s while throttling lasts",
        )  # fmt: skip

    def _report_unreachable(self, group: _Group | None, reason: str, error_type: str) -> None:
        if self._unreachable == reason:
            return
        self._unreachable = reason
        self._log.error(
            "source_error", stage="source", kind=KIND, account=self.account,
            path=group.name if group else None, error=reason, error_type=error_type,
            detail="retried with backoff; nothing is lost meanwhile",
        )  # fmt: skip

    def _group_failed(self, group: _Group, what: str, reason: str) -> None:
        retry = self._slow_retry_seconds()
        group.due_at = time.monotonic() + retry
        group.next_token = None  # the next poll begins after the last event fetched
        group.poll_start = group.position
        if group.failing != what:
            group.failing = what
            self._log.warning(
                "log_group_unreadable", kind=KIND, account=self.account, path=group.name,
                error=reason, retry_every_seconds=retry,
            )  # fmt: skip

    def _slow_retry_seconds(self) -> float:
        return self._poll_seconds * RETRY_MISSING_EVERY_POLLS

    # -- listing groups ----------------------------------------------------------------------

    def _resolve(self) -> None:
        """Add the groups the configured names and prefixes name now (a group is never
        dropped: one deleted is reported when its reads fail, and found again if it returns)."""
        for source in self.sources:  # names first: they need no DescribeLogGroups permission
            self._add_groups([name for name in source.log_groups if not name.endswith("*")], source)
        for source in self.sources:
            for pattern in [name for name in source.log_groups if name.endswith("*")]:
                self._add_groups(list(self._list_groups(pattern[:-1])), source)
        self._resolved_once = True
        self._resolve_due = time.monotonic() + self._poll_seconds * RESOLVE_EVERY_POLLS

    def _add_groups(self, names: list[str], source: CloudWatchLogsSource) -> None:
        """Start polling the groups not polled yet, their first polls spread over an interval."""
        new = [name for name in dict.fromkeys(names) if name not in self.groups]
        now = time.monotonic()
        for index, name in enumerate(new):
            spread = self._poll_seconds * index / len(new)
            self.groups[name] = self._new_group(name, source, now + spread)
        if new:
            self._log.info(
                "log_groups_found", kind=KIND, account=self.account, count=len(new),
                groups=new[:20],
            )  # fmt: skip

    def _list_groups(self, prefix: str) -> Iterator[str]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"logGroupNamePrefix": prefix} if prefix else {}
            if token:
                kwargs["nextToken"] = token
                self._pace()
            assert self._client is not None  # noqa: S101 - set before any request
            response = self._client.describe_log_groups(**kwargs)
            self._answered = True
            for group in response.get("logGroups", []):
                name = group.get("logGroupName")
                if isinstance(name, str):
                    yield name
            token = response.get("nextToken")
            if not token:
                return

    def _pace(self) -> None:
        wait = self._next_request_at - time.monotonic()
        if wait > 0:
            self._stopping.wait(wait)
        self._next_request_at = time.monotonic() + self._min_interval

    def _new_group(self, name: str, source: CloudWatchLogsSource, due_at: float) -> _Group:
        saved = self._store.log_group_position(self.account, name)
        if saved is not None:
            return _Group(name, source, saved, saved, due_at)
        if self._resolved_once or source.start_at == "beginning":
            start = LogGroupPosition(0)  # appeared while running: read from its beginning
        else:
            start = LogGroupPosition(int(time.time() * 1000))
        return _Group(name, source, start, start, due_at, fresh=True)

    # -- reading a group ---------------------------------------------------------------------

    def _fetch_page(self, group: _Group) -> None:
        assert self._client is not None  # noqa: S101 - set before any request
        kwargs: dict[str, Any] = {
            "logGroupName": group.name,
            "startTime": group.poll_start.last_event_ms,
            "filterPattern": group.source.filter_pattern or DEFAULT_FILTER_PATTERN,
            "limit": self._page_events,
            # Time order across streams, which positions rely on. AWS ignores the flag and
            # always interleaves; moto (the tests) sorts only when asked.
            "interleaved": True,
        }
        if group.next_token:
            kwargs["nextToken"] = group.next_token
        response = self._client.filter_log_events(**kwargs)
        self._answered = True
        items = self._new_items(group, response.get("events", []))
        if group.failing is not None:
            self._log.info("log_group_readable", kind=KIND, account=self.account, path=group.name)
            group.failing = None
        if group.fresh:
            items.appendleft((None, group.poll_start))
            group.fresh = False
        group.next_token = response.get("nextToken")
        now = time.monotonic()
        if group.next_token:
            group.due_at = now  # the next page, after the pacing interval
        else:
            group.poll_start = group.position
            group.due_at = now + group.source.poll_interval_seconds
        if items:
            self._hand_over(_Page(self.account, group.name, group.source.aws_profile, items))

    def _new_items(
        self, group: _Group, events: list[Any]
    ) -> deque[tuple[Mapping[str, Any] | None, LogGroupPosition]]:
        items: deque[tuple[Mapping[str, Any] | None, LogGroupPosition]] = deque()
        start = group.poll_start
        for event in events:
            millis, event_id = event.get("timestamp"), event.get("eventId")
            if not isinstance(millis, int) or not isinstance(event_id, str):
                self._log.warning(
                    "log_event_malformed", kind=KIND, path=group.name, event_id=str(event_id),
                    error="no timestamp or eventId", detail="skipped",
                )  # fmt: skip
                continue
            if millis == start.last_event_ms and event_id in start.event_ids:
                continue  # handed on before this poll, which starts at that millisecond
            position = group.position
            if millis == position.last_event_ms and event_id in position.event_ids:
                continue  # already fetched in this poll
            group.position = advanced(position, millis, event_id)
            items.append((event, group.position))
        return items

    def _hand_over(self, page: _Page) -> None:
        """Queue the page for the daemon's thread; wait while the queue is full."""
        while not self._stopping.is_set():
            try:
                self._pages.put(page, timeout=0.5)  # re-checks the stop flag twice a second
            except queue.Full:
                continue
            self._wake()
            return


class CloudWatchLogsSources(RemoteSource):
    """Every configured ``cloudwatch_logs`` source; one fetch thread per profile and region."""

    kind = KIND

    def __init__(
        self,
        sources: tuple[CloudWatchLogsSource, ...],
        store: StateStore,
        log: Logger,
        *,
        min_request_interval_seconds: float = MIN_REQUEST_INTERVAL_SECONDS,
        page_events: int = PAGE_EVENTS,
    ) -> None:
        self._store = store
        self._log = log
        self._pages: queue.Queue[_Page] = queue.Queue(maxsize=QUEUE_PAGES)
        self._current: _Page | None = None
        self._unsaved: dict[tuple[str, str], LogGroupPosition] = {}
        by_account: dict[tuple[str | None, str | None], list[CloudWatchLogsSource]] = {}
        for source in sources:
            by_account.setdefault((source.aws_profile, source.region), []).append(source)
        self._readers = [
            _AccountReader(
                profile,
                region,
                grouped,
                store=store,
                log=log,
                pages=self._pages,
                min_request_interval_seconds=min_request_interval_seconds,
                page_events=page_events,
            )
            for (profile, region), grouped in by_account.items()
        ]

    # -- the source protocol (sources/base.py) -----------------------------------------------

    def start(self, wake: Wake) -> None:
        for reader in self._readers:
            reader.start(wake)

    def read(self, changed: set[str] | None, out: Output) -> int:
        del changed  # nothing local: the fetch threads wake the loop
        handed_on = 0
        read_bytes = 0
        while not out.paused and handed_on < MAX_EVENTS_PER_READ:
            page = self._page_with_items()
            if page is None:
                break
            event, position = page.items.popleft()
            if event is not None:
                handed_on += 1
                read_bytes += self._hand_on(page, event, out)
            self._unsaved[(page.account, page.group)] = position
        return read_bytes

    def checkpoint(self) -> Save | None:
        """Saves every group's position handed on and not saved yet (one transaction per
        profile and region)."""
        positions = dict(self._unsaved)
        if not positions:
            return None

        def save() -> None:
            by_account: dict[str, dict[str, LogGroupPosition]] = {}
            for (account, group), position in positions.items():
                by_account.setdefault(account, {})[group] = position
            for account, groups in by_account.items():
                self._store.save_log_group_positions(account, groups)
            for key, position in positions.items():
                if self._unsaved.get(key) is position:
                    del self._unsaved[key]

        return save

    @property
    def more_ready(self) -> bool:
        return bool(self._current and self._current.items) or not self._pages.empty()

    def progress(self) -> Progress:
        return Progress(followed=sum(len(reader.groups) for reader in self._readers))

    def close(self) -> None:
        """Stops the fetch threads; pages not handed on are fetched again at the next start."""
        for reader in self._readers:
            reader.stop()

    # -- handing on --------------------------------------------------------------------------

    def _page_with_items(self) -> _Page | None:
        while self._current is None or not self._current.items:
            try:
                self._current = self._pages.get_nowait()
            except queue.Empty:
                self._current = None
                return None
        return self._current

    def _hand_on(self, page: _Page, event: Mapping[str, Any], out: Output) -> int:
        stream = event.get("logStreamName")
        found = log_event(page.group, stream if isinstance(stream, str) else "", event)
        if found is None:
            self._log.warning(
                "log_event_malformed", kind=KIND, path=page.group,
                event_id=str(event.get("eventId")), error="no message", detail="skipped",
            )  # fmt: skip
            return 0
        out.text(found.text, found.origin, profile=page.profile, timestamp=found.timestamp)
        return len(found.text)
