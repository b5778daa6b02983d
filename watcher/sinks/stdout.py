"""sinks: events -> standard output, one compact JSON object per line (what journald reads).

JSON escapes C0 controls itself; ``render`` also escapes DEL, C1 controls and bidirectional
overrides (U+009B, U+202E), which a terminal would act on: still the same JSON value.

Also home of ``LineWriter``, the byte-exact writer the stdout and file sinks share, so a sink
that fails halfway (a full disk) resumes exactly where it stopped.
"""

from __future__ import annotations

import json
import os
import re

from watcher.model import Event
from watcher.report import DEL_C1_AND_BIDI_CONTROLS

# Not escaped by json.dumps(ensure_ascii=False); they can only occur inside JSON strings,
# where \uXXXX means the same character.
_DEL_C1_AND_BIDI_RE = re.compile(f"[{DEL_C1_AND_BIDI_CONTROLS}]")

# Past this many bytes waiting, ``write`` already writes out (a long ``scan`` stays small).
WRITE_THROUGH_BYTES = 1 << 16


def render(event: Event) -> str:
    """One event as the single JSON line every sink writes."""
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    if text.isascii() and "\x7f" not in text:  # nearly every event: nothing to look for
        return text
    return _DEL_C1_AND_BIDI_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class LineWriter:
    """Lines waiting for a file descriptor; ``write_out`` writes what it can and keeps the rest.

    ``os.write`` rather than a buffered stream: after ENOSPC a buffered stream cannot tell
    which bytes reached the file (a text stream drops them), so a retry would tear or repeat
    lines. Here every written byte is counted and a retry continues exactly where it stopped.
    """

    def __init__(self) -> None:
        self._pending = bytearray()
        self._torn = bytearray()  # the head line's bytes already written (a write cut short)

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, line: str) -> None:
        self._pending += line.encode("utf-8")
        self._pending += b"\n"

    def write_out(self, fd: int) -> None:
        """Write every pending byte; on OSError what was written is gone and the rest kept."""
        while self._pending:
            written = os.write(fd, self._pending)
            chunk = self._pending[:written]
            del self._pending[:written]
            last_newline = chunk.rfind(b"\n")
            if last_newline >= 0:
                self._torn = chunk[last_newline + 1 :]
            else:
                self._torn += chunk

    def restart_line(self) -> None:
        """A new file: the line cut short in the old one is written whole to it again."""
        self._pending[:0] = self._torn
        self._torn = bytearray()


class StdoutSink:
    """Writes events as JSON lines to standard output; ``events`` filters by event type."""

    name = "stdout"

    def __init__(
        self, fd: int = 1, events: tuple[str, ...] = ("authz_denial", "authz_alert")
    ) -> None:
        self._fd = fd
        self._events = frozenset(events)
        self._lines = LineWriter()

    def write(self, event: Event) -> None:
        if event["event"] not in self._events:
            return
        self._lines.add(render(event))
        if len(self._lines) >= WRITE_THROUGH_BYTES:
            try:
                self._lines.write_out(self._fd)
            except BrokenPipeError:
                raise  # nobody reads any more (`scan | head`): the command stops
            except OSError:
                pass  # kept; ``flush`` reports it, and the daemon retries

    def flush(self) -> None:
        self._lines.write_out(self._fd)

    def reopen(self) -> None:
        """Nothing to reopen: journald or the shell owns standard output."""

    def close(self) -> None:
        self.flush()
