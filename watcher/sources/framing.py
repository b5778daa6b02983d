"""sources.framing: one physical line of a container log -> its message, stream, time, and
whether the runtime split it (a partial line).

The first step after reading a line. Kubernetes' CRI runtimes write
``<RFC3339Nano> <stdout|stderr> <P|F> <msg>`` (``P``: a partial, the message goes on in the
next line of the same stream; ``F``: its last part); docker's json-file driver writes
``{"log": "...", "stream": "...", "time": "..."}`` and a ``log`` that does not end in ``\\n``
is a partial. ``auto`` decides per line by content; ``plain`` leaves lines alone.
"""

from __future__ import annotations

import json
import re
from typing import Literal, NamedTuple

from watcher.extract import iso_millis

Framing = Literal["plain", "auto", "cri", "docker"]
FRAMINGS: tuple[Framing, ...] = ("auto", "plain", "cri", "docker")

_CRI_RE = re.compile(
    rb"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) "
    rb"(?P<stream>stdout|stderr) (?P<tag>[PF])(?: |$)"
)
_DOCKER_START = b'{"log":'
# The tags a CRI partial line carries: searched for in the buffer, so a trigger word that a
# runtime split over two partials is still found.
CRI_PARTIAL_TAGS = (b" stdout P ", b" stderr P ")


CRI_SAMPLE_BYTES = 64  # enough for the time, the stream and the tag


def looks_like_cri(line_start: bytes) -> bool:
    """Whether a line begins like a CRI runtime's line (``<time> <stream> <P|F> ``)."""
    return _CRI_RE.match(line_start) is not None


class Frame(NamedTuple):
    body: bytes  # the message (part) without the runtime's framing or the line terminator
    stream: str | None  # "stdout"/"stderr" for container lines, None for plain ones
    partial: bool  # the runtime split the message: the rest is in a later line
    timestamp: str | None  # ISO-8601 UTC with milliseconds, from the runtime


def parse_frame(line: bytes, framing: Framing) -> Frame:
    """The message a physical line carries under ``framing`` (``auto`` tries CRI, docker)."""
    if framing in ("auto", "cri"):
        match = _CRI_RE.match(line)
        if match is not None:
            return Frame(
                line[match.end() :],
                match.group("stream").decode(),
                match.group("tag") == b"P",
                iso_millis(match.group("time").decode()),
            )
    if framing in ("auto", "docker") and line.startswith(_DOCKER_START):
        frame = _docker_frame(line)
        if frame is not None:
            return frame
    return Frame(line, None, partial=False, timestamp=None)


def _docker_frame(line: bytes) -> Frame | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("log"), str):
        return None
    log: str = record["log"]
    stream = record.get("stream")
    time = record.get("time")
    return Frame(
        log.removesuffix("\n").removesuffix("\r").encode("utf-8", "surrogatepass"),
        stream if isinstance(stream, str) else "stdout",
        not log.endswith("\n"),
        iso_millis(time) if isinstance(time, str) else None,
    )
