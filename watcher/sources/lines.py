"""sources: a byte stream -> the few messages that may hold a denial, with their offsets.

This is the first half of the hot path. The stream is read in large chunks into one reused
buffer and searched for the extractor's trigger word with a SIMD substring search
(stringzilla; ``bytearray.find`` when it is not installed). Python code runs only around a
hit, so lines that cannot hold a denial cost no more than a memory scan. A line longer than
``max_line_bytes`` is never held whole: each hit in it is handed on as a window of context
around the hit (enough for the longest blob and the sentence around it), and memory stays
bounded by a few chunks whatever the input.

Around a hit, the line becomes a *message* (issue #12): container framing is removed
(``framing``: ``plain``, ``auto``, ``cri``, ``docker``, see ``watcher.sources.framing``), the
runtime's partial lines of one stream are joined until the final part, and a denial wrapped
over several lines is joined as ``watcher.unwrap`` says (the line above when the hit line
starts mid-sentence, the lines below while the grammar goes on). Only lines with the trigger
word (or CRI partial lines, whose tag is searched for too in chunks that look like CRI) pay
for this. Known limit: a trigger word cut exactly at a *docker* partial boundary is not found
(docker's partial records cannot be told apart in the buffer without looking at every line).

The API the followers and ``scan`` use::

    scan = iter_candidates(reader, framing="auto", final=False, also_one_of=...)
    for candidate in scan:      # each Candidate is one whole message, in stream order
        ...                     # candidate.line_offset: its first physical line
                                # candidate.end_offset: the end of its last physical
                                #   line (its newline not counted)
                                # candidate.text: the joined, unframed message (UTF-8 bytes)
                                # candidate.timestamp: CRI/docker time, or the ts/time/
                                #   @timestamp/timestamp of a JSON line (ISO-8601 UTC, ms, Z)
    scan.resume_offset          # where the next scan must start (read after the iteration)

Offsets are counted from the reader's first byte. With ``final=False`` a message that may
still continue when the data ends (its grammar is open, a partial has no final part yet, or
its last line is the last line read) is not yielded, and nothing after it is: ``resume_offset``
is its first line, so the caller commits that offset and scans again from it when more data
comes (or, after a quiet second, with ``final=True``). When nothing is held ``resume_offset``
is the end of the data, except that last lines which may begin a message whose sentence is
not written yet (``User:``, a principal, the SDK's ``... api error`` chain; at most seven
lines, none of them emitted) are kept for the next scan too. With ``final=True``
everything is flushed: a message is emitted as it stands, and a partial that never got its
final part is marked cut (``...`` is appended, so a blob in it is ``truncated``, never sent to
STS).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from watcher.extract import MAX_BLOB_CHARS, TRIGGER_BYTES, structured_timestamp
from watcher.sources.framing import (
    CRI_PARTIAL_TAGS,
    CRI_SAMPLE_BYTES,
    Frame,
    Framing,
    looks_like_cri,
    parse_frame,
)
from watcher.unwrap import (
    MAX_CONTEXT_LINES_BEFORE,
    MAX_LINES_BEFORE,
    MAX_MESSAGE_LINES,
    content,
    continues_into,
    first_line,
    joiner,
    may_begin_message,
    sentence_open,
    starts_mid_sentence,
    unwrap_lines,
)

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
    """A message (or a window of an over-long line) that contains the trigger word."""

    line_offset: int  # byte offset in the stream where its first physical line starts
    text_offset: int  # byte offset where ``text`` starts (== line_offset unless windowed)
    text: bytes  # the message, UTF-8: unframed and joined when it spanned several lines
    windowed: bool  # True when the line was longer than max_line_bytes
    end: int | None = None  # end of its last physical line, newline not counted (None: a
    # single line, text_offset + len(text))
    timestamp: str | None = None  # the runtime's or the structured log's time, ISO-8601 UTC

    @property
    def end_offset(self) -> int:
        return self.end if self.end is not None else self.text_offset + len(self.text)


LongLineCallback = Callable[[int], None]


class CandidateScan:
    """The iterator ``iter_candidates`` returns; ``resume_offset`` is set when it is done."""

    def __init__(self, scanner: _Scanner, stream: Readable) -> None:
        self._scanner = scanner
        self._messages = scanner.run(_reader(stream))

    def __iter__(self) -> CandidateScan:
        return self

    def __next__(self) -> Candidate:
        return next(self._messages)

    @property
    def resume_offset(self) -> int:
        """Where the next scan starts: the first line of a held message, or the data's end."""
        return self._scanner.resume_offset


def iter_candidates(
    stream: Readable,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    on_long_line: LongLineCallback | None = None,
    searcher: Searcher = DEFAULT_SEARCHER,
    also_one_of: tuple[bytes, ...] = (),
    framing: Framing = "plain",
    final: bool = True,
) -> CandidateScan:
    """Yield every message of ``stream`` that contains the trigger, in order, exactly once.

    ``on_long_line(line_offset)`` is called once for each line longer than ``max_line_bytes``
    that holds a hit (those lines are yielded as windows, never joined). With ``also_one_of``,
    a message must also hold one of those byte strings (checked in the buffer first, so lines
    that merely say "authorized" cost no Python objects at all). See the module docstring for
    ``framing``, ``final`` and ``resume_offset``.
    """
    options = _Options(max_line_bytes, chunk_bytes, on_long_line, searcher, also_one_of, framing)
    return CandidateScan(_Scanner(options, final=final), stream)


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


class _Options(NamedTuple):
    max_line_bytes: int
    chunk_bytes: int
    on_long_line: LongLineCallback | None
    searcher: Searcher
    also_one_of: tuple[bytes, ...]
    framing: Framing


class _Logical(NamedTuple):
    """One line as its producer wrote it: a physical line, or a runtime's partials joined."""

    start: int  # stream offset of its first physical line
    end: int  # stream offset after its last physical line
    body: bytes  # without framing and line terminator
    timestamp: str | None
    framed: bool  # it came in CRI or docker framing
    cut: bool  # a partial whose final part never came (only at the end of final data)
    gaps: bool  # other streams' lines lie between its parts
    lines: tuple[int, ...] = ()  # where its physical lines start, when they are partials


class _Wait(NamedTuple):
    """The message needs bytes that are not in the buffer yet (or, at the end, may go on)."""

    keep_from: int
    held: bool  # True: at the end of non-final data, the caller must scan again from here


class _Skipped(NamedTuple):
    """No denial here; searching goes on at ``resume``."""

    resume: int


_SKIP = None  # nothing to look at beyond the hit line
# A line whose sentence stops at its end needs the next one even without a second word.
_OPEN_TAIL_RE = re.compile(
    rb"(?:not authorized|authorized to|Encoded(?: authorization(?: failure)?)?|User:)"
    rb"[\s\xe2\x94\x82|]*$"
)
_DOCKER_START = b'{"log":'
MAX_INTERLEAVED_LINES = 64  # other streams' lines skipped while joining one stream's partials
BACKLOOK_BYTES = 64 * 1024  # kept before the current line so the line above can be joined


class _Scanner:
    """One pass: a reused buffer of unconsumed bytes and where it sits in the stream."""

    def __init__(self, options: _Options, *, final: bool) -> None:
        self._options = options
        self._also_one_of = options.also_one_of
        self._max_line_bytes = options.max_line_bytes
        self._chunk_bytes = options.chunk_bytes
        self._on_long_line = options.on_long_line
        self._searcher = options.searcher
        self._framing = options.framing
        self._final = final
        self._needles = (TRIGGER_BYTES,) + (
            CRI_PARTIAL_TAGS if options.framing in ("auto", "cri") else ()
        )
        self._next_at = [-1] * len(self._needles)  # buffer positions, see _find_hit
        self._tags_active = False  # this chunk is searched for CRI partial tags too
        self._buf = bytearray(options.chunk_bytes * 2)
        self._filled = 0  # valid bytes in self._buf
        self._base = 0  # stream offset of self._buf[0]
        self._line_start = 0  # stream offset of the line that self._buf[0] belongs to
        self._search_from = 0  # stream offset; nothing before it is searched again
        self._window_floor = 0  # stream offset; windows never start before it
        self._floor = 0  # stream offset; a message never starts before it (emitted before)
        self._consumed: set[int] = set()  # lines taken by a message with gaps, ahead of search
        self._gaps = False  # the last message had other streams' lines between its parts
        self._long_line_reported = -1
        self._held = False
        self.resume_offset = 0

    def run(self, read_into: Callable[[memoryview], int]) -> Iterator[Candidate]:
        while self.fill(read_into):
            yield from self.drain(eof=False)
            if self._held:
                return
        yield from self.drain(eof=True)

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

    def _find_hit(self, hay: Haystack, start: int, filled: int) -> int:
        """The next trigger word (or CRI partial tag) at or after ``start`` in the buffer."""
        if not self._tags_active:
            return hay.find(TRIGGER_BYTES, start, filled)
        # Each needle's next position is remembered until passed: between two partial lines
        # the next trigger may be megabytes away, and searching for it again at every partial
        # would cost a scan each.
        hit = -1
        for index, needle in enumerate(self._needles):
            cached = self._next_at[index]
            if cached < start:
                found = hay.find(needle, start, filled)
                cached = self._next_at[index] = found if found >= 0 else filled
            if cached < filled and (hit < 0 or cached < hit):
                hit = cached
        return hit

    def _looks_like_cri(self, hay: Haystack) -> bool:
        """With ``auto``, a chunk is searched for CRI partial tags only when its first whole
        line is a CRI line: a plain log then pays for one memory scan, not three."""
        newline = hay.find(b"\n", 0, self._filled)
        first = newline + 1 if newline >= 0 and self._line_start < self._base else 0
        sample = bytes(self._buf[first : min(first + CRI_SAMPLE_BYTES, self._filled)])
        return looks_like_cri(sample)

    def drain(self, *, eof: bool) -> Iterator[Candidate]:
        hay = self._searcher(self._buf, self._filled)
        self._next_at = [-1] * len(self._next_at)  # new bytes, maybe a new base: search again
        self._tags_active = self._framing == "cri" or (
            self._framing == "auto" and self._looks_like_cri(hay)
        )
        base, filled = self._base, self._filled
        keep_from: int | None = None  # stream offset to keep when more data is needed
        while True:
            hit = self._find_hit(hay, max(0, self._search_from - base), filled)
            if hit < 0:
                break
            newline_before = hay.rfind(b"\n", 0, hit)
            line_start = base + newline_before + 1 if newline_before >= 0 else self._line_start
            newline_after = hay.find(b"\n", hit, filled)
            line_end = base + (newline_after if newline_after >= 0 else filled)
            line_complete = newline_after >= 0 or eof
            fits = line_end - line_start <= self._max_line_bytes and line_start >= base
            if fits and line_complete:
                if line_start in self._consumed or not self._worth_a_look(
                    hay, line_start - base, line_end - base, hit
                ):
                    self._search_from = line_end + 1
                    continue
                outcome = self._message(hay, line_start, line_end, eof=eof)
                if isinstance(outcome, _Wait):
                    if outcome.held:
                        self._hold(outcome.keep_from)
                        del hay
                        return
                    keep_from = self._lines_above(hay, outcome.keep_from)
                    self._search_from = base + hit
                    break
                if outcome is _SKIP or isinstance(outcome, _Skipped):
                    skip_to = outcome.resume if isinstance(outcome, _Skipped) else 0
                    self._search_from = max(line_end + 1, skip_to)
                    continue
                yield outcome
                self._search_from = self._after(outcome, line_end)
                continue
            if fits:  # an incomplete line that may still turn out short: wait for its end
                keep_from, self._search_from = self._lines_above(hay, line_start), base + hit
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
            self._floor = max(self._floor, line_start)
        if eof:
            self.resume_offset = self._resume_at_end(hay)
        else:
            self._compact(keep_from, hay)
        del hay  # release the view on the buffer before the next fill may resize it

    def _after(self, candidate: Candidate, hit_line_end: int) -> int:
        """Where searching goes on after a message; its lines are never searched again."""
        end = candidate.end_offset
        if self._gaps:  # other streams' lines between its parts are searched next
            self._gaps = False
            self._floor = max(self._floor, hit_line_end + 1)
            return hit_line_end + 1
        self._floor = max(self._floor, end)
        self._consumed = {offset for offset in self._consumed if offset >= end}
        return max(end, hit_line_end + 1)

    def _hold(self, start: int) -> None:
        self._held = True
        self.resume_offset = start

    def _resume_at_end(self, hay: Haystack) -> int:
        """The end of the data, or the last lines when they may begin a message whose
        sentence has not been written yet (the next scan must see them to join it)."""
        data_end = self._base + self._filled
        if self._final or self._filled == 0:
            return data_end
        last = self._physical_above(hay, data_end)
        if last is None or data_end - last[0] > BACKLOOK_BYTES:
            return data_end
        start, text = last[0], self._text_of(last[1])
        if not may_begin_message(text):
            return data_end
        for _ in range(MAX_LINES_BEFORE + MAX_CONTEXT_LINES_BEFORE - 1):
            above = self._physical_above(hay, start)
            if above is None:
                break
            above_text = self._text_of(above[1])
            if joiner(first_line(above_text), text) is None and not continues_into(
                above_text, text
            ):
                break
            start, text = above[0], above_text
        return start

    def _text_of(self, line: bytes) -> str:
        return parse_frame(line, self._framing).body.decode("utf-8", "replace")

    # -- one message -------------------------------------------------------------------------

    def _message(
        self, hay: Haystack, line_start: int, line_end: int, *, eof: bool
    ) -> Candidate | _Wait | _Skipped | None:
        """The whole message the hit line belongs to, or what it waits for, or _SKIP."""
        raw = _strip_cr(bytes(self._buf[line_start - self._base : line_end - self._base]))
        frame = parse_frame(raw, self._framing)
        start = line_start
        if frame.stream is not None:
            start = self._first_part(hay, line_start, frame.stream)
        first = self._logical(hay, start, eof=eof)
        if isinstance(first, _Wait) or first is None:
            return first or _Wait(start, held=False)
        if not first.framed and first.end == line_end + 1 and not self._may_continue(raw):
            if not self._has_second_word(raw):
                return _SKIP
            if not self._next_may_join(hay, first, eof=eof):
                timestamp = structured_timestamp(raw.decode("utf-8", "replace"))
                return Candidate(line_start, line_start, raw, windowed=False, timestamp=timestamp)
        return self._assemble(hay, first, eof=eof)

    def _assemble(
        self, hay: Haystack, first: _Logical, *, eof: bool
    ) -> Candidate | _Wait | _Skipped | None:
        parts = [first]
        texts = [first.body.decode("utf-8", "replace")]
        needs_above = starts_mid_sentence(texts[0])
        while needs_above and len(parts) <= MAX_LINES_BEFORE:
            above = self._line_above(hay, parts[0].start)
            below = unwrap_lines(texts)
            if above is None or joiner(first_line(text := self._decoded(above)), below) is None:
                break
            parts.insert(0, above)
            texts.insert(0, text)
        for _ in range(MAX_CONTEXT_LINES_BEFORE):
            above = self._line_above(hay, parts[0].start)
            if above is None or not continues_into(text := self._decoded(above), texts[0]):
                break
            parts.insert(0, above)
            texts.insert(0, text)
        message = unwrap_lines(texts)
        position = parts[-1].end
        total = sum(len(part.body) for part in parts)
        while len(parts) < MAX_MESSAGE_LINES and total < self._max_line_bytes:
            following = self._logical(hay, position, eof=eof)
            if isinstance(following, _Wait):
                at_the_end = following.held and position >= self._base + self._filled
                if at_the_end and not sentence_open(message):
                    break  # nothing after it yet and its sentence is whole: out it goes
                return _Wait(parts[0].start, held=following.held)
            if following is None:  # the end of final data
                break
            text = following.body.decode("utf-8", "replace")
            separator = joiner(message, text)
            if separator is None:
                break
            message += separator + content(text)
            parts.append(following)
            total += len(following.body)
            position = following.end
        if any(part.cut for part in parts):
            message += "..."  # a runtime's partial never got its final part: the text is cut
        if not self._wanted_body(message.encode("utf-8", "surrogateescape")):
            # None of its lines holds a second word: none starts a denial of its own either.
            gaps = any(part.gaps for part in parts)
            return _Skipped(parts[-1].end if not gaps else 0)
        end = parts[-1].end - 1  # where its last line's newline is, as for a single line
        self._gaps = any(part.gaps for part in parts)
        if self._gaps:  # its later parts must not be read again when the search gets there
            self._consumed.update(offset for part in parts for offset in part.lines)
        timestamp = parts[0].timestamp or structured_timestamp(message)
        if len(parts) == 1 and not first.framed and not first.cut:
            text_bytes = first.body  # one plain line: exactly as written, as a single line is
        else:
            text_bytes = message.encode("utf-8", "replace")
        start = parts[0].start
        return Candidate(start, start, text_bytes, windowed=False, end=end, timestamp=timestamp)

    def _worth_a_look(self, hay: Haystack, start: int, end: int, hit: int) -> bool:
        """The in-buffer test that keeps lines which merely say "authorized" free of Python
        objects: a second word, or a trigger the sentence may go on from ("not authorized",
        "authorized to", "Encoded authorization": the rest may be on another line), or a
        docker record (it may be a partial)."""
        if self._buf[hit : hit + len(TRIGGER_BYTES)] != TRIGGER_BYTES:
            return self._partial_may_matter(start, end)  # the hit is a CRI partial's tag
        if not self._also_one_of:
            return True
        for needle in self._also_one_of:
            if hay.find(needle, start, end) >= 0:
                return True
        buf = self._buf
        while hit >= 0:  # each trigger of the line: is it "not authorized", "authorized to"...
            if buf.startswith(b"not ", hit - 4, hit) or buf.startswith(b"Encoded ", hit - 8, hit):
                return True
            if buf.startswith(b"ed to", hit + len(TRIGGER_BYTES), end):
                return True
            hit = hay.find(TRIGGER_BYTES, hit + len(TRIGGER_BYTES), end)
        return self._framing in ("auto", "docker") and buf.startswith(_DOCKER_START, start, end)

    def _partial_may_matter(self, start: int, end: int) -> bool:
        """A CRI partial is looked at when it holds the trigger or ends with its beginning
        (the runtime cut the word); one whose trigger is in a later part is found from there."""
        if start <= self._next_at[0] < end:  # the next trigger (searched for just now) is here
            return True
        last_a = self._buf.rfind(b"a", max(start, end - len(TRIGGER_BYTES)), end)
        return last_a >= 0 and TRIGGER_BYTES.startswith(self._buf[last_a:end])

    @staticmethod
    def _decoded(line: _Logical) -> str:
        return line.body.decode("utf-8", "replace")

    def _has_second_word(self, line: bytes) -> bool:
        return not self._also_one_of or any(needle in line for needle in self._also_one_of)

    def _wanted_body(self, body: bytes) -> bool:
        return TRIGGER_BYTES in body and self._has_second_word(body)

    @staticmethod
    def _may_continue(raw: bytes) -> bool:
        """The hit line's sentence stops at its end, or starts before it: join around it."""
        if _OPEN_TAIL_RE.search(raw[-64:]) is not None:
            return True
        return b"authorized to" in raw and starts_mid_sentence(raw.decode("utf-8", "replace"))

    def _next_may_join(self, hay: Haystack, line: _Logical, *, eof: bool) -> bool:
        """Whether the line after a plain hit line has to be looked at (or waited for)."""
        data_end = self._base + self._filled
        if line.end >= data_end:
            if eof and not self._final:  # nothing after it yet: wait only for an open sentence
                return sentence_open(line.body.decode("utf-8", "replace"))
            return not eof
        newline = hay.find(b"\n", line.end - self._base, self._filled)
        if newline < 0 and not eof:
            return True
        next_end = self._base + newline if newline >= 0 else data_end
        following = bytes(self._buf[line.end - self._base : next_end - self._base])
        if not following.strip():
            return False
        message = line.body.decode("utf-8", "replace")
        return joiner(message, following.decode("utf-8", "replace")) is not None

    def _first_part(self, hay: Haystack, line_start: int, stream: str) -> int:
        """The first line of the partial run a framed line ends or continues (same stream)."""
        start = line_start
        position = line_start
        skipped = 0
        while skipped < MAX_INTERLEAVED_LINES:
            above = self._physical_above(hay, position)
            if above is None:
                break
            above_start, line = above
            frame = parse_frame(line, self._framing)
            position = above_start
            if frame.stream != stream:
                skipped += 1
                continue
            if not frame.partial:
                break
            start = above_start
        return start

    def _physical_above(self, hay: Haystack, line_start: int) -> tuple[int, bytes] | None:
        floor = max(self._floor, self._base)
        if line_start - 1 <= floor:
            return None
        newline = hay.rfind(b"\n", 0, line_start - 1 - self._base)
        above_start = self._base + newline + 1 if newline >= 0 else self._line_start
        if above_start < floor:
            return None
        line = bytes(self._buf[above_start - self._base : line_start - 1 - self._base])
        return above_start, _strip_cr(line)

    def _line_above(self, hay: Haystack, line_start: int) -> _Logical | None:
        """The complete, unsplit line just above ``line_start``, if it may be joined."""
        above = self._physical_above(hay, line_start)
        if above is None:
            return None
        frame = parse_frame(above[1], self._framing)
        if frame.partial:
            return None
        return _Logical(
            above[0], line_start, frame.body, frame.timestamp, frame.stream is not None,
            cut=False, gaps=False,
        )  # fmt: skip

    def _logical(self, hay: Haystack, start: int, *, eof: bool) -> _Logical | _Wait | None:
        """The line at ``start`` with its partials joined; None at the end of final data."""
        base, filled = self._base, self._filled
        data_end = base + filled
        if start >= data_end:
            if eof and self._final:
                return None
            return _Wait(start, held=eof)
        newline = hay.find(b"\n", start - base, filled)
        if newline < 0 and not eof:
            return _Wait(start, held=False)
        end = base + newline if newline >= 0 else data_end
        raw = _strip_cr(bytes(self._buf[start - base : end - base]))
        frame = parse_frame(raw, self._framing)
        if not frame.partial:
            return _Logical(
                start, end + 1, frame.body, frame.timestamp, frame.stream is not None,
                cut=False, gaps=False,
            )  # fmt: skip
        return self._join_partials(hay, start, end + 1, frame, eof=eof)

    def _join_partials(
        self, hay: Haystack, start: int, position: int, first: Frame, *, eof: bool
    ) -> _Logical | _Wait:
        base, filled = self._base, self._filled
        data_end = base + filled
        bodies = [first.body]
        starts = [start]
        total = len(first.body)
        skipped = 0
        end = position
        while True:
            if position >= data_end:
                if not eof:
                    return _Wait(start, held=False)
                if not self._final:
                    return _Wait(start, held=True)
                return self._partial_run(end, bodies, starts, first, cut=True, gaps=skipped > 0)
            newline = hay.find(b"\n", position - base, filled)
            if newline < 0 and not eof:
                return _Wait(start, held=False)
            line_end = base + newline if newline >= 0 else data_end
            frame = parse_frame(
                _strip_cr(bytes(self._buf[position - base : line_end - base])), self._framing
            )
            next_position = line_end + 1
            if frame.stream != first.stream:
                skipped += 1
                position = next_position
                if skipped > MAX_INTERLEAVED_LINES:
                    return self._partial_run(end, bodies, starts, first, cut=True, gaps=True)
                continue
            bodies.append(frame.body)
            starts.append(position)
            total += len(frame.body)
            position = end = next_position
            if not frame.partial or total > self._max_line_bytes:
                cut = frame.partial
                return self._partial_run(end, bodies, starts, first, cut=cut, gaps=skipped > 0)

    @staticmethod
    def _partial_run(
        end: int, bodies: list[bytes], starts: list[int], first: Frame, *, cut: bool, gaps: bool
    ) -> _Logical:
        body = b"".join(bodies)
        return _Logical(
            starts[0], end, body, first.timestamp, framed=True, cut=cut, gaps=gaps,
            lines=tuple(starts),
        )  # fmt: skip

    # -- over-long lines and the buffer ------------------------------------------------------

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
        """Drop consumed bytes, keeping the current partial line (or its tail, if over-long)
        and a few lines above it, which a message found in the next chunk may start with."""
        buf, base, filled = self._buf, self._base, self._filled
        end = base + filled
        last_newline = hay.rfind(b"\n", 0, filled)
        current_line = base + last_newline + 1 if last_newline >= 0 else self._line_start
        if keep_from is None:
            if end - current_line <= self._max_line_bytes:
                keep_from = self._lines_above(hay, current_line)
            else:
                keep_from = max(current_line, end - WINDOW_BEFORE_BYTES)
            # A trigger may straddle the chunk boundary: search its possible start again.
            longest = max(len(needle) for needle in self._needles)
            self._search_from = max(self._search_from, end - longest + 1)
        keep_from = max(keep_from, base)
        newline_before_keep = hay.rfind(b"\n", 0, keep_from - base)
        if newline_before_keep >= 0:
            self._line_start = base + newline_before_keep + 1
        kept = end - keep_from
        buf[0:kept] = buf[keep_from - base : filled]
        self._filled = kept
        self._base = keep_from

    def _lines_above(self, hay: Haystack, line_start: int) -> int:
        """The start of the lines above ``line_start`` worth keeping (bounded, never emitted)."""
        floor = max(self._floor, self._base, line_start - BACKLOOK_BYTES)
        start = line_start
        for _ in range(MAX_LINES_BEFORE + MAX_CONTEXT_LINES_BEFORE):
            if start - 1 <= floor:
                break
            newline = hay.rfind(b"\n", 0, start - 1 - self._base)
            above = self._base + newline + 1 if newline >= 0 else self._line_start
            if above < floor:
                break
            start = above
        return start


def _strip_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line
