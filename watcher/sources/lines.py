"""sources: a byte stream -> the few lines that may hold a denial, with their offsets.

This is the first half of the hot path. The stream is read in large chunks into one reused
buffer and searched for the extractor's trigger word with a SIMD substring search
(stringzilla; ``bytearray.find`` when it is not installed). Python code runs only around a
hit, so lines that cannot hold a denial cost no more than a memory scan. A line longer than
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


class Haystack(Protocol):
    """What the scanner needs of a searchable view of its buffer."""

    def find(self, needle: bytes, start: int, end: int, /) -> int: ...

    def rfind(self, needle: bytes, start: int, end: int, /) -> int: ...


Searcher = Callable[[bytearray, int], Haystack]


def bytes_searcher(buf: bytearray, filled: int) -> Haystack:
    """The portable search: ``bytearray.find`` (always bounded by ``filled`` by the caller)."""
    del filled
    return buf


def _simd_searcher_or_none() -> Searcher | None:
    try:
        import stringzilla  # noqa: PLC0415 - optional accelerator, probed once at import
    except ImportError:  # pragma: no cover - stringzilla ships wheels for every platform we use
        return None

    def simd_searcher(buf: bytearray, filled: int) -> Haystack:
        view: Haystack = stringzilla.Str(memoryview(buf)[:filled])
        return view

    return simd_searcher


SIMD_SEARCHER = _simd_searcher_or_none()
DEFAULT_SEARCHER: Searcher = SIMD_SEARCHER or bytes_searcher


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
    searcher: Searcher = DEFAULT_SEARCHER,
    also_one_of: tuple[bytes, ...] = (),
) -> Iterator[Candidate]:
    """Yield every line of ``stream`` that contains the trigger, in order, exactly once.

    ``on_long_line(line_offset)`` is called once for each line longer than ``max_line_bytes``
    that holds a hit (those lines are yielded as windows). With ``also_one_of``, a line (not a
    window) must also hold one of those byte strings: the check runs in the buffer, so lines
    that merely say "authorized" cost no Python objects at all.
    """
    scanner = _Scanner(max_line_bytes, chunk_bytes, on_long_line, searcher, also_one_of)
    read_into = _reader(stream)
    while scanner.fill(read_into):
        yield from scanner.drain(eof=False)
    yield from scanner.drain(eof=True)


def _reader(stream: Readable) -> Callable[[memoryview], int]:
    """The cheapest way to read into our buffer. ``readinto1`` makes one underlying read, so
    a stream that fails part-way (a truncated gzip member) has handed over everything before
    the failure instead of losing a whole chunk with it."""
    for name in ("readinto1", "readinto"):
        method = getattr(stream, name, None)
        if method is not None:
            read_into: Callable[[memoryview], int] = method
            return read_into

    def copy_into(view: memoryview) -> int:
        data = stream.read(len(view))
        view[: len(data)] = data
        return len(data)

    return copy_into


class _Scanner:
    """One pass: a reused buffer of unconsumed bytes and where it sits in the stream."""

    def __init__(
        self,
        max_line_bytes: int,
        chunk_bytes: int,
        on_long_line: LongLineCallback | None,
        searcher: Searcher,
        also_one_of: tuple[bytes, ...] = (),
    ) -> None:
        self._also_one_of = also_one_of
        self._max_line_bytes = max_line_bytes
        self._chunk_bytes = chunk_bytes
        self._on_long_line = on_long_line
        self._searcher = searcher
        self._buf = bytearray(chunk_bytes * 2)
        self._filled = 0  # valid bytes in self._buf
        self._base = 0  # stream offset of self._buf[0]
        self._line_start = 0  # stream offset of the line that self._buf[0] belongs to
        self._search_from = 0  # stream offset; nothing before it is searched again
        self._window_floor = 0  # stream offset; windows never start before it
        self._long_line_reported = -1

    def fill(self, read_into: Callable[[memoryview], int]) -> bool:
        """Read one chunk after the kept bytes; False at the end of the stream."""
        needed = self._filled + self._chunk_bytes
        if len(self._buf) < needed:
            self._buf.extend(bytes(needed - len(self._buf)))
        view = memoryview(self._buf)[self._filled : needed]
        try:
            count = read_into(view)
        finally:
            view.release()  # the buffer may be resized by the next fill
        self._filled += count or 0
        return bool(count)

    def drain(self, *, eof: bool) -> Iterator[Candidate]:
        hay = self._searcher(self._buf, self._filled)
        buf, base, filled = self._buf, self._base, self._filled
        keep_from: int | None = None  # stream offset to keep when more data is needed
        while True:
            hit = hay.find(TRIGGER_BYTES, max(0, self._search_from - base), filled)
            if hit < 0:
                break
            newline_before = hay.rfind(b"\n", 0, hit)
            line_start = base + newline_before + 1 if newline_before >= 0 else self._line_start
            newline_after = hay.find(b"\n", hit, filled)
            line_end = base + (newline_after if newline_after >= 0 else filled)
            line_complete = newline_after >= 0 or eof
            fits = line_end - line_start <= self._max_line_bytes and line_start >= base
            if fits and line_complete:
                if self._wanted(hay, line_start - base, line_end - base):
                    line = _strip_cr(bytes(buf[line_start - base : line_end - base]))
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
                keep_from = max(line_start, base + hit - WINDOW_BEFORE_BYTES, base)
                self._search_from = base + hit
                break
            yield candidate
            self._search_from = self._window_floor = candidate.end_offset
        if not eof:
            self._compact(keep_from, hay)
        del hay  # release the view on the buffer before the next fill may resize it

    def _wanted(self, hay: Haystack, start: int, end: int) -> bool:
        return not self._also_one_of or any(
            hay.find(needle, start, end) >= 0 for needle in self._also_one_of
        )

    def _window(
        self, *, hit: int, line_start: int, line_end: int, complete: bool
    ) -> Candidate | None:
        """A window of context around ``hit`` in an over-long line, or None if bytes are missing."""
        if self._long_line_reported != line_start:
            self._long_line_reported = line_start
            if self._on_long_line is not None:
                self._on_long_line(line_start)
        base = self._base
        start = max(line_start, base, hit - WINDOW_BEFORE_BYTES, self._window_floor)
        end = hit + WINDOW_AFTER_BYTES
        if end > line_end:
            if not complete:
                return None
            end = line_end
        window = _strip_cr(bytes(self._buf[start - base : end - base]))
        return Candidate(line_start, start, window, windowed=True)

    def _compact(self, keep_from: int | None, hay: Haystack) -> None:
        """Drop consumed bytes, keeping the current partial line (or its tail, if over-long)."""
        buf, base, filled = self._buf, self._base, self._filled
        end = base + filled
        last_newline = hay.rfind(b"\n", 0, filled)
        current_line = base + last_newline + 1 if last_newline >= 0 else self._line_start
        if keep_from is None:
            if end - current_line <= self._max_line_bytes:
                keep_from = current_line
            else:
                keep_from = max(current_line, end - WINDOW_BEFORE_BYTES)
            # A trigger may straddle the chunk boundary: search its possible start again.
            self._search_from = max(self._search_from, end - len(TRIGGER_BYTES) + 1)
        keep_from = max(keep_from, base)
        newline_before_keep = hay.rfind(b"\n", 0, keep_from - base)
        if newline_before_keep >= 0:
            self._line_start = base + newline_before_keep + 1
        kept = end - keep_from
        buf[0:kept] = buf[keep_from - base : filled]
        self._filled = kept
        self._base = keep_from


def _strip_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line
