"""explain: normalised actions, accounts, regions, actionable reasons and suggested policies."""

from __future__ import annotations

import pytest

from tests.conftest import load_jsonl
from watcher.explain import explain, normalise_action, service_prefix, suggested_policy
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
