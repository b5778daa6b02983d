"""config: the example passes, every mistake is named with file, line and key path."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from tests.conftest import REPO, run_cli
from watcher.config import (
    DEFAULT_CLOUDTRAIL_ERROR_CODES,
    CloudTrailSource,
    CloudWatchLogsSource,
    Config,
    FileSource,
    JournaldSource,
    S3Source,
    S3SqsSource,
    load_config,
    parse_config,
    parse_duration,
)
from watcher.errors import ConfigError


class TestExample:
    def test_shipped_example_loads_with_every_section(self):
        """config/authz-watcher.yaml is valid and shows every section of the design."""
        config = load_config(REPO / "config" / "authz-watcher.yaml")
        file_source, trail_source = config.sources
        assert isinstance(file_source, FileSource)
        assert isinstance(trail_source, CloudTrailSource)
        assert ("end", 1048576) == (file_source.start_at, file_source.max_line_bytes)
        assert DEFAULT_CLOUDTRAIL_ERROR_CODES == trail_source.error_codes
        assert 7 * 86400 == config.decode.cache_ttl_seconds
        assert ["repeated-denials"] == [rule.name for rule in config.alerts]
        assert ["stdout", "file"] == [sink.type for sink in config.sinks]

    def test_shipped_example_shows_every_option_of_a_file_source(self):
        """The example says it shows every option: a file source's, each with its default."""
        example = yaml.safe_load((REPO / "config" / "authz-watcher.yaml").read_text())
        shown = set(example["sources"][0])
        assert {field.name for field in dataclasses.fields(FileSource)} <= shown
        file_source = load_config(REPO / "config" / "authz-watcher.yaml").sources[0]
        defaults = FileSource(paths=file_source.paths, exclude=file_source.exclude)
        assert defaults == file_source

    def test_empty_file_means_defaults(self):
        assert Config(path="x.yaml") == parse_config("", "x.yaml")


class TestErrors:
    def error_of(self, text: str) -> str:
        with pytest.raises(ConfigError) as info:
            parse_config(text, "c.yaml")
        return str(info.value)

    def test_unknown_key_suggests_the_right_one_with_its_line(self):
        text = "sources:\n  - type: file\n    paths: [a]\n    start_att: end\n"
        assert (
            "c.yaml:4: sources.0.start_att: unknown key (did you mean 'start_at'?)"
            == self.error_of(text)
        )

    def test_an_empty_string_is_called_empty(self):
        """It said "expected a non-empty string, got a string" (an outside tester)."""
        text = "sources:\n  - type: s3\n    bucket: trail\n    prefix: ''\n"
        assert self.error_of(text).endswith(
            "sources.0.prefix: expected a non-empty string, got an empty one"
        )

    def test_unknown_top_level_key(self):
        assert "c.yaml:2: sinkz: unknown key (did you mean 'sinks'?)" == self.error_of(
            "state_dir: /x\nsinkz: []\n"
        )

    def test_unclosed_bracket_names_the_line_where_it_opens(self):
        """An unclosed ``[`` on line 3 of 3 is reported on line 3, not after the last line."""
        expected = (
            "c.yaml:3: invalid YAML: this flow sequence is never closed "
            "(found the end of the file at line 4)"
        )
        assert expected == self.error_of("sources:\n  - type: file\n    paths: [a\n")

    def test_unclosed_quote_names_the_line_where_it_opens(self):
        """A quoted scalar left open names its opening line as well as where parsing stopped."""
        message = self.error_of('state_dir: "/var/lib\nsources: []\n')
        expected = (
            "c.yaml:1: invalid YAML: this quoted scalar is never closed "
            "(found the end of the file at line 3)"
        )
        assert expected == message

    def test_syntax_error_without_an_open_construct_names_where_parsing_stopped(self):
        """A stray tab is a problem with no enclosing construct: its own line is named."""
        assert self.error_of("a: 1\n\tb: 2\n").startswith("c.yaml:2: invalid YAML: ")

    def test_wrong_type_names_the_key_path(self):
        expected = (
            "c.yaml:2: decode.max_concurrency: expected a whole number greater than zero, "
            "got 'many'"
        )
        assert expected == self.error_of("decode:\n  max_concurrency: many\n")

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ("sources:\n  - type: syslog\n", "sources.0.type: expected one of 'file'"),
            ("sources:\n  - type: file\n", "sources.0: missing required key 'paths'"),
            ("sources:\n  - type: file\n    paths: []\n", "must name at least one path"),
            ("sources:\n  - type: file\n    paths: [a]\n    start_at: middle\n", "start_at"),
            ("decode:\n  cache_ttl: 7x\n", "decode.cache_ttl: expected a duration"),
            ("decode:\n  enabled: 'yes'\n", "decode.enabled: expected true or false"),
            ("decode:\n  accounts:\n    '123': {profile: p}\n", "an account id is 12 digits"),
            (
                "decode:\n  accounts:\n    '111122223333': {}\n",
                "give exactly one of 'profile' or 'role_arn'",
            ),
            ("alerts:\n  - threshold: 5\n", "alerts.0: missing required key 'name'"),
            ("alerts:\n  - name: a\n    threshold: 0\n", "alerts.0.threshold"),
            ("alerts:\n  - name: a\n  - name: a\n", "duplicate rule name 'a'"),
            ("sinks:\n  - type: file\n", "sinks.0: missing required key 'path'"),
            ("sinks:\n  - type: kafka\n", "sinks.0.type: expected one of stdout"),
            ("sinks:\n  - type: stdout\n    events: [denial]\n", "unknown event type 'denial'"),
            ("sinks:\n  - type: stdout\n    url: x\n", "sinks.0.url: unknown key"),
            (
                "sinks:\n  - type: webhook\n    url: https://example.com/h\n    max_outbox: 0\n",
                "sinks.0.max_outbox: expected a whole number greater than zero, got 0",
            ),
            ("sinks:\n  - type: file\n    path: x\n    max_outbox: 9\n", "sinks.0.max_outbox"),
            ("metrics:\n  listen: everywhere\n", "metrics.listen: expected host:port"),
            ("- just\n- a list\n", "(top level): expected a mapping"),
        ],
    )
    def test_each_mistake_gets_a_clear_message(self, text, fragment):
        assert fragment in self.error_of(text)


class TestDurations:
    @pytest.mark.parametrize(
        ("value", "seconds"),
        [(90, 90.0), ("30s", 30.0), ("10m", 600.0), ("1h", 3600.0), ("7d", 604800.0), ("2.5", 2.5)],
    )
    def test_units(self, value, seconds):
        assert seconds == parse_duration(value)

    @pytest.mark.parametrize("value", ["7x", "", "-1s", 0, True, None, "1 week"])
    def test_rejects(self, value):
        with pytest.raises(ValueError, match=r"duration|greater than zero"):
            parse_duration(value)


class TestCheckConfigCommand:
    def test_valid_config_exits_0(self):
        result = run_cli("check-config", "-c", "config/authz-watcher.yaml")
        assert (0, "") == (result.returncode, result.stderr)
        assert "OK" in result.stdout

    def test_invalid_config_exits_2_with_file_and_line_and_no_traceback(self, tmp_path):
        path = tmp_path / "bad.yaml"
        path.write_text("decode:\n  region: [1, 2]\n")
        result = run_cli("check-config", "-c", str(path))
        assert 2 == result.returncode
        assert f"{path}:2: decode.region:" in result.stderr
        assert "Traceback" not in result.stderr

    def test_missing_file_exits_2(self, tmp_path):
        result = run_cli("check-config", "-c", str(tmp_path / "nope.yaml"))
        assert 2 == result.returncode
        assert "No such file or directory" in result.stderr

    def test_config_path_from_environment(self, tmp_path):
        path = tmp_path / "env.yaml"
        path.write_text("state_dir: /tmp/x\n")
        result = run_cli("check-config", env={"AUTHZ_WATCHER_CONFIG": str(path)})
        assert 0 == result.returncode
        assert str(path) in result.stdout

    def test_binary_garbage_as_config_is_a_clear_error(self, tmp_path):
        path = tmp_path / "garbage.yaml"
        path.write_bytes(b"\xff\xfe\x00\x01garbage")
        result = run_cli("check-config", "-c", str(path))
        assert 2 == result.returncode
        assert "Traceback" not in result.stderr
        assert str(path) in result.stderr


class TestExternalId:
    ROLE = "arn:aws:iam::111122223333:role/decoder"

    def accounts(self, external_id: str) -> str:
        return (
            "decode:\n  accounts:\n    '111122223333':\n"
            f"      role_arn: {self.ROLE}\n      external_id: {external_id!r}\n"
        )

    @pytest.mark.parametrize("external_id", ["x", "a b", "x" * 1225, "tab\there"])
    def test_what_assume_role_would_refuse_is_rejected_with_its_line(self, external_id):
        """2 to 1,224 characters of [\\w+=,.@:/-], as AssumeRole requires."""
        with pytest.raises(ConfigError) as info:
            parse_config(self.accounts(external_id), "c.yaml")
        assert "c.yaml:5: decode.accounts.111122223333.external_id: an external_id is 2" in str(
            info.value
        )

    @pytest.mark.parametrize("external_id", ["ab", "ext-123", "a+b=c,d.e@f:g/h_i", "x" * 1224])
    def test_what_assume_role_accepts_passes(self, external_id):
        """The boundaries and every allowed punctuation mark pass."""
        config = parse_config(self.accounts(external_id), "c.yaml")
        assert external_id == config.decode.accounts["111122223333"].external_id


class TestRejectedBeforeRun:
    """Mistakes that used to pass check-config and then fail or mislead at run time."""

    def error_of(self, text: str) -> str:
        with pytest.raises(ConfigError) as info:
            parse_config(text, "c.yaml")
        return str(info.value)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            (
                "sinks:\n  - type: webhook\n    url: ftp://example.com/hook\n",
                "c.yaml:3: sinks.0.url: expected an http:// or https:// URL, got a ftp one",
            ),
            (
                "metrics:\n  listen: 127.0.0.1:99999\n",
                "c.yaml:2: metrics.listen: a port is 1 to 65535, e.g. 127.0.0.1:9464",
            ),
            (
                "alerts:\n  - name: a\n    exclude: [{}]\n",
                "c.yaml:3: alerts.0.exclude: entry 0 is empty, which would exclude every event",
            ),
            (
                "alerts:\n  - name: a\n    match: {error_code: []}\n",
                "c.yaml:3: alerts.0.match: error_code: an empty list matches no event; "
                "give a glob or remove it",
            ),
            (
                "alerts:\n  - name: a\n    group_by: [principle_arn]\n",
                "c.yaml:3: alerts.0.group_by: 'principle_arn' is not a key of the denial event "
                "(did you mean 'principal_arn'?)",
            ),
            (
                "alerts:\n  - name: a\n    match: {acton: 's3:*'}\n",
                "c.yaml:3: alerts.0.match: 'acton' is not a key of the denial event "
                "(did you mean 'action'?)",
            ),
            (
                "alerts:\n  - name: a\n    exclude: [{principle_arn: x}]\n",
                "c.yaml:3: alerts.0.exclude: 'principle_arn' is not a key of the denial event "
                "(did you mean 'principal_arn'?)",
            ),
            (
                "decode:\n  enabled: true\n  region: us-east-1\n  enabled: false\n",
                "c.yaml:4: decode.enabled: duplicate key (first given on line 2; "
                "YAML would silently keep only the last one)",
            ),
        ],
    )
    def test_each_is_rejected_with_line_key_and_suggestion(self, text, expected):
        """File, line, key and what to do, for every mistake of the issue's list."""
        assert expected == self.error_of(text)

    def test_a_file_sink_path_that_is_a_directory(self, tmp_path):
        """The events file must be a file: a directory is named as the mistake."""
        message = self.error_of(f"sinks:\n  - type: file\n    path: {tmp_path}\n")
        assert f"c.yaml:3: sinks.0.path: {tmp_path} is a directory" in message

    def test_what_is_still_accepted(self):
        """An https URL from the environment, a real port, event keys from CloudTrail."""
        config = parse_config(
            "sinks:\n  - type: webhook\n    url: '${HOOK}'\nmetrics:\n  listen: 127.0.0.1:65535\n"
            "alerts:\n  - name: a\n    group_by: [source_ip]\n    match: {action: 's3:*'}\n",
            "c.yaml",
        )
        assert ("${HOOK}", ("source_ip",)) == (config.sinks[0].url, config.alerts[0].group_by)

    def test_run_refuses_nothing_that_check_config_accepted_about_metrics(self, tmp_path):
        """check-config exits 2 on the port that made run exit 1."""
        path = tmp_path / "c.yaml"
        path.write_text("metrics:\n  listen: 127.0.0.1:99999\n")
        result = run_cli("check-config", "-c", str(path))
        assert (2, True) == (result.returncode, "a port is 1 to 65535" in result.stderr)


class TestRemoteSourceTypes:
    """The source types of design.md section 4 beyond files: their shape and their mistakes."""

    def test_each_type_with_its_defaults(self):
        """Only the required keys given: every default is the documented one."""
        config = parse_config(
            "sources:\n"
            "  - {type: s3, bucket: trail}\n"
            "  - {type: s3_sqs, queue_url: 'https://sqs.us-east-1.amazonaws.com/1/q'}\n"
            "  - {type: journald}\n"
            "  - {type: cloudwatch_logs, log_groups: ['/aws/lambda/*']}\n",
            "c.yaml",
        )
        s3, s3_sqs, journald, logs = config.sources
        assert S3Source(bucket="trail") == s3
        assert ("AWSLogs/", 60.0, "end") == (s3.prefix, s3.poll_interval_seconds, s3.start_at)
        assert S3SqsSource(queue_url="https://sqs.us-east-1.amazonaws.com/1/q") == s3_sqs
        assert (300.0, 4, 1, 5, None) == (
            s3_sqs.visibility_timeout_seconds,
            s3_sqs.workers,
            s3_sqs.processes,
            s3_sqs.max_receive_count,
            s3_sqs.key_pattern,
        )
        assert JournaldSource() == journald
        assert CloudWatchLogsSource(log_groups=("/aws/lambda/*",)) == logs
        assert 10.0 == logs.poll_interval_seconds

    def test_start_at_takes_a_date_for_s3(self):
        """An unquoted date (which YAML reads as a date) and a quoted one are the same."""
        for text in ("2026-11-01", "'2026-11-01'"):
            config = parse_config(f"sources: [{{type: s3, bucket: b, start_at: {text}}}]")
            source = config.sources[0]
            assert isinstance(source, S3Source)
            assert "2026-11-01" == source.start_at

    @pytest.mark.parametrize(
        "text",
        [
            "[{type: journald, units: [a]}, {type: journald, units: [b.service]}]",
            "[{type: journald, units: [a]}, {type: journald, identifiers: [a]}]",
            "[{type: journald}, {type: journald, directory: /var/log/journal/remote}]",
            "[{type: journald, directory: /d1}, {type: journald, directory: /d2}]",
        ],
    )
    def test_journald_sources_that_share_no_entry_for_certain_are_accepted(self, text):
        """Different units or identifiers, or different journal directories: each entry
        is read by one source (a unit and an identifier filter may meet; that is allowed)."""
        assert 2 == len(parse_config(f"sources: {text}", "c.yaml").sources)

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ("[{type: s3}]", "c.yaml:1: sources.0: missing required key 'bucket'"),
            ("[{type: s3, bucket: b, start_at: '2026-13-01'}]", "sources.0.start_at: not a date"),
            ("[{type: s3, bucket: b, start_at: 2026-13-01}]", "c.yaml:1: '2026-13-01' is not a"),
            ("[{type: s3_sqs, queue_url: q, workers: 0}]", "sources.0.workers: expected"),
            ("[{type: s3_sqs, queue_url: q, processes: -1}]", "from 0 to 64, got -1"),
            ("[{type: s3_sqs, queue_url: q, processes: 65}]", "from 0 to 64, got 65"),
            ("[{type: s3_sqs, queue_url: q, processes: true}]", "from 0 to 64, got True"),
            ("[{type: s3_sqs, queue_url: q, max_receive_count: -2}]", "or -1, got -2"),
            ("[{type: s3_sqs, queue_url: q, key_pattern: '('}]", "not a regular expression"),
            ("[{type: s3_sqs, queue_url: q, visibility_timeout: 13h}]", "1 second to 12 hours"),
            ("[{type: cloudwatch_logs, log_groups: []}]", "must name at least one log group"),
            ("[{type: journald, unit: [a]}]", "sources.0.unit: unknown key (did you mean 'units'"),
            (
                "[{type: journald}, {type: journald, units: [a]}]",
                "sources.1: reads journal entries sources.0 reads too (one of them reads every",
            ),
            (
                "[{type: journald, units: [sshd, b]}, {type: journald, units: [sshd.service]}]",
                "sources.0 reads too (both read sshd.service), so each would be emitted twice",
            ),
            (
                "[{type: journald, identifiers: [sudo]}, {type: file, paths: [x]},"
                " {type: journald, identifiers: [cron, sudo]}]",
                "sources.2: reads journal entries sources.0 reads too (both read sudo)",
            ),
            ("[{type: kafka}]", "expected one of 'file', 'cloudtrail', 's3'"),
        ],
    )
    def test_mistakes_are_named(self, text, fragment):
        with pytest.raises(ConfigError) as info:
            parse_config(f"sources: {text}", "c.yaml")
        assert fragment in str(info.value)


class TestSinkTimeout:
    def test_a_remote_sink_timeout_over_20s_is_refused_with_why(self):
        """An outside tester set timeout_seconds: 60 on a webhook whose receiver answered after
        40 s: a reload waited for that delivery, no watchdog ping for 38 s (the unit's
        WatchdogSec is 30 s), and SIGTERM took 39 s. At most 20 s now."""
        text = "sinks:\n  - type: webhook\n    url: https://h.example.com/x\n"
        with pytest.raises(ConfigError) as info:
            parse_config(text + "    timeout_seconds: 60\n", "c.yaml")
        assert "sinks.0.timeout_seconds" in str(info.value)
        assert "at most 20s" in str(info.value)
        assert "watchdog" in str(info.value)
        config = parse_config(text + "    timeout_seconds: 20s\n", "c.yaml")
        assert 20.0 == config.sinks[0].timeout_seconds


class TestWebhookUrls:
    """A webhook URL that can never be delivered to is refused when the config is read, with
    the entry and the key and what to do; never with the URL (it is often the credential)."""

    def error_of(self, text: str) -> str:
        with pytest.raises(ConfigError) as info:
            parse_config(text, "c.yaml")
        return str(info.value)

    @pytest.mark.parametrize(
        ("url", "secrets", "reason"),
        [
            (
                "http://[::1/x",
                ["[::1", "/x"],
                "not a valid URL (Invalid IPv6 URL); expected e.g. https://hooks.example.com/path",
            ),
            (
                "http://127.0.0.1:18082/x y",
                ["127.0.0.1", "18082", "x y"],
                "contains a space; write a space in the path or query as %20",
            ),
            (
                "http://127.0.0.1:18082/x\ny",
                ["127.0.0.1", "18082"],
                "contains a control character (a line break or a tab?); remove it "
                "(a ${VAR} read from a file may end with a newline)",
            ),
            (
                "http://127.0.0.1:18082/x\x1by",
                ["127.0.0.1", "18082"],
                "contains a control character (a line break or a tab?); remove it "
                "(a ${VAR} read from a file may end with a newline)",
            ),
            (
                "http://user:pw@127.0.0.1:18082/ui",
                ["user:pw", ":pw@", "127.0.0.1", "/ui"],
                "has a user name or password before the host (user:password@), which the "
                "webhook sink does not send; remove it and give the credentials in 'headers' "
                'instead, e.g. Authorization: "Basic ${HOOK_CREDENTIALS}"',
            ),
            (
                "http://127.0.0.1:99999/x",
                ["127.0.0.1", "99999"],
                "the port is not a number from 1 to 65535",
            ),
            ("http://hooks.example.net:0/x", ["hooks.example.net"], "the port is not a number"),
            ("http://hooks.example.net:8o/x", ["hooks.example.net", "8o"], "the port is not"),
            (
                "http:///services/T0/B0/s3cr3t",
                ["services", "s3cr3t"],
                "has no host; expected e.g. https://hooks.example.com/path",
            ),
            (
                "ftp://hooks.example.net/s3cr3t",
                ["hooks.example.net", "s3cr3t"],
                "expected an http:// or https:// URL, got a ftp one",
            ),
            (
                "hooks.example.net/services/s3cr3t",
                ["hooks.example.net", "s3cr3t"],
                "expected an http:// or https:// URL, got a relative one",
            ),
            (
                "admin:s3cr3t@hooks.example.net/x",
                ["admin", "s3cr3t", "hooks.example.net"],
                "expected an http:// or https:// URL (it must start with http:// or https://)",
            ),
            (
                "https://hooks.example.net/caf\u00e9?token=s3cr3t",
                ["hooks.example.net", "caf", "s3cr3t"],
                "has a character that is not ASCII in its path or query; percent-encode it",
            ),
            (
                "https://hooks.ex\uff03ample.net/s3cr3t",
                ["ample.net", "s3cr3t"],
                "not a valid URL (the host is not valid)",
            ),
            (
                "https://hooks.example.net/${TOKEN} x",
                ["hooks.example.net", "TOKEN"],
                "contains a space; write a space in the path or query as %20",
            ),
        ],
    )
    def test_a_url_that_cannot_work_is_refused_naming_entry_and_key_not_the_url(
        self, url, secrets, reason
    ):
        """The second sink's url, on line 4: its place and the reason, nothing of the URL."""
        message = self.error_of(
            f"sinks:\n  - type: stdout\n  - type: webhook\n    url: {json.dumps(url)}\n"
        )
        assert message.startswith(f"c.yaml:4: sinks.1.url: {reason}")
        assert url not in message
        assert [] == [secret for secret in secrets if secret in message]

    @pytest.mark.parametrize(
        "url",
        [
            "https://hooks.example.com/services/${SLACK_PATH}?token=a%20b&x=1",
            "${SLACK_WEBHOOK_URL}",
            "http://[::1]:18082/x",
            "HTTPS://hooks.example.com:443/x#fragment",
        ],
    )
    def test_urls_that_can_work_are_accepted_as_written(self, url):
        """A query, a ${VAR} anywhere, an IPv6 host, a port: kept unsubstituted as written."""
        config = parse_config(f"sinks:\n  - type: webhook\n    url: {json.dumps(url)}\n")
        assert url == config.sinks[0].url

    def test_two_webhooks_with_one_url_are_refused_naming_both(self):
        """They would share one outbox and take each other's events."""
        message = self.error_of(
            "sinks:\n"
            "  - {type: webhook, url: 'https://h.example.com/s3cr3t', events: [authz_alert]}\n"
            "  - {type: file, path: /tmp/events.jsonl}\n"
            "  - {type: webhook, url: 'https://h.example.com/s3cr3t', format: slack}\n"
        )
        assert (
            "c.yaml:4: sinks.2.url: the same url as sinks.0; one webhook sink per URL is "
            "supported (the two would share one outbox, and events meant for one would go out "
            "with the other's headers, format and events:): merge their events: into one sink, "
            "or give the receiver two URLs (e.g. a different path or query)"
        ) == message

    def test_two_webhooks_with_one_url_template_are_refused(self):
        """The same ``${VAR}`` twice is one URL whatever the environment says."""
        message = self.error_of(
            "sinks:\n  - {type: webhook, url: '${HOOK}'}\n  - {type: webhook, url: '${HOOK}'}\n"
        )
        assert message.startswith("c.yaml:3: sinks.1.url: the same url as sinks.0;")

    @pytest.mark.parametrize(
        "second",
        [
            "https://h.example.com/s3cr3t/alerts",
            "https://h.example.com/s3cr3t?sink=alerts",
            "http://h.example.com/s3cr3t",
        ],
    )
    def test_webhooks_with_urls_differing_by_path_or_query_are_accepted(self, second):
        config = parse_config(
            "sinks:\n"
            "  - {type: webhook, url: 'https://h.example.com/s3cr3t'}\n"
            f"  - {{type: webhook, url: '{second}'}}\n"
        )
        assert ["webhook", "webhook"] == [sink.type for sink in config.sinks]

    def test_two_sns_sinks_with_one_topic_are_refused_naming_both(self):
        """The SNS outbox is keyed by the topic ARN, so they would share one too."""
        topic = "arn:aws:sns:us-east-1:111122223333:alerts"
        message = self.error_of(
            f"sinks:\n  - {{type: sns, topic_arn: '{topic}'}}\n"
            f"  - {{type: sns, topic_arn: '{topic}', region: us-east-1}}\n"
        )
        assert message.startswith(
            "c.yaml:3: sinks.1.topic_arn: the same topic_arn as sinks.0; one sns sink per topic "
            "is supported"
        )


class TestWebhookUrlsInCheckConfig:
    """``check-config`` checks the URL the environment gives, and exits 2, never 1."""

    def check(self, tmp_path, urls: list[str], env: dict[str, str] | None = None):
        path = tmp_path / "c.yaml"
        sinks = "".join(f"  - type: webhook\n    url: {json.dumps(url)}\n" for url in urls)
        path.write_text(f"sinks:\n{sinks}")
        return path, run_cli("check-config", "-c", str(path), env=env)

    def test_an_unclosed_ipv6_bracket_exits_2_not_an_internal_error(self, tmp_path):
        path, result = self.check(tmp_path, ["http://[::1/x"])
        assert 2 == result.returncode
        assert f"{path}:3: sinks.0.url: not a valid URL (Invalid IPv6 URL)" in result.stderr
        assert "internal error" not in result.stderr

    def test_a_url_with_a_query_from_the_environment_passes(self, tmp_path):
        _, result = self.check(
            tmp_path, ["https://hooks.example.com/services/${SLACK_PATH}?a=1&b=2"],
            env={"SLACK_PATH": "T0/B0/s3cr3t"},
        )  # fmt: skip
        assert (0, "") == (result.returncode, result.stderr)

    def test_an_unset_variable_still_fails(self, tmp_path):
        path, result = self.check(tmp_path, ["https://hooks.example.com/${SLACK_PATH}"])
        assert 2 == result.returncode
        assert f"{path}: sinks.0: environment variable SLACK_PATH is not set" in result.stderr

    def test_a_variable_giving_a_bad_url_fails_without_its_value(self, tmp_path):
        """A token read with its newline: refused, and neither value nor URL printed."""
        path, result = self.check(
            tmp_path, ["https://hooks.example.com/${SLACK_PATH}"],
            env={"SLACK_PATH": "T0/B0/s3cr3t\n"},
        )  # fmt: skip
        assert 2 == result.returncode
        assert (
            f"{path}: sinks.0.url: contains a control character (a line break or a tab?); "
            "remove it (a ${VAR} read from a file may end with a newline) (once its ${VAR}s "
            "are substituted)"
        ) in result.stderr
        assert [] == [s for s in ("s3cr3t", "hooks.example.com") if s in result.stderr]

    def test_two_variables_giving_one_url_are_refused_naming_both(self, tmp_path):
        path, result = self.check(
            tmp_path, ["${HOOK_A}", "${HOOK_B}"],
            env={"HOOK_A": "https://h.example.com/s3cr3t", "HOOK_B": "https://h.example.com/s3cr3t"},
        )  # fmt: skip
        assert 2 == result.returncode
        assert (
            f"{path}: sinks.1.url: the same url as sinks.0; one webhook sink per URL is supported"
        ) in result.stderr
        assert "s3cr3t" not in result.stderr
