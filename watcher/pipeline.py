"""pipeline: text from a source -> extract -> decode -> explain -> events for the sinks.

``DenialBuilder`` is the part every command shares: ``scan``, ``decode`` and the daemon hand it
a piece of text and where it came from, and get back one event per denial, in order.
``OrderedDecodingEmitter`` runs the STS calls of many denials on a bounded pool while reading
and extracting go on, and still hands the events to the sinks in the order they were read.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from watcher.events import denial_event, raw_excerpt
from watcher.explain import account_of, explain
from watcher.extract import find_denials
from watcher.model import BlobState, DecodeResult, DecodeStatus, Event, Finding, Origin

if TYPE_CHECKING:  # concurrent.futures costs start-up; it is imported when decoding starts
    from concurrent.futures import Future, ThreadPoolExecutor

TRUNCATED_BLOB_ERROR = (
    "the encoded message was cut short (followed by '...' or far shorter than a real one); "
    "STS cannot decode a partial message"
)
DEFAULT_MAX_PENDING = 256
MAX_EVENT_BYTES = 65_536  # one event line, whatever the decoded message held
MAX_VALUES_PER_CONDITION = 100


class BlobDecoder(Protocol):
    """What the pipeline needs of the decode stage (``watcher.decode.StsDecoder``)."""

    def decode(
        self, blob: str, *, account_id: str | None = None, profile: str | None = None
    ) -> DecodeResult: ...


@dataclass(frozen=True, slots=True)
class Denial:
    """One finding with what its decode and its event need."""

    finding: Finding
    text: str  # the line, or the record's JSON, it came from
    origin: Origin
    observed_at: datetime
    profile: str | None = None  # AWS profile of the source, for decoding
    account_id: str | None = None  # the account whose credentials decode it (default: ARNs)
    extra: Mapping[str, object] = field(default_factory=dict)  # fields the source knows best
    event: Event | None = None  # built already where it was read (``with_event``)


def with_event(denial: Denial) -> Denial:
    """The denial with its event built, when the decode stage has nothing to ask STS (no
    blob, or one cut short): an object reader process does this, so that the daemon's one
    interpreter only hands the event on. A blob is left to the daemon's decoder, with the text."""
    if denial.finding.blob_state is BlobState.COMPLETE:
        return denial
    builder = DenialBuilder()
    return replace(denial, event=builder.event(denial, builder.decode(denial)), text="")


class DenialBuilder:
    """Turns denials into events. Without a decoder, blobs are reported as ``disabled``."""

    def __init__(self, *, decoder: BlobDecoder | None = None, disabled_reason: str = "") -> None:
        self._decoder = decoder
        self._disabled_reason = disabled_reason

    def events(
        self, text: str, origin: Origin, observed_at: datetime, profile: str | None = None
    ) -> list[Event]:
        """Every denial in ``text`` as an event, decoding blobs inline (one at a time)."""
        return [
            self.event(denial, self.decode(denial))
            for denial in denials_in(text, origin, observed_at, profile)
        ]

    def needs_call(self, denial: Denial) -> bool:
        return self._decoder is not None and denial.finding.blob_state is BlobState.COMPLETE

    def decode(self, denial: Denial) -> DecodeResult:
        """The decode stage for one denial; calls STS only for a complete blob."""
        finding = denial.finding
        if finding.blob_state is BlobState.ABSENT:
            return DecodeResult(DecodeStatus.NOT_NEEDED)
        if finding.blob_state is BlobState.TRUNCATED:
            return DecodeResult(DecodeStatus.TRUNCATED, error=TRUNCATED_BLOB_ERROR)
        if self._decoder is None or finding.encoded_message is None:
            return DecodeResult(DecodeStatus.DISABLED, error=self._disabled_reason)
        account = (
            denial.account_id or account_of(finding.principal_arn) or account_of(finding.resource)
        )
        return self._decoder.decode(
            finding.encoded_message, account_id=account, profile=denial.profile
        )

    def event(self, denial: Denial, outcome: DecodeResult) -> Event:
        if denial.event is not None:
            return denial.event
        event = denial_event(
            denial.finding,
            denial.origin,
            explain(denial.finding, outcome.message),
            raw=raw_excerpt(denial.text, denial.finding),
            decode_status=outcome.status,
            decode_error=outcome.error,
            observed_at=denial.observed_at,
        )
        event.update(denial.extra)
        return bounded_event(event)


def bounded_event(event: Event, max_bytes: int = MAX_EVENT_BYTES) -> Event:
    """Keep an event line under ``max_bytes``: a decoded message can carry thousands of
    conditions or statements. The first of them are kept, and ``truncated_fields`` names
    what was cut."""
    if _json_size(event) <= max_bytes:
        return event
    cut = []
    for name in ("conditions", "matched_statements"):
        if not event.get(name):
            continue
        cut.append(name)
        event[name] = _first_part(event[name], keep=MAX_VALUES_PER_CONDITION)
        while _json_size(event) > max_bytes and event[name]:
            event[name] = _first_part(event[name], keep=len(event[name]) // 2)
        if _json_size(event) <= max_bytes:
            break
    event["truncated_fields"] = cut
    return event


def _first_part(value: object, *, keep: int) -> dict[str, list[str]] | list[object]:
    if isinstance(value, dict):  # conditions: their first keys, each with its first values
        return {
            key: values[:MAX_VALUES_PER_CONDITION] for key, values in list(value.items())[:keep]
        }
    return list(value)[:keep] if isinstance(value, list) else []


def _json_size(event: Event) -> int:
    return len(json.dumps(event, separators=(",", ":")).encode())


def denials_in(
    text: str,
    origin: Origin,
    observed_at: datetime,
    profile: str | None = None,
    timestamp: str | None = None,
) -> list[Denial]:
    """The denials of one message (or pasted text), ready for the decode stage.

    ``timestamp`` is the time the source knows better than the text (a container runtime's
    or a structured log line's): it becomes every finding's timestamp.
    """
    findings = find_denials(text, now=observed_at)
    if timestamp is not None:
        findings = [replace(finding, timestamp=timestamp) for finding in findings]
    return [Denial(finding, text, origin, observed_at, profile) for finding in findings]


@dataclass(slots=True)
class _Pending:
    denial: Denial
    outcome: Future[DecodeResult] | DecodeResult


class OrderedDecodingEmitter:
    """Decodes on a pool of ``max_concurrency`` threads and emits events in input order.

    At most ``max_pending`` denials wait for their turn; past that, ``add`` blocks on the
    oldest, so a slow STS slows reading instead of growing memory without end.
    """

    def __init__(
        self,
        builder: DenialBuilder,
        emit: Callable[[Event], None],
        *,
        max_concurrency: int,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self._builder = builder
        self._emit = emit
        self._max_pending = max(max_pending, max_concurrency)
        self._max_concurrency = max_concurrency
        self._pool: ThreadPoolExecutor | None = None  # started on the first STS call
        self._pending: deque[_Pending] = deque()

    def add(
        self,
        text: str,
        origin: Origin,
        observed_at: datetime,
        profile: str | None = None,
        timestamp: str | None = None,
    ) -> int:
        """Queue every denial of ``text``; emit those whose turn has come. Returns the count."""
        return self.add_denials(denials_in(text, origin, observed_at, profile, timestamp))

    def add_denials(self, denials: Iterable[Denial]) -> int:
        """Queue denials (decoding starts at once); emit those whose turn has come."""
        count = 0
        for denial in denials:
            outcome: Future[DecodeResult] | DecodeResult
            if self._builder.needs_call(denial):
                outcome = self._started_pool().submit(self._builder.decode, denial)
            else:
                outcome = self._builder.decode(denial)
            self._pending.append(_Pending(denial, outcome))
            count += 1
            while len(self._pending) > self._max_pending:
                self._emit_head()
        self._emit_ready(wait=False)
        return count

    def _started_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - see __init__

            self._pool = ThreadPoolExecutor(self._max_concurrency, thread_name_prefix="decode")
        return self._pool

    def flush(self) -> None:
        """Wait for every queued denial and emit it."""
        self._emit_ready(wait=True)

    def close(self) -> None:
        """Flush, then stop the pool's threads."""
        try:
            self.flush()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)

    def _emit_ready(self, *, wait: bool) -> None:
        while self._pending:
            head = self._pending[0].outcome
            if not wait and not isinstance(head, DecodeResult) and not head.done():
                return
            self._emit_head()

    def _emit_head(self) -> None:
        item = self._pending.popleft()
        outcome = item.outcome if isinstance(item.outcome, DecodeResult) else item.outcome.result()
        self._emit(self._builder.event(item.denial, outcome))
