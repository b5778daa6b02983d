"""alert: sliding windows, thresholds, cooldowns and filters, on a fake clock; replay in scan."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator

import pytest

from tests.conftest import parse_events, run_cli, validate_event
from watcher.alerts import MAX_GROUPS, AlertEngine
from watcher.config import AlertRule
from watcher.log import configure_logging
from watcher.state import StateStore

ROLE = "arn:aws:sts::111122223333:assumed-role/deployer/ci"


def denial(number: int, principal: str = ROLE, action: str = "ec2:RunInstances", **extra) -> dict:
    event = {
        "event": "authz_denial",
        "event_id": f"{number:032x}",
        "principal_arn": principal,
        "action": action,
        "error_code": "Client.UnauthorizedOperation",
        "suggested_policy": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowDeniedRequest",
                    "Effect": "Allow",
                    "Action": action,
                    "Resource": f"arn:aws:ec2:us-east-1:111122223333:instance/i-{number % 2}",
                }
            ],
        },
    }
    event.update(extra)
    return event


def rule(**options) -> AlertRule:
    settings = {"name": "repeated", "threshold": 3, "window_seconds": 60, "cooldown_seconds": 300}
    settings.update(options)
    return AlertRule(**settings)


class TestWindows:
    def test_threshold_in_the_window_raises_one_alert(self):
        engine = AlertEngine((rule(),))
        raised = [a for i, t in enumerate((0, 10, 20, 30)) for a in engine.observe(denial(i), t)]
        (alert,) = raised
        validate_event(alert)
        assert (3, {"principal_arn": ROLE, "action": "ec2:RunInstances"}) == (
            alert["count"],
            alert["group"],
        )
        assert [f"{i:032x}" for i in range(3)] == alert["event_ids"]
        assert "1970-01-01T00:00:20.000Z" == alert["last_seen"]

    def test_denials_outside_the_window_do_not_count(self):
        engine = AlertEngine((rule(),))
        assert [] == [
            a for i, t in enumerate((0, 50, 100, 150)) for a in engine.observe(denial(i), t)
        ]

    def test_cooldown_then_a_new_alert(self):
        engine = AlertEngine((rule(cooldown_seconds=100),))
        times = [0, 1, 2, 3, 4, 5, 110, 111, 112]
        raised = [t for i, t in enumerate(times) for _ in engine.observe(denial(i), t)]
        assert [2, 112] == raised  # at 110 the window holds one denial again, at 112 three

    def test_groups_are_separate(self):
        engine = AlertEngine((rule(threshold=2),))
        engine.observe(denial(1, principal="a"), 0)
        assert [] == engine.observe(denial(2, principal="b"), 1)
        assert 1 == len(engine.observe(denial(3, principal="a"), 2))

    def test_match_and_exclude(self):
        engine = AlertEngine(
            (
                rule(
                    threshold=1,
                    match={"error_code": ("*UnauthorizedOperation", "AccessDenied*")},
                    exclude=({"action": "s3:HeadBucket"},),
                ),
            )
        )
        assert [] == engine.observe(denial(1, action="s3:HeadBucket"), 0)
        assert [] == engine.observe(denial(2, error_code="ThrottlingException"), 0)
        assert 1 == len(engine.observe(denial(3), 0))

    def test_suggested_policy_is_merged_from_the_groups_denials(self):
        """The group's denials of one action become one statement listing their resources."""
        engine = AlertEngine((rule(),))
        alerts = [a for i in range(3) for a in engine.observe(denial(i), i)]
        (statement,) = alerts[0]["suggested_policy"]["Statement"]
        assert [
            "arn:aws:ec2:us-east-1:111122223333:instance/i-0",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-1",
        ] == statement["Resource"]

    def test_state_is_bounded(self):
        engine = AlertEngine((rule(threshold=2, window_seconds=10**9, cooldown_seconds=1),))
        for i in range(MAX_GROUPS + 500):
            engine.observe(denial(i, principal=f"p{i}"), float(i))
        assert MAX_GROUPS >= len(engine._states["repeated"].groups)

    def test_counts_survive_a_reload_with_the_same_rule(self):
        engine = AlertEngine((rule(),))
        engine.observe(denial(1), 0)
        engine.observe(denial(2), 1)
        engine.update_rules((rule(cooldown_seconds=5),))
        assert 1 == len(engine.observe(denial(3), 2))

    def test_only_denials_count(self):
        engine = AlertEngine((rule(threshold=1),))
        assert [] == engine.observe({"event": "authz_alert", "event_id": "x"}, 0)


REPLAY_LINE = (
    "{ts} User: {ROLE} is not authorized to perform: ec2:RunInstances on resource: "
    "arn:aws:ec2:us-east-1:111122223333:instance/* because no identity-based policy "
    "allows the ec2:RunInstances action"
)
REPLAY_RULE = (
    "alerts:\n  - name: repeated-denials\n    threshold: 5\n    window: 10m\n    cooldown: 30m\n"
)


class TestScanReplay:
    def test_rotated_files_replay_oldest_first_whatever_their_names(self, tmp_path):
        """app.log, app.log.1 and app.log.2.gz, a day apart: alerts in time order, each with
        first_seen <= last_seen, as if the files had been read as written."""
        logs = tmp_path / "logs"
        logs.mkdir()
        for name, day in (("app.log", "07"), ("app.log.1", "06"), ("app.log.2.gz", "05")):
            stamps = [f"2024-05-{day}T07:0{i}:00Z" for i in range(5)]
            text = "".join(REPLAY_LINE.format(ts=ts, ROLE=ROLE) + "\n" for ts in stamps)
            data = text.encode()
            (logs / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        config = tmp_path / "c.yaml"
        config.write_text(REPLAY_RULE)
        result = run_cli("scan", "--no-decode", "-c", str(config), str(logs))
        alerts = [e for e in parse_events(result.stdout) if e["event"] == "authz_alert"]
        assert [
            ("2024-05-05T07:00:00.000Z", "2024-05-05T07:04:00.000Z", 5),
            ("2024-05-06T07:00:00.000Z", "2024-05-06T07:04:00.000Z", 5),
            ("2024-05-07T07:00:00.000Z", "2024-05-07T07:04:00.000Z", 5),
        ] == [(a["first_seen"], a["last_seen"], a["count"]) for a in alerts]

    def test_alerts_use_the_denials_own_time(self, tmp_path):
        line = REPLAY_LINE
        # Five denials a minute apart (within 10m), then five a day later: two alerts.
        stamps = [f"2024-05-06T07:0{i}:00Z" for i in range(5)] + [
            f"2024-05-07T07:0{i}:00Z" for i in range(5)
        ]
        log = tmp_path / "app.log"
        log.write_text("".join(line.format(ts=ts, ROLE=ROLE) + "\n" for ts in stamps))
        config = tmp_path / "c.yaml"
        config.write_text(
            "alerts:\n  - name: repeated-denials\n    threshold: 5\n    window: 10m\n"
            "    cooldown: 30m\n"
        )
        result = run_cli("scan", "--no-decode", "-c", str(config), str(log))
        events = parse_events(result.stdout)
        alerts = [e for e in events if e["event"] == "authz_alert"]
        assert 10 == sum(e["event"] == "authz_denial" for e in events)
        assert ["2024-05-06T07:04:00.000Z", "2024-05-07T07:04:00.000Z"] == [
            a["last_seen"] for a in alerts
        ]
        assert [5, 5] == [a["count"] for a in alerts]


def crossing(engine: AlertEngine, groups: int, at: float, step: float = 0.001) -> list[dict]:
    """One denial from each of ``groups`` new principals (threshold 1: each one crosses)."""
    return [
        alert
        for i in range(groups)
        for alert in engine.observe(denial(i, principal=f"p{i}"), at + i * step)
    ]


class TestEviction:
    def test_a_group_in_cooldown_is_never_evicted(self):
        """10,001 new groups after an alert do not end its cooldown: it stays quiet."""
        engine = AlertEngine((rule(threshold=1, window_seconds=600, cooldown_seconds=3600),))
        assert 1 == len(engine.observe(denial(0, principal="alerted"), 0.0))
        for i in range(MAX_GROUPS + 1):
            engine.observe(denial(i, principal=f"p{i}", action="s3:GetObject"), 1.0 + i * 0.01)
        later = engine.observe(denial(1, principal="alerted"), 600.0)
        assert [] == [a for a in later if a["group"].get("principal_arn") == "alerted"]
        assert ["storm"] == ["storm" for a in later if "storm_groups" in a]  # the rest: 1 summary

    def test_past_the_bound_the_least_recently_seen_window_goes_first(self):
        """Only groups with a running window count against the bound; the oldest is dropped."""
        engine = AlertEngine((rule(threshold=2),), max_groups=2)
        engine.observe(denial(1, principal="a"), 0)
        engine.observe(denial(2, principal="b"), 1)
        engine.observe(denial(3, principal="c"), 2)
        assert [] == engine.observe(denial(4, principal="a"), 3)  # a's first denial was dropped
        assert 1 == len(engine.observe(denial(5, principal="c"), 4))

    def test_idle_groups_are_forgotten(self):
        """A group with nothing in its window and no cooldown running takes no memory."""
        engine = AlertEngine((rule(threshold=5, window_seconds=10),))
        for i in range(100):
            engine.observe(denial(i, principal=f"p{i}"), float(i))
        assert 10 >= len(engine._states["repeated"].groups)


class TestStorm:
    def test_a_storm_is_capped_then_summarised_once_a_minute(self):
        """12,001 groups crossing in a minute: 20 alerts, then one summary naming the rest."""
        engine = AlertEngine((rule(threshold=1),))
        raised = crossing(engine, 12_001, at=0.0)
        assert 20 == len(raised)
        (summary,) = engine.observe(denial(99_999, principal="late"), 61.0)[:1]
        validate_event(summary)
        assert (11_981, 11_981, 10) == (
            summary["storm_groups"],
            summary["count"],
            len(summary["top_groups"]),
        )
        assert [1] * 10 == [top["count"] for top in summary["top_groups"]]

    def test_folded_groups_stay_quiet_for_their_cooldown(self):
        """A group folded into a summary does not page on its next denial."""
        engine = AlertEngine((rule(threshold=1, max_alerts_per_minute=1),))
        engine.observe(denial(1, principal="a"), 0)
        assert [] == engine.observe(denial(2, principal="b"), 1)
        assert ["summary"] == [
            "summary" if "storm_groups" in a else "alert"
            for a in engine.observe(denial(3, principal="b"), 70)
        ]

    def test_the_summary_waits_for_its_minute_then_is_flushed_at_the_end(self):
        """No summary before the minute ends; the pending one comes out at the end of a scan."""
        engine = AlertEngine((rule(threshold=1, max_alerts_per_minute=2),))
        assert 2 == len(crossing(engine, 5, at=0.0, step=1.0))
        assert [] == engine.due_summaries(59.0)
        (summary,) = engine.flush_summaries()
        assert (3, "1970-01-01T00:00:02.000Z", "1970-01-01T00:00:04.000Z") == (
            summary["storm_groups"],
            summary["first_seen"],
            summary["last_seen"],
        )
        assert [] == engine.flush_summaries()

    def test_the_cap_is_set_per_rule_in_the_config(self, tmp_path):
        """max_alerts_per_minute is a rule option (default 20)."""
        from watcher.config import load_config

        path = tmp_path / "c.yaml"
        path.write_text("alerts:\n  - name: a\n    max_alerts_per_minute: 3\n  - name: b\n")
        assert [3, 20] == [r.max_alerts_per_minute for r in load_config(path).alerts]


class TestBoundedMemory:
    def test_a_groups_memory_does_not_grow_with_its_denials(self):
        """5,000 denials of one group over 5,000 resources: a bounded sample, noted as such."""
        engine = AlertEngine((rule(threshold=5_000, window_seconds=10**6),))
        alerts = []
        for i in range(5_000):
            event = denial(i)
            event["suggested_policy"]["Statement"][0]["Resource"] = f"arn:aws:s3:::b/k{i}"
            alerts += engine.observe(event, float(i))
        (group,) = engine._states["repeated"].groups.values()
        assert (5_000, 1) == (len(group.times), len(group.statements))
        assert 20 >= len(next(iter(group.statements.values())))
        (alert,) = alerts
        assert ["arn:aws:s3:::b/*"] == [
            s["Resource"] for s in alert["suggested_policy"]["Statement"]
        ]
        assert "more resources were denied than a group keeps" in alert["policy_note"]

    def test_counts_are_kept_up_to_a_bound(self):
        """Past max(threshold, 100) denials in the window, the oldest times are let go."""
        engine = AlertEngine((rule(threshold=3, window_seconds=10**6, cooldown_seconds=10),))
        for i in range(500):
            engine.observe(denial(i), float(i))
        (group,) = engine._states["repeated"].groups.values()
        assert 100 == len(group.times)


@pytest.fixture
def store(tmp_path) -> Iterator[StateStore]:
    state = StateStore(tmp_path, configure_logging(io.StringIO()))
    yield state
    state.close()


class TestPersistence:
    def test_a_cooldown_survives_a_crash(self, store):
        """A restarted engine over the same state database stays quiet in the cooldown."""
        first = AlertEngine((rule(threshold=1, cooldown_seconds=3600),), store=store)
        assert 1 == len(first.observe(denial(1), 0.0))
        restarted = AlertEngine((rule(threshold=1, cooldown_seconds=3600),), store=store)
        assert [] == restarted.observe(denial(2), 600.0)
        assert 1 == len(restarted.observe(denial(3), 3601.0))

    def test_windows_survive_a_graceful_stop(self, store):
        """Two denials before the stop and one after make three in the window: an alert."""
        first = AlertEngine((rule(),), store=store)
        first.observe(denial(1), 0.0)
        first.observe(denial(2), 1.0)
        first.save_windows()
        (alert,) = AlertEngine((rule(),), store=store).observe(denial(3), 2.0)
        assert (3, "1970-01-01T00:00:00.000Z") == (alert["count"], alert["first_seen"])

    def test_a_rule_with_another_grouping_starts_afresh(self, store):
        """Saved groups of a rule now grouped by other fields are not read back."""
        first = AlertEngine((rule(),), store=store)
        first.observe(denial(1), 0.0)
        first.save_windows()
        regrouped = AlertEngine((rule(group_by=("principal_arn",)),), store=store)
        assert {} == dict(regrouped._states["repeated"].groups)


class TestOutOfOrder:
    def test_first_seen_is_never_after_last_seen(self):
        """Denials observed out of time order still make an alert whose times are in order."""
        engine = AlertEngine((rule(),))
        raised = [a for i, t in enumerate((50.0, 10.0, 30.0)) for a in engine.observe(denial(i), t)]
        (alert,) = raised
        assert ("1970-01-01T00:00:10.000Z", "1970-01-01T00:00:50.000Z") == (
            alert["first_seen"],
            alert["last_seen"],
        )
