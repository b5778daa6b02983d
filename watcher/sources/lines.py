"""sources: a byte stream -> the few lines that may hold a denial, with their offsets.

This is the first half of the hot path. The stream is read in large chunks and searched with
``bytes.find`` for the extractor's trigger word; Python code runs only around a hit, so lines
that cannot hold a denial cost no more than a memory scan. A line longer than
``max_line_bytes`` is never held whole: each hit in it is handed on as a window of context
around the hit (enough for the longest blob and the sentence around it), and memory stays
bounded by a few chunks whatever the input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from watcher.extract import MAX_BLOB_CHARS, TRIGGER_BYTES

DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_LINE_BYTES = 1024 * 1024
# Around a hit in an over-long line: the sentence before "is not authorized", and after the
# trigger the longest blob plus the plain-text sentence and context that may follow it.
WINDOW_BEFORE_BYTES = 4096
WINDOW_AFTER_BYTES = MAX_BLOB_CHARS + 6144


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Candidate:
    """A line (or a window of an over-long line) that contains the trigger word."""

    line_offset: int  # byte offset in the stream where the line starts
    text_offset: int  # byte offset where ``text`` starts (== line_offset unless windowed)
    text: bytes  # without the line terminator
    windowed: bool  # True when the line was longer than max_line_bytes

    @property
    def end_offset(self) -> int:
        return self.text_offset + len(self.text)


LongLineCallback = Callable[[int], None]


def iter_candidates(
    stream: Readable,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    on_long_line: LongLineCallback | None = None,
) -> Iterator[Candidate]:
    """Yield every line of ``stream`` that contains the trigger, in order, exactly once.

    ``on_long_line(line_offset)`` is called once for each line longer than ``max_line_bytes``
    that holds a hit (those lines are yielded as windows).
    """
    scanner = _Scanner(max_line_bytes, on_long_line)
    # read1 makes one underlying read: a stream that fails part-way (a truncated gzip member)
    # has handed over everything before the failure, instead of losing a whole chunk with it.
    read = getattr(stream, "read1", stream.read)
    while True:
        chunk = read(chunk_bytes)
        if not chunk:
            break
        yield from scanner.feed(chunk)
    yield from scanner.finish()


class _Scanner:
    """The state of one pass: a buffer of unconsumed bytes and where it sits in the stream."""

    def __init__(self, max_line_bytes: int, on_long_line: LongLineCallback | None) -> None:
        self._max_line_bytes = max_line_bytes
        self._on_long_line = on_long_line
        self._buf = b""
        self._base = 0  # stream offset of self._buf[0]
        self._line_start = 0  # stream offset of the line that self._buf[0] belongs to
        self._search_from = 0  # stream offset; nothing before it is searched again
        self._window_floor = 0  # stream offset; windows never start before it
        self._long_line_reported = -1

    def feed(self, chunk: bytes) -> Iterator[Candidate]:
        self._buf = self._buf + chunk if self._buf else chunk
        yield from self._drain(eof=False)

    def finish(self) -> Iterator[Candidate]:
        yield from self._drain(eof=True)
        self._buf = b""

    def _drain(self, *, eof: bool) -> Iterator[Candidate]:
        buf, base = self._buf, self._base
        keep_from: int | None = None  # stream offset to keep when more data is needed
        while True:
            hit = buf.find(TRIGGER_BYTES, max(0, self._search_from - base))
            if hit < 0:
                break
            newline_before = buf.rfind(b"\n", 0, hit)
            line_start = base + newline_before + 1 if newline_before >= 0 else self._line_start
            newline_after = buf.find(b"\n", hit)
            line_end = base + (newline_after if newline_after >= 0 else len(buf))
            line_complete = newline_after >= 0 or eof
            fits = line_end - line_start <= self._max_line_bytes and line_start >= base
            if fits and line_complete:
                line = _strip_cr(buf[line_start - base : line_end - base])
                yield Candidate(line_start, line_start, line, windowed=False)
                self._search_from = line_end + 1
                continue
            if fits:  # an incomplete line that may still turn out short: wait for its end
                keep_from, self._search_from = line_start, base + hit
                break
            candidate = self._window(
                hit=base + hit, line_start=line_start, line_end=line_end, complete=line_complete
            )
            if candidate is None:  # the window needs bytes that have not arrived yet
                keep_from, self._search_from = (
                    max(line_start, base + hit - WINDOW_BEFORE_BYTES, base),
                    base + hit,
                )
                break
            yield candidate
            self._search_from = self._window_floor = candidate.end_offset
        if not eof:
            self._trim(keep_from)

    def _window(
        self, *, hit: int, line_start: int, line_end: int, complete: bool
    ) -> Candidate | None:
        """A window of context around ``hit`` in an over-long line, or None if bytes are missing."""
        buf, base = self._buf, self._base
        if self._long_line_reported != line_start:
            self._long_line_reported = line_start
            if self._on_long_line is not None:
                self._on_long_line(line_start)
        start = max(line_start, base, hit - WINDOW_BEFORE_BYTES, self._window_floor)
        end = hit + WINDOW_AFTER_BYTES
        if end > line_end:
            if not complete:
                return None
            end = line_end
        window = _strip_cr(buf[start - base : end - base])
        return Candidate(line_start, start, window, windowed=True)

    def _trim(self, keep_from: int | None) -> None:
        """Drop consumed bytes, keeping the current partial line (or its tail, if over-long)."""
        buf, base = self._buf, self._base
        end = base + len(buf)
        last_newline = buf.rfind(b"\n")
        current_line = base + last_newline + 1 if last_newline >= 0 else self._line_start
        if keep_from is None:
            if end - current_line <= self._max_line_bytes:
                keep_from = current_line
            else:
                keep_from = max(current_line, end - WINDOW_BEFORE_BYTES)
            # A trigger may straddle the chunk boundary: search its possible start again.
            self._search_from = max(self._search_from, end - len(TRIGGER_BYTES) + 1)
        keep_from = max(keep_from, base)
        newline_before_keep = buf.rfind(b"\n", 0, keep_from - base)
        if newline_before_keep >= 0:
            self._line_start = base + newline_before_keep + 1
        self._buf = buf[keep_from - base :]
        self._base = keep_from


def _strip_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line
