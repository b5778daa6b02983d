"""sources.framing: one physical line of a container log -> its message, stream, time, and
whether the runtime split it (a partial line).

The first step after reading a line. Kubernetes' CRI runtimes write
``<RFC3339Nano> <stdout|stderr> <P|F> <msg>`` (``P``: a partial, the message goes on in the
next line of the same stream; ``F``: its last part); docker's json-file driver writes
``{"log": "...", "stream": "...", "time": "..."}`` and a ``log`` that does not end in ``\\n``
is a partial. ``auto`` decides per line by content; ``plain`` leaves lines alone.
Also here: the time of a structured (JSON or key=value) log line, for the event's timestamp.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Literal, NamedTuple

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

_RFC3339_RE = re.compile(
    r"(?P<date>\d{4}-\d\d-\d\d)[T ](?P<clock>\d\d:\d\d:\d\d)(?:[.,](?P<frac>\d{1,9}))?"
    r"\s*(?P<tz>Z|z|[+-]\d\d:?\d\d)?"
)
_STRUCTURED_TIME_RE = re.compile(
    r"(?:^|[\s{,])\"?(?:ts|time|@timestamp|timestamp)\"?\s*[:=]\s*"
    r"(?:\"(?P<quoted>[^\"]{1,40})\"|(?P<bare>[0-9][0-9.:TZ+-]{0,39}))"
)
_EPOCH_MILLIS_MIN = 10**11  # larger numbers are milliseconds (10**11 s is the year 5138)
# A bare number is a time only in this range (2001 to 5138 in seconds, or in milliseconds):
# "time=12" in a message is a duration, not 1970.
_EPOCH_SECONDS_MIN = 10**9
_EPOCH_MAX = 10**14


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


def iso_millis(value: str) -> str | None:
    """An RFC 3339 time (any precision, any offset) as ISO-8601 UTC with milliseconds and Z."""
    match = _RFC3339_RE.match(value.strip())
    if match is None:
        return None
    fraction = (match.group("frac") or "0").ljust(6, "0")[:6]
    zone = match.group("tz") or "Z"
    zone = "+00:00" if zone in ("Z", "z") else zone
    if len(zone) == 5:  # "+0100"
        zone = zone[:3] + ":" + zone[3:]
    try:
        moment = datetime.fromisoformat(
            f"{match.group('date')}T{match.group('clock')}.{fraction}{zone}"
        )
    except ValueError:
        return None
    return _format(moment)


def epoch_millis(value: float) -> str | None:
    """Epoch seconds, or milliseconds when the number is too large to be seconds."""
    seconds = value / 1000 if value >= _EPOCH_MILLIS_MIN else value
    try:
        return _format(datetime.fromtimestamp(seconds, UTC))
    except (OverflowError, OSError, ValueError):
        return None


def _format(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def structured_timestamp(text: str) -> str | None:
    """The ``ts``/``time``/``@timestamp``/``timestamp`` of a JSON or key=value log line.

    zap and controller-runtime write ``"ts": 1651073143.619`` (epoch seconds) or RFC 3339,
    logrus/bunyan ``"time"``, ECS ``"@timestamp"``, logfmt and klog/logr ``time=...``/``ts=...``.
    """
    if "time" not in text and "ts" not in text:
        return None
    match = _STRUCTURED_TIME_RE.search(text)
    if match is None:
        return None
    value = match.group("quoted") or match.group("bare") or ""
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        number = float(value)
        return epoch_millis(number) if _EPOCH_SECONDS_MIN <= number < _EPOCH_MAX else None
    return iso_millis(value)
