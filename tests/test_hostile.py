"""Hostile text and misbehaving peers (issue 17): each row of the issue, against real parts.

Principal and resource names are attacker-controlled; STS may be a captive proxy; a token may
carry a newline; a sink path may be a planted symbolic link; a config may be a YAML bomb.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import shutil
import signal
import tempfile
from collections import Counter
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.conftest import BLOB_OF, aws_env, fake_blob, parse_events, run_cli, validate_event
from tests.receiver import Receiver, slack_live_mentions
from tests.sts_server import MALFORMED
from tests.test_cli import run_in_terminal
from tests.test_daemon import Watcher, append, wait_for
from tests.test_sinks import FastClock
from tests.test_systemd import NotifySocket
from watcher.alerts import AlertEngine
from watcher.config import AlertRule, DecodeSettings, parse_config
from watcher.decode import StsDecoder
from watcher.errors import ConfigError
from watcher.events import RAW_MAX_BYTES, redact_secrets
from watcher.log import configure_logging
from watcher.model import DecodeStatus, Origin
from watcher.pipeline import DenialBuilder
from watcher.report import terminal_safe
from watcher.sinks.delivery import DeliveringSink, PermanentDeliveryError, RetryableDeliveryError
from watcher.sinks.file import FileSink
from watcher.sinks.webhook import SLACK_TEXT_MAX_CHARS, WebhookDelivery, slack_message
from watcher.state import StateStore

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ORIGIN = Origin(source_kind="file", source_path="/var/log/app.log", source_offset=0)
MENTIONS = "<!channel><!here><@U123ABC>"
HOSTILE_SLACK_LINE = (
    f"User: arn:aws:iam::123456789012:user/{MENTIONS} is not authorized to perform: "
    "s3:GetObject on resource: arn:aws:s3:::bucket/```<!channel>&more because no "
    "identity-based policy allows the s3:GetObject action"
)
DENIAL = (
    "User: arn:aws:iam::111122223333:user/ana is not authorized to perform: s3:GetObject "
    "on resource: arn:aws:s3:::b/k because no identity-based policy allows the s3:GetObject action"
)
OUR_LINE_START = '{"event":"authz_'  # how every line the sinks write begins
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


class TestSlack:
    def test_mentions_and_backticks_in_a_denial_ping_no_one(self, store):
        """Mentions in a principal, and a resource whose backticks would close the policy's
        code block, reach Slack escaped: visible as text, live for no one."""
        (event,) = build(HOSTILE_SLACK_LINE)
        with Receiver(slack=True) as receiver:
            sink = slack_sink(receiver.url, store, io.StringIO())
            sink.write(event)
            wait_for(lambda: receiver.received, "the Slack message")
            sink.close()
        text = receiver.received[0]["text"]
        assert [] == receiver.mentions
        assert "user/&lt;!channel&gt;&lt;!here&gt;&lt;@U123ABC&gt;" in text
        assert "&amp;more" in text
        assert 2 == text.count("```")  # only the code block's own fences

    def test_alert_group_values_are_escaped(self, store):
        """An alert's group (the principal again) is escaped the same way."""
        (event,) = build(HOSTILE_SLACK_LINE)
        rule = AlertRule(name="any", threshold=1)
        (alert,) = AlertEngine((rule,)).observe(event, 0.0)
        with Receiver(slack=True) as receiver:
            sink = slack_sink(receiver.url, store, io.StringIO())
            sink.write(alert)
            wait_for(lambda: receiver.received, "the Slack alert")
            sink.close()
        assert [] == receiver.mentions
        assert "&lt;@U123ABC&gt;" in receiver.received[0]["text"]

    def test_huge_text_is_cut_to_slacks_limit_with_a_note(self, store):
        """A 50,000-character resource is cut to the limit, with a note and the code block
        closed, instead of Slack refusing the whole message."""
        line = HOSTILE_SLACK_LINE.replace("bucket/", "bucket/" + "&k" * 25_000)
        (event,) = build(line)
        logs = io.StringIO()
        with Receiver(slack=True) as receiver:
            sink = slack_sink(receiver.url, store, logs)
            sink.write(event)
            wait_for(lambda: receiver.received or sink.failed_count, "the Slack answer")
            sink.close()
        (message,) = receiver.received
        text = message["text"]
        assert len(text) <= SLACK_TEXT_MAX_CHARS
        assert text.endswith("the whole event is in the JSON sinks)_")
        assert 0 == text.count("```") % 2
        assert [] == receiver.mentions
        body = text[: text.index("\n_(cut")].removesuffix("```")
        assert re.search(r"&(a|am|amp|l|lt|g|gt)?$", body) is None  # never half an entity

    def test_slack_shaped_receiver_sees_raw_mentions(self):
        """The receiver's reading of Slack is not vacuous: a raw mention outside code is live,
        inside code it is not."""
        assert ["<!channel>"] == slack_live_mentions("hi <!channel> ```<!here>``` `<@U1>`")


class TestHeaderInjection:
    def test_check_config_rejects_a_header_with_a_newline_naming_only_the_header(self, tmp_path):
        """A token read with its newline: check-config exits 2, names the header, and never
        prints the token."""
        config = tmp_path / "c.yaml"
        config.write_text(
            "sinks:\n  - type: webhook\n    url: http://127.0.0.1:9/hook\n"
            '    headers: {Authorization: "Bearer ${SIEM_TOKEN}"}\n'
        )
        with_newline = "tok-first-half\nX-Injected: tok-second-half"
        result = run_cli("check-config", "-c", str(config), env={"SIEM_TOKEN": with_newline})
        assert 2 == result.returncode
        assert "header 'Authorization' contains a line break" in result.stderr
        assert "tok-" not in result.stderr + result.stdout

    def test_building_the_sink_refuses_it_too(self, monkeypatch):
        """The daemon builds its webhook through the same check."""
        monkeypatch.setenv("SIEM_TOKEN", "abc\r\ndef")
        with pytest.raises(ConfigError, match="header 'Authorization'") as raised:
            WebhookDelivery("http://127.0.0.1:9/", body_format="json", timeout_seconds=1.0,
                            headers={"Authorization": "Bearer ${SIEM_TOKEN}"})  # fmt: skip
        assert "abc" not in str(raised.value)

    def test_sink_worker_survives_an_unexpected_error_without_leaking_it(self, store):
        """A delivery that fails in a way nobody planned for (http.client refusing a header
        with a newline, message quoting the token) is counted, logged without the message,
        failed permanently, and the worker goes on to deliver the next alert."""
        errors: list[str] = []
        logs = io.StringIO()
        with Receiver() as receiver:
            target = urlsplit(receiver.url)

            def deliver(event: dict) -> None:
                header = "Bearer leaked-token\nX-Evil: 1" if event["count"] == 1 else "Bearer ok"
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
                try:
                    connection.request("POST", target.path, body=json.dumps(event),
                                       headers={"Authorization": header})  # fmt: skip
                    connection.getresponse().read()
                finally:
                    connection.close()

            sink = DeliveringSink("hook", deliver, store, configure_logging(logs),
                                  events=("authz_alert",), on_error=errors.append)  # fmt: skip
            sink.write({"event": "authz_alert", "event_id": "a", "count": 1})
            sink.write({"event": "authz_alert", "event_id": "b", "count": 2})
            wait_for(lambda: receiver.received, "the second alert")
            alive = sink._worker.is_alive()
            sink.close()
        assert (True, ["hook"], 1) == (alive, errors, sink.failed_count)
        assert ["b"] == [event["event_id"] for event in receiver.received]
        assert "leaked-token" not in logs.getvalue()
        (failure,) = [json.loads(x) for x in logs.getvalue().splitlines() if "failed" in x]
        assert ("sink_delivery_failed", "ValueError") == (failure["event"], failure["error_type"])


OUTCOMES = {
    "retry": RetryableDeliveryError("HTTP 503"),
    "permanent": PermanentDeliveryError("HTTP 404"),
    "unexpected": ValueError("Invalid header value b'Bearer leaked-token\\n'"),
    "bug": KeyError("leaked-token"),
}


class DeliveryWorker(RuleBasedStateMachine):
    """A remote sink's worker against a model: whatever each attempt does (succeed, fail
    retryably, be refused, raise something nobody planned for), the worker stays alive, each
    alert ends delivered or failed exactly once, every failed attempt is counted, and no
    log line carries an exception's message."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="delivery-model-")
        self.logs = io.StringIO()
        self.store = StateStore(os.path.join(self.directory, "state"), configure_logging(self.logs))
        self.plans: dict[str, list[str]] = {}
        self.delivered: list[str] = []
        self.errors: list[str] = []
        self.clock = FastClock()
        self.sink = DeliveringSink("hook", self.deliver, self.store, configure_logging(self.logs),
                                   events=("authz_alert",), clock=self.clock,
                                   on_error=self.errors.append)  # fmt: skip
        self.model_delivered: list[str] = []
        self.model_failed = 0
        self.model_errors = 0

    def deliver(self, event: dict) -> None:
        outcome = self.plans[event["event_id"]].pop(0)
        if outcome != "ok":
            raise OUTCOMES[outcome]
        self.delivered.append(event["event_id"])

    @rule(
        retries=st.integers(0, 2),
        last=st.sampled_from(("ok", "permanent", "unexpected", "bug")),
    )
    def send_an_alert(self, retries: int, last: str) -> None:
        event_id = f"alert-{len(self.plans)}"
        self.plans[event_id] = ["retry"] * retries + [last]
        self.sink.write({"event": "authz_alert", "event_id": event_id})

        self.model_errors += retries + (last != "ok")
        if last == "ok":
            self.model_delivered.append(event_id)
        else:
            self.model_failed += 1

        def settled() -> bool:
            self.clock.skip += 10_000  # past any backoff
            self.sink._wake.set()
            ended = self.sink.delivered_count + self.sink.failed_count
            return ended == len(self.model_delivered) + self.model_failed

        wait_for(settled, f"{event_id} to be delivered or failed")

    @invariant()
    def the_worker_is_alive_and_the_counts_agree(self) -> None:
        assert self.sink._worker.is_alive()
        assert self.model_delivered == self.delivered
        assert (self.model_failed, self.model_errors) == (self.sink.failed_count, len(self.errors))
        assert self.store.next_due_at("hook") is None  # nothing left behind in the outbox
        assert "leaked-token" not in self.logs.getvalue()

    def teardown(self) -> None:
        self.sink.close()
        self.store.close()
        shutil.rmtree(self.directory)


TestDeliveryWorker = DeliveryWorker.TestCase
TestDeliveryWorker.settings = settings(max_examples=15, stateful_step_count=8, deadline=None)


def test_the_worker_survives_its_own_outbox_failing(tmp_path):
    """The state database goes away under a running worker (closed, here): the error is
    logged by type and counted, and the worker keeps running."""
    logs = io.StringIO()
    errors: list[str] = []
    store = StateStore(tmp_path / "state", configure_logging(io.StringIO()))
    sink = DeliveringSink("hook", lambda _event: None, store, configure_logging(logs),
                          events=("authz_alert",), on_error=errors.append)  # fmt: skip
    store.close()
    sink._wake.set()
    wait_for(lambda: "sink_worker_error" in logs.getvalue(), "the logged worker error")
    alive = sink._worker.is_alive()
    sink.close()
    (logged, *_) = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert (True, "hook", "ProgrammingError") == (alive, errors[0], logged["error_type"])


class TestTerminal:
    @staticmethod
    def assert_inert(screen: str) -> None:
        for raw in ("\x1b]", "\x07", "\x1b[2J", "\x1b[31mred", "\rX"):
            assert raw not in screen.replace("\r\n", "\n")
        assert "\\x1b]0;pwned\\x07\\x1b[2J" in screen
        # Pasted text (decode) reads a CR as a line break, so the ARN is rejoined without it;
        # in a file line (scan) the CR stays part of the text and is shown escaped.
        assert "\\x1b[31mred" in screen

    def test_decode_summary_shows_control_characters_escaped(self, sts):
        """decode on a terminal: ESC, OSC title and link, clear-screen and CR are escaped."""
        code, screen = run_in_terminal("decode", HOSTILE_TERMINAL_LINE, env=aws_env(sts))
        assert 0 == code
        self.assert_inert(screen)

    def test_scan_summary_shows_control_characters_escaped(self, tmp_path):
        """scan --summary's table on a terminal escapes them too."""
        log = tmp_path / "app.log"
        log.write_bytes(HOSTILE_TERMINAL_LINE.encode() + b"\n")
        code, screen = run_in_terminal("scan", "--no-decode", "--summary", str(log), env={})
        assert 0 == code
        for raw in ("\x1b]", "\x07", "\x1b[2J"):
            assert raw not in screen
        assert "user/evil\\x1b]0;pwned\\x07\\x1b[2J" in screen

    def test_json_output_keeps_the_exact_text(self, tmp_path):
        """JSON stays JSON: the event carries the principal exactly, escaped only by JSON."""
        log = tmp_path / "app.log"
        log.write_bytes(HOSTILE_TERMINAL_LINE.encode() + b"\n")
        result = run_cli("scan", "--no-decode", str(log))
        (event,) = parse_events(result.stdout)
        assert f"arn:aws:iam::123456789012:user/evil{TERMINAL_ATTACK}" == event["principal_arn"]
        assert "\x1b" not in result.stdout  # JSON escapes it as \u001b

    def test_json_lines_escape_c1_and_bidi_controls_json_leaves_raw(self, tmp_path):
        """JSON leaves CSI (U+009B) and RIGHT-TO-LEFT OVERRIDE raw; the JSON lines escape
        them as \\u009b / \\u202e, and the value read back is the same text."""
        log = tmp_path / "app.log"
        principal = "arn:aws:iam::123456789012:user/a\u009b2J\u202eb"
        log.write_text(DENIAL.replace("arn:aws:iam::111122223333:user/ana", principal) + "\n")
        result = run_cli("scan", "--no-decode", str(log))
        (event,) = parse_events(result.stdout)
        assert principal == event["principal_arn"]
        assert "user/a\\u009b2J\\u202eb" in result.stdout

    def test_an_error_naming_a_hostile_path_is_escaped(self, tmp_path):
        """A link planted with an escape sequence in its target: the error line shows it
        escaped."""
        events = tmp_path / "events.jsonl"
        events.symlink_to(tmp_path / "x\x1b]0;pwned\x07")
        config = tmp_path / "c.yaml"
        config.write_text(
            f"state_dir: {tmp_path / 'state'}\n"
            f"sources: [{{type: file, paths: [{tmp_path}/*.log]}}]\n"
            f"sinks: [{{type: file, path: {events}}}]\n"
        )
        result = run_cli("run", "-c", str(config))
        assert 2 == result.returncode
        assert "is a symbolic link (to " in result.stderr
        assert "x\\x1b]0;pwned\\x07" in result.stderr
        assert "\x1b" not in result.stderr

    def test_terminal_safe_leaves_ordinary_text_alone(self):
        """Printable text, including non-ASCII names, is unchanged; bidi overrides are not."""
        assert "arn:aws:iam::1:user/José" == terminal_safe("arn:aws:iam::1:user/José")
        assert "a\\u202eb\\x9bc" == terminal_safe("a\u202eb\x9bc")


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


SECRET_FORMS = (
    "secret={s}",
    "client_secret={s}",
    "token={s}",
    "password='{s}'",
    'password="a b {s} c"',
    '{{"SecretAccessKey": "{s}"}}',
    '{{"SessionToken": "{s}"}}',
    "aws_secret_access_key={s}",
    "Authorization: Bearer {s}",
    "https://deploy:{s}@git.example.com/repo.git",
)
EXAMPLE_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


class TestSecrets:
    @pytest.mark.parametrize("form", SECRET_FORMS)
    def test_each_form_is_masked(self, form):
        """Every form the issue lists loses its value and keeps its key."""
        masked = redact_secrets("before " + form.format(s="Zq8hunter2Zq") + " after")
        assert "hunter2" not in masked
        assert "[REDACTED]" in masked
        assert ("before ", " after") == (masked[:7], masked[-6:])

    def test_a_bare_aws_secret_key_is_masked_but_not_a_git_hash_or_a_blob(self):
        """A bare 40-character secret key goes; a hex hash and a long blob stay."""
        git_hash = "3f786850e387550fdab836ed7e6dc881de23001b"
        blob = BLOB_OF["d003"]
        masked = redact_secrets(f"key {EXAMPLE_KEY} commit {git_hash} blob {blob}")
        assert f"key [REDACTED] commit {git_hash} blob {blob}" == masked

    @pytest.mark.parametrize(
        "text", ['{"SessionToken":"abcdef', "password='abc def", '{"SessionToken":"abc\\']
    )
    def test_a_value_whose_closing_quote_was_cut_off_is_masked(self, text):
        """A record cut at its size limit inside a quoted secret still loses the value."""
        assert "abc" not in redact_secrets(text)

    def test_non_ascii_text_around_a_secret_does_not_shift_the_mask(self):
        """Letters whose lower case is longer (İ) do not move the mask off the value."""
        masked = redact_secrets("İİİ user José password=hunter2 İ token='abc def'")
        assert "İİİ user José password=[REDACTED] İ token='[REDACTED]'" == masked

    def test_masking_happens_before_cutting(self):
        """A line over 4 KiB cut just inside ``password=``: the value is still masked."""
        for shift in range(len("password=") + 1):
            pad = "p" * (RAW_MAX_BYTES - len(DENIAL))
            padding = "x" * (300 - shift)
            text = f"{padding} password=hunter2hunter2 {'.' * (256 - 23 + shift)}{DENIAL} {pad}"
            (event,) = build(text)
            assert "hunter2" not in event["raw"], shift
            assert len(event["raw"].encode()) <= RAW_MAX_BYTES

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        form=st.sampled_from((*SECRET_FORMS, "{s}")),
        body=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=6),
        before=st.booleans(),
        gap=st.integers(0, 5000),
        tail=st.integers(0, 6000),
    )
    def test_a_generated_secret_never_reaches_an_event_an_alert_or_slack(
        self, form, body, before, gap, tail
    ):
        """Wherever the secret sits relative to the denial and the 4 KiB cut, in any form,
        it appears in no event, no alert and no Slack text built from the line."""
        secret = "Zq" + body[:30] + "9Q"
        if form == "{s}":  # a bare key is exactly 40 base64 characters
            secret = ("Zq9" + body + "A" * 40)[:40]
        pair = form.format(s=secret)
        filler = " " + "-" * gap + " "
        text = (pair + filler + DENIAL) if before else (DENIAL + filler + pair)
        text += " " + "." * tail
        events = build(text)
        (alert,) = AlertEngine((AlertRule(name="any", threshold=1),)).observe(events[0], 0.0)
        produced = json.dumps([*events, alert, slack_message(events[0])])
        assert secret not in produced
        for event in events:
            validate_event(event)


class TestFileSinkSymlink:
    def test_a_symlinked_sink_path_is_refused_and_the_target_untouched(self, tmp_path):
        """A link planted at the sink's path (to /etc/shadow, say) is refused by name."""
        target = tmp_path / "precious"
        target.write_bytes(b"line one\nlast line without newline")
        link = tmp_path / "events.jsonl"
        link.symlink_to(target)
        with pytest.raises(ConfigError, match="is a symbolic link") as raised:
            FileSink(str(link))
        assert "follow_symlinks: true" in str(raised.value)
        assert b"line one\nlast line without newline" == target.read_bytes()

    def test_a_wanted_symlink_is_followed_without_deleting_what_was_there(self, tmp_path):
        """With follow_symlinks, events are appended after the existing text, whose last line
        (no newline, not ours) is kept whole."""
        target = tmp_path / "shared.log"
        target.write_bytes(b"line one\nlast line without newline")
        link = tmp_path / "events.jsonl"
        link.symlink_to(target)
        sink = FileSink(str(link), follow_symlinks=True)
        sink.write({"event": "authz_alert", "event_id": "x"})
        sink.close()
        lines = target.read_bytes().split(b"\n")
        assert [b"line one", b"last line without newline"] == lines[:2]
        assert {"event": "authz_alert", "event_id": "x"} == json.loads(lines[2])

    def test_our_own_torn_event_is_still_cut(self, tmp_path):
        """A partial event a crash left behind (ours) is still removed on open."""
        path = tmp_path / "events.jsonl"
        path.write_bytes(b'{"event":"authz_alert","event_id":"a"}\n{"event":"authz_de')
        FileSink(str(path)).close()
        assert b'{"event":"authz_alert","event_id":"a"}\n' == path.read_bytes()

    def test_the_option_is_read_from_the_config(self):
        """``follow_symlinks: true`` is a file sink option; other sinks do not take it."""
        config = parse_config("sinks:\n  - {type: file, path: /x, follow_symlinks: true}\n")
        assert config.sinks[0].follow_symlinks is True
        with pytest.raises(ConfigError, match="follow_symlinks: unknown key"):
            parse_config("sinks:\n  - {type: stdout, follow_symlinks: true}\n")


class FileSinkBytes(RuleBasedStateMachine):
    """The file sink against a model of the file's bytes, across another writer's appends
    (lines, and a last line without a newline), opens, flushes, closes, and crashes that
    leave the start of an event behind.

    The model's repair rule, the one the README states: at open, a last line without a
    newline is cut only if it is (the start of) one of our events; anything else is kept and
    ended with a newline. So another writer's bytes are never deleted, except when it
    appends to the very line our crash left unfinished.
    """

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="file-sink-model-")
        self.path = os.path.join(self.directory, "events.jsonl")
        self.sink: FileSink | None = None
        self.model = ""  # what the file must hold
        self.whole_foreign_lines: list[str] = []
        self.next_number = 0

    @rule(text=st.text("abc xyz-=:.{", min_size=1, max_size=20), newline=st.booleans())
    def other_writer_appends(self, text: str, newline: bool) -> None:
        if self.sink is None:
            appended = text + ("\n" if newline else "")
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(appended)
            if newline and (not self.model or self.model.endswith("\n")):
                self.whole_foreign_lines.append(text)
            self.model += appended

    @rule()
    def open_sink(self) -> None:
        if self.sink is None:
            self.sink = FileSink(self.path)
            if self.model and not self.model.endswith("\n"):
                last = self.model.rsplit("\n", 1)[-1]
                ours = last.startswith(OUR_LINE_START) or OUR_LINE_START.startswith(last)
                self.model = self.model[: -len(last)] if ours else self.model + "\n"

    @rule(count=st.integers(1, 3))
    def write_and_flush(self, count: int) -> None:
        if self.sink is not None:
            for _ in range(count):
                event = {"event": "authz_denial", "n": self.next_number}
                self.sink.write(event)
                self.model += json.dumps(event, separators=(",", ":")) + "\n"
                self.next_number += 1
            self.sink.flush()

    @rule()
    def close_sink(self) -> None:
        if self.sink is not None:
            self.sink.close()
            self.sink = None

    @rule(cut=st.integers(1, 30))
    def crash_mid_event(self, cut: int) -> None:
        """A crash while writing: the start of an event that was never flushed or counted."""
        if self.sink is not None:
            self.sink.close()
            self.sink = None
            torn = json.dumps({"event": "authz_denial", "n": -1}, separators=(",", ":"))[:cut]
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(torn)
            self.model += torn

    @invariant()
    def the_file_holds_what_the_model_says(self) -> None:
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as handle:
                assert self.model == handle.read()

    @invariant()
    def every_whole_line_of_the_other_writer_is_kept(self) -> None:
        """Independent of the model: a line the other writer wrote whole is in the file."""
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as handle:
                lines = Counter(handle.read().split("\n"))
            assert not Counter(self.whole_foreign_lines) - lines

    def teardown(self) -> None:
        if self.sink is not None:
            self.sink.close()
        shutil.rmtree(self.directory)


TestFileSinkBytes = FileSinkBytes.TestCase
TestFileSinkBytes.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


def billion_laughs(levels: int) -> str:
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        aliases = ", ".join([f"*lol{level - 1}"] * 10)
        lines.append(f"lol{level}: &lol{level} [{aliases}]")
    return "\n".join(lines) + f"\nstate_dir: *lol{levels}\n"


class TestYamlBomb:
    def test_check_config_refuses_nested_aliases_quickly_with_file_and_line(self, tmp_path):
        """Six levels of aliases (13.7 s and 1.7 GB before) are refused at once, naming the
        file and the line where the expansion passes the budget."""
        config = tmp_path / "bomb.yaml"
        config.write_text(billion_laughs(6))
        result = run_cli("check-config", "-c", str(config), timeout=10)
        assert 2 == result.returncode
        assert f"{config}:5: YAML aliases here expand to more than 100,000" in result.stderr

    def test_ordinary_aliases_still_work(self):
        """Anchors reused a few times are fine."""
        config = parse_config(
            "sinks:\n  - {type: webhook, url: 'http://h/a', events: &alerts [authz_alert]}\n"
            "  - {type: webhook, url: 'http://h/b', events: *alerts}\n"
        )
        assert 2 == len(config.sinks)

    def test_a_self_referencing_alias_is_refused(self):
        """A mapping that contains itself cannot be walked; it is an error, not a hang."""
        with pytest.raises(ConfigError, match="expand to more than"):
            parse_config("a: &a {b: *a}\n")


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

    def test_sink_errors_show_in_status(self, tmp_path, monkeypatch):
        """A delivery the receiver refuses is counted in STATUS= for systemctl status."""
        notify = NotifySocket(tmp_path / "notify.sock")
        monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
        with Receiver() as receiver:
            receiver.answers.append(404)
            hook = f"  - type: webhook\n    url: {receiver.url}\n    events: [authz_denial]\n"
            watcher = Watcher(tmp_path, extra_config=hook)
            try:
                watcher.start()
                append(watcher.logs / "app.log", DENIAL)
                wait_for(
                    lambda: any(", 1 sink errors" in m for m in notify.collect()),
                    "the error in STATUS=",
                )
                assert 0 == watcher.stop()
            finally:
                watcher.kill()
                notify.close()
        assert 1 == receiver.attempts

    def test_a_symlink_planted_at_the_event_file_on_rotation_is_refused(self, tmp_path):
        """After a rotation someone puts a link where the event file was: SIGHUP logs the
        refusal, the link's target is untouched and events go on to the open file."""
        watcher = Watcher(tmp_path)
        target = tmp_path / "shadow"
        target.write_bytes(b"root:x:0:0")
        try:
            watcher.start()
            append(watcher.logs / "app.log", DENIAL)
            wait_for(lambda: len(watcher.events()) == 1, "the first event")
            rotated = watcher.events_path.with_name("events.jsonl.1")
            watcher.events_path.rename(rotated)
            watcher.events_path.symlink_to(target)
            watcher.signal(signal.SIGHUP)
            wait_for(lambda: "sink_reopen_failed" in watcher.stderr(), "the refusal")
            append(watcher.logs / "app.log", DENIAL.replace("ana", "bob"))
            wait_for(lambda: rotated.read_text().count("\n") == 2, "the event in the open file")
            assert 0 == watcher.stop()
        finally:
            watcher.kill()
        assert b"root:x:0:0" == target.read_bytes()
        (refusal,) = [e for e in watcher.log_events() if e["event"] == "sink_reopen_failed"]
        assert "is a symbolic link" in refusal["error"]


@pytest.mark.parametrize("form", SECRET_FORMS)
def test_scan_with_alerts_prints_no_secret_anywhere(tmp_path, form):
    """The real command: a secret in a denial line reaches neither the events, the alert
    nor the log lines on stderr."""
    marker = "Zq8Kx2mVb7Lw9Nq4"
    log = tmp_path / "app.log"
    log.write_text(f"{form.format(s=marker)} {DENIAL}\n")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\nalerts:\n  - {{name: any, threshold: 1}}\n"
    )
    result = run_cli("scan", "--no-decode", "-c", str(config), str(log))
    kinds = [event["event"] for event in parse_events(result.stdout)]
    assert (0, ["authz_denial", "authz_alert"]) == (result.returncode, kinds)
    assert marker not in result.stdout + result.stderr
