"""alert: the engine against a simple reference model, on random streams of denials.

The model keeps every denial of every group forever and states each rule plainly; the engine
keeps bounded state (evicting idle groups, capping counts, folding storms, saving to and
restoring from the state database). After every step both must have raised the same alerts.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from watcher.alerts import MIN_COUNTED_DENIALS, STORM_PERIOD_SECONDS, AlertEngine, _iso
from watcher.config import AlertRule
from watcher.log import configure_logging
from watcher.state import StateStore

PRINCIPALS = [f"arn:aws:iam::111122223333:user/u{i}" for i in range(8)]
ACTIONS = ["s3:GetObject", "ec2:RunInstances"]

Outcome = tuple[object, ...]


@dataclass
class ReferenceModel:
    """Every rule of the engine, written the obvious way over unbounded history."""

    rule: AlertRule
    max_groups: int
    times: dict[tuple[str, ...], list[float]] = field(default_factory=dict)
    last_seen: dict[tuple[str, ...], float] = field(default_factory=dict)
    quiet_until: dict[tuple[str, ...], float] = field(default_factory=dict)
    sent: list[float] = field(default_factory=list)
    storm: dict[tuple[str, ...], int] | None = None
    storm_started: float = 0.0

    def due_summaries(self, now: float) -> list[Outcome]:
        if self.storm is not None and now >= self.storm_started + STORM_PERIOD_SECONDS:
            return self.flush()
        return []

    def flush(self) -> list[Outcome]:
        if self.storm is None:
            return []
        summary = ("summary", len(self.storm), sum(self.storm.values()), _iso(self.storm_started))
        self.storm = None
        return [summary]

    def observe(self, key: tuple[str, ...], now: float) -> list[Outcome]:
        outcomes = self.due_summaries(now)
        rule = self.rule
        self.times.setdefault(key, []).append(now)
        self.last_seen[key] = now
        self._evict(now)
        in_window = [t for t in self.times[key] if t > now - rule.window_seconds]
        counted = in_window[-max(rule.threshold, MIN_COUNTED_DENIALS) :]
        if len(counted) < rule.threshold or now < self.quiet_until.get(key, 0.0):
            return outcomes
        self.quiet_until[key] = now + rule.cooldown_seconds
        self.sent = [t for t in self.sent if t > now - STORM_PERIOD_SECONDS]
        if len(self.sent) < rule.max_alerts_per_minute:
            self.sent.append(now)
            return [*outcomes, ("alert", key, len(counted), _iso(counted[0]), _iso(now))]
        if self.storm is None:
            self.storm, self.storm_started = {}, now
        self.storm[key] = len(counted)
        return outcomes

    def _evict(self, now: float) -> None:
        """Past ``max_groups`` groups with a denial in the window, the least recently seen
        loses its window; cooldowns are kept whatever happens."""
        active = [
            k for k, ts in self.times.items() if ts and ts[-1] > now - self.rule.window_seconds
        ]
        active.sort(key=self.last_seen.__getitem__)
        for key in active[: max(0, len(active) - self.max_groups)]:
            self.times[key] = []

    def restart(self) -> list[Outcome]:
        """A graceful stop sends the pending summary; the storm cap counts from the start."""
        self.sent = []
        return self.flush()


def outcome(alert: dict) -> Outcome:
    if "storm_groups" in alert:
        return ("summary", alert["storm_groups"], alert["count"], alert["first_seen"])
    key = (alert["group"]["principal_arn"], alert["group"]["action"])
    return ("alert", key, alert["count"], alert["first_seen"], alert["last_seen"])


class AlertMachine(RuleBasedStateMachine):
    """The real engine (with a real state database) and the model, step by step."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="alerts-model-")
        self.store = StateStore(self.directory, configure_logging(io.StringIO()))
        self.now = 1_000_000.0
        self.denials = 0

    @initialize(
        threshold=st.integers(1, 4),
        window=st.sampled_from([30.0, 120.0, 600.0]),
        cooldown=st.sampled_from([0.0, 60.0, 900.0]),
        cap=st.integers(1, 4),
        max_groups=st.integers(1, 6),
    )
    def configure(
        self, threshold: int, window: float, cooldown: float, cap: int, max_groups: int
    ) -> None:
        self.rule = AlertRule(
            name="model",
            threshold=threshold,
            window_seconds=window,
            cooldown_seconds=cooldown,
            max_alerts_per_minute=cap,
        )
        self.max_groups = max_groups
        self.engine = AlertEngine((self.rule,), max_groups=max_groups, store=self.store)
        self.model = ReferenceModel(self.rule, max_groups)

    @rule(
        principal=st.sampled_from(PRINCIPALS),
        action=st.sampled_from(ACTIONS),
        seconds_later=st.sampled_from([1, 2, 5, 20, 61, 300, 1000]),
    )
    def deny(self, principal: str, action: str, seconds_later: int) -> None:
        self.now += seconds_later
        self.denials += 1
        event = {
            "event": "authz_denial",
            "event_id": f"{self.denials:032x}",
            "principal_arn": principal,
            "action": action,
            "suggested_policy": None,
        }
        actual = [outcome(a) for a in self.engine.observe(event, self.now)]
        assert self.model.observe((principal, action), self.now) == actual

    @rule(seconds_later=st.sampled_from([1, 30, 61]))
    def idle(self, seconds_later: int) -> None:
        self.now += seconds_later
        actual = [outcome(a) for a in self.engine.due_summaries(self.now)]
        assert self.model.due_summaries(self.now) == actual

    @precondition(lambda self: self.denials > 0)
    @rule()
    def restart(self) -> None:
        actual = [outcome(a) for a in self.engine.flush_summaries()]
        self.engine.save_windows()
        self.engine = AlertEngine((self.rule,), max_groups=self.max_groups, store=self.store)
        assert self.model.restart() == actual

    @invariant()
    def windows_stay_within_the_bound(self) -> None:
        if hasattr(self, "engine"):
            for state in self.engine._states.values():
                assert len(state.groups) <= self.max_groups

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)


AlertMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
TestAlertModel = AlertMachine.TestCase
