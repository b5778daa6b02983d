"""Helpers for the ``s3`` source tests: CloudTrail objects in a moto bucket, and the source
driven directly from the test's thread as the daemon drives it.

``TrailBucket`` puts gzip CloudTrail deliveries under the keys CloudTrail uses; every denial
record has its own ``eventID``, so a test knows the ``event_id`` each one must get.
``Driver`` starts an ``S3Buckets``, hands what it reads to a list, and runs its saves when the
test says the sinks have everything.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tests.recording_output import RecordingOutput
from watcher.config import S3Source
from watcher.sources.s3 import S3Buckets
from watcher.state import StateStore

DEADLINE_SECONDS = 30.0


def expected_event_id(cloudtrail_event_id: str) -> str:
    """The event_id a CloudTrail record with this eventID gets (sources/cloudtrail.py)."""
    return hashlib.sha256(f"cloudtrail\x1f{cloudtrail_event_id}".encode()).hexdigest()[:32]


def denial_record(event_id: str, account: str, region: str) -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "eventTime": "2026-11-29T05:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": region,
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{account}:user/ana"},
        "errorCode": "AccessDenied",
        "errorMessage": "Access Denied",
        "requestID": f"req-{event_id}",
        "eventID": event_id,
        "recipientAccountId": account,
    }


def allowed_record(event_id: str) -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets",
        "eventID": event_id,
    }


def delivery(records: list[dict[str, Any]]) -> bytes:
    """An object as CloudTrail writes it: compact JSON, gzip."""
    return gzip.compress(json.dumps({"Records": records}, separators=(",", ":")).encode())


def trail_key(account: str, region: str, day: date, serial: int, org: str | None = None) -> str:
    """A key as CloudTrail writes it; ``serial`` orders objects of one day (the time part)."""
    root = f"AWSLogs/{org}/{account}" if org else f"AWSLogs/{account}"
    stamp = f"{day:%Y%m%d}T{serial // 60 % 24:02d}{serial % 60:02d}Z"
    return (
        f"{root}/CloudTrail/{region}/{day:%Y/%m/%d}/"
        f"{account}_CloudTrail_{region}_{stamp}_{serial:06d}.json.gz"
    )


@dataclass
class TrailBucket:
    """A bucket in moto with CloudTrail objects; ``denials`` maps object key -> its eventIDs."""

    client: Any
    name: str
    denials: dict[str, list[str]] = field(default_factory=dict)
    _serial: int = 0

    def create(self) -> TrailBucket:
        self.client.create_bucket(Bucket=self.name)
        return self

    def put_trail_object(
        self,
        account: str = "111122223333",
        region: str = "us-east-1",
        day: date = date(2026, 11, 29),
        denials: int = 2,
        org: str | None = None,
    ) -> str:
        """A gzip delivery with ``denials`` denial records and one allowed call."""
        self._serial += 1
        return self.put_trail_object_at(
            trail_key(account, region, day, self._serial, org), account, region, denials
        )

    def put_trail_object_at(
        self, key: str, account: str = "111122223333", region: str = "us-east-1", denials: int = 2
    ) -> str:
        """A delivery like ``put_trail_object``'s under a key the test chose."""
        self._serial += 1
        ids = [f"{self.name}-{self._serial}-{n}" for n in range(denials)]
        records = [denial_record(i, account, region) for i in ids]
        records.insert(1, allowed_record(f"{self.name}-{self._serial}-ok"))
        self.put(key, delivery(records))
        self.denials[key] = ids
        return key

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=body)

    def event_ids(self, keys: list[str] | None = None) -> set[str]:
        """The event_ids of every denial put (or of the objects ``keys``)."""
        chosen = self.denials if keys is None else {k: self.denials[k] for k in keys}
        return {expected_event_id(i) for ids in chosen.values() for i in ids}


class RecordingLog:
    """A Logger (watcher/log.py) keeping (level, event, fields) for the assertions."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, object]]] = []
        self._lock = threading.Lock()

    def _add(self, level: str, event: str, fields: dict[str, object]) -> None:
        with self._lock:
            self.records.append((level, event, fields))

    def debug(self, event: str, **fields: object) -> None:
        self._add("debug", event, fields)

    def info(self, event: str, **fields: object) -> None:
        self._add("info", event, fields)

    def warning(self, event: str, **fields: object) -> None:
        self._add("warning", event, fields)

    def error(self, event: str, **fields: object) -> None:
        self._add("error", event, fields)

    def named(self, event: str) -> list[dict[str, object]]:
        with self._lock:
            return [fields for _, name, fields in self.records if name == event]


class Driver:
    """An ``S3Buckets`` over ``configs``, read from this thread as the daemon loop reads it."""

    def __init__(self, configs: tuple[S3Source, ...], store: StateStore, log: RecordingLog) -> None:
        self.source = S3Buckets(configs, store, log)
        self.out = RecordingOutput()
        self._woken = threading.Event()
        self._save: Callable[[], None] | None = None
        self.source.start(self._woken.set)

    def read_until(self, condition: Callable[[], bool], what: str) -> None:
        """Read whenever the listers wake us, until ``condition`` holds (or fail at a deadline)."""
        self._until(condition, what, self.read_once)

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait, reading nothing, until ``condition`` holds (or fail at a deadline)."""
        self._until(condition, what, lambda: None)

    def _until(self, condition: Callable[[], bool], what: str, step: Callable[[], None]) -> None:
        end = time.monotonic() + DEADLINE_SECONDS
        while not condition():
            if time.monotonic() > end:
                raise AssertionError(f"timed out after {DEADLINE_SECONDS} s waiting for {what}")
            self._woken.wait(0.05)  # the listers wake us; the timeout only re-checks
            self._woken.clear()
            step()

    def read_once(self) -> None:
        self.source.read(None, self.out)
        while self.source.more_ready:
            self.source.read(None, self.out)
        save = self.source.checkpoint()
        if save is not None:
            self._save = save

    def acknowledge(self) -> None:
        """The sinks have everything handed on: run the latest save (as the commit gate does)."""
        if self._save is not None:
            self._save()
            self._save = None

    def close(self) -> None:
        self.source.close()

    def event_ids(self) -> list[str]:
        return self.out.event_ids()
