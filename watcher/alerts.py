"""alert: denial events -> an ``authz_alert`` when a group crosses its rule's threshold.

Each rule counts denials per group (``group_by`` fields, default principal and action) in a
sliding window; the denial that brings a group to ``threshold`` raises one alert, then the
group stays quiet for ``cooldown``. The clock is passed in: wall time in the daemon, the
events' own timestamps when ``scan`` replays history, a fake one in tests.

Staying right at scale:

- A group's window holds the times of its last ``max(threshold, MIN_COUNTED_DENIALS)``
  denials, its last ``MAX_EVENT_IDS`` ids and a bounded sample of its suggested policy (at most
  ``MAX_SAMPLED_RESOURCES`` resources or ``MAX_SAMPLED_RESOURCE_CHARACTERS`` per statement,
  then one pattern covering them): the memory of a group does not grow with its denials.
- Cooldowns are kept apart from windows and are never evicted before they end. Groups whose
  window is empty are forgotten first; past ``max_groups`` groups with a running window, the
  least recently seen loses its window (never its cooldown).
- A storm is an incident, not thousands of pages: past ``max_alerts_per_minute`` alerts of a
  rule in the last minute, the groups that cross their threshold are folded into one summary
  alert per minute (``storm_groups`` and the ``top_groups``), and go quiet like alerted ones.
- With a ``store``, cooldowns are saved as they start and windows when the watcher stops
  (``save_windows``), and both are read back on start: a restart does not page again.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right, insort
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Protocol

from watcher.events import SCHEMA_VERSION
from watcher.explain import merge_policies, most_general_resource
from watcher.model import Event

if TYPE_CHECKING:
    from watcher.config import AlertRule

MAX_GROUPS = 10_000
MAX_EVENT_IDS = 10
MIN_COUNTED_DENIALS = 100  # a group counts at most max(threshold, this) denials in its window
MAX_SAMPLED_RESOURCES = 20  # per statement of a group's policy; more become one pattern
MAX_SAMPLED_RESOURCE_CHARACTERS = 2048  # likewise: a group's memory stays a few KiB
MAX_SAMPLED_STATEMENTS = 20
STORM_PERIOD_SECONDS = 60.0
STORM_TOP_GROUPS = 10
COOLDOWN_PRUNE_EVERY = 1024  # observations between sweeps of ended cooldowns
SAMPLE_GENERALISED_NOTE = (
    f"more resources were denied than a group keeps ({MAX_SAMPLED_RESOURCES}, or "
    f"{MAX_SAMPLED_RESOURCE_CHARACTERS:,} characters); shown as one pattern covering them"
)

GroupKey = tuple[str, ...]


class AlertStateStore(Protocol):
    """Where cooldowns and windows outlive the process (``watcher.state.StateStore``)."""

    def save_alert_group(self, rule: str, key: str, quiet_until: float, times: str) -> None: ...

    def save_alert_groups(self, rows: list[tuple[str, str, float, str]]) -> None: ...

    def alert_groups(self) -> list[tuple[str, str, float, str]]: ...


@dataclass(slots=True)
class _Group:
    times: list[float] = field(default_factory=list)  # sorted, oldest first
    event_ids: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_EVENT_IDS))
    statements: dict[str, dict[str, None]] = field(default_factory=dict)  # shape -> resources
    generalised: bool = False


@dataclass(slots=True)
class _Storm:
    started_at: float
    last_at: float
    folded: dict[GroupKey, int] = field(default_factory=dict)  # group -> denials in its window


class _RuleState:
    def __init__(self, rule: AlertRule) -> None:
        self.rule = rule
        self.groups: OrderedDict[GroupKey, _Group] = OrderedDict()  # least recently seen first
        self.quiet_until: dict[GroupKey, float] = {}
        self.sent: deque[float] = deque()  # times of the alerts of the last storm period
        self.storm: _Storm | None = None


class AlertEngine:
    """Applies the alert rules to every denial event; returns the alerts they raise."""

    def __init__(
        self,
        rules: tuple[AlertRule, ...],
        *,
        max_groups: int = MAX_GROUPS,
        store: AlertStateStore | None = None,
    ) -> None:
        self._states: dict[str, _RuleState] = {}
        self._max_groups = max_groups
        self._store = store
        self._observed = 0
        self.update_rules(rules)
        if store is not None:
            self._restore(store.alert_groups())

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
        """The alerts ``event`` raises at ``now``, after any storm summary that has come due."""
        alerts = self.due_summaries(now)
        if event.get("event") != "authz_denial":
            return alerts
        self._observed += 1
        for state in self._states.values():
            alert = self._observe_rule(state, event, now)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def due_summaries(self, now: float) -> list[Event]:
        """Storm summaries whose minute has ended by ``now`` (call it when idle, too)."""
        due = []
        for state in self._states.values():
            storm = state.storm
            if storm is not None and now >= storm.started_at + STORM_PERIOD_SECONDS:
                due.append(_summary(state.rule, storm, now))
                state.storm = None
        return due

    def flush_summaries(self) -> list[Event]:
        """Every pending storm summary, whatever the time (end of a scan, daemon stop)."""
        due = []
        for state in self._states.values():
            if state.storm is not None:
                due.append(_summary(state.rule, state.storm, state.storm.last_at))
                state.storm = None
        return due

    def save_windows(self) -> None:
        """Write every group's window and cooldown to the store (on a graceful stop)."""
        if self._store is None:
            return
        rows = []
        for state in self._states.values():
            for key in state.groups.keys() | state.quiet_until.keys():
                group = state.groups.get(key)
                times = group.times if group is not None else []
                quiet = state.quiet_until.get(key, 0.0)
                rows.append((state.rule.name, json.dumps(key), quiet, json.dumps(times)))
        self._store.save_alert_groups(rows)

    # -- one rule ----------------------------------------------------------------------------

    def _observe_rule(self, state: _RuleState, event: Event, now: float) -> Event | None:
        rule = state.rule
        if not matches(rule.match, rule.exclude, event):
            return None
        key = tuple(_field(event, name) for name in rule.group_by)
        group = state.groups.pop(key, None) or _Group()
        state.groups[key] = group  # most recently seen last
        _count(group, now, rule)
        group.event_ids.append(str(event["event_id"]))
        _remember_statements(group, event.get("suggested_policy"))
        self._bound(state, now)
        if len(group.times) < rule.threshold or now < state.quiet_until.get(key, 0.0):
            return None
        state.quiet_until[key] = now + rule.cooldown_seconds
        if self._store is not None:
            self._store.save_alert_group(
                rule.name, json.dumps(key), now + rule.cooldown_seconds, json.dumps(group.times)
            )
        return _raise_or_fold(state, key, group, now)

    def _bound(self, state: _RuleState, now: float) -> None:
        window = state.rule.window_seconds
        groups = state.groups
        while groups:  # idle groups are the least recently seen: forgetting them is invisible
            oldest = next(iter(groups.values()))
            if oldest.times and oldest.times[-1] > now - window:
                break
            groups.popitem(last=False)
        while len(groups) > self._max_groups:
            groups.popitem(last=False)  # loses a window, never a cooldown
        if self._observed % COOLDOWN_PRUNE_EVERY == 0:
            ended = [key for key, until in state.quiet_until.items() if until <= now]
            for key in ended:
                del state.quiet_until[key]

    def _restore(self, rows: list[tuple[str, str, float, str]]) -> None:
        for rule_name, key_json, quiet_until, times_json in sorted(rows, key=_last_time):
            state = self._states.get(rule_name)
            key = tuple(json.loads(key_json))
            if state is None or len(key) != len(state.rule.group_by):
                continue
            times = json.loads(times_json)
            if times:
                state.groups[key] = _Group(times=[float(t) for t in times])
            if quiet_until > 0:
                state.quiet_until[key] = quiet_until


def _last_time(row: tuple[str, str, float, str]) -> float:
    times = json.loads(row[3])
    return float(times[-1]) if times else 0.0


def _count(group: _Group, now: float, rule: AlertRule) -> None:
    """Add ``now`` in time order (replays may run out of order); keep the window's times."""
    times = group.times
    insort(times, now)
    del times[: bisect_right(times, times[-1] - rule.window_seconds)]
    excess = len(times) - max(rule.threshold, MIN_COUNTED_DENIALS)
    if excess > 0:
        del times[:excess]


def _raise_or_fold(state: _RuleState, key: GroupKey, group: _Group, now: float) -> Event | None:
    rule = state.rule
    while state.sent and state.sent[0] <= now - STORM_PERIOD_SECONDS:
        state.sent.popleft()
    if len(state.sent) < rule.max_alerts_per_minute:
        state.sent.append(now)
        return _alert(rule, key, group, now)
    storm = state.storm or _Storm(started_at=now, last_at=now)
    storm.folded[key] = len(group.times)
    storm.last_at = max(storm.last_at, now)
    state.storm = storm
    return None


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
    """Keep a bounded sample: resources per statement shape, generalised past the bound."""
    if not isinstance(policy, dict):
        return
    for statement in policy.get("Statement", []):
        if not isinstance(statement, dict):
            continue
        shape = json.dumps(
            {k: v for k, v in statement.items() if k not in ("Sid", "Resource")}, sort_keys=True
        )
        resources = group.statements.get(shape)
        if resources is None:
            if len(group.statements) >= MAX_SAMPLED_STATEMENTS:
                group.generalised = True
                continue
            resources = group.statements[shape] = {}
        resource = statement.get("Resource", "*")
        for value in resource if isinstance(resource, list) else [resource]:
            resources[str(value)] = None
        if (
            len(resources) > MAX_SAMPLED_RESOURCES
            or sum(map(len, resources)) > MAX_SAMPLED_RESOURCE_CHARACTERS
        ):
            group.statements[shape] = {most_general_resource(list(resources)): None}
            group.generalised = True


def _alert(rule: AlertRule, key: GroupKey, group: _Group, now: float) -> Event:
    first_seen, last_seen = group.times[0], group.times[-1]
    event_ids = list(group.event_ids)
    statements = [
        {**json.loads(shape), "Resource": list(resources)}
        for shape, resources in group.statements.items()
    ]
    policy = merge_policies(statements)
    notes = [n for n in (policy.note, SAMPLE_GENERALISED_NOTE if group.generalised else None) if n]
    identity = "\x1f".join((rule.name, *key, event_ids[-1]))
    return {
        **_alert_header(rule, identity, now, (first_seen, last_seen)),
        "group": dict(zip(rule.group_by, key, strict=True)),
        "count": len(group.times),
        "event_ids": event_ids,
        "suggested_policy": policy.document,
        "policy_note": "; ".join(notes) or None,
    }


def _summary(rule: AlertRule, storm: _Storm, now: float) -> Event:
    top = sorted(storm.folded.items(), key=lambda item: (-item[1], item[0]))[:STORM_TOP_GROUPS]
    identity = "\x1f".join((rule.name, "storm", repr(storm.started_at), str(len(storm.folded))))
    return {
        **_alert_header(rule, identity, now, (storm.started_at, storm.last_at)),
        "group": {},
        "count": sum(storm.folded.values()),
        "event_ids": [],
        "suggested_policy": None,
        "policy_note": None,
        "storm_groups": len(storm.folded),
        "top_groups": [
            {"group": dict(zip(rule.group_by, key, strict=True)), "count": count}
            for key, count in top
        ],
    }


def _alert_header(
    rule: AlertRule, identity: str, now: float, seen: tuple[float, float]
) -> dict[str, object]:
    return {
        "event": "authz_alert",
        "schema_version": SCHEMA_VERSION,
        "event_id": hashlib.sha256(identity.encode()).hexdigest()[:32],
        "timestamp": _iso(now),
        "rule": rule.name,
        "window_seconds": rule.window_seconds,
        "first_seen": _iso(seen[0]),
        "last_seen": _iso(seen[1]),
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
