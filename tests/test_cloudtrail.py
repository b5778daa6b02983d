"""CloudTrail exports: the real attack-simulation trail, every export shape, broken files."""

from __future__ import annotations

import gzip
import io
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import DATA, parse_events, run_cli
from tests.recording_output import RecordingOutput
from tests.trail_queue import trail_object, trail_record
from watcher.config import CloudTrailSource
from watcher.log import configure_logging
from watcher.sources.cloudtrail import (
    CloudTrailFormatError,
    iter_records,
    looks_like_cloudtrail,
    record_denials,
)
from watcher.sources.exports import CloudTrailExports
from watcher.state import StateStore

TRAIL = DATA / "cloudtrail"
ACCOUNT = "123837392027"
KNOWN_EVENT_ID = "e4bad408-6272-4892-bf47-bd41b435ce40"  # sts:AssumeRole, AccessDenied


def all_records() -> list[dict]:
    records = []
    for path in sorted(TRAIL.glob("*.json")):
        records.extend(json.loads(path.read_text())["Records"])
    return records


def denial_records() -> list[dict]:
    return [
        r
        for r in all_records()
        if r.get("errorCode") in ("AccessDenied", "Client.UnauthorizedOperation")
    ]


@pytest.fixture
def s3_export(tmp_path) -> Path:
    """The corpus laid out as an S3 delivery: half gzipped, with a digest file beside it."""
    root = tmp_path / "AWSLogs"
    day = root / ACCOUNT / "CloudTrail" / "us-east-1" / "2023" / "07" / "10"
    day.mkdir(parents=True)
    for index, path in enumerate(sorted(TRAIL.glob("*.json"))):
        if index % 2:
            (day / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
        else:
            shutil.copy(path, day / path.name)
    digest = root / ACCOUNT / "CloudTrail-Digest" / "us-east-1" / "2023" / "07" / "10"
    digest.mkdir(parents=True)
    # A digest that would yield a denial if it were (wrongly) read as records.
    (digest / "digest.json.gz").write_bytes(
        gzip.compress(json.dumps({"Records": [denial_records()[0]]}).encode())
    )
    return root


class TestS3Export:
    def test_exactly_the_60_denials_are_reported(self, s3_export):
        result = run_cli("scan", "--no-decode", str(s3_export))
        events = parse_events(result.stdout)
        assert 0 == result.returncode
        assert 60 == len(events)
        assert {"AccessDenied": 16, "Client.UnauthorizedOperation": 44} == {
            code: sum(e["error_code"] == code for e in events)
            for code in ("AccessDenied", "Client.UnauthorizedOperation")
        }
        assert {"cloudtrail"} == {e["source_kind"] for e in events}
        assert all("CloudTrail-Digest" not in e["source_path"] for e in events)

    def test_record_fields_map_onto_the_event(self, s3_export):
        events = parse_events(run_cli("scan", "--no-decode", str(s3_export)).stdout)
        (record,) = [r for r in all_records() if r["eventID"] == KNOWN_EVENT_ID]
        (event,) = [e for e in events if e["request_id"] == record["requestID"]]
        assert {
            "timestamp": "2023-07-10T11:54:42.000Z",
            "action": "sts:AssumeRole",
            "operation": "AssumeRole",
            "principal_arn": "arn:aws:iam::123837392027:user/bert-jan",
            "resource": f"arn:aws:iam::{ACCOUNT}:role/stratus-red-team-ec2-get-password-data-role",
            "account_id": ACCOUNT,
            "region": "us-east-1",
            "error_code": "AccessDenied",
            "source_ip": "192.168.10.20",
            "user_agent": record["userAgent"],
            "decode_status": "not_needed",
        } == {key: event[key] for key in (
            "timestamp", "action", "operation", "principal_arn", "resource", "account_id",
            "region", "error_code", "source_ip", "user_agent", "decode_status",
        )}  # fmt: skip
        assert isinstance(event["record_index"], int)
        assert event["source_offset"] is None

    def test_blobs_in_error_messages_are_found(self, s3_export):
        events = parse_events(run_cli("scan", "--no-decode", str(s3_export)).stdout)
        with_blob = [e for e in events if e["encoded_message"]]
        assert 44 == len(with_blob)
        assert {"ec2:GetPasswordData", "ec2:DescribeInstanceAttribute"} == {
            e["action"] for e in with_blob
        }
        assert {"disabled"} == {e["decode_status"] for e in with_blob}

    def test_same_event_delivered_twice_has_the_same_id(self, tmp_path):
        record = denial_records()[0]
        for name in ("a.json", "b.json"):
            (tmp_path / name).write_text(json.dumps({"Records": [record]}))
        events = parse_events(run_cli("scan", "--no-decode", str(tmp_path)).stdout)
        assert 2 == len(events)
        assert events[0]["event_id"] == events[1]["event_id"]

    def test_blob_is_decoded_with_the_recipient_accounts_credentials(self, sts, tmp_path):
        credentials = tmp_path / "credentials"
        credentials.write_text(
            "[default]\naws_access_key_id = AKIADEFAULTTESTKEY00\naws_secret_access_key = x\n"
            "[trail]\naws_access_key_id = AKIATRAILACCOUNTKEY0\naws_secret_access_key = y\n"
        )
        config = tmp_path / "config.yaml"
        config.write_text(
            f"state_dir: {tmp_path / 'state'}\n"
            f"decode:\n  accounts:\n    '{ACCOUNT}': {{profile: trail}}\n"
        )
        blob_record = next(r for r in denial_records() if "Encoded" in r["errorMessage"])
        export = tmp_path / "export.json"
        export.write_text(json.dumps({"Records": [blob_record]}))
        env = {"AWS_ENDPOINT_URL_STS": sts.url, "AWS_SHARED_CREDENTIALS_FILE": str(credentials)}
        (event,) = parse_events(run_cli("scan", "-c", str(config), str(export), env=env).stdout)
        assert ["AKIATRAILACCOUNTKEY0"] == [c.access_key for c in sts.decode_calls()]
        assert "failed" == event["decode_status"]  # the local STS does not know this old blob
        assert event["decode_error"].startswith("InvalidAuthorizationMessageException")


class TestShapes:
    def scan_one(self, tmp_path, name: str, content: str | bytes) -> list[dict]:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        result = run_cli("scan", "--no-decode", str(path))
        assert 0 == result.returncode, result.stderr
        return parse_events(result.stdout)

    def test_lookup_events_output(self, tmp_path):
        record = denial_records()[0]
        lookup = {"Events": [{"EventId": record["eventID"], "CloudTrailEvent": json.dumps(record)}]}
        (event,) = self.scan_one(tmp_path, "lookup.json", json.dumps(lookup, indent=2))
        assert record["requestID"] == event["request_id"]

    def test_json_lines_with_leading_timestamps(self, tmp_path):
        lines = [f"2023-07-10T11:54:42.000Z {json.dumps(r)}" for r in all_records()[:400]]
        events = self.scan_one(tmp_path, "cwlogs-export.txt", "\n".join(lines) + "\n")
        expected = [
            r
            for r in all_records()[:400]
            if r.get("errorCode") in ("AccessDenied", "Client.UnauthorizedOperation")
        ]
        assert [r["requestID"] for r in expected] == [e["request_id"] for e in events]

    def test_single_record_and_eventbridge_event(self, tmp_path):
        record = denial_records()[0]
        (single,) = self.scan_one(tmp_path, "one.json", json.dumps(record, indent=2))
        bridge = {"version": "0", "detail-type": "AWS API Call via CloudTrail", "detail": record}
        (from_bridge,) = self.scan_one(tmp_path, "bridge.json", json.dumps(bridge))
        assert single["event_id"] == from_bridge["event_id"]

    def test_records_split_across_reads(self):
        """The streaming parser gets the same records whatever the read sizes."""
        data = json.dumps({"Records": all_records()[:300]}).encode()

        class Trickle(io.RawIOBase):
            def __init__(self) -> None:
                self.position = 0

            def read(self, size: int = -1) -> bytes:
                del size  # a trickle: never more than 997 bytes at a time
                piece = data[self.position : self.position + 997]
                self.position += len(piece)
                return piece

        assert all_records()[:300] == list(iter_records(Trickle()))

    def test_sniffing(self):
        assert looks_like_cloudtrail(b'{"Records":[{"eventVersion":"1.08"')
        assert looks_like_cloudtrail(b'2023-07-10T11:54:42Z {"eventVersion":"1.08"')
        assert not looks_like_cloudtrail(b"2023-07-10T11:54:42Z INFO plain log line")
        assert not looks_like_cloudtrail(b'{"level":"info","msg":"structured app log"}')


class TestBrokenExports:
    def test_truncated_gzip_is_reported_by_path(self, tmp_path):
        data = gzip.compress((TRAIL / sorted(p.name for p in TRAIL.glob("*.json"))[3]).read_bytes())
        broken = tmp_path / "broken.json.gz"
        broken.write_bytes(data[: len(data) // 2])
        result = run_cli("scan", "--no-decode", str(broken))
        assert 1 == result.returncode
        (error,) = [e for e in result.logs() if e["event"] == "source_error"]
        assert str(broken) == error["path"]

    @pytest.mark.parametrize(
        "content",
        [
            '{"Records": [{"eventVersion": "1.08", "errorCode": "AccessDenied"',
            '{"Records": [1, 2,]}',
        ],
    )
    def test_malformed_json_is_reported(self, tmp_path, content):
        path = tmp_path / "bad.json"
        path.write_text(content)
        result = run_cli("scan", "--no-decode", str(path))
        assert 1 == result.returncode
        (error,) = [e for e in result.logs() if e["event"] == "source_error"]
        assert "not a complete CloudTrail export" in error["error"]

    def test_incomplete_stream_raises(self):
        with pytest.raises(CloudTrailFormatError):
            list(iter_records(io.BytesIO(b'{"Records":[{"a":1},')))

    def test_denials_come_with_their_record_index(self):
        records = all_records()
        denials = list(record_denials(iter(records), "x.json", datetime.now(UTC)))
        assert 60 == len(denials)
        for denial in denials:
            assert records[denial.origin.record_index]["errorCode"] == denial.finding.error_code


class TestStdin:
    def test_gzipped_export_on_standard_input(self):
        data = gzip.compress(json.dumps({"Records": denial_records()[:3]}).encode())
        result = run_cli("scan", "--no-decode", "-", input_bytes=data)
        events = parse_events(result.stdout)
        assert (0, 3) == (result.returncode, len(events))
        assert {"<stdin>"} == {e["source_path"] for e in events}
        assert {"cloudtrail"} == {e["source_kind"] for e in events}


class TestBacklog:
    def test_a_directory_backlog_is_read_twenty_files_a_read_each_file_once(self, tmp_path):
        """Thousands of files waiting must not keep the daemon's loop (commits, watchdog,
        signals) away: each read takes at most MAX_FILES_PER_READ new files and says there
        is more; reading on, with the saves run between reads, gives every file once."""
        trail = tmp_path / "AWSLogs"
        for n in range(45):
            path = trail / f"111122223333_CloudTrail_us-east-1_{n:04d}.json.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(trail_object([trail_record(n)]))
        store = StateStore(tmp_path / "state", configure_logging(io.StringIO()))
        source = CloudTrailExports(
            (CloudTrailSource(paths=(str(trail),)),), store, configure_logging(io.StringIO())
        )
        out = RecordingOutput()
        handed_per_read = []
        try:
            for changed in (None, set(), set(), set()):
                before = len(out.denials_handed)
                source.read(changed, out)
                handed_per_read.append((len(out.denials_handed) - before, source.more_ready))
                save = source.checkpoint()
                if save is not None:
                    save()
        finally:
            store.close()
        assert [(20, True), (20, True), (5, False), (0, False)] == handed_per_read
        assert 45 == len({denial.text for denial in out.denials_handed})
