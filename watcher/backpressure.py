"""backpressure: between the sinks and the state store — a checkpoint waits for every sink.

The daemon hands each checkpoint to ``CommitGate.commit`` as a save action. The gate flushes
every sink and, once all of them have taken everything read so far, runs the saves. While a
sink (or the state database, which the saves write) fails, the gate is ``blocked``: the daemon
stops reading, ``retry`` tries again with exponential backoff, and the saves wait, so no
offset is committed past what every sink has. ``sink_retry`` is logged once when a sink starts
failing (or fails for another reason), ``sink_recovered`` once when it takes events again.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Hashable

from watcher.log import Logger
from watcher.sinks import failure_reason

BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 5.0  # a failing write is cheap; space that returns is used within 5 s
STATE_SINK_NAME = "state"  # the state database, when a checkpoint cannot be saved

Flush = Callable[[], dict[str, str]]  # flush every sink; the failing ones' reasons by name
Save = Callable[[], None]


class CommitGate:
    """Checkpoints saved only after every sink flushed; a failing sink holds them back."""

    def __init__(
        self,
        flush: Flush,
        log: Logger,
        clock: Callable[[], float] = time.monotonic,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self._flush = flush
        self._log = log
        self._clock = clock
        self._on_failure = on_failure  # once per failed attempt of each sink (the metrics)
        self._saves: dict[Hashable, Save] = {}  # the latest save per source, not yet run
        self._failing: dict[str, str] = {}
        self._delay = BACKOFF_FIRST_SECONDS
        self._retry_at = 0.0

    @property
    def blocked(self) -> bool:
        """A sink or the state database is failing: read nothing more until it recovers."""
        return bool(self._failing)

    def commit(self, key: Hashable, save: Save) -> None:
        """Run ``save`` once every sink has what was read so far (now, or after recovery)."""
        self._saves[key] = save
        if not self.blocked:
            self._settle()

    def flush(self) -> None:
        """Flush without a checkpoint (alerts raised outside a read)."""
        if not self.blocked:
            self._settle()

    def seconds_until_retry(self) -> float:
        return max(0.0, self._retry_at - self._clock())

    def retry(self) -> None:
        """Try the failing sinks again if their backoff has passed."""
        if self.blocked and self._clock() >= self._retry_at:
            self._settle()

    def drain(self, deadline: float, wait: Callable[[float], None]) -> None:
        """Retry until nothing fails or ``deadline`` (a ``clock`` time) passes (shutdown)."""
        self._settle()
        while self.blocked and self._clock() < deadline:
            wait(min(self.seconds_until_retry(), deadline - self._clock()))
            if self._clock() >= self._retry_at:
                self._settle()

    @property
    def failing(self) -> dict[str, str]:
        return dict(self._failing)

    @property
    def unsaved(self) -> bool:
        """Checkpoints still held back (a sink or the state database failing)."""
        return bool(self._saves)

    def _settle(self) -> None:
        failures = self._flush()
        if not failures:
            failures = self._run_saves()
        self._report(failures)

    def _run_saves(self) -> dict[str, str]:
        while self._saves:
            key, save = next(iter(self._saves.items()))
            try:
                save()
            except sqlite3.Error as exc:
                return {STATE_SINK_NAME: failure_reason(exc)}
            del self._saves[key]
        return {}

    def _report(self, failures: dict[str, str]) -> None:
        for name, reason in failures.items():
            if self._on_failure is not None:
                self._on_failure(name)
            if self._failing.get(name) != reason:
                self._log.warning(
                    "sink_retry", sink=name, error=reason, retry_seconds=self._delay,
                    detail="reading paused and checkpoints held back until it takes the events; "
                    "retried with backoff",
                )  # fmt: skip
        for name in sorted(self._failing.keys() - failures.keys()):
            self._log.info("sink_recovered", sink=name, detail="reading resumed")
        self._failing = failures
        if failures:
            self._retry_at = self._clock() + self._delay
            self._delay = min(self._delay * 2, BACKOFF_MAX_SECONDS)
        else:
            self._delay = BACKOFF_FIRST_SECONDS
