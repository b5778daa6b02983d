"""extract: every real-world sample, every producer's format, and linear time on hostile input."""

from __future__ import annotations

import random
import re
import string
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import load_jsonl
from watcher.extract import (
    MAX_BLOB_CHARS,
    find_denials,
    might_contain_denial,
    parse_leading_timestamp,
)
from watcher.model import BlobState
from watcher.unwrap import content

ALPHABET = string.ascii_letters + string.digits + "-_"
CONTINUED_BLOB_LINE = re.compile(r"[A-Za-z0-9_-]{16,}(?:\.\.\.)?")
ENCODED_LINES = load_jsonl("encoded_lines.jsonl")
PLAINTEXT_DENIALS = load_jsonl("plaintext_denials.jsonl")


def _joined_blob_of(sample_id: str) -> list[str]:
    """The blob of a sample whose note says it is wrapped over lines: its segments joined."""
    (sample,) = [s for s in ENCODED_LINES if s["id"] == sample_id]
    after = sample["text"].split("failure message:", 1)[1]
    return ["".join(re.findall(r"^\s*([A-Za-z0-9_-]{16,})\s*$", " " + after, re.MULTILINE))]


# Where issue #12 changed what a careful extractor returns, the corpus files keep their original
# labels and the new expectation is written here, with the reason.
ISSUE_12_BLOBS = {
    # PowerShell wraps the blob over 4 lines; its note: "full blob = 4 segments joined without
    # whitespace". The line-by-line extractor returned the first segment; now it is rejoined.
    "e039": _joined_blob_of("e039"),
}
ISSUE_12_PLAINTEXT = {
    # A message without a reason clause does not say whether the deny is explicit: null, as
    # multiline_denials.jsonl labels the same wording (m039, m046, ...).
    "p007": {"explicit_deny": None},
}


def make_blob(length: int = 600, seed: int = 1) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(ALPHABET) for _ in range(length))


BLOB = make_blob()
PREFIX = "Encoded authorization failure message: "


class TestCorpus:
    @pytest.mark.parametrize("sample", ENCODED_LINES, ids=[s["id"] for s in ENCODED_LINES])
    def test_encoded_line_yields_exactly_the_expected_blobs(self, sample):
        """Each real log excerpt gives the blobs a careful reader would copy, and no others."""
        findings = find_denials(sample["text"])
        expected = ISSUE_12_BLOBS.get(sample["id"], sample["expected_blobs"])
        assert expected == [f.encoded_message for f in findings if f.encoded_message]
        assert findings, "a placeholder line is still a denial with its own event"

    @pytest.mark.parametrize("sample", PLAINTEXT_DENIALS, ids=[s["id"] for s in PLAINTEXT_DENIALS])
    def test_plaintext_denial_is_parsed_exactly(self, sample):
        """Principal, action, resource, AWS's reason, policy type and deny kind match the corpus."""
        findings = find_denials(sample["text"])
        assert len(findings) == 1
        finding = findings[0]
        actual = {
            "principal_arn": finding.principal_arn,
            "action": finding.action,
            "resource": finding.resource,
            "reason": finding.because,
            "policy_type": finding.policy_type,
            "explicit_deny": finding.explicit_deny,
        }
        assert sample["expected"] | ISSUE_12_PLAINTEXT.get(sample["id"], {}) == actual

    def test_cloudtrail_ellipsis_marks_the_blob_truncated(self):
        """CloudTrail's cut '...' blob is kept but flagged so no STS call is made."""
        (sample,) = [s for s in ENCODED_LINES if s["id"] == "e018"]
        (finding,) = find_denials(sample["text"])
        assert finding.blob_state == BlobState.TRUNCATED

    def test_policy_arn_of_newer_wording_is_captured(self):
        """'... in an identity-based policy: arn:...' names the denying policy."""
        (sample,) = [s for s in PLAINTEXT_DENIALS if s["id"] == "p005"]
        (finding,) = find_denials(sample["text"])
        assert finding.policy_arn == "arn:aws:iam::543752389747:policy/voc-cancel-cred"


class TestProducers:
    """One line per producer, written the way each tool prints the error."""

    def test_aws_cli(self):
        line = (
            "An error occurred (UnauthorizedOperation) when calling the StartInstances operation: "
            f"You are not authorized to perform this operation. {PREFIX}{BLOB}"
        )
        (f,) = find_denials(line)
        assert (
            f.encoded_message,
            f.error_code,
            f.operation,
        ) == (BLOB, "UnauthorizedOperation", "StartInstances")
        assert f.blob_state == BlobState.COMPLETE

    def test_boto3_traceback_line(self):
        line = (
            "botocore.exceptions.ClientError: An error occurred (UnauthorizedOperation) when "
            f"calling the RunInstances operation: You are not authorized to perform this "
            f"operation. {PREFIX}{BLOB}"
        )
        (f,) = find_denials(line)
        assert (f.encoded_message, f.operation) == (BLOB, "RunInstances")

    def test_go_sdk_v1_with_escaped_newline_trailer(self):
        line = (
            f'"error"="UnauthorizedOperation: You are not authorized to perform this operation. '
            f"{PREFIX}{BLOB}\\n\\tstatus code: 403, "
            'request id: 1b2c3d4e-aaaa-bbbb-cccc-0123456789ab"'
        )
        (f,) = find_denials(line)
        assert (
            f.encoded_message,
            f.error_code,
            f.request_id,
        ) == (BLOB, "UnauthorizedOperation", "1b2c3d4e-aaaa-bbbb-cccc-0123456789ab")

    def test_go_sdk_v2(self):
        line = (
            "operation error EC2: RunInstances, https response error StatusCode: 403, "
            "RequestID: 0f0e0d0c-1111-2222-3333-444455556666, api error UnauthorizedOperation: "
            f"You are not authorized to perform this operation. {PREFIX}{BLOB}"
        )
        (f,) = find_denials(line)
        assert (
            f.operation,
            f.service,
            f.error_code,
            f.encoded_message,
        ) == ("RunInstances", "EC2", "UnauthorizedOperation", BLOB)
        assert f.request_id == "0f0e0d0c-1111-2222-3333-444455556666"

    def test_java_sdk(self):
        line = (
            f"You are not authorized to perform this operation. {PREFIX}{BLOB} (Service: "
            "AmazonEC2; Status Code: 403; Error Code: UnauthorizedOperation; Request ID: "
            "9a8b7c6d-0000-1111-2222-333344445555)"
        )
        (f,) = find_denials(line)
        assert (
            f.encoded_message,
            f.service,
            f.error_code,
            f.request_id,
        ) == (
            BLOB,
            "AmazonEC2",
            "UnauthorizedOperation",
            "9a8b7c6d-0000-1111-2222-333344445555",
        )

    def test_cloudformation_event(self):
        line = (
            "2024-03-01T10:00:00Z MyInstance CREATE_FAILED API: ec2:RunInstances You are not "
            f"authorized to perform this operation. {PREFIX}{BLOB}"
        )
        (f,) = find_denials(line)
        assert (
            f.operation,
            f.service,
            f.encoded_message,
            f.timestamp,
        ) == ("RunInstances", "ec2", BLOB, "2024-03-01T10:00:00.000Z")

    def test_kubernetes_json_log_line_with_escaped_quotes(self):
        line = (
            '{"level":"error","ts":"2024-01-02T03:04:05.678Z","msg":"Reconciler error",'
            '"error":"AccessDenied: User: arn:aws:sts::123456789012:assumed-role/ctrl/i-1 is not '
            'authorized to perform: s3:GetObject on resource: \\"arn:aws:s3:::bkt/key\\" '
            "because no identity-based policy allows the s3:GetObject action"
            '\\n\\tstatus code: 403"}'
        )
        (f,) = find_denials(line)
        assert (f.principal_arn, f.action, f.resource, f.policy_type) == (
            "arn:aws:sts::123456789012:assumed-role/ctrl/i-1",
            "s3:GetObject",
            "arn:aws:s3:::bkt/key",
            "identity-based",
        )

    def test_modern_ec2_message_is_one_denial_with_both_parts(self):
        """The plain-text sentence and the blob of one message make one finding."""
        line = (
            "You are not authorized to perform this operation. User: "
            "arn:aws:iam::111122223333:user/ana is not authorized to perform: ec2:RunInstances "
            "on resource: arn:aws:ec2:us-east-1:111122223333:instance/* because no "
            f"identity-based policy allows the ec2:RunInstances action. {PREFIX}{BLOB}"
        )
        (f,) = find_denials(line)
        assert (
            f.encoded_message,
            f.action,
            f.resource,
        ) == (BLOB, "ec2:RunInstances", "arn:aws:ec2:us-east-1:111122223333:instance/*")

    def test_two_denials_on_one_line_are_two_findings(self):
        line = f"first: {PREFIX}{BLOB}; second: {PREFIX}{make_blob(seed=2)}"
        findings = find_denials(line)
        assert [BLOB, make_blob(seed=2)] == [f.encoded_message for f in findings]
        assert [f.ordinal for f in findings] == [0, 1]


class TestBlobBoundaries:
    @pytest.mark.parametrize(
        "terminator", ['"', "\\n", ".", ")", " ", "\t", "'", ",", "\\t", "<", "}"]
    )
    def test_blob_ends_at_the_first_character_outside_the_alphabet(self, terminator):
        (f,) = find_denials(f"{PREFIX}{BLOB}{terminator}tail")
        assert f.encoded_message == BLOB

    def test_blob_may_start_with_a_dash(self):
        blob = "-" + BLOB
        (f,) = find_denials(PREFIX + blob)
        assert blob == f.encoded_message

    @pytest.mark.parametrize(
        "placeholder",
        [
            "...",
            "[message]",
            "<ENCODED MESSAGE>",
            "$ERROR_MESSAGE",
            "xxxxxxx",
            "--truncated--",
            "x" * 80,
            "",
        ],
    )
    def test_placeholders_are_not_blobs_but_the_line_is_a_denial(self, placeholder):
        (f,) = find_denials(
            "An error occurred (UnauthorizedOperation) when calling the RunInstances operation: "
            f"You are not authorized to perform this operation. {PREFIX}{placeholder}"
        )
        assert (f.encoded_message, f.blob_state) == (None, BlobState.ABSENT)

    def test_a_token_shorter_than_a_real_blob_is_kept_as_truncated(self):
        token = make_blob(40)
        (f,) = find_denials(PREFIX + token)
        assert (token, BlobState.TRUNCATED) == (f.encoded_message, f.blob_state)

    def test_ellipsis_after_blob_means_truncated(self):
        (f,) = find_denials(f'"errorMessage": "{PREFIX}{BLOB}...",')
        assert (f.encoded_message, f.blob_state) == (BLOB, BlobState.TRUNCATED)

    def test_blob_of_the_maximum_length_is_complete(self):
        blob = make_blob(MAX_BLOB_CHARS)
        (f,) = find_denials(PREFIX + blob + " ")
        assert (blob, BlobState.COMPLETE) == (f.encoded_message, f.blob_state)

    def test_token_longer_than_any_blob_is_not_a_blob(self):
        (f,) = find_denials(PREFIX + make_blob(MAX_BLOB_CHARS + 1))
        assert f.encoded_message is None


class TestContext:
    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            ("2024-05-06T07:08:09.123456789Z x", "2024-05-06T07:08:09.123Z"),
            ("2024-05-06 07:08:09,5 x", "2024-05-06T07:08:09.500Z"),
            ("2024-05-06T09:08:09+02:00 x", "2024-05-06T07:08:09.000Z"),
            ("[2024-05-06T07:08:09Z] x", "2024-05-06T07:08:09.000Z"),
            ("2024/05/06 07:08:09 x", "2024-05-06T07:08:09.000Z"),
            ("Nov  3 07:08:09 host app: x", "2026-11-03T07:08:09.000Z"),
            ("Dec 30 07:08:09 host app: x", "2025-12-30T07:08:09.000Z"),
            ("no time here", None),
            ("2024-13-45T07:08:09Z impossible date", None),
        ],
    )
    def test_leading_timestamp(self, line, expected):
        now = datetime(2026, 11, 28, tzinfo=UTC)
        assert expected == parse_leading_timestamp(line, now=now)

    def test_lines_without_the_trigger_word_are_skipped_by_the_prefilter(self):
        assert not might_contain_denial("GET /health 200 OK")
        assert find_denials("An error occurred (AccessDenied): Access Denied") == []

    def test_you_are_not_authorized_alone_is_a_denial(self):
        (f,) = find_denials(
            "An error occurred (UnauthorizedOperation) when calling the DescribeInstances "
            "operation: You are not authorized to perform this operation."
        )
        assert (
            f.error_code,
            f.operation,
            f.blob_state,
        ) == ("UnauthorizedOperation", "DescribeInstances", BlobState.ABSENT)

    def test_other_you_are_not_authorized_sentences_are_not_denials(self):
        assert find_denials("You are not authorized to view this page") == []


class TestLinearTime:
    def test_ten_megabytes_of_blob_characters_return_promptly(self):
        """No terminator and no bound: the regexes must not backtrack."""
        text = PREFIX + "A" * 10_000_000
        started = time.perf_counter()
        (f,) = find_denials(text)
        assert f.encoded_message is None
        # A generous bound: quadratic behaviour would take hours, linear takes well under 1 s.
        assert time.perf_counter() - started < 20

    @pytest.mark.parametrize(
        "filler",
        [
            "is not authorized to perform: " * 20000,
            " " * 1_000_000,
            "User: " * 100_000,
            "authorization failure message:" * 30000,
            ("a" * 5000 + " ") * 200,
        ],
    )
    def test_adversarial_repetitions_return_promptly(self, filler):
        started = time.perf_counter()
        find_denials(filler)
        assert time.perf_counter() - started < 20


_noise = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200).filter(
    lambda s: "authoriz" not in s
)
_blob = st.text(alphabet=ALPHABET, min_size=64, max_size=MAX_BLOB_CHARS).filter(
    lambda s: len(set(s)) > 4
)
_terminator = st.sampled_from(['"', "\\n", ".", ")", " ", "\n", "'", "", ",", "]"])


class TestProperties:
    @settings(max_examples=300, deadline=None)
    @given(before=_noise, blob=_blob, terminator=_terminator, after=_noise)
    def test_random_text_around_a_random_blob_extracts_it_exactly(
        self, before, blob, terminator, after
    ):
        after = after if terminator else ""  # without a terminator the blob runs to the end
        if after[:1] in ALPHABET or after.startswith("..."):
            after = " " + after
        if terminator == "." and after.startswith(".."):
            after = " " + after
        if terminator == "\n" and CONTINUED_BLOB_LINE.fullmatch(content(after)):
            after += " ;"  # a line of 16+ blob characters alone would continue the blob
        text = f"{before} {PREFIX}{blob}{terminator}{after}"
        findings = find_denials(text)
        assert [blob] == [f.encoded_message for f in findings]

    @settings(max_examples=200, deadline=None)
    @given(text=st.text(max_size=2000))
    def test_never_raises_on_arbitrary_text(self, text):
        for f in find_denials("authoriz " + text):
            assert f.start <= f.end


class TestIssue12Grammar:
    """The wordings the issue lists, each as AWS prints it."""

    def test_explicit_deny_without_a_policy_named(self):
        """'with an explicit deny (Service: ...)': explicit, type unknown, resource whole."""
        line = (
            "User: arn:aws:sts::111122223333:assumed-role/r/s is not authorized to perform: "
            "lambda:InvokeFunction on resource: "
            "arn:aws:lambda:us-east-1:111122223333:function:Registrar with an explicit deny "
            "(Service: AWSLambda; Status Code: 403; Error Code: AccessDeniedException; "
            "Request ID: 1b2c3d4e-aaaa-bbbb-cccc-0123456789ab)"
        )
        (f,) = find_denials(line)
        assert (
            "arn:aws:lambda:us-east-1:111122223333:function:Registrar",
            True,
            None,
        ) == (f.resource, f.explicit_deny, f.policy_type)

    def test_denial_without_a_principal_still_has_its_event(self):
        """Bedrock's 'not authorized to perform: ...' names no principal: still a denial."""
        line = (
            "AccessDeniedException: not authorized to perform: bedrock:InvokeModel on resource: "
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2"
        )
        (f,) = find_denials(line)
        assert (None, "bedrock:InvokeModel", "AccessDeniedException") == (
            f.principal_arn,
            f.action,
            f.error_code,
        )

    def test_no_reason_clause_leaves_explicit_deny_unknown(self):
        """The older wording says nothing about the kind of deny: null, not false."""
        (f,) = find_denials(
            "User: arn:aws:iam::1:user/a is not authorized to perform: s3:GetObject"
        )
        assert f.explicit_deny is None

    def test_transitively_through_a_service_control_policy_keeps_the_first_type(self):
        """'in a VPC endpoint policy transitively through a service control policy'."""
        line = (
            "User: arn:aws:iam::1:user/a is not authorized to perform: sns:Publish on resource: "
            "arn:aws:sns:us-east-1:1:t with an explicit deny in a VPC endpoint policy "
            "transitively through a service control policy"
        )
        (f,) = find_denials(line)
        assert ("arn:aws:sns:us-east-1:1:t", True, "vpc endpoint") == (
            f.resource,
            f.explicit_deny,
            f.policy_type,
        )

    def test_placeholders_in_arns_are_kept_as_written(self):
        """'[account id]' (with its space), '***' and '...' are the poster's: kept."""
        line = (
            "User: arn:aws:sts::[account id]:assumed-role/r/... is not authorized to perform: "
            "s3:GetObject on resource: arn:aws:s3:::***/key"
        )
        (f,) = find_denials(line)
        assert ("arn:aws:sts::[account id]:assumed-role/r/...", "arn:aws:s3:::***/key") == (
            f.principal_arn,
            f.resource,
        )
