"""Hostile text and misbehaving peers (issue 17): each row of the issue, against real parts.

Principal and resource names are attacker-controlled; STS may be a captive proxy; a token may
carry a newline; a sink path may be a planted symbolic link; a config may be a YAML bomb.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from tests.conftest import BLOB_OF, aws_env, fake_blob, parse_events, run_cli
from tests.sts_server import MALFORMED
from tests.test_daemon import Watcher, append, wait_for
from watcher.config import DecodeSettings
from watcher.decode import StsDecoder
from watcher.log import configure_logging
from watcher.model import DecodeStatus, Origin
from watcher.pipeline import DenialBuilder
from watcher.sinks.delivery import DeliveringSink
from watcher.sinks.webhook import WebhookDelivery
from watcher.state import StateStore

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ORIGIN = Origin(source_kind="file", source_path="/var/log/app.log", source_offset=0)
MENTIONS = "<!channel><!here><@U123ABC>"
HOSTILE_SLACK_LINE = (
    f"User: arn:aws:iam::123456789012:user/{MENTIONS} is not authorized to perform: "
    "s3:GetObject on resource: arn:aws:s3:::bucket/```<!channel> & more because no "
    "identity-based policy allows the s3:GetObject action"
)
DENIAL = (
    "User: arn:aws:iam::111122223333:user/ana is not authorized to perform: s3:GetObject "
    "on resource: arn:aws:s3:::b/k because no identity-based policy allows the s3:GetObject action"
)
TERMINAL_ATTACK = "\x1b]0;pwned\x07\x1b[2J\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"
HOSTILE_TERMINAL_LINE = (
    f"User: arn:aws:iam::123456789012:user/evil{TERMINAL_ATTACK} is not authorized to perform: "
    "s3:GetObject on resource: arn:aws:s3:::b/\x1b[31mred\rX because no identity-based policy "
    "allows the s3:GetObject action"
)


def build(text: str) -> list[dict]:
    return DenialBuilder(disabled_reason="off").events(text, ORIGIN, NOW)


@pytest.fixture
def store(tmp_path):
    state = StateStore(tmp_path / "state", configure_logging(io.StringIO()))
    yield state
    state.close()


def slack_sink(url: str, store: StateStore, logs: io.StringIO, **kwargs) -> DeliveringSink:
    delivery = WebhookDelivery(url, body_format="slack", headers={}, timeout_seconds=5.0)
    return DeliveringSink("slack", delivery, store, configure_logging(logs),
                          events=("authz_denial", "authz_alert"), **kwargs)  # fmt: skip


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIADEFAULTTESTKEY00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-not-real")


def decoder_for(sts, logs: io.StringIO) -> StsDecoder:
    settings = DecodeSettings(endpoint_url=sts.url, timeout_seconds=5.0)
    return StsDecoder(settings, configure_logging(logs))


@pytest.mark.usefixtures("credentials")
class TestMalformedSts:
    @pytest.mark.parametrize(
        ("fault", "reason"),
        [
            ("html", "not STS XML (a proxy's page?): Unable to parse response (mismatched tag"),
            ("garbage", "not STS XML (a proxy's page?): Unable to parse response (not well-"),
            ("truncated_xml", "not STS XML (a proxy's page?): Unable to parse response (unclosed"),
            ("deep_xml", "STS returned a message that is not JSON"),
            ("deep_json", "STS returned JSON nested too deeply"),
        ],
    )
    def test_a_malformed_reply_fails_that_blob_with_the_reason(self, sts, fault, reason):
        """A 200 answer that is no STS reply is that blob ``failed`` with the reason."""
        sts.behaviour.always = fault
        result = decoder_for(sts, io.StringIO()).decode(BLOB_OF["d003"])
        assert DecodeStatus.FAILED == result.status
        assert reason in (result.error or "")
        assert len(result.error or "") <= 300

    def test_xml_external_entity_is_never_resolved(self, sts, tmp_path):
        """An external entity in a reply is not fetched: the file's content appears nowhere."""
        secret_file = tmp_path / "secret.txt"
        secret_file.write_text("contents-of-a-private-file")
        sts.behaviour.xxe_target = str(secret_file)
        sts.behaviour.always = "xxe"
        logs = io.StringIO()
        result = decoder_for(sts, logs).decode(BLOB_OF["d003"])
        assert DecodeStatus.FAILED == result.status
        assert "undefined entity" in (result.error or "")
        assert "contents-of-a-private-file" not in f"{result}{logs.getvalue()}"

    @pytest.mark.parametrize("fault", MALFORMED)
    def test_scan_emits_every_denial_when_sts_misbehaves(self, sts, tmp_path, fault):
        """Six denials (five blobs, one plain text): six events, the blobs failed with the
        reason, the plain-text one unaffected, exit status 0."""
        sts.behaviour.always = fault
        prefix = "Encoded authorization failure message: "
        lines = [f"req {i} {prefix}{fake_blob(i)}" for i in range(5)]
        lines.append(
            "User: arn:aws:iam::111122223333:user/ana is not authorized to perform: "
            "s3:GetObject on resource: arn:aws:s3:::b/k because no identity-based policy allows "
            "the s3:GetObject action"
        )
        log = tmp_path / "app.log"
        log.write_text("\n".join(lines) + "\n")
        result = run_cli("scan", str(log), env=aws_env(sts))
        events = parse_events(result.stdout)
        statuses = sorted(event["decode_status"] for event in events)
        assert (0, ["failed"] * 5 + ["not_needed"]) == (result.returncode, statuses)
        assert all(e["decode_error"] for e in events if e["decode_status"] == "failed")
        assert "internal error" not in result.stderr


@pytest.mark.usefixtures("credentials")
def test_a_captive_proxy_does_not_stop_the_decode_command(sts):
    """``decode`` with STS answering HTML: the event is printed, failed with the reason."""
    sts.behaviour.always = "html"
    result = run_cli("decode", "--json", BLOB_OF["d003"], env=aws_env(sts))
    (event,) = parse_events(result.stdout)
    assert (1, "failed") == (result.returncode, event["decode_status"])
    assert "a proxy's page?" in event["decode_error"]


class TestDaemon:
    def test_the_daemon_keeps_running_and_saves_its_offset_when_sts_misbehaves(self, tmp_path, sts):
        """``run`` with STS answering a captive proxy's HTML: every denial is emitted (blobs
        failed with the reason), the daemon keeps running, and after a restart nothing is
        emitted twice (the offset was saved)."""
        sts.behaviour.always = "html"
        watcher = Watcher(tmp_path, env=aws_env(sts))
        watcher.config.write_text(
            watcher.config.read_text().replace(
                "decode:\n  enabled: false\n", f"decode:\n  endpoint_url: {sts.url}\n"
            )
        )
        prefix = "Encoded authorization failure message: "
        try:
            watcher.start()
            append(watcher.logs / "app.log", f"{prefix}{fake_blob(1)}", f"{prefix}{fake_blob(2)}",
                   DENIAL)  # fmt: skip
            wait_for(lambda: len(watcher.events()) == 3, "three events")
            assert watcher.proc is not None
            assert watcher.proc.poll() is None
            assert 0 == watcher.stop()
            watcher.start()
            append(watcher.logs / "app.log", DENIAL.replace("ana", "bob"))
            wait_for(lambda: len(watcher.events()) == 4, "the event after the restart")
            assert 0 == watcher.stop()
        finally:
            watcher.kill()
        statuses = [event["decode_status"] for event in watcher.events()]
        assert ["failed", "failed", "not_needed", "not_needed"] == statuses
        assert all("a proxy's page?" in e["decode_error"] for e in watcher.events()[:2])
