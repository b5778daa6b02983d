"""sources.lines: the chunked reader finds every candidate line once, with its byte offset."""

from __future__ import annotations

import io
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.sources import lines
from watcher.sources.lines import (
    WINDOW_AFTER_BYTES,
    WINDOW_BEFORE_BYTES,
    Candidate,
    iter_candidates,
)


def naive_candidates(data: bytes) -> list[tuple[int, bytes]]:
    """The obvious line-by-line reference the fast reader must agree with."""
    result, offset = [], 0
    for line in data.split(b"\n"):
        if b"authoriz" in line:
            result.append((offset, line.removesuffix(b"\r")))
        offset += len(line) + 1
    return result


def candidates(data: bytes, **kwargs) -> list[Candidate]:
    return list(iter_candidates(io.BytesIO(data), **kwargs))


class TestLines:
    def test_finds_lines_with_offsets(self):
        data = b"noise\nfirst authoriz line\nmore noise\r\nsecond authoriz\r\nlast"
        assert naive_candidates(data) == [(c.line_offset, c.text) for c in candidates(data)]

    def test_last_line_without_newline_is_read_at_end_of_input(self):
        (c,) = candidates(b"a\nb authoriz c")
        assert (c.line_offset, c.text) == (2, b"b authoriz c")

    def test_trigger_split_across_chunks_is_found(self):
        data = b"x" * 13 + b"authoriz" + b"\n"
        (c,) = candidates(data, chunk_bytes=16)
        assert (0, data[:-1]) == (c.line_offset, c.text)

    def test_empty_input(self):
        assert candidates(b"") == []

    @settings(max_examples=300, deadline=None)
    @given(
        lines=st.lists(
            st.one_of(
                st.binary(max_size=40),
                st.binary(max_size=20).map(lambda b: b + b"authoriz" + b),
            ),
            max_size=30,
        ),
        chunk=st.integers(min_value=1, max_value=64),
    )
    def test_any_chunking_gives_the_same_lines_as_splitting(self, lines, chunk):
        data = b"\n".join(line.replace(b"\n", b" ") for line in lines)
        found = [(c.line_offset, c.text) for c in candidates(data, chunk_bytes=chunk)]
        assert naive_candidates(data) == found


class TestLongLines:
    def test_a_long_line_is_searched_in_windows_around_each_hit(self):
        head = b"A" * 100_000
        data = b"short\n" + head + b" authoriz tail" + b"B" * 100_000 + b"\nnext authoriz\n"
        reported: list[int] = []
        found = candidates(
            data, max_line_bytes=1000, chunk_bytes=4096, on_long_line=reported.append
        )
        assert reported == [6]
        long_hit, short_hit = found
        assert long_hit.windowed
        assert long_hit.line_offset == 6
        assert b" authoriz tail" in long_hit.text
        assert len(long_hit.text) <= WINDOW_BEFORE_BYTES + WINDOW_AFTER_BYTES
        assert (short_hit.text, short_hit.windowed) == (b"next authoriz", False)

    def test_windows_of_one_line_do_not_overlap(self):
        data = (b"authoriz" + b"C" * 50_000) * 3
        found = candidates(data, max_line_bytes=1000, chunk_bytes=8192)
        assert len(found) == 3
        for before, after in pairwise(found):
            assert before.end_offset <= after.text_offset

    def test_memory_stays_bounded_on_a_huge_line(self):
        """The reader's buffer never holds the whole over-long line."""

        class Counting(io.RawIOBase):
            def __init__(self, total: int) -> None:
                self.remaining = total

            def readable(self) -> bool:
                return True

            def read(self, size: int = -1) -> bytes:
                n = min(size, self.remaining)
                self.remaining -= n
                return b"z" * n

        scanner = lines._Scanner(1024, None)
        stream = Counting(50_000_000)
        biggest = 0
        while chunk := stream.read(1 << 20):
            list(scanner.feed(chunk))
            biggest = max(biggest, len(scanner._buf))
        assert biggest < 2 * (1 << 20) + WINDOW_BEFORE_BYTES + WINDOW_AFTER_BYTES
