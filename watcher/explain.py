"""explain: a Finding -> the fields a person acts on (action, account, reason, suggested policy).

Sits after extract (and decode): it never does I/O, it only reads what the text or the decoded
message said and phrases it as one actionable sentence plus, for implicit denies, the IAM
policy document that would have allowed the request.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from watcher.model import Finding

_ARN_ACCOUNT_RE = re.compile(r"^arn:[^:]*+:[^:]*+:[^:]*+:(?P<account>\d{12}):")
_ARN_REGION_RE = re.compile(r"^arn:[^:]*+:[^:]*+:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):")
_ACCOUNT_RE = re.compile(r"^\d{12}$")
_EC2_ERROR_CODES = frozenset({"UnauthorizedOperation", "Client.UnauthorizedOperation"})

# Service names as SDKs print them ("AmazonEC2", "Amazon S3", "EC2") whose IAM prefix is not
# simply the name in lower case without "Amazon"/"AWS".
_SERVICE_PREFIX_EXCEPTIONS = {
    "identitymanagement": "iam",
    "securitytokenservice": "sts",
    "elasticloadbalancingv2": "elasticloadbalancing",
    "dynamodbv2": "dynamodb",
    "cloudwatchlogs": "logs",
    "monitoring": "cloudwatch",
    "keymanagementservice": "kms",
    "simplesystemsmanagement": "ssm",
}

# Where an Allow has to be added, by the policy type AWS names.
_FIX_TARGET = {
    "identity-based": "an identity-based policy of the principal",
    "resource-based": "the resource's policy (bucket, key, queue or repository policy)",
    "permissions boundary": "the principal's permissions boundary",
    "session": "the session policy passed when the role was assumed",
    "service control": "the service control policies of the account's OU path",
    "resource control": "the resource control policies of the account's OU path",
    "vpc endpoint": "the VPC endpoint policy",
    "role trust": "the role's trust policy",
}

_POLICY_NOUN = {
    "permissions boundary": "permissions boundary",
    "vpc endpoint": "VPC endpoint policy",
}


@dataclass(frozen=True, slots=True)
class Explanation:
    """Everything the event says about the denial beyond where it was found."""

    action: str | None
    resource: str | None
    principal_arn: str | None
    account_id: str | None
    region: str | None
    explicit_deny: bool | None
    policy_type: str | None
    policy_arn: str | None
    reason: str | None
    conditions: dict[str, list[str]] = field(default_factory=dict)
    matched_statements: list[Any] = field(default_factory=list)
    suggested_policy: dict[str, Any] | None = None


def explain(finding: Finding, decoded: Mapping[str, Any] | None = None) -> Explanation:
    """Explain a denial from its text and, when there is one, its decoded message.

    The decoded message is AWS's own account of the request, so its action, resource and
    principal win over what the text said; the text still gives the policy type and ARN.
    """
    if decoded is None:
        action = normalise_action(finding)
        return _explanation(
            finding,
            action=action,
            resource=finding.resource,
            principal=finding.principal_arn,
            explicit=finding.explicit_deny,
            conditions={},
            statements=[],
            decoded=False,
        )
    context = _mapping(decoded.get("context"))
    conditions = decoded_conditions(context)
    resource = _string(context.get("resource")) or finding.resource
    principal = _string(_mapping(context.get("principal")).get("arn")) or finding.principal_arn
    action = _decoded_action(context.get("action"), conditions, resource) or normalise_action(
        finding
    )
    statements = list(_mapping(decoded.get("matchedStatements")).get("items") or [])
    return _explanation(
        finding,
        action=action,
        resource=resource,
        principal=principal,
        explicit=bool(decoded.get("explicitDeny")),
        conditions=conditions,
        statements=statements,
        decoded=True,
        allowed=decoded.get("allowed") is True,
    )


def _explanation(
    finding: Finding,
    *,
    action: str | None,
    resource: str | None,
    principal: str | None,
    explicit: bool | None,
    conditions: dict[str, list[str]],
    statements: list[Any],
    decoded: bool,
    allowed: bool = False,
) -> Explanation:
    deny_sids = [
        str(_mapping(statement).get("statementId") or "")
        for statement in statements
        if str(_mapping(statement).get("effect", "")).upper() == "DENY"
    ]
    if allowed:
        reason: str | None = (
            f"STS reports {action or 'the request'} as allowed now: the policy changed since "
            "the denial, or the denial came from a policy STS does not evaluate."
        )
    else:
        reason = _reason(
            finding, action, resource, principal, explicit=explicit, deny_sids=deny_sids,
            decoded=decoded,
        )  # fmt: skip
    return Explanation(
        action=action,
        resource=resource,
        principal_arn=principal,
        account_id=_first(conditions.get("aws:Account"), pattern=_ACCOUNT_RE)
        or account_of(principal)
        or account_of(resource),
        region=_first(conditions.get("aws:Region")) or region_of(resource),
        explicit_deny=explicit,
        policy_type=finding.policy_type,
        policy_arn=finding.policy_arn,
        reason=reason,
        conditions=conditions,
        matched_statements=statements,
        suggested_policy=None
        if allowed
        else suggested_policy(
            action, resource, principal, finding.policy_type, explicit_deny=explicit
        ),
    )


def decoded_conditions(context: Mapping[str, Any]) -> dict[str, list[str]]:
    """``{"items": [{"key": k, "values": {"items": [{"value": v}]}}]}`` -> ``{k: [v]}``."""
    conditions: dict[str, list[str]] = {}
    for item in _mapping(context.get("conditions")).get("items") or []:
        entry = _mapping(item)
        key = _string(entry.get("key"))
        if key is None:
            continue
        values = _mapping(entry.get("values")).get("items") or []
        conditions.setdefault(key, []).extend(
            str(_mapping(value).get("value")) for value in values if _mapping(value)
        )
    return conditions


def _decoded_action(
    raw: object, conditions: Mapping[str, list[str]], resource: str | None
) -> str | None:
    """The decoded ``context.action`` as ``service:Action``; bare names get their prefix from
    the ``aws:Service`` condition or the resource ARN."""
    action = _string(raw)
    if action is None:
        return None
    if ":" in action:
        prefix, _, name = action.partition(":")
        return f"{prefix.lower()}:{name}"
    service = _first(conditions.get("aws:Service")) or _arn_service(resource)
    return f"{service.lower()}:{action}" if service else None


def _arn_service(arn: str | None) -> str | None:
    parts = arn.split(":", 3) if arn else []
    return parts[2] if len(parts) > 2 and parts[0] == "arn" and parts[2] else None


def _first(values: list[str] | None, pattern: re.Pattern[str] | None = None) -> str | None:
    if not values:
        return None
    if pattern is not None and not pattern.match(values[0]):
        return None
    return values[0]


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def normalise_action(finding: Finding) -> str | None:
    """``service:Action`` with the prefix in lower case, from the text or its context."""
    if finding.action is not None:
        given_prefix, _, name = finding.action.partition(":")
        return f"{given_prefix.lower()}:{name}"
    if finding.operation is None:
        return None
    prefix = service_prefix(finding.service) if finding.service else None
    if prefix is None and finding.error_code in _EC2_ERROR_CODES:
        prefix = "ec2"
    # Only EC2 operations are named exactly like their IAM actions (and CloudFormation's
    # "API: svc:Action" names the action itself); elsewhere an operation is not an action.
    if prefix == "ec2" or (prefix is not None and finding.service == prefix):
        return f"{prefix}:{finding.operation}"
    return None


def service_prefix(service: str) -> str | None:
    """The IAM prefix for a service as an SDK names it: ``AmazonEC2`` -> ``ec2``."""
    name = re.sub(r"[^a-z0-9]", "", service.lower())
    for vendor in ("amazon", "aws"):
        if name.startswith(vendor) and len(name) > len(vendor):
            name = name[len(vendor) :]
    name = _SERVICE_PREFIX_EXCEPTIONS.get(name, name)
    return name or None


def account_of(arn: str | None) -> str | None:
    if arn is None:
        return None
    m = _ARN_ACCOUNT_RE.match(arn)
    return m.group("account") if m is not None else None


def region_of(arn: str | None) -> str | None:
    if arn is None:
        return None
    m = _ARN_REGION_RE.match(arn)
    return m.group("region") if m is not None else None


def _reason(
    finding: Finding,
    action: str | None,
    resource: str | None,
    principal: str | None,
    *,
    explicit: bool | None,
    deny_sids: list[str],
    decoded: bool,
) -> str | None:
    what = (action or "the request") + (f" on {resource}" if resource else "")
    policy_type = finding.policy_type
    if explicit:
        named = [sid for sid in deny_sids if sid]
        parts = []
        if named:
            plural = "s" if len(named) > 1 else ""
            parts.append(f"statement{plural} " + ", ".join(f"'{sid}'" for sid in named))
        if policy_type is not None:
            noun = _POLICY_NOUN.get(policy_type, f"{policy_type} policy")
            parts.append(("in " if named else "") + f"{_article(noun)} {noun}")
        by = " ".join(parts) or "a Deny statement"
        if finding.policy_arn:
            by += f": {finding.policy_arn}"
        return (
            f"Explicitly denied by {by}; an Allow cannot override an explicit deny, "
            f"so {what} needs that deny changed."
        )
    if policy_type is not None and (finding.because is not None or decoded):
        target = (
            _owner_policy(principal)
            if policy_type == "identity-based"
            else _FIX_TARGET.get(policy_type, "the policy AWS names")
        )
        noun = _POLICY_NOUN.get(policy_type, f"{policy_type} policy")
        return f"No {noun} allows {what}; add an Allow for it to {target}."
    if decoded:
        return f"No policy allows {what}; add an Allow for it to {_owner_policy(principal)}."
    if finding.action is not None:
        return (
            f"{what} was denied and AWS did not say by which policy; "
            f"start with the principal's identity-based policies."
        )
    return None


def _owner_policy(principal: str | None) -> str:
    """Whose identity-based policy needs the Allow: ``the role NAME's`` rather than a vague
    "the principal's"."""
    resource = principal.split(":", 5)[5] if principal and principal.count(":") >= 5 else ""
    kind, _, rest = resource.partition("/")
    name = rest.split("/", 1)[0]
    if kind == "assumed-role" and name:
        return f"an identity-based policy of the role {name}"
    if kind in ("user", "role") and name:
        return f"an identity-based policy of the {kind} {rest.rsplit('/', 1)[-1]}"
    return "an identity-based policy of the principal"


def _article(noun: str) -> str:
    return "an" if noun[0] in "aeiouAEIOU" else "a"


def suggested_policy(
    action: str | None,
    resource: str | None,
    principal_arn: str | None,
    policy_type: str | None,
    *,
    explicit_deny: bool | None,
) -> dict[str, Any] | None:
    """The least-privilege policy document allowing the request; None for explicit denies."""
    if explicit_deny is not False or action is None:
        return None
    statement: dict[str, Any] = {"Sid": "AllowDeniedRequest", "Effect": "Allow"}
    if policy_type in ("resource-based", "role trust") and principal_arn:
        statement["Principal"] = {"AWS": principal_arn}
    statement["Action"] = action
    statement["Resource"] = resource if resource and resource.startswith("arn:") else "*"
    return {"Version": "2012-10-17", "Statement": [statement]}


# IAM's limit for a customer managed policy, counted without whitespace (compact JSON).
IAM_MANAGED_POLICY_MAX_CHARACTERS = 6_144
TOO_LARGE_NOTE = (
    "the exact policy for every denied resource is longer than IAM's "
    f"{IAM_MANAGED_POLICY_MAX_CHARACTERS:,} characters for a managed policy; "
    "shown in its most general form: narrow its resources before attaching it"
)


@dataclass(frozen=True, slots=True)
class MergedPolicy:
    """A group's suggested policy, and why it is more general than its denials when it is."""

    document: dict[str, Any] | None
    note: str | None = None


def merge_policies(statements: Sequence[Mapping[str, Any]]) -> MergedPolicy:
    """One statement per (effect, action, principal) with its resources deduplicated, a
    resource covered by a wildcard of the same statement folded into it; when that is longer
    than IAM allows, the most general form that fits, and a note saying so."""
    merged: dict[str, dict[str, Any]] = {}
    for statement in statements:
        resources = statement.get("Resource", "*")
        shape = {k: v for k, v in statement.items() if k not in ("Sid", "Resource")}
        entry = merged.setdefault(_compact(shape), {"shape": shape, "resources": {}})
        for resource in resources if isinstance(resources, list) else [resources]:
            entry["resources"][str(resource)] = None
    if not merged:
        return MergedPolicy(None)
    groups = [(entry["shape"], fold_covered(list(entry["resources"]))) for entry in merged.values()]
    document = _policy_document(groups)
    if policy_characters(document) <= IAM_MANAGED_POLICY_MAX_CHARACTERS:
        return MergedPolicy(document)
    general = [(shape, [most_general_resource(resources)]) for shape, resources in groups]
    document = _policy_document(general)
    if policy_characters(document) > IAM_MANAGED_POLICY_MAX_CHARACTERS:
        document = _policy_document([(shape, ["*"]) for shape, _ in groups][:1])
        document["Statement"][0]["Action"] = sorted({str(s.get("Action")) for s, _ in groups})
    return MergedPolicy(document, TOO_LARGE_NOTE)


def fold_covered(resources: list[str]) -> list[str]:
    """Drop every resource that a wildcard resource of the same list already allows."""
    wildcards = [(r, _wildcard_re(r)) for r in resources if "*" in r or "?" in r]
    return [r for r in resources if not any(w != r and p.fullmatch(r) for w, p in wildcards)]


def most_general_resource(resources: list[str]) -> str:
    """The narrowest single ARN pattern covering all ``resources``: their common prefix up to a
    ``/`` or ``:``, then ``*`` (``*`` itself when they share no more than ``arn:``)."""
    if len(resources) == 1:
        return resources[0]
    prefix = os.path.commonprefix(resources)  # noqa: RUF071 - ARNs, compared character-wise
    cut = max(prefix.rfind("/"), prefix.rfind(":"))
    prefix = prefix[: cut + 1] if cut >= 0 else ""
    return f"{prefix}*" if prefix.count(":") >= 5 else "*"


def policy_characters(document: Mapping[str, Any]) -> int:
    """The size IAM counts: the JSON without whitespace."""
    return len(_compact(document))


def _policy_document(groups: list[tuple[dict[str, Any], list[str]]]) -> dict[str, Any]:
    statements = []
    for index, (shape, resources) in enumerate(groups):
        statement = {"Sid": f"AllowDenied{index}", **shape}
        statement["Resource"] = resources[0] if len(resources) == 1 else resources
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def _wildcard_re(pattern: str) -> re.Pattern[str]:
    """IAM's resource wildcards: ``*`` any run of characters, ``?`` one character."""
    return re.compile(".*".join(".".join(map(re.escape, p.split("?"))) for p in pattern.split("*")))


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def decoded_shape_problem(decoded: Mapping[str, Any]) -> str | None:
    """What is wrong with the shape of a decoded message, or None: a field of the wrong type
    is reported, never guessed at (``"false"`` is not false, ``"zzz"`` is not a list)."""
    expected: list[tuple[str, object, tuple[type, ...]]] = [
        ("allowed", decoded.get("allowed"), (bool,)),
        ("explicitDeny", decoded.get("explicitDeny"), (bool,)),
        ("matchedStatements", decoded.get("matchedStatements"), (dict,)),
        ("failures", decoded.get("failures"), (dict,)),
        ("context", decoded.get("context"), (dict,)),
    ]
    context = _mapping(decoded.get("context"))
    conditions = _mapping(context.get("conditions"))
    expected += [
        (
            "matchedStatements.items",
            _mapping(decoded.get("matchedStatements")).get("items"),
            (list,),
        ),
        ("failures.items", _mapping(decoded.get("failures")).get("items"), (list,)),
        ("context.action", context.get("action"), (str,)),
        ("context.resource", context.get("resource"), (str,)),
        ("context.principal", context.get("principal"), (dict,)),
        ("context.conditions", context.get("conditions"), (dict,)),
        ("context.conditions.items", conditions.get("items"), (list,)),
    ]
    for name, value, types in expected:
        if value is not None and not isinstance(value, types):
            kind = " or ".join(_JSON_TYPE_NAMES[t] for t in types)
            return f"{name} is {type(value).__name__} {value!r:.40}, expected {kind}"
    return None


_JSON_TYPE_NAMES = {bool: "true/false", dict: "an object", list: "a list", str: "a string"}
