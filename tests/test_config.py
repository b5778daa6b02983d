"""config: the example passes, every mistake is named with file, line and key path."""

from __future__ import annotations

import pytest

from tests.conftest import REPO, run_cli
from watcher.config import (
    DEFAULT_CLOUDTRAIL_ERROR_CODES,
    CloudTrailSource,
    Config,
    FileSource,
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
            ("sources:\n  - type: syslog\n", "sources.0.type: expected 'file' or 'cloudtrail'"),
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
