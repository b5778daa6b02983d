"""explain: normalised actions, accounts, regions, actionable reasons and suggested policies."""

from __future__ import annotations

import pytest

from tests.conftest import load_jsonl
from watcher.explain import (
    IAM_MANAGED_POLICY_MAX_CHARACTERS,
    explain,
    fold_covered,
    merge_policies,
    most_general_resource,
    normalise_action,
    policy_characters,
    service_prefix,
    suggested_policy,
)
from watcher.extract import find_denials
from watcher.model import Finding

PLAINTEXT = {s["id"]: s for s in load_jsonl("plaintext_denials.jsonl")}


def explained(sample_id: str):
    (finding,) = find_denials(PLAINTEXT[sample_id]["text"])
    return explain(finding)


class TestAction:
    @pytest.mark.parametrize(
        ("service", "prefix"),
        [
            ("AmazonEC2", "ec2"),
            ("Amazon S3", "s3"),
            ("EC2", "ec2"),
            ("Lambda", "lambda"),
            ("AmazonIdentityManagement", "iam"),
            ("AWSSecurityTokenService", "sts"),
            ("AmazonDynamoDBv2", "dynamodb"),
            ("AWSKMS", "kms"),
        ],
    )
    def test_service_prefix(self, service, prefix):
        assert prefix == service_prefix(service)

    def test_prefix_is_lower_cased(self):
        assert "sns:Publish" == normalise_action(Finding(0, 0, 0, action="SNS:Publish"))

    def test_ec2_operation_becomes_the_action(self):
        finding = Finding(0, 0, 0, operation="RunInstances", error_code="UnauthorizedOperation")
        assert "ec2:RunInstances" == normalise_action(finding)

    def test_cloudformation_api_form_names_the_action(self):
        finding = Finding(0, 0, 0, operation="DeleteRoute", service="ec2")
        assert "ec2:DeleteRoute" == normalise_action(finding)

    def test_other_operations_are_not_guessed_as_actions(self):
        """S3's ListObjectsV2 is authorised as s3:ListBucket: no guess beats a wrong one."""
        finding = Finding(0, 0, 0, operation="ListObjectsV2", service="S3")
        assert normalise_action(finding) is None


class TestExplanation:
    def test_implicit_identity_deny(self):
        result = explained("p048")
        assert "527623259369" == result.account_id
        assert (
            "No identity-based policy allows iam:PassRole on "
            "arn:aws:iam::527623259369:role/BURoleForPositivoMercantil; add an Allow for it to "
            "an identity-based policy of the user BUUserForDevSecOpsPiaaS." == result.reason
        )
        assert {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowDeniedRequest",
                    "Effect": "Allow",
                    "Action": "iam:PassRole",
                    "Resource": "arn:aws:iam::527623259369:role/BURoleForPositivoMercantil",
                }
            ],
        } == result.suggested_policy

    def test_explicit_deny_names_the_policy_and_suggests_nothing(self):
        result = explained("p005")
        assert result.suggested_policy is None
        assert result.reason is not None
        assert result.reason.startswith(
            "Explicitly denied by an identity-based policy: "
            "arn:aws:iam::543752389747:policy/voc-cancel-cred; an Allow cannot override"
        )

    def test_resource_based_suggestion_names_the_principal(self):
        result = explained("p013")
        assert result.suggested_policy is not None
        statement = result.suggested_policy["Statement"][0]
        assert {"AWS": PLAINTEXT["p013"]["expected"]["principal_arn"]} == statement["Principal"]
        assert "us-east-1" == result.region

    def test_vpc_endpoint_reason(self):
        result = explained("p033")
        assert result.reason is not None
        assert result.reason.startswith("No VPC endpoint policy allows s3:GetObject")

    def test_non_arn_resource_gives_a_wildcard_resource(self):
        policy = suggested_policy(
            "iam:GetInstanceProfile", "instance profile X", None, None, explicit_deny=False
        )
        assert policy is not None
        assert "*" == policy["Statement"][0]["Resource"]

    def test_blob_only_denial_has_no_reason_until_decoded(self):
        result = explain(Finding(0, 0, 0, encoded_message="A" * 100))
        assert (None, None) == (result.reason, result.suggested_policy)


def allow(action: str, resource: str) -> dict:
    return {"Sid": "AllowDeniedRequest", "Effect": "Allow", "Action": action, "Resource": resource}


class TestMergedPolicy:
    def test_same_action_and_effect_become_one_statement(self):
        """Resources are deduplicated in first-seen order under one statement per action."""
        merged = merge_policies(
            [
                allow("s3:GetObject", "arn:aws:s3:::b/1"),
                allow("s3:GetObject", "arn:aws:s3:::b/2"),
                allow("s3:GetObject", "arn:aws:s3:::b/1"),
                allow("s3:PutObject", "arn:aws:s3:::c"),
            ]
        )
        assert (
            [
                ("s3:GetObject", ["arn:aws:s3:::b/1", "arn:aws:s3:::b/2"]),
                ("s3:PutObject", "arn:aws:s3:::c"),
            ],
            None,
        ) == ([(s["Action"], s["Resource"]) for s in merged.document["Statement"]], merged.note)

    def test_a_resource_covered_by_a_wildcard_is_folded_into_it(self):
        """b/1 goes into b/*, and b/* into *; the wildcards themselves are kept."""
        resources = ["arn:aws:s3:::b/1", "arn:aws:s3:::b/*", "arn:aws:s3:::c/?"]
        assert ["arn:aws:s3:::b/*", "arn:aws:s3:::c/?"] == fold_covered(resources)
        assert ["*"] == fold_covered([*resources, "*"])

    def test_seventy_long_resources_fit_iams_limit_in_their_general_form(self):
        """73 denials of ~1.9 KB resources: under 6,144 characters, and the alert says why."""
        long_keys = [f"arn:aws:s3:::a/{i:02d}-{'k' * 1900}" for i in range(70)]
        statements = [allow("s3:GetObject", r) for r in [*long_keys, "arn:aws:s3:::b/*"]]
        merged = merge_policies(statements)
        assert policy_characters(merged.document) <= IAM_MANAGED_POLICY_MAX_CHARACTERS
        (statement,) = merged.document["Statement"]
        assert "arn:aws:s3:::*" == statement["Resource"]
        assert "6,144 characters" in (merged.note or "")

    def test_the_star_resource_covers_everything(self):
        """With a denial on ``*``, the group's statement is simply ``*`` (nothing dropped)."""
        merged = merge_policies(
            [allow("s3:GetObject", "arn:aws:s3:::a"), allow("s3:GetObject", "*")]
        )
        assert ["*"] == [s["Resource"] for s in merged.document["Statement"]]

    def test_most_general_resource_keeps_the_common_arn_prefix(self):
        """The pattern stops at a path or ARN separator, never inside a name."""
        assert "arn:aws:s3:::bucket/logs/*" == most_general_resource(
            ["arn:aws:s3:::bucket/logs/a1", "arn:aws:s3:::bucket/logs/a2"]
        )
        assert "*" == most_general_resource(["arn:aws:s3:::x", "arn:aws:ec2:::y"])
