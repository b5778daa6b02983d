"""events: every key present, schema-valid, deterministic ids, bounded and redacted raw text."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import load_jsonl, validate_event
from watcher.events import RAW_MAX_BYTES, event_id, redact_secrets
from watcher.model import Finding, Origin
from watcher.pipeline import DenialBuilder

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ORIGIN = Origin(source_kind="file", source_path="/var/log/app.log", source_offset=42)


def build(text: str, origin: Origin = ORIGIN):
    return DenialBuilder(disabled_reason="off").events(text, origin, NOW)


class TestEvents:
    def test_every_corpus_sample_gives_schema_valid_events(self):
        for name in ("encoded_lines.jsonl", "plaintext_denials.jsonl"):
            for sample in load_jsonl(name):
                for event in build(sample["text"]):
                    validate_event(event)

    def test_decode_status_by_blob_state(self):
        blob = "Ab0-_" * 100
        statuses = [
            build(f"Encoded authorization failure message: {text}")[0]["decode_status"]
            for text in (blob, blob + "...", "[message]")
        ]
        assert ["disabled", "truncated", "not_needed"] == statuses

    def test_undecoded_events_say_why(self):
        (event,) = build("Encoded authorization failure message: " + "Ab0-_" * 100)
        assert "off" == event["decode_error"]

    def test_time_of_the_line_wins_over_observation_time(self):
        (event,) = build(
            "2024-01-02T03:04:05Z User: arn:aws:iam::111122223333:user/a is not authorized "
            "to perform: s3:GetObject"
        )
        assert ("2024-01-02T03:04:05.000Z", "2026-11-28T12:00:00.000Z") == (
            event["timestamp"],
            event["observed_at"],
        )

    def test_every_time_has_milliseconds_and_z_whatever_the_line_gave(self):
        """Seconds, microseconds and offsets in the line all become one format (schema v1)."""
        lines = [
            "2024-01-02T03:04:05Z",
            "2024-01-02T03:04:05.123456Z",
            "2024-01-02T05:04:05.1+02:00",
            "Jan  2 03:04:05 host app:",
        ]
        denial = "User: arn:aws:iam::111122223333:user/a is not authorized to perform: s3:GetObject"
        stamps = [build(f"{line} {denial}")[0]["timestamp"] for line in lines]
        expected = [
            "2024-01-02T03:04:05.000Z",
            "2024-01-02T03:04:05.123Z",
            "2024-01-02T03:04:05.100Z",
            "2026-01-02T03:04:05.000Z",
        ]
        assert expected == stamps


class TestEventId:
    def test_same_denial_same_place_same_id(self):
        text = "User: arn:aws:iam::111122223333:user/a is not authorized to perform: s3:GetObject"
        assert build(text)[0]["event_id"] == build(text)[0]["event_id"]

    def test_other_offset_other_id(self):
        finding = Finding(0, 0, 10, action="s3:GetObject")
        moved = Origin(source_kind="file", source_path="/var/log/app.log", source_offset=43)
        assert event_id(ORIGIN, finding) != event_id(moved, finding)


class TestRaw:
    def test_raw_is_at_most_4_kib_and_keeps_the_denial(self):
        text = (
            "x" * 10_000 + " User: arn:aws:iam::111122223333:user/a is not authorized to "
            "perform: s3:GetObject " + "y" * 10_000
        )
        (event,) = build(text)
        assert len(event["raw"].encode()) <= RAW_MAX_BYTES
        assert "is not authorized to perform: s3:GetObject" in event["raw"]

    def test_secrets_in_the_line_are_masked(self):
        text = (
            "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY password: hunter2 "
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig"
        )
        masked = redact_secrets(text)
        for secret in ("wJalrXUtnFEMI", "hunter2", "eyJhbGci"):
            assert secret not in masked
        assert "aws_secret_access_key=[REDACTED]" in masked

    def test_blob_prefix_is_not_mistaken_for_a_secret(self):
        text = "Encoded authorization failure message: " + "Ab0-_" * 100
        assert text == redact_secrets(text)
