"""explain: a Finding -> the fields a person acts on (action, account, reason, suggested policy).

Sits after extract (and decode): it never does I/O, it only reads what the text or the decoded
message said and phrases it as one actionable sentence plus, for implicit denies, the IAM
policy document that would have allowed the request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from watcher.model import Finding

_ARN_ACCOUNT_RE = re.compile(r"^arn:[^:]*+:[^:]*+:[^:]*+:(?P<account>\d{12}):")
_ARN_REGION_RE = re.compile(r"^arn:[^:]*+:[^:]*+:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):")
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
    action: str | None
    account_id: str | None
    region: str | None
    reason: str | None
    suggested_policy: dict[str, Any] | None


def explain(finding: Finding) -> Explanation:
    """Explain a denial from what its text said (no AWS call)."""
    action = normalise_action(finding)
    resource = finding.resource
    return Explanation(
        action=action,
        account_id=account_of(finding.principal_arn) or account_of(resource),
        region=region_of(resource),
        reason=_reason(finding, action),
        suggested_policy=suggested_policy(
            action,
            resource,
            finding.principal_arn,
            finding.policy_type,
            explicit_deny=finding.explicit_deny,
        ),
    )


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


def _reason(finding: Finding, action: str | None) -> str | None:
    what = action or "the request"
    on = f" on {finding.resource}" if finding.resource else ""
    policy_type = finding.policy_type
    if finding.explicit_deny and policy_type is not None:
        noun = _POLICY_NOUN.get(policy_type, f"{policy_type} policy")
        by = f"{_article(noun)} {noun}" + (f": {finding.policy_arn}" if finding.policy_arn else "")
        return (
            f"Explicitly denied by {by}; an Allow cannot override an explicit deny, "
            f"so {what}{on} needs that deny changed."
        )
    if finding.because is not None and policy_type is not None:
        target = _FIX_TARGET.get(policy_type, "the policy AWS names")
        noun = _POLICY_NOUN.get(policy_type, f"{policy_type} policy")
        return f"No {noun} allows {what}{on}; add an Allow for it to {target}."
    if finding.action is not None:
        return (
            f"{what}{on} was denied and AWS did not say by which policy; "
            f"start with the principal's identity-based policies."
        )
    return None


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
