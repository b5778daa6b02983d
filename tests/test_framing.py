"""sources.framing and the file source's `format`: container lines, structured-log times,
and the real `scan` command over CRI, docker and wrapped Terraform output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import parse_events, run_cli
from watcher.config import parse_config
from watcher.errors import ConfigError
from watcher.extract import find_denials, structured_timestamp
from watcher.sources.framing import Frame, parse_frame

DENIAL = "User: arn:aws:iam::111122223333:user/ana is not authorized to perform: s3:GetObject"


class TestParseFrame:
    def test_cri_final_line(self):
        """'<time> <stream> F <msg>': the message, its stream, and the time in UTC with ms."""
        line = b"2026-11-28T10:20:01.123456789+01:00 stdout F hello world"
        assert Frame(
            b"hello world", "stdout", partial=False, timestamp="2026-11-28T09:20:01.123Z"
        ) == parse_frame(line, "auto")

    def test_cri_partial_line(self):
        """A 'P' tag marks a partial: the message goes on in a later line of the stream."""
        frame = parse_frame(b"2026-11-28T09:20:01Z stderr P first half", "cri")
        assert (b"first half", "stderr", True) == (frame.body, frame.stream, frame.partial)

    def test_docker_line_without_newline_is_partial(self):
        """docker's json-file: a log that does not end in \\n continues in the next record."""
        whole = json.dumps({"log": "a\n", "stream": "stdout", "time": "2026-11-28T09:20:01Z"})
        part = json.dumps({"log": "a", "stream": "stderr", "time": "2026-11-28T09:20:01Z"})
        assert [(b"a", False), (b"a", True)] == [
            (frame.body, frame.partial)
            for frame in (parse_frame(whole.encode(), "docker"), parse_frame(part.encode(), "auto"))
        ]

    def test_plain_and_unframed_lines_are_left_alone(self):
        """format: plain never unwraps; auto leaves a line that is neither CRI nor docker."""
        cri = b"2026-11-28T09:20:01Z stdout F text"
        assert [
            Frame(cri, None, partial=False, timestamp=None),
            Frame(b"{not json", None, partial=False, timestamp=None),
        ] == [
            parse_frame(cri, "plain"),
            parse_frame(b"{not json", "auto"),
        ]

    def test_broken_docker_record_is_read_as_text(self):
        """A docker-looking line that is not valid JSON loses nothing: it stays the text."""
        line = b'{"log":"User: x is not authorized to perform: a:B'
        assert Frame(line, None, partial=False, timestamp=None) == parse_frame(line, "docker")


class TestStructuredTimestamp:
    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            ('{"level":"error","ts":1651073143.6192567,"msg":"x"}', "2022-04-27T15:25:43.619Z"),
            ('{"level":"error","ts":"2026-11-28T09:20:01.250Z"}', "2026-11-28T09:20:01.250Z"),
            ('{"time":"2026-11-28T10:20:01+01:00","level":"error"}', "2026-11-28T09:20:01.000Z"),
            (
                '{"@timestamp":"2026-11-28T09:20:01.5Z","log.level":"error"}',
                "2026-11-28T09:20:01.500Z",
            ),
            ('{"timestamp":1764321601250,"level":"ERROR"}', "2025-11-28T09:20:01.250Z"),
            ('level=error ts=2026-11-28T09:20:01.25Z msg="x"', "2026-11-28T09:20:01.250Z"),
            ('time="2026-11-28T09:20:01Z" level=error msg=x', "2026-11-28T09:20:01.000Z"),
        ],
    )
    def test_zap_logrus_bunyan_ecs_logfmt_times(self, line, expected):
        """ts, time, @timestamp, timestamp: RFC 3339, epoch seconds or milliseconds."""
        assert expected == structured_timestamp(line)

    def test_a_small_number_is_a_duration_not_a_time(self):
        """'time=12' in a message is not 1970."""
        assert structured_timestamp("request done time=12 status=200") is None

    def test_json_denial_gets_its_ts_as_timestamp(self):
        """A Kubernetes controller's JSON denial line: the finding's time is its ts."""
        line = (
            f'{{"level":"error","ts":"2026-11-28T09:20:01.250Z","error":"AccessDenied: {DENIAL}"}}'
        )
        (finding,) = find_denials(line)
        assert "2026-11-28T09:20:01.250Z" == finding.timestamp


class TestFormatOption:
    def test_default_is_auto(self):
        """A file source without `format` decides per line by content."""
        config = parse_config("sources:\n  - type: file\n    paths: [a]\n")
        assert "auto" == config.sources[0].format

    @pytest.mark.parametrize("value", ["auto", "plain", "cri", "docker"])
    def test_each_framing_is_accepted(self, value):
        """The four values the issue names."""
        config = parse_config(f"sources:\n  - type: file\n    paths: [a]\n    format: {value}\n")
        assert value == config.sources[0].format

    def test_unknown_framing_names_the_line_and_the_choices(self):
        """check-config's message says where and what is allowed."""
        text = "sources:\n  - type: file\n    paths: [a]\n    format: journald\n"
        with pytest.raises(ConfigError) as caught:
            parse_config(text, "c.yaml")
        assert (
            "c.yaml:4: sources.0.format: expected one of auto, plain, cri, docker, got 'journald'"
        ) == str(caught.value)


class TestScanCommand:
    def test_cri_log_split_into_partials_is_one_event_with_the_runtime_time(self, tmp_path: Path):
        """scan over a CRI file: P+F joined, the ARN whole, the timestamp the runtime's."""
        log = tmp_path / "pod.log"
        head, tail = DENIAL[:50], DENIAL[50:]
        log.write_text(
            f"2026-11-28T09:20:02.250118Z stderr P {head}\n"
            "2026-11-28T09:20:02.250200Z stdout F unrelated\n"
            f"2026-11-28T09:20:02.250309Z stderr F {tail}\n",
            encoding="utf-8",
        )
        result = run_cli("scan", "--no-decode", str(log))
        (event,) = parse_events(result.stdout)
        assert (0, "2026-11-28T09:20:02.250Z", "s3:GetObject", DENIAL) == (
            event["source_offset"],
            event["timestamp"],
            event["action"],
            event["raw"],
        )

    def test_wrapped_terraform_box_is_one_event_with_its_context(self, tmp_path: Path):
        """The README's Terraform example: one event, the sentence and the SDK chain joined."""
        log = tmp_path / "terraform.log"
        log.write_text(
            "│ Error: creating IAM Role (runner): operation error IAM: CreateRole, https response\n"
            "│ error StatusCode: 403, RequestID: 5a0c1f7e-8d3b-4c1e-9f0a-2b7d6e4c3a11, api error\n"
            "│ AccessDenied: User: arn:aws:sts::111122223333:assumed-role/ci/gha is not\n"
            "│ authorized to perform: iam:CreateRole on resource:\n"
            "│ arn:aws:iam::111122223333:role/runner with an explicit deny in a service control\n"
            "│ policy\n"
            "│\n",
            encoding="utf-8",
        )
        result = run_cli("scan", "--no-decode", str(log))
        (event,) = parse_events(result.stdout)
        assert (
            "CreateRole",
            "5a0c1f7e-8d3b-4c1e-9f0a-2b7d6e4c3a11",
            "arn:aws:sts::111122223333:assumed-role/ci/gha",
            "arn:aws:iam::111122223333:role/runner",
            True,
            "service control",
        ) == (
            event["operation"],
            event["request_id"],
            event["principal_arn"],
            event["resource"],
            event["explicit_deny"],
            event["policy_type"],
        )
