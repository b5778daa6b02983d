"""sinks: events -> standard output, one compact JSON object per line (what journald reads).

JSON escapes C0 controls itself; ``render`` also escapes DEL, C1 controls and bidirectional
overrides (U+009B, U+202E), which a terminal would act on: still the same JSON value.
"""

from __future__ import annotations

import json
import re
import sys
from typing import TextIO

from watcher.model import Event
from watcher.report import DEL_C1_AND_BIDI_CONTROLS

# Not escaped by json.dumps(ensure_ascii=False); they can only occur inside JSON strings,
# where \uXXXX means the same character.
_DEL_C1_AND_BIDI_RE = re.compile(f"[{DEL_C1_AND_BIDI_CONTROLS}]")


def render(event: Event) -> str:
    """One event as the single JSON line every sink writes."""
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    if text.isascii() and "\x7f" not in text:  # nearly every event: nothing to look for
        return text
    return _DEL_C1_AND_BIDI_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


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
