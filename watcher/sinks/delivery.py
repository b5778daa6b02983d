"""sinks: durable delivery for remote sinks (webhook, SNS).

``write`` puts the event in the state database's outbox and returns: that is what "written"
means for these sinks, so the daemon commits offsets without waiting on a slow receiver. A
worker thread per sink delivers from the outbox, oldest first, retrying retryable failures
(5xx, throttling, timeouts, connection errors) with exponential backoff and dropping
permanent ones (4xx) with a logged error. A delivery that was pending at a crash or a stop is
made after the next start: at-least-once.

The backoff is the sink's, not each delivery's: after a failure, nothing is sent until the
backoff ends, then the oldest delivery probes the receiver; when it is taken, the rest follow
in order. Deliveries of one sink name are made under one lock per state database, so the
worker of a sink rebuilt by a reload never sends what the old worker has in flight.

With ``max_outbox`` (the daemon's sinks), ``full`` says when that many events wait: the
daemon then reads nothing until the receiver has taken some, so an outage of the receiver
pauses reading instead of filling the disk. What is in the outbox is durable either way.

The worker never dies: any other exception from a delivery (a bug, a header the HTTP library
refuses) is caught, counted, logged by its type only (its message may carry a header's secret)
and the delivery failed permanently, so it cannot hold the queue behind it forever.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from weakref import WeakKeyDictionary

from watcher.log import Logger
from watcher.model import Event
from watcher.state import StateStore

BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 300.0
IDLE_CHECK_SECONDS = 5.0


class RetryableDeliveryError(Exception):
    """The receiver may take it later (5xx, throttling, timeout, connection refused)."""


class PermanentDeliveryError(Exception):
    """The receiver refuses this message (4xx, bad topic): retrying would not help."""


Deliver = Callable[[Event], None]

_delivery_locks: WeakKeyDictionary[StateStore, dict[str, threading.Lock]] = WeakKeyDictionary()
_delivery_locks_guard = threading.Lock()


def _delivery_lock(store: StateStore, sink: str) -> threading.Lock:
    """The one lock that every worker delivering ``sink`` from ``store`` holds per delivery."""
    with _delivery_locks_guard:
        return _delivery_locks.setdefault(store, {}).setdefault(sink, threading.Lock())


class DeliveringSink:
    """A sink whose events go through the outbox to ``deliver`` on a worker thread."""

    def __init__(
        self,
        name: str,
        deliver: Deliver,
        store: StateStore,
        log: Logger,
        *,
        events: tuple[str, ...],
        clock: Callable[[], float] = time.time,
        on_error: Callable[[str], None] | None = None,
        start_worker: bool = True,
        max_outbox: int | None = None,
    ) -> None:
        self._on_error = on_error  # called with the sink's name on every failed attempt
        self.name = name
        self._deliver = deliver
        self._store = store
        self._log = log
        self._events = frozenset(events)
        self._clock = clock
        self._failing: str | None = None  # the last retryable error, until a delivery works
        self._unqueued: deque[str] = deque()  # taken, but the outbox could not store them yet
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.delivered_count = 0
        self.failed_count = 0
        self._lock = _delivery_lock(store, name)
        self._max_outbox = max_outbox
        self._counted: int | None = None  # the outbox's size when last counted
        self._enqueued_since_count = 0  # so counted + this bounds the size from above
        self._paused = False  # the outbox was full at the last look
        self._failures_in_a_row = 0
        self._backoff_until = 0.0
        self._unrecorded: set[int] = set()  # delivered; the database refused to drop the row
        self._worker = threading.Thread(target=self._run, name=f"sink-{name}", daemon=True)
        if start_worker:  # else only queue: the process holding the state directory delivers
            self._worker.start()

    def write(self, event: Event) -> None:
        if event["event"] in self._events:
            self._unqueued.append(json.dumps(event, separators=(",", ":")))
            with contextlib.suppress(sqlite3.Error):  # kept in order; ``flush`` reports it
                self._enqueue_unqueued()

    def flush(self) -> None:
        """Queued events are durable in the outbox; those the database refused are queued now
        (``sqlite3.Error`` when it still cannot take them, a full disk)."""
        self._enqueue_unqueued()

    @property
    def full(self) -> str | None:
        """Why reading should wait (``max_outbox`` events wait for the receiver), else None.
        The outbox is counted only when an upper bound of its size reaches the limit."""
        if self._max_outbox is None:
            return None
        bound = (self._counted or 0) + self._enqueued_since_count + len(self._unqueued)
        if self._counted is None or self._paused or bound >= self._max_outbox:
            try:
                counted = self._store.outbox_count(self.name)
            except sqlite3.Error:
                return None  # the state database fails: the commit gate pauses reading for that
            self._counted, self._enqueued_since_count = counted, 0
            bound = counted + len(self._unqueued)
        # once full, reading waits until a tenth has gone, not for the first event taken
        limit = self._max_outbox - self._max_outbox // 10 if self._paused else self._max_outbox
        self._paused = bound >= limit
        if not self._paused:
            return None
        return f"{bound:,} events wait for the receiver (max_outbox {self._max_outbox:,})"

    def outbox_count(self) -> int:
        """Events taken and not delivered yet (in the outbox or waiting to enter it)."""
        return self._store.outbox_count(self.name) + len(self._unqueued)

    def _enqueue_unqueued(self) -> None:
        while self._unqueued:
            self._store.enqueue(self.name, self._unqueued[0], self._clock())
            self._unqueued.popleft()
            self._enqueued_since_count += 1
            self._wake.set()

    def reopen(self) -> None:
        """Nothing to reopen: every delivery is a new request."""

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._worker.ident is not None:
            self._worker.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self._deliver_due()
            except Exception as exc:  # noqa: BLE001 - the worker outlives any one failure
                self._count_error()
                self._log.error(
                    "sink_worker_error", sink=self.name, error_type=type(exc).__name__,
                    detail="the worker keeps running and tries again",
                )  # fmt: skip
                wait = IDLE_CHECK_SECONDS
            self._wake.wait(min(wait, IDLE_CHECK_SECONDS))
            self._wake.clear()

    def _deliver_due(self) -> float:
        """Oldest first, one at a time under the sink's lock, until one fails or none is due;
        return the seconds until the next delivery is due."""
        if self._clock() >= self._backoff_until:
            while not self._stop.is_set():
                with self._lock:
                    if not self._record_delivered():
                        return IDLE_CHECK_SECONDS  # the disk is full: sending on would repeat
                    due = self._store.due(self.name, self._clock(), limit=1)
                    if not due or not self._attempt(*due[0]):
                        break
        next_at = self._store.next_due_at(self.name)
        if next_at is None:
            return IDLE_CHECK_SECONDS
        return max(0.0, max(next_at, self._backoff_until) - self._clock())

    def _attempt(self, delivery_id: int, payload: str, attempts: int) -> bool:
        """Deliver one event; False when the receiver should be left alone for a while."""
        event = json.loads(payload)
        try:
            self._deliver(event)
        except RetryableDeliveryError as exc:
            self._count_error()
            delay = min(BACKOFF_FIRST_SECONDS * 2**self._failures_in_a_row, BACKOFF_MAX_SECONDS)
            self._failures_in_a_row += 1
            self._backoff_until = self._clock() + delay
            self._store.retry_later(delivery_id, attempts + 1, self._backoff_until)
            if self._failing != str(exc):  # once per change of state, not per event
                self._log.warning(
                    "sink_retry", sink=self.name, event_id=event.get("event_id"),
                    error=str(exc), attempt=attempts + 1, retry_seconds=delay,
                )  # fmt: skip
            self._failing = str(exc)
            return False
        except PermanentDeliveryError as exc:
            self._count_error()
            self._done(delivery_id)
            self.failed_count += 1
            self._log.error(
                "sink_delivery_failed", sink=self.name, event_id=event.get("event_id"),
                error=str(exc), detail="the receiver refused it; not retried",
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - see the module docstring
            self._count_error()
            self._done(delivery_id)
            self.failed_count += 1
            self._log.error(
                "sink_delivery_failed", sink=self.name, event_id=event.get("event_id"),
                error_type=type(exc).__name__,
                detail="unexpected error (message withheld: it may hold a secret); not retried",
            )  # fmt: skip
        else:
            self._done(delivery_id)
            self.delivered_count += 1
            if self._failing is not None:
                self._log.info("sink_recovered", sink=self.name)
                self._failing = None
        self._failures_in_a_row = 0
        return True

    def _done(self, delivery_id: int) -> None:
        """The delivery is over: its row goes. If the database refuses (a full disk), the row
        is remembered here, so this process sends it no more, and dropped once there is room."""
        try:
            self._store.delivered(delivery_id)
        except sqlite3.Error as exc:
            if not self._unrecorded:
                self._log.warning(
                    "sink_outbox_not_updated", sink=self.name, error=str(exc),
                    detail="delivered, but the state database cannot record it (a full disk?): "
                    "this sink delivers nothing more until it can, so nothing is sent twice "
                    "(after a restart meanwhile, that event is sent again)",
                )  # fmt: skip
            self._unrecorded.add(delivery_id)

    def _record_delivered(self) -> bool:
        """Drop the rows of deliveries the database refused to record; True once none is left."""
        for delivery_id in sorted(self._unrecorded):
            try:
                self._store.delivered(delivery_id)
            except sqlite3.Error:
                return False
            self._unrecorded.discard(delivery_id)
        return True

    def _count_error(self) -> None:
        if self._on_error is not None:
            self._on_error(self.name)
