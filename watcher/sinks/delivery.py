"""sinks: durable delivery for remote sinks (webhook, SNS).

``write`` puts the event in the state database's outbox and returns: that is what "written"
means for these sinks, so the daemon commits offsets without waiting on a slow receiver. A
worker thread per sink delivers from the outbox, oldest first, retrying retryable failures
(5xx, throttling, timeouts, connection errors) with exponential backoff and dropping
permanent ones (4xx) with a logged error. A delivery that was pending at a crash or a stop is
made after the next start: at-least-once.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable

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

    def outbox_count(self) -> int:
        """Events taken and not delivered yet (in the outbox or waiting to enter it)."""
        return self._store.outbox_count(self.name) + len(self._unqueued)

    def _enqueue_unqueued(self) -> None:
        while self._unqueued:
            self._store.enqueue(self.name, self._unqueued[0], self._clock())
            self._unqueued.popleft()
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
            now = self._clock()
            for delivery_id, payload, attempts in self._store.due(self.name, now):
                if self._stop.is_set():
                    return
                self._attempt(delivery_id, payload, attempts)
            next_at = self._store.next_due_at(self.name)
            wait = IDLE_CHECK_SECONDS if next_at is None else max(0.0, next_at - self._clock())
            self._wake.wait(min(wait, IDLE_CHECK_SECONDS))
            self._wake.clear()

    def _attempt(self, delivery_id: int, payload: str, attempts: int) -> None:
        event = json.loads(payload)
        try:
            self._deliver(event)
        except RetryableDeliveryError as exc:
            self._count_error()
            delay = min(BACKOFF_FIRST_SECONDS * 2**attempts, BACKOFF_MAX_SECONDS)
            self._store.retry_later(delivery_id, attempts + 1, self._clock() + delay)
            if self._failing != str(exc):  # once per change of state, not per event
                self._log.warning(
                    "sink_retry", sink=self.name, event_id=event.get("event_id"),
                    error=str(exc), attempt=attempts + 1, retry_seconds=delay,
                )  # fmt: skip
            self._failing = str(exc)
        except PermanentDeliveryError as exc:
            self._count_error()
            self._store.delivered(delivery_id)
            self.failed_count += 1
            self._log.error(
                "sink_delivery_failed", sink=self.name, event_id=event.get("event_id"),
                error=str(exc), detail="the receiver refused it; not retried",
            )  # fmt: skip
        else:
            self._store.delivered(delivery_id)
            self.delivered_count += 1
            if self._failing is not None:
                self._log.info("sink_recovered", sink=self.name)
                self._failing = None

    def _count_error(self) -> None:
        if self._on_error is not None:
            self._on_error(self.name)
