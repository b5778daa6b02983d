"""The `decode` command and decoding `scan`, as a person runs them, against the local STS."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys

from tests.conftest import BLOB_OF, DECODED, REPO, aws_env, parse_events, run_cli

PREFIX = "Encoded authorization failure message: "
PASTED = (
    "An error occurred (UnauthorizedOperation) when calling the CreateLaunchTemplate operation: "
    "You are not authorized to perform this operation. User: "
    "arn:aws:sts::123456789012:assumed-role/eks-node-role-dev/i-0fa071d72e68e7a33 is not "
    "authorized to perform: ec2:CreateLaunchTemplate on resource: "
    "arn:aws:ec2:ap-northeast-2:123456789012:launch-template/* because no identity-based policy "
    f"allows the ec2:CreateLaunchTemplate action. {PREFIX}{BLOB_OF['d003']}"
)


def run_in_terminal(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdout, as when a person types the command."""
    leader, follower = pty.openpty()
    full_env = {**os.environ, **env, "TERM": "xterm-256color"}
    full_env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "watcher", *args],
        stdout=follower,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=full_env,
        cwd=REPO,
    )
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    proc.wait(timeout=60)
    assert proc.stderr is not None
    proc.stderr.close()
    return proc.returncode, b"".join(chunks).decode()


class TestDecodeCommand:
    def test_bare_blob_json(self, sts):
        result = run_cli("decode", "--json", BLOB_OF["d012"], env=aws_env(sts))
        (event,) = parse_events(result.stdout)
        assert (0, "decoded", "ec2:RunInstances") == (
            result.returncode,
            event["decode_status"],
            event["action"],
        )
        assert event["explicit_deny"] is True

    def test_pasted_line_on_stdin_uses_both_parts(self, sts):
        result = run_cli("decode", "-", input_bytes=PASTED.encode(), env=aws_env(sts))
        (event,) = parse_events(result.stdout)  # piped: JSON without --json
        assert ("decoded", "CreateLaunchTemplate", "UnauthorizedOperation") == (
            event["decode_status"],
            event["operation"],
            event["error_code"],
        )
        assert "identity-based" == event["policy_type"]
        assert DECODED["d003"]["expected"]["principal_arn"] == event["principal_arn"]

    def test_terminal_gets_a_readable_summary_with_the_policy_to_paste(self, sts):
        code, screen = run_in_terminal("decode", PASTED, env=aws_env(sts))
        assert 0 == code
        assert "\033[" in screen  # coloured on a terminal
        plain = screen.replace("\r\n", "\n")
        for ansi in ("\033[1m", "\033[31m", "\033[2m", "\033[32m", "\033[0m"):
            plain = plain.replace(ansi, "")
        assert "Denied: ec2:CreateLaunchTemplate" in plain
        assert "arn:aws:ec2:ap-northeast-2:123456789012:launch-template/*" in plain
        assert "aws:Region=ap-northeast-2" in plain
        policy_text = plain[plain.index("{") :]
        policy = json.loads(policy_text)
        assert "ec2:CreateLaunchTemplate" == policy["Statement"][0]["Action"]

    def test_failed_decoding_still_prints_the_event_and_exits_1(self, sts):
        sts.behaviour.always = "access_denied"
        result = run_cli("decode", "--json", BLOB_OF["d003"], env=aws_env(sts))
        (event,) = parse_events(result.stdout)
        assert (1, "failed") == (result.returncode, event["decode_status"])
        assert event["decode_error"].startswith("AccessDenied")
        (warning,) = [e for e in result.logs() if e["event"] == "decode_access_denied"]
        assert "sts:DecodeAuthorizationMessage" == warning["statement"]["Action"]

    def test_no_credentials(self):
        result = run_cli("decode", "--json", BLOB_OF["d003"])
        (event,) = parse_events(result.stdout)
        assert (1, "no AWS credentials found") == (result.returncode, event["decode_error"])

    def test_input_without_a_denial_is_a_usage_error(self):
        result = run_cli("decode", "hello world")
        assert 2 == result.returncode
        assert "no encoded authorization message" in result.stderr

    def test_profile_option_selects_credentials(self, sts, tmp_path):
        credentials = tmp_path / "credentials"
        credentials.write_text(
            "[picked]\naws_access_key_id = AKIAPICKEDTESTKEY000\naws_secret_access_key = s\n"
        )
        env = {
            "AWS_ENDPOINT_URL_STS": sts.url,
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        }
        result = run_cli("decode", "--profile", "picked", BLOB_OF["d013"], env=env)
        assert 0 == result.returncode
        assert ["AKIAPICKEDTESTKEY000"] == [c.access_key for c in sts.decode_calls()]


class TestScanDecodes:
    def test_scan_decodes_and_the_config_cache_saves_the_second_run(self, sts, tmp_path):
        log = tmp_path / "app.log"
        log.write_text(
            "".join(
                f"2026-11-28T10:00:0{i}Z ERROR {PREFIX}{blob}\n"
                for i, blob in enumerate(BLOB_OF.values())
            )
        )
        config = tmp_path / "config.yaml"
        config.write_text(f"state_dir: {tmp_path / 'state'}\ndecode:\n  max_concurrency: 2\n")
        first = run_cli("scan", "-c", str(config), str(log), env=aws_env(sts))
        second = run_cli("scan", "-c", str(config), str(log), env=aws_env(sts))
        first_events, second_events = parse_events(first.stdout), parse_events(second.stdout)
        assert ["decoded"] * 4 == [e["decode_status"] for e in first_events]
        assert ["cached"] * 4 == [e["decode_status"] for e in second_events]
        assert 4 == len(sts.decode_calls())
        assert [e["event_id"] for e in first_events] == [e["event_id"] for e in second_events]

    def test_decode_disabled_in_config(self, sts, tmp_path):
        log = tmp_path / "app.log"
        log.write_text(f"{PREFIX}{BLOB_OF['d003']}\n")
        config = tmp_path / "config.yaml"
        config.write_text("decode:\n  enabled: false\n")
        result = run_cli("scan", "-c", str(config), str(log), env=aws_env(sts))
        (event,) = parse_events(result.stdout)
        assert "disabled" == event["decode_status"]
        assert "decode.enabled: false" in event["decode_error"]
        assert [] == sts.decode_calls()


class TestDecodeInputs:
    def test_a_blob_in_binary_stdin_is_decoded(self, sts):
        """Bytes that are not UTF-8 around the blob do not stop it being decoded."""
        data = b"\xff\xfe\x00garbage " + PASTED.encode() + b" \x80\x81\n"
        result = run_cli("decode", "--json", "-", input_bytes=data, env=aws_env(sts))
        (event,) = parse_events(result.stdout)
        assert (0, "decoded") == (result.returncode, event["decode_status"])

    def test_a_bare_blob_followed_by_dots_is_reported_as_truncated(self, sts):
        """``BLOB...`` is a blob cut short: reported as truncated, and no STS call is made."""
        result = run_cli("decode", "--json", BLOB_OF["d012"][:400] + "...", env=aws_env(sts))
        (event,) = parse_events(result.stdout)
        assert ("truncated", []) == (event["decode_status"], sts.decode_calls())
        assert 1 == result.returncode
