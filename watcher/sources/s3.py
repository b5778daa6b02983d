"""sources: ``type: s3``, a CloudTrail bucket listed every ``poll_interval`` (no queue needed).

    lister thread (one per configured bucket, never the daemon's):
        trail prefixes  <prefix>[o-org/]<account>/CloudTrail/<region>/   (ListObjectsV2, "/")
        each listed after its position (StartAfter) -> GetObject -> object_denials
        -> a bounded hand-off (the lister waits while it is full), then ``wake()``
    daemon thread:
        read()        the objects' denials, in key order per trail prefix -> out.denials
        checkpoint()  save: the keys handed on are recorded done

CloudTrail keys sort by time within a trail prefix (``.../YYYY/MM/DD/<account>_CloudTrail_
<region>_YYYYMMDDTHHMMZ_<random>.json.gz``), but not strictly by delivery: a file of the same
minute with a smaller random part, or a late delivery, can appear after a greater key was
read. So a listing starts after a *look-back* floor, the start of the day before the newest key
done when the previous listing began (``LOOKBACK_DAYS``; a key put behind a listing while it
runs is in the next one's window), and passes over the keys done since then (``s3_done_keys``
in the state database; older ones are forgotten). That basis is saved with the keys done
(``s3_window_bases``), so the first listing after a restart has the same window. A key is
recorded done only when every sink has the events of its object: every object once across
graceful restarts, at least once after a crash (the same ``event_id``, from CloudTrail's
``eventID``). Digest and Insights prefixes are never entered.

Where a listing starts (``start_at``, chosen once per bucket and prefix, saved at once):
``end`` after the objects of each trail prefix found at the first listing (those from the day
before its newest key on are remembered as done, so a same-minute or late delivery that sorts
before them is still read; prefixes that appear later are read from their first key),
``beginning`` from the first key, a date from that day's keys (the key holds the date).

An object that cannot be read as CloudTrail (not gzip, not CloudTrail, gone: NoSuchKey,
archived in Glacier) is logged once with its name and passed. Any other failure (the endpoint
unreachable, access denied, a KMS key refused) stops that prefix for the turn (the others go
on): logged once with the reason, retried with backoff from the same place, so nothing is
passed over.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config as BotocoreConfig
from botocore.exceptions import BotoCoreError, ClientError

from watcher.config import S3Source
from watcher.events import utc_now
from watcher.log import Logger
from watcher.pipeline import Denial
from watcher.sources.base import Output, Progress, RemoteSource, Save, Wake
from watcher.sources.cloudtrail import SKIPPED_DIRECTORIES
from watcher.sources.s3_objects import (
    CLOUDTRAIL_LOG_KEY,
    ObjectFormatError,
    UnrecognisedObjectError,
    object_denials,
    object_path,
)
from watcher.state import StateStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_OBJECTS_HELD = 16  # fetched and not yet handed on, across the buckets
MAX_OBJECTS_PER_READ = 8  # then the daemon loop gets a turn (signals, other sources)
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 300.0
CLOSE_TIMEOUT_SECONDS = 30.0  # a request in flight ends within botocore's timeouts
# Where the trail prefixes are: <prefix>[o-org/]<account>/CloudTrail/<region>/
MAX_DISCOVERY_DEPTH = 4
LOOKBACK_DAYS = 1  # a delivery later than this after a greater key is not seen (README)
_KEY_DATE_RE = re.compile(r"(\d{4})/(\d{2})/(\d{2})/")
_LOG_KEY_RE = re.compile(CLOUDTRAIL_LOG_KEY)
_TRAIL_PREFIX_RE = re.compile(r"(?:^|/)CloudTrail/[^/]+/$")
# GetObject errors that reading again would not mend: the object is passed over, by name.
_UNREADABLE_OBJECT_REASONS = {
    "NoSuchKey": "the object is gone (NoSuchKey)",
    "404": "the object is gone (NoSuchKey)",
    "InvalidObjectState": "the object is archived (a Glacier storage class): restore it and "
    "read it with `authz-watcher scan`",
}
_BOTOCORE_CONFIG = BotocoreConfig(
    connect_timeout=5, read_timeout=60, retries={"mode": "standard", "max_attempts": 3}
)


@dataclass(frozen=True, slots=True)
class FetchedObject:
    """One object read by a lister, waiting to be handed on."""

    bucket: str
    trail_prefix: str
    key: str
    size: int
    denials: list[Denial]
    window_basis: str | None  # the basis of the listing that found it (see _new_keys)


class Handoff:
    """A bounded queue from the lister threads to the daemon's: a full one makes them wait."""

    def __init__(self, capacity: int = MAX_OBJECTS_HELD) -> None:
        self._items: deque[FetchedObject] = deque()
        self._capacity = capacity
        self._changed = threading.Condition()
        self._closed = False

    def put(self, item: FetchedObject) -> bool:
        """Wait for room; False once closed (the item is dropped: it is listed again later)."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or len(self._items) < self._capacity)
            if self._closed:
                return False
            self._items.append(item)
            return True

    def take(self) -> FetchedObject | None:
        with self._changed:
            if not self._items:
                return None
            item = self._items.popleft()
            self._changed.notify_all()
            return item

    def __len__(self) -> int:
        with self._changed:
            return len(self._items)

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._items.clear()
            self._changed.notify_all()


def date_floor(start_at: str, trail_prefix: str) -> str | None:
    """The StartAfter that begins at ``start_at``'s day (None: no floor)."""
    if start_at in ("end", "beginning"):
        return None
    day = date.fromisoformat(start_at)
    return f"{trail_prefix}{day:%Y/%m/%d}/"  # every key of that day sorts after it


def lookback_floor(trail_prefix: str, newest_done: str | None) -> str | None:
    """The StartAfter that re-lists the day before ``newest_done``'s day and after; the key
    itself when it holds no date (a layout that is not CloudTrail's: no look-back)."""
    if newest_done is None:
        return None
    found = _KEY_DATE_RE.match(newest_done, len(trail_prefix))
    if found is None:
        return newest_done
    day = date(*map(int, found.groups())) - timedelta(days=LOOKBACK_DAYS)
    return f"{trail_prefix}{day:%Y/%m/%d}/"


def newest_key(trail_prefix: str, keys: Iterable[str]) -> str | None:
    """The greatest key in CloudTrail's dated layout; the greatest of all when none is dated
    (a layout that is not CloudTrail's). A stray object in a trail prefix (``notes.txt``) sorts
    after every dated key: taken for the newest, it would move the window past them for good."""
    keys = list(keys)
    dated = [key for key in keys if _KEY_DATE_RE.match(key, len(trail_prefix))]
    return max(dated or keys, default=None)


def later(*keys: str | None) -> str | None:
    """The greatest of the keys given (None when none is)."""
    present = [key for key in keys if key is not None]
    return max(present) if present else None


def failure_reason(exc: Exception) -> str:
    """One line saying why a request failed, without anything secret."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    return str(exc) or type(exc).__name__


class BucketLister(threading.Thread):
    """Lists one configured bucket every ``poll_interval`` and fetches its new objects."""

    def __init__(
        self, config: S3Source, store: StateStore, log: Logger, handoff: Handoff, wake: Wake
    ) -> None:
        super().__init__(name=f"s3-lister-{config.bucket}", daemon=True)
        self.config = config
        self._store = store
        self._log = log
        self._handoff = handoff
        self._wake = wake
        self._stopped = threading.Event()
        self._client: S3Client | None = None
        self._start_after: dict[str, str] = {}  # trail prefix -> start_at: end's key
        self._done: dict[str, set[str]] = {}  # trail prefix -> keys fetched, in the window
        self._ignored: set[str] = set()  # objects no CloudTrail log file by name, said once
        # trail prefix -> the newest key done when its last listing began: the next listing's
        # window starts from it, not from keys read during that listing, so a late key put
        # behind the listing's position while it ran is still in the next one's window.
        self._listing_basis: dict[str, str | None] = {}
        self._failing: str | None = None  # the reason last logged
        self._start_chosen = False  # start_at applied (now or at an earlier run)
        self.trail_prefixes = 0
        self.turns = 0  # listing turns begun
        self._said_no_trail_prefixes = False

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        delay = BACKOFF_FIRST_SECONDS
        while not self._stopped.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # noqa: BLE001 - any failure is logged and retried, never fatal
                self._report_failure(exc, delay)
                self._stopped.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
                continue
            if self._failing is not None:
                self._log.info("s3_listing_recovered", bucket=self.config.bucket)
                self._failing = None
            delay = BACKOFF_FIRST_SECONDS
            self._stopped.wait(self.config.poll_interval_seconds)

    def poll_once(self) -> None:
        """One turn: find the trail prefixes, read each one's new objects. A prefix that fails
        holds back none of the others; the first failure is raised once all were tried."""
        client = self._connected()
        self.turns += 1
        prefixes = self._trail_prefixes(client)
        self.trail_prefixes = len(prefixes)
        self._choose_start(client, prefixes)
        failure: BotoCoreError | ClientError | None = None
        for trail_prefix in prefixes:
            try:
                if not self._read_prefix(client, trail_prefix):
                    return
            except (BotoCoreError, ClientError) as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def _read_prefix(self, client: S3Client, trail_prefix: str) -> bool:
        """Hand off the prefix's new objects in key order; False once stopped."""
        newest = newest_key(trail_prefix, self._done.get(trail_prefix, ()))
        basis = self._listing_basis.get(trail_prefix, newest)
        self._listing_basis[trail_prefix] = newest  # the next listing's basis
        for key, size in self._new_keys(client, trail_prefix, basis):
            fetched = self._fetch(client, trail_prefix, key, size, basis)
            if self._stopped.is_set() or not self._handoff.put(fetched):
                return False
            self._done.setdefault(trail_prefix, set()).add(key)
            self._wake()
        self._forget_before_window(trail_prefix)
        return True

    def _connected(self) -> S3Client:
        if self._client is None:
            session = boto3.Session(
                profile_name=self.config.aws_profile, region_name=self.config.region
            )
            self._client = session.client("s3", config=_BOTOCORE_CONFIG)
            self._start_after = self._store.s3_start_keys(self.config.bucket)
            self._done = self._store.s3_done_keys(self.config.bucket)
            for trail_prefix, basis in self._store.s3_window_bases(self.config.bucket).items():
                self._listing_basis[trail_prefix] = basis or None
        return self._client

    def _choose_start(self, client: S3Client, prefixes: list[str]) -> None:
        """At the first listing of this bucket and prefix, save where each trail prefix starts."""
        bucket, prefix = self.config.bucket, self.config.prefix
        if self._start_chosen or self._store.s3_listing_started(bucket, prefix):
            self._start_chosen = True
            return
        start_after: dict[str, str] = {}
        present: dict[tuple[str, str], list[str]] = {}
        if self.config.start_at == "end":
            # Keys are not in write order within a minute (a random part follows it) and a
            # delivery can be late: what is there now, from the day before the newest key on,
            # counts as done, so a key that arrives later is read wherever it sorts.
            for trail_prefix in prefixes:
                keys = [key for key, _ in self._listed(client, trail_prefix, None)]
                if keys:
                    newest = newest_key(trail_prefix, keys) or keys[-1]
                    floor = lookback_floor(trail_prefix, newest) or newest
                    start_after[trail_prefix] = floor
                    present[(bucket, trail_prefix)] = [key for key in keys if key > floor]
        self._store.save_s3_done_keys(present, {})
        for (_, trail_prefix), keys in present.items():
            self._done.setdefault(trail_prefix, set()).update(keys)
        self._store.start_s3_listing(bucket, prefix, start_after)
        self._start_after.update(start_after)
        self._start_chosen = True
        self._log.info(
            "s3_listing_started", bucket=bucket, prefix=prefix, start_at=self.config.start_at,
            trail_prefixes=len(prefixes),
        )  # fmt: skip

    def _trail_prefixes(self, client: S3Client) -> list[str]:
        prefix = self.config.prefix
        if _TRAIL_PREFIX_RE.search(prefix + "/"):
            prefix += "/"  # .../CloudTrail/<region> names one trail prefix too
        if _TRAIL_PREFIX_RE.search(prefix):
            return [prefix]
        if prefix == "CloudTrail/" or prefix.endswith("/CloudTrail/"):
            return sorted(self._children(client, prefix))  # one account's regions
        prefixes = sorted(self._walk(client, prefix, 0))
        if not prefixes:
            self._report_no_trail_prefixes()
        return prefixes

    def _report_no_trail_prefixes(self) -> None:
        if not self._said_no_trail_prefixes:
            self._said_no_trail_prefixes = True
            self._log.warning(
                "s3_no_trail_prefixes", bucket=self.config.bucket, prefix=self.config.prefix,
                detail="no <account>/CloudTrail/<region>/ prefix under it (yet): nothing is "
                "read; `prefix` names where AWSLogs/ is (or an org's AWSLogs/o-.../, an "
                "account's, or one trail prefix); said once, listed again every poll_interval",
            )  # fmt: skip

    def _walk(self, client: S3Client, prefix: str, depth: int) -> Iterator[str]:
        for child in self._children(client, prefix):
            name = child.rstrip("/").rsplit("/", 1)[-1]
            if name in SKIPPED_DIRECTORIES:
                continue
            if name == "CloudTrail":
                yield from self._children(client, child)
            elif depth < MAX_DISCOVERY_DEPTH:
                yield from self._walk(client, child, depth + 1)

    def _children(self, client: S3Client, prefix: str) -> Iterator[str]:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=self.config.bucket, Prefix=prefix, Delimiter="/"
        )
        for page in pages:
            for common in page.get("CommonPrefixes", []):
                if "Prefix" in common:
                    yield common["Prefix"]

    def _new_keys(
        self, client: S3Client, trail_prefix: str, basis: str | None
    ) -> Iterator[tuple[str, int]]:
        """The keys not done after the window's floor: the day before ``basis``, the newest key
        done when the previous listing began (saved, so a restart lists the same window)."""
        done = self._done.get(trail_prefix, set())
        after = later(
            self._start_after.get(trail_prefix),
            date_floor(self.config.start_at, trail_prefix),
            lookback_floor(trail_prefix, basis),
        )
        for key, size in self._listed(client, trail_prefix, after):
            if not _LOG_KEY_RE.search(key):
                self._ignore(object_path(self.config.bucket, key))
            elif key not in done:
                yield key, size

    def _ignore(self, path: str) -> None:
        """An object in a trail prefix that is no CloudTrail log file by its name (someone's
        notes.txt): skipped, said once a run."""
        if path not in self._ignored:
            self._ignored.add(path)
            self._log.info(
                "s3_object_ignored", path=path,
                detail="not a CloudTrail log file by its name (<account>_CloudTrail_<region>_"
                "...json.gz); not read",
            )  # fmt: skip

    def _forget_before_window(self, trail_prefix: str) -> None:
        """Forget the keys done below the next listing's window (from the newest key done
        when this listing began)."""
        done = self._done.get(trail_prefix)
        floor = lookback_floor(trail_prefix, self._listing_basis.get(trail_prefix))
        if done and floor is not None:
            self._done[trail_prefix] = {key for key in done if key >= floor}

    def _listed(
        self, client: S3Client, trail_prefix: str, after: str | None
    ) -> Iterator[tuple[str, int]]:
        """(key, size) of the objects under ``trail_prefix`` after ``after``, in key order."""
        arguments = {"Bucket": self.config.bucket, "Prefix": trail_prefix}
        if after is not None:
            arguments["StartAfter"] = after
        for page in client.get_paginator("list_objects_v2").paginate(**arguments):  # type: ignore[arg-type]
            for listed in page.get("Contents", []):
                key = listed.get("Key", "")
                if key and not key.endswith("/"):
                    yield key, listed.get("Size", 0)

    def _fetch(
        self, client: S3Client, trail_prefix: str, key: str, size: int, basis: str | None
    ) -> FetchedObject:
        path = object_path(self.config.bucket, key)
        denials: list[Denial] = []
        try:
            body = client.get_object(Bucket=self.config.bucket, Key=key)["Body"]
        except ClientError as exc:
            reason = _UNREADABLE_OBJECT_REASONS.get(exc.response.get("Error", {}).get("Code", ""))
            if reason is None:
                raise
            self._skip(path, reason)
        else:
            with body:
                try:
                    denials = object_denials(
                        body, path, utc_now(),
                        error_codes=self.config.error_codes, profile=self.config.aws_profile,
                    )  # fmt: skip
                except (UnrecognisedObjectError, ObjectFormatError) as exc:
                    self._skip(path, str(exc))
        return FetchedObject(self.config.bucket, trail_prefix, key, size, denials, basis)

    def _skip(self, path: str, reason: str) -> None:
        self._log.warning(
            "s3_object_skipped", stage="source", path=path, error=reason,
            detail="not read again; the listing goes on after it",
        )  # fmt: skip

    def _report_failure(self, exc: Exception, delay: float) -> None:
        reason = failure_reason(exc)
        if reason != self._failing:
            self._log.warning(
                "s3_listing_failed", stage="source", bucket=self.config.bucket, error=reason,
                error_type=type(exc).__name__, retry_seconds=delay,
                detail="retried with backoff from the same place; logged again only if "
                "the reason changes",
            )  # fmt: skip
        self._failing = reason


class S3Buckets(RemoteSource):
    """Every ``type: s3`` source: a lister thread each, one hand-off, keys done per prefix."""

    kind = "s3"

    def __init__(self, configs: tuple[S3Source, ...], store: StateStore, log: Logger) -> None:
        self._configs = configs
        self._store = store
        self._log = log
        self._handoff = Handoff()
        self._listers: list[BucketLister] = []
        self._unacknowledged: dict[tuple[str, str], list[str]] = {}  # (bucket, prefix) -> keys
        # (bucket, prefix) -> the window basis of the listing that found the last key handed on
        self._window_bases: dict[tuple[str, str], str | None] = {}
        self._more_ready = False

    # -- the source protocol (sources/base.py) -----------------------------------------------

    def start(self, wake: Wake) -> None:
        for config in self._configs:
            lister = BucketLister(config, self._store, self._log, self._handoff, wake)
            lister.start()
            self._listers.append(lister)

    def read(self, changed: set[str] | None, out: Output) -> int:
        del changed  # the listers wake the loop
        size = 0
        for _ in range(MAX_OBJECTS_PER_READ):
            if out.paused:
                break
            fetched = self._handoff.take()
            if fetched is None:
                break
            out.denials(fetched.denials)
            place = (fetched.bucket, fetched.trail_prefix)
            self._unacknowledged.setdefault(place, []).append(fetched.key)
            self._window_bases[place] = fetched.window_basis
            size += fetched.size
        self._more_ready = not out.paused and len(self._handoff) > 0
        return size

    def checkpoint(self) -> Save | None:
        """Records done every key handed on since the last save ran."""
        handed_on = {place: list(keys) for place, keys in self._unacknowledged.items()}
        if not handed_on:
            return None
        # Where a restart's first listing starts: the window of the listing that found the
        # last key saved, so that a late key put behind it while it ran is still in it ("":
        # that listing had no window, nor has the restart's, and no key done is forgotten).
        bases = {place: self._window_bases.get(place) or "" for place in handed_on}

        def save() -> None:
            forget_before = {
                place: floor
                for place, basis in bases.items()
                if (floor := lookback_floor(place[1], basis or None)) is not None
            }
            self._store.save_s3_done_keys(handed_on, forget_before, bases)
            for place, keys in handed_on.items():
                saved = set(keys)
                left = [key for key in self._unacknowledged.get(place, []) if key not in saved]
                if left:
                    self._unacknowledged[place] = left
                else:
                    self._unacknowledged.pop(place, None)

        return save

    @property
    def more_ready(self) -> bool:
        return self._more_ready

    @property
    def held_objects(self) -> int:
        """Objects fetched and waiting to be handed on."""
        return len(self._handoff)

    @property
    def turns(self) -> int:
        """Listing turns begun, by the bucket that has begun fewest."""
        return min((lister.turns for lister in self._listers), default=0)

    def progress(self) -> Progress:
        return Progress(followed=sum(lister.trail_prefixes for lister in self._listers))

    def close(self) -> None:
        """Stop the listers; objects fetched and not handed on are listed again next time."""
        for lister in self._listers:
            lister.stop()
        self._handoff.close()
        for lister in self._listers:
            lister.join(CLOSE_TIMEOUT_SECONDS)
        self._listers.clear()
