"""sources.lines: the chunked reader finds every candidate line once, with its byte offset."""

from __future__ import annotations

import io
import tracemalloc
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


SEARCHERS = [lines.bytes_searcher, lines.SIMD_SEARCHER]


def candidates(data: bytes, **kwargs) -> list[Candidate]:
    """The reader's result, checked to be the same with the SIMD and the portable search."""
    results = [
        list(iter_candidates(io.BytesIO(data), searcher=searcher, **kwargs))
        for searcher in SEARCHERS
    ]
    assert results[0] == results[1]
    return results[0]


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

    def test_lines_without_a_second_word_are_skipped_in_the_buffer(self):
        data = b"request authorized\nnot authorized to perform: x\nUnauthorized 401\n"
        found = candidates(data, also_one_of=(b"perform", b"message:"))
        assert [b"not authorized to perform: x"] == [c.text for c in found]

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
    def test_any_chunking_gives_the_same_messages_as_one_read(self, lines, chunk):
        """Chunk boundaries anywhere change nothing: the same messages at the same offsets."""
        data = b"\n".join(line.replace(b"\n", b" ") for line in lines)
        found = [(c.line_offset, c.text) for c in candidates(data, chunk_bytes=chunk)]
        assert [(c.line_offset, c.text) for c in candidates(data)] == found

    @settings(max_examples=200, deadline=None)
    @given(
        lines=st.lists(
            st.one_of(
                st.binary(max_size=40).map(lambda b: b.replace(b" ", b"")),
                st.binary(max_size=20).map(lambda b: b.replace(b" ", b"") + b"authoriz" + b),
            ),
            max_size=30,
        ),
        chunk=st.integers(min_value=1, max_value=64),
    )
    def test_lines_that_form_no_sentence_are_found_one_by_one(self, lines, chunk):
        """Without the words of a denial's grammar, every trigger line is its own message."""
        data = b"\n".join(line.replace(b"\n", b"").replace(b"\t", b"") for line in lines)
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
        assert [6] * len(SEARCHERS) == reported  # once per line, for each search
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
        """50 MB without a newline, with hits in it: peak memory stays near one chunk."""

        class Endless(io.RawIOBase):
            def __init__(self, total: int) -> None:
                self.remaining = total

            def readable(self) -> bool:
                return True

            def readinto(self, view) -> int:
                n = min(len(view), self.remaining)
                self.remaining -= n
                view[:n] = b"authoriz" + b"z" * (n - 8) if n > 8 else b"z" * n
                return n

        chunk = 1 << 20
        tracemalloc.start()
        try:
            found = list(
                iter_candidates(Endless(50_000_000), max_line_bytes=4096, chunk_bytes=chunk)
            )
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert len(found) > 40  # one hit at the start of every chunk read
        assert peak < 8 * chunk  # a few chunks, not the 50 MB line
