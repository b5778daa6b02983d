"""sinks: where events go. Each sink has ``write``, ``flush``, ``reopen`` and ``close``;
``Sinks`` fans one event out to all of them.

``write`` takes an event into the sink's own keeping and never fails for a full disk;
``flush`` makes what the sink took durable and raises ``OSError`` or ``sqlite3.Error`` when it
cannot yet. Each sink keeps what it could not write and continues from there, so every
sink's progress is its own: an event a sink has taken is never given to it again because
another sink failed.
"""

from __future__ import annotations

import sqlite3
from typing import Protocol

from watcher.model import Event

SINK_ERRORS = (OSError, sqlite3.Error)


class Sink(Protocol):
    @property
    def name(self) -> str: ...

    def write(self, event: Event) -> None: ...

    def flush(self) -> None: ...

    def reopen(self) -> None: ...

    def close(self) -> None: ...


def failure_reason(exc: BaseException) -> str:
    """One line for a log: ``[Errno 28] No space left on device`` -> its strerror."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class Sinks:
    """Every configured sink, written in order; ``flush`` makes a batch durable."""

    def __init__(self, sinks: list[Sink]) -> None:
        self._sinks = sinks

    @property
    def names(self) -> set[str]:
        return {sink.name for sink in self._sinks}

    def write(self, event: Event) -> None:
        for sink in self._sinks:
            sink.write(event)

    def flush(self) -> dict[str, str]:
        """Flush every sink, even past a failing one; returns the failing ones' reasons."""
        failures: dict[str, str] = {}
        for sink in self._sinks:
            try:
                sink.flush()
            except SINK_ERRORS as exc:
                failures[sink.name] = failure_reason(exc)
        return failures

    def full(self) -> dict[str, str]:
        """The remote sinks whose outbox is full, with why (reading waits for them)."""
        return {
            sink.name: reason
            for sink in self._sinks
            if (reason := getattr(sink, "full", None)) is not None
        }

    def reopen(self) -> None:
        for sink in self._sinks:
            sink.reopen()

    def close(self) -> dict[str, str]:
        """Close every sink; returns the reasons of those that could not write their last."""
        failures: dict[str, str] = {}
        for sink in self._sinks:
            try:
                sink.close()
            except SINK_ERRORS as exc:
                failures[sink.name] = failure_reason(exc)
        return failures
