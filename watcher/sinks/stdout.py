"""sinks: events -> standard output, one compact JSON object per line (what journald reads)."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from watcher.model import Event


def render(event: Event) -> str:
    """One event as the single JSON line every sink writes."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


class StdoutSink:
    """Writes events as JSON lines; ``events`` filters by event type."""

    def __init__(
        self,
        stream: TextIO | None = None,
        events: tuple[str, ...] = ("authz_denial", "authz_alert"),
    ) -> None:
        self._stream = stream or sys.stdout
        self._events = frozenset(events)

    def write(self, event: Event) -> None:
        if event["event"] in self._events:
            self._stream.write(render(event) + "\n")

    def flush(self) -> None:
        self._stream.flush()

    def reopen(self) -> None:
        """Nothing to reopen: journald or the shell owns standard output."""

    def close(self) -> None:
        self.flush()
