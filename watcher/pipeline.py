"""pipeline: text from a source -> extract -> (decode) -> explain -> events for the sinks.

``DenialBuilder`` is the part every command shares: ``scan``, ``decode`` and the daemon hand it
a piece of text and where it came from, and get back one event per denial, in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from watcher.events import denial_event, raw_excerpt
from watcher.explain import explain
from watcher.extract import find_denials
from watcher.model import BlobState, DecodeStatus, Event, Finding, Origin

TRUNCATED_BLOB_ERROR = (
    "the encoded message was cut short (followed by '...' or far shorter than a real one); "
    "STS cannot decode a partial message"
)


@dataclass(frozen=True, slots=True)
class DecodeOutcome:
    status: DecodeStatus
    error: str | None = None


class DenialBuilder:
    """Turns text into denial events. Without a decoder, blobs are reported as ``disabled``."""

    def __init__(self, *, disabled_reason: str) -> None:
        self._disabled_reason = disabled_reason

    def events(self, text: str, origin: Origin, observed_at: datetime) -> list[Event]:
        return [
            self.event(finding, text, origin, observed_at)
            for finding in find_denials(text, now=observed_at)
        ]

    def event(self, finding: Finding, text: str, origin: Origin, observed_at: datetime) -> Event:
        outcome = self.decode_outcome(finding)
        return denial_event(
            finding,
            origin,
            explain(finding),
            raw=raw_excerpt(text, finding),
            decode_status=outcome.status,
            decode_error=outcome.error,
            observed_at=observed_at,
        )

    def decode_outcome(self, finding: Finding) -> DecodeOutcome:
        if finding.blob_state is BlobState.ABSENT:
            return DecodeOutcome(DecodeStatus.NOT_NEEDED)
        if finding.blob_state is BlobState.TRUNCATED:
            return DecodeOutcome(DecodeStatus.TRUNCATED, TRUNCATED_BLOB_ERROR)
        return DecodeOutcome(DecodeStatus.DISABLED, self._disabled_reason)
