"""pipeline: text from a source -> extract -> decode -> explain -> events for the sinks.

``DenialBuilder`` is the part every command shares: ``scan``, ``decode`` and the daemon hand it
a piece of text and where it came from, and get back one event per denial, in order.
``OrderedDecodingEmitter`` runs the STS calls of many denials on a bounded pool while reading
and extracting go on, and still hands the events to the sinks in the order they were read.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from watcher.events import denial_event, raw_excerpt
from watcher.explain import account_of, explain
from watcher.extract import find_denials
from watcher.model import BlobState, DecodeResult, DecodeStatus, Event, Finding, Origin

TRUNCATED_BLOB_ERROR = (
    "the encoded message was cut short (followed by '...' or far shorter than a real one); "
    "STS cannot decode a partial message"
)
DEFAULT_MAX_PENDING = 256


class BlobDecoder(Protocol):
    """What the pipeline needs of the decode stage (``watcher.decode.StsDecoder``)."""

    def decode(
        self, blob: str, *, account_id: str | None = None, profile: str | None = None
    ) -> DecodeResult: ...


class DenialBuilder:
    """Turns text into denial events. Without a decoder, blobs are reported as ``disabled``."""

    def __init__(self, *, decoder: BlobDecoder | None = None, disabled_reason: str = "") -> None:
        self._decoder = decoder
        self._disabled_reason = disabled_reason

    @property
    def decodes(self) -> bool:
        return self._decoder is not None

    def events(
        self, text: str, origin: Origin, observed_at: datetime, profile: str | None = None
    ) -> list[Event]:
        """Every denial in ``text`` as an event, decoding blobs inline (one at a time)."""
        return [
            self.event(finding, text, origin, observed_at, self.decode(finding, profile))
            for finding in find_denials(text, now=observed_at)
        ]

    def needs_call(self, finding: Finding) -> bool:
        return self._decoder is not None and finding.blob_state is BlobState.COMPLETE

    def decode(self, finding: Finding, profile: str | None = None) -> DecodeResult:
        """The decode stage for one finding; calls STS only for a complete blob."""
        if finding.blob_state is BlobState.ABSENT:
            return DecodeResult(DecodeStatus.NOT_NEEDED)
        if finding.blob_state is BlobState.TRUNCATED:
            return DecodeResult(DecodeStatus.TRUNCATED, error=TRUNCATED_BLOB_ERROR)
        if self._decoder is None or finding.encoded_message is None:
            return DecodeResult(DecodeStatus.DISABLED, error=self._disabled_reason)
        account = account_of(finding.principal_arn) or account_of(finding.resource)
        return self._decoder.decode(finding.encoded_message, account_id=account, profile=profile)

    def event(
        self,
        finding: Finding,
        text: str,
        origin: Origin,
        observed_at: datetime,
        outcome: DecodeResult,
    ) -> Event:
        return denial_event(
            finding,
            origin,
            explain(finding, outcome.message),
            raw=raw_excerpt(text, finding),
            decode_status=outcome.status,
            decode_error=outcome.error,
            observed_at=observed_at,
        )


@dataclass(slots=True)
class _Pending:
    finding: Finding
    text: str
    origin: Origin
    observed_at: datetime
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
        self._pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="decode")
        self._pending: deque[_Pending] = deque()

    def add(
        self, text: str, origin: Origin, observed_at: datetime, profile: str | None = None
    ) -> int:
        """Queue every denial of ``text``; emit those whose turn has come. Returns the count."""
        findings = find_denials(text, now=observed_at)
        for finding in findings:
            outcome: Future[DecodeResult] | DecodeResult
            if self._builder.needs_call(finding):
                outcome = self._pool.submit(self._builder.decode, finding, profile)
            else:
                outcome = self._builder.decode(finding, profile)
            self._pending.append(_Pending(finding, text, origin, observed_at, outcome))
        self._emit_ready(wait=False)
        while len(self._pending) > self._max_pending:
            self._emit_head()
        return len(findings)

    def flush(self) -> None:
        """Wait for every queued denial and emit it."""
        self._emit_ready(wait=True)

    def close(self) -> None:
        """Flush, then stop the pool's threads."""
        try:
            self.flush()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _emit_ready(self, *, wait: bool) -> None:
        while self._pending:
            head = self._pending[0].outcome
            if not wait and isinstance(head, Future) and not head.done():
                return
            self._emit_head()

    def _emit_head(self) -> None:
        item = self._pending.popleft()
        outcome = item.outcome.result() if isinstance(item.outcome, Future) else item.outcome
        self._emit(
            self._builder.event(item.finding, item.text, item.origin, item.observed_at, outcome)
        )
