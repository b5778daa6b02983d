"""alert: sliding windows, thresholds, cooldowns and filters, on a fake clock; replay in scan."""

from __future__ import annotations

from tests.conftest import parse_events, run_cli, validate_event
from watcher.alerts import MAX_GROUPS, AlertEngine
from watcher.config import AlertRule

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
        engine = AlertEngine((rule(),))
        alerts = [a for i in range(3) for a in engine.observe(denial(i), i)]
        resources = sorted(s["Resource"] for s in alerts[0]["suggested_policy"]["Statement"])
        assert [
            "arn:aws:ec2:us-east-1:111122223333:instance/i-0",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-1",
        ] == resources

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


class TestScanReplay:
    def test_alerts_use_the_denials_own_time(self, tmp_path):
        line = (
            "{ts} User: {ROLE} is not authorized to perform: ec2:RunInstances on resource: "
            "arn:aws:ec2:us-east-1:111122223333:instance/* because no identity-based policy "
            "allows the ec2:RunInstances action"
        )
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
