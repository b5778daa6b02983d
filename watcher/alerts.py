"""alert: denial events -> an ``authz_alert`` when a group crosses its rule's threshold.

Each rule counts denials per group (``group_by`` fields, default principal and action) in a
sliding window; the denial that brings a group to ``threshold`` raises one alert, then the
group stays quiet for ``cooldown``. The clock is passed in: wall time in the daemon, the
events' own timestamps when ``scan`` replays history, a fake one in tests. State is bounded:
groups with nothing in their window and no cooldown running are forgotten, and at most
``MAX_GROUPS`` are kept per rule (the least recently seen go first).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from itertools import islice
from typing import TYPE_CHECKING, Any

from watcher.events import SCHEMA_VERSION
from watcher.model import Event

if TYPE_CHECKING:
    from watcher.config import AlertRule

MAX_GROUPS = 10_000
MAX_EVENT_IDS = 10


@dataclass(slots=True)
class _Group:
    times: deque[tuple[float, str]] = field(default_factory=deque)  # (time, event_id)
    statements: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    quiet_until: float = 0.0


class _RuleState:
    def __init__(self, rule: AlertRule) -> None:
        self.rule = rule
        self.groups: OrderedDict[tuple[str, ...], _Group] = OrderedDict()


class AlertEngine:
    """Applies the alert rules to every denial event; returns the alerts they raise."""

    def __init__(self, rules: tuple[AlertRule, ...]) -> None:
        self._states: dict[str, _RuleState] = {}
        self.update_rules(rules)

    def update_rules(self, rules: tuple[AlertRule, ...]) -> None:
        """After a reload: rules keep their counts when their name and grouping are unchanged."""
        states = {}
        for rule in rules:
            old = self._states.get(rule.name)
            if old is not None and old.rule.group_by == rule.group_by:
                old.rule = rule
                states[rule.name] = old
            else:
                states[rule.name] = _RuleState(rule)
        self._states = states

    def observe(self, event: Event, now: float) -> list[Event]:
        if event.get("event") != "authz_denial":
            return []
        alerts = []
        for state in self._states.values():
            alert = self._observe_rule(state, event, now)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _observe_rule(self, state: _RuleState, event: Event, now: float) -> Event | None:
        rule = state.rule
        if not matches(rule.match, rule.exclude, event):
            return None
        key = tuple(_field(event, name) for name in rule.group_by)
        group = state.groups.pop(key, None) or _Group()
        state.groups[key] = group  # most recently seen last
        group.times.append((now, str(event["event_id"])))
        _remember_statements(group, event.get("suggested_policy"))
        while group.times and group.times[0][0] <= now - rule.window_seconds:
            group.times.popleft()
        self._forget_idle(state, now)
        if len(group.times) < rule.threshold or now < group.quiet_until:
            return None
        group.quiet_until = now + rule.cooldown_seconds
        return _alert(rule, key, group, now)

    def _forget_idle(self, state: _RuleState, now: float) -> None:
        window = state.rule.window_seconds
        for key in list(islice(state.groups, 64)):  # the least recently seen, a few at a time
            group = state.groups[key]
            if (not group.times or group.times[-1][0] <= now - window) and now >= group.quiet_until:
                del state.groups[key]
        while len(state.groups) > MAX_GROUPS:
            state.groups.popitem(last=False)


def matches(
    match: Mapping[str, tuple[str, ...]], exclude: tuple[Mapping[str, str], ...], event: Event
) -> bool:
    """``match``: every field matches one of its globs. ``exclude``: an entry whose every field
    matches its glob leaves the event out."""
    for name, globs in match.items():
        if not any(fnmatchcase(_field(event, name), glob) for glob in globs):
            return False
    return not any(
        all(fnmatchcase(_field(event, name), glob) for name, glob in entry.items())
        for entry in exclude
    )


def _field(event: Event, name: str) -> str:
    value = event.get(name)
    return "" if value is None else str(value)


def _remember_statements(group: _Group, policy: object) -> None:
    if not isinstance(policy, dict):
        return
    for statement in policy.get("Statement", []):
        if isinstance(statement, dict):
            key = (str(statement.get("Action")), str(statement.get("Resource")))
            group.statements.setdefault(key, statement)
            if len(group.statements) > 50:  # a group's fix stays readable
                group.statements.pop(next(iter(group.statements)))


def _alert(rule: AlertRule, key: tuple[str, ...], group: _Group, now: float) -> Event:
    first_seen, last_seen = group.times[0][0], group.times[-1][0]
    event_ids = [event_id for _, event_id in group.times][-MAX_EVENT_IDS:]
    statements = [dict(s, Sid=f"AllowDenied{i}") for i, s in enumerate(group.statements.values())]
    identity = "\x1f".join((rule.name, *key, event_ids[-1]))
    return {
        "event": "authz_alert",
        "schema_version": SCHEMA_VERSION,
        "event_id": hashlib.sha256(identity.encode()).hexdigest()[:32],
        "timestamp": _iso(now),
        "rule": rule.name,
        "group": dict(zip(rule.group_by, key, strict=True)),
        "count": len(group.times),
        "window_seconds": rule.window_seconds,
        "first_seen": _iso(first_seen),
        "last_seen": _iso(last_seen),
        "event_ids": event_ids,
        "suggested_policy": {"Version": "2012-10-17", "Statement": statements}
        if statements
        else None,
    }


def _iso(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_time(event: Event) -> float:
    """The denial's own time, for replaying history (``scan``)."""
    text = str(event.get("timestamp") or "")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return datetime.now(UTC).timestamp()
