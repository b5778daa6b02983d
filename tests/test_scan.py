"""scan: the real command over real files: directories, gzip, stdin, and every kind of bad input."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, load_jsonl, parse_events, run_cli

PREFIX = "Encoded authorization failure message: "
BLOB = load_jsonl("encoded_lines.jsonl")[0]["expected_blobs"][0]
CLI_LINE = (
    "An error occurred (UnauthorizedOperation) when calling the RunInstances operation: "
    f"You are not authorized to perform this operation. {PREFIX}{BLOB}"
)
PLAIN_LINE = (
    "An error occurred (AccessDenied) when calling the GetObject operation: User: "
    "arn:aws:iam::111122223333:user/ana is not authorized to perform: s3:GetObject on resource: "
    '"arn:aws:s3:::bucket/key" because no identity-based policy allows the s3:GetObject action'
)


def write_log(path: Path, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


class TestScan:
    def test_bundled_example_prints_denials(self):
        """What `make demo` shows: one schema-valid event per denial in examples/logs."""
        result = run_cli("scan", "--no-decode", "examples/logs")
        events = parse_events(result.stdout)
        assert 0 == result.returncode
        assert 10 == len(events)
        assert {"authz_denial"} == {e["event"] for e in events}
        assert {"disabled", "not_needed"} == {e["decode_status"] for e in events}

    def test_without_credentials_blobs_are_reported_with_the_reason(self):
        """No credentials anywhere: every denial is still emitted, and one warning says why."""
        result = run_cli("scan", "examples/logs")
        events = parse_events(result.stdout)
        assert (0, 10) == (result.returncode, len(events))
        with_blob = [e for e in events if e["encoded_message"]]
        assert {("failed", "no AWS credentials found")} == {
            (e["decode_status"], e["decode_error"]) for e in with_blob
        }
        warnings = [e for e in result.logs() if e["event"] == "decode_no_credentials"]
        assert 1 == len(warnings)

    def test_directories_are_read_recursively_including_gzip(self, tmp_path):
        write_log(tmp_path / "a.log", "noise", CLI_LINE)
        nested = tmp_path / "nested" / "deeper"
        nested.mkdir(parents=True)
        with gzip.open(nested / "old.log.gz", "wt") as handle:
            handle.write(f"noise\n{PLAIN_LINE}\n")
        result = run_cli("scan", "--no-decode", str(tmp_path))
        events = parse_events(result.stdout)
        assert 0 == result.returncode
        assert [str(tmp_path / "a.log"), str(nested / "old.log.gz")] == [
            e["source_path"] for e in events
        ]
        assert [BLOB, None] == [e["encoded_message"] for e in events]
        assert "s3:GetObject" == events[1]["action"]

    def test_offsets_and_ids_are_stable_across_scans(self, tmp_path):
        log = write_log(tmp_path / "a.log", "first line", CLI_LINE, PLAIN_LINE)
        first = parse_events(run_cli("scan", "--no-decode", str(log)).stdout)
        second = parse_events(run_cli("scan", "--no-decode", str(log)).stdout)
        assert [11, 12 + len(CLI_LINE)] == [e["source_offset"] for e in first]
        assert [e["event_id"] for e in first] == [e["event_id"] for e in second]

    def test_stdin(self):
        data = f"noise\n{PLAIN_LINE}\n".encode()
        result = run_cli("scan", "--no-decode", "-", input_bytes=data)
        (event,) = parse_events(result.stdout)
        assert ("<stdin>", 6) == (event["source_path"], event["source_offset"])

    def test_summary_counts_per_principal_and_action(self, tmp_path):
        log = write_log(tmp_path / "a.log", PLAIN_LINE, PLAIN_LINE, CLI_LINE)
        result = run_cli("scan", "--no-decode", "--summary", str(log))
        lines = result.stdout.splitlines()
        assert 0 == result.returncode
        assert lines[0].split() == ["COUNT", "PRINCIPAL", "ACTION"]
        assert lines[1].split() == ["2", "arn:aws:iam::111122223333:user/ana", "s3:GetObject"]
        assert lines[2].split() == ["1", "(unknown)", "ec2:RunInstances"]
        assert lines[3].split()[0] == "3"

    def test_no_decode_never_imports_boto3(self, tmp_path):
        log = write_log(tmp_path / "a.log", CLI_LINE)
        code = (
            "import sys; from watcher.cli import main; rc = main(['scan', '--no-decode', "
            f"{str(log)!r}]); print('boto3' in sys.modules, file=sys.stderr); sys.exit(rc)"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPO
        )
        assert 0 == proc.returncode
        assert proc.stderr.strip().endswith("False")

    def test_usage_errors_exit_2(self):
        assert 2 == run_cli("scan").returncode
        assert 2 == run_cli("scan", "--bogus", "x").returncode
        assert 2 == run_cli("scan", "--max-line-bytes", "0", "x").returncode
        assert 2 == run_cli().returncode

    def test_bad_config_for_scan_exits_2(self, tmp_path):
        config = tmp_path / "c.yaml"
        config.write_text("decode: [\n")
        result = run_cli("scan", "-c", str(config), str(tmp_path))
        assert 2 == result.returncode
        assert f"{config}:" in result.stderr


class TestBadInput:
    def test_missing_path_is_named_and_the_rest_still_scanned(self, tmp_path):
        log = write_log(tmp_path / "a.log", PLAIN_LINE)
        missing = tmp_path / "missing.log"
        result = run_cli("scan", "--no-decode", str(missing), str(log))
        assert 1 == result.returncode
        assert 1 == len(parse_events(result.stdout))
        (error,) = [entry for entry in result.logs() if entry["event"] == "source_error"]
        assert (str(missing), "No such file or directory") == (error["path"], error["error"])

    def test_unreadable_file_is_named_and_the_rest_still_scanned(self, tmp_path):
        readable = write_log(tmp_path / "a.log", PLAIN_LINE)
        secret = write_log(tmp_path / "b.log", CLI_LINE)
        secret.chmod(0o000)
        result = run_cli("scan", "--no-decode", str(tmp_path), honour_file_permissions=True)
        assert 1 == result.returncode
        (event,) = parse_events(result.stdout)
        assert str(readable) == event["source_path"]
        (error,) = [entry for entry in result.logs() if entry["event"] == "source_error"]
        assert (str(secret), "Permission denied") == (error["path"], error["error"])

    def test_truncated_gzip_keeps_what_was_readable(self, tmp_path):
        lines = [f"noise {i}" for i in range(2000)]
        payload = "\n".join([PLAIN_LINE, *lines, CLI_LINE, *lines]).encode()
        compressed = gzip.compress(payload)
        broken = tmp_path / "broken.log.gz"
        broken.write_bytes(compressed[: len(compressed) - 40])
        result = run_cli("scan", "--no-decode", str(broken))
        events = parse_events(result.stdout)
        assert 1 == result.returncode
        assert events
        assert "s3:GetObject" == events[0]["action"]
        (error,) = [entry for entry in result.logs() if entry["event"] == "source_error"]
        assert str(broken) == error["path"]
        assert "truncated" in error["error"]

    def test_binary_file_with_a_denial_inside(self, tmp_path):
        path = tmp_path / "core.bin"
        path.write_bytes(
            os.urandom(5000).replace(b"\n", b"")
            + b"\n"
            + CLI_LINE.encode()
            + b"\n"
            + b"\x00" * 5000
        )
        result = run_cli("scan", "--no-decode", str(path))
        (event,) = parse_events(result.stdout)
        assert (0, BLOB) == (result.returncode, event["encoded_message"])
        assert any(entry["event"] == "source_binary" for entry in result.logs())

    def test_invalid_utf8_around_a_denial(self, tmp_path):
        path = tmp_path / "mixed.log"
        path.write_bytes(b"\xff\xfe bad bytes " + PLAIN_LINE.encode() + b" \xc3\x28 more\n")
        result = run_cli("scan", "--no-decode", str(path))
        (event,) = parse_events(result.stdout)
        assert "arn:aws:iam::111122223333:user/ana" == event["principal_arn"]
        (warning,) = [entry for entry in result.logs() if entry["event"] == "invalid_utf8"]
        assert (str(path), 0) == (warning["path"], warning["offset"])

    def test_nul_filled_and_empty_files(self, tmp_path):
        (tmp_path / "zeros").write_bytes(b"\x00" * 1_000_000)
        (tmp_path / "empty.log").write_bytes(b"")
        result = run_cli("scan", "--no-decode", str(tmp_path))
        assert (0, "") == (result.returncode, result.stdout)

    def test_64_mib_line_with_a_blob_at_its_end_is_found_in_bounded_memory(self, tmp_path):
        path = tmp_path / "huge.log"
        with path.open("wb") as handle:
            handle.write(b"start\n")
            block = b"0123456789abcdef " * 4096
            for _ in range((64 * 1024 * 1024) // len(block)):
                handle.write(block)
            handle.write(f" {CLI_LINE}\nafter\n".encode())
        # The command reports its own peak memory (VmHWM: reset by exec, unlike ru_maxrss,
        # which would still count the forked test runner).
        code = (
            "import re, sys; from pathlib import Path; from watcher.cli import main; "
            f"rc = main(['scan', '--no-decode', {str(path)!r}]); "
            "status = Path('/proc/self/status').read_text(); "
            "print('maxrss_kib', re.search(r'VmHWM:\\s+(\\d+)', status).group(1), "
            "file=sys.stderr); sys.exit(rc)"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPO
        )
        (event,) = parse_events(proc.stdout)
        assert (0, 6, BLOB) == (proc.returncode, event["source_offset"], event["encoded_message"])
        assert "line_too_long" in proc.stderr
        maxrss_kib = int(proc.stderr.split("maxrss_kib")[1].split()[0])
        assert maxrss_kib < 64 * 1024, "the reader held the whole 64 MiB line in memory"


class TestOutput:
    def test_reader_going_away_stops_quietly(self, tmp_path):
        """`scan ... | head -1`: no traceback and no input blamed for the closed pipe."""
        log = write_log(tmp_path / "many.log", *([CLI_LINE] * 300))
        proc = subprocess.Popen(
            [sys.executable, "-m", "watcher", "scan", "--no-decode", str(log)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        proc.stderr.close()
        proc.wait(timeout=60)
        assert first.startswith(b'{"event":"authz_denial"')
        assert "Traceback" not in stderr
        assert "source_error" not in stderr
