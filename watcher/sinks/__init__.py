"""sinks: where events go. Each sink has ``write``, ``flush``, ``reopen`` and ``close``;
``Sinks`` fans one event out to all of them."""

from __future__ import annotations

from typing import Protocol

from watcher.model import Event


class Sink(Protocol):
    def write(self, event: Event) -> None: ...

    def flush(self) -> None: ...

    def reopen(self) -> None: ...

    def close(self) -> None: ...


class Sinks:
    """Every configured sink, written in order; ``flush`` makes a batch durable."""

    def __init__(self, sinks: list[Sink]) -> None:
        self._sinks = sinks

    def write(self, event: Event) -> None:
        for sink in self._sinks:
            sink.write(event)

    def flush(self) -> None:
        for sink in self._sinks:
            sink.flush()

    def reopen(self) -> None:
        for sink in self._sinks:
            sink.reopen()

    def close(self) -> None:
        for sink in self._sinks:
            sink.close()
