"""unwrap + extract: a denial split over lines gives the same fields as the unwrapped line."""

from __future__ import annotations

import pytest

from tests.conftest import load_jsonl
from watcher.extract import find_denials
from watcher.model import Finding
from watcher.unwrap import content, joiner, starts_mid_sentence, unwrap_text

MULTILINE_DENIALS = load_jsonl("multiline_denials.jsonl")


def judged_fields(findings: list[Finding]) -> dict[str, object]:
    """The fields multiline_denials.jsonl labels: the first denial's, and the distinct count."""
    first = findings[0]
    distinct = {(f.principal_arn, f.action, f.resource, f.encoded_message) for f in findings}
    return {
        "principal_arn": first.principal_arn,
        "action": first.action,
        "resource": first.resource,
        "policy_type": first.policy_type,
        "explicit_deny": first.explicit_deny,
        "encoded_message_prefix": first.encoded_message[:20] if first.encoded_message else None,
        "denials": len(distinct),
    }


class TestCorpus:
    @pytest.mark.parametrize("sample", MULTILINE_DENIALS, ids=[s["id"] for s in MULTILINE_DENIALS])
    def test_multiline_sample_gives_its_expected_fields(self, sample):
        """Each real wrapped or split denial yields the labelled fields and denial count."""
        findings = find_denials(sample["text"])
        assert findings, "a denial without an event"
        assert sample["expected"] == judged_fields(findings)

    def test_line_breaks_turned_into_spaces_inside_arns_and_the_action(self):
        """m087: 'ser vice', '-dev' and 'iam: PassRole' where a display made breaks spaces."""
        (sample,) = [s for s in MULTILINE_DENIALS if s["id"] == "m087"]
        (finding,) = find_denials(sample["text"])
        assert (
            sample["expected"]["principal_arn"],
            "iam:PassRole",
            sample["expected"]["resource"],
        ) == (finding.principal_arn, finding.action, finding.resource)


class TestContent:
    def test_terraform_box_and_trailer_are_removed(self):
        """'│ ' before and ' │' after a wrapped line are the producer's, not the message's."""
        assert "to perform: s3:GetObject" == content("│ to perform: s3:GetObject │")

    def test_quote_indent_timestamp_and_severity_prefixes_are_removed(self):
        """Markdown quoting, CI timestamps, viewer timestamps, relays and severities go."""
        lines = [
            ">         status code: 403",
            "2026-11-28T09:20:01.2500000Z status code: 403",
            "03-05-2024 04:16:08 PM     status code: 403",
            "[terraform]: │  status code: 403",
            "ERROR   status code: 403 ",
            "<br />status code: 403<br />",
        ]
        assert ["status code: 403"] * len(lines) == [content(line) for line in lines]


class TestJoiner:
    def test_open_sentence_takes_the_next_line_with_a_space(self):
        """'is not authorized' at the end of a line: the next line is the rest of it."""
        assert " " == joiner("User: arn:aws:iam::1:user/a is not authorized", "│ to perform: x:Y")

    def test_cut_action_is_rejoined_without_a_space(self):
        """A fixed-width terminal cut 'cloudforma|tion:DescribeStacks' inside the action."""
        message = "User: arn:aws:iam::1:user/a is not authorized to perform: cloudforma"
        assert "" == joiner(message, "tion:DescribeStacks")

    def test_cut_arn_is_rejoined_without_a_space(self):
        """An ARN that stops after its account ('arn:aws:iam::123456:') continues below."""
        assert "" == joiner("AccessDenied: User: arn:aws:iam::123456:", "│ user/bootstrapper")

    def test_complete_denial_does_not_swallow_the_next_log_line(self):
        """After a whole sentence an unrelated line is a message of its own."""
        message = "User: arn:aws:iam::1:user/a is not authorized to perform: s3:GetObject"
        assert joiner(message, "2026-11-28 10:00:00 INFO request served") is None

    def test_next_denial_is_never_merged(self):
        """A second 'User: ...' line after a complete denial starts a new message."""
        message = "User: arn:aws:iam::1:user/a is not authorized to perform: s3:GetObject"
        assert joiner(message, "User: arn:aws:iam::1:user/b is not authorized to") is None

    def test_a_second_principal_is_never_joined_even_to_an_open_sentence(self):
        """'User: a is not authorized' then 'User: b ...': two messages, not one."""
        assert (
            joiner("User: arn:aws:iam::1:user/a is not authorized", "User: arn:aws:iam::1:user/b")
            is None
        )

    def test_a_word_with_a_colon_is_not_a_principal(self):
        """'on resource:' then 'is not authorized': the line above names no one."""
        assert joiner("x:Y on resource:", "is not authorized to perform: a:B") is None

    def test_go_sdk_status_code_line_continues_the_denial(self):
        """The Go SDK v1 puts 'status code: 403, request id: ...' on the next line."""
        message = "User: arn:aws:iam::1:user/a is not authorized to perform: s3:GetObject"
        assert " " == joiner(message, "\tstatus code: 403, request id: abc")

    def test_text_without_a_denial_joins_nothing(self):
        """Lines that hold no denial are never joined, whatever they end with."""
        assert joiner("waiting for the resource:", "  something") is None


class TestUnwrapText:
    def test_terraform_box_becomes_one_line(self):
        """A boxed, wrapped Terraform diagnostic reads as one sentence."""
        text = (
            "│ api error AccessDenied: User: arn:aws:iam::1:user/a is not authorized\n"
            '│ to perform: s3:GetObject on resource: "arn:aws:s3:::b" with\n'
            "│ an explicit deny in a resource-based policy\n"
            "╵"
        )
        assert (
            "│ api error AccessDenied: User: arn:aws:iam::1:user/a is not authorized to perform: "
            's3:GetObject on resource: "arn:aws:s3:::b" with an explicit deny in a '
            "resource-based policy\n╵"
        ) == unwrap_text(text)

    def test_principal_on_the_line_above_is_joined(self):
        """'User: ARN' ending a line and 'is not authorized' starting the next are one."""
        text = "AccessDenied: User: arn:aws:sts::1:role/r\nis not authorized to perform: a:B"
        assert text.replace("\n", " ") == unwrap_text(text)

    def test_starts_mid_sentence_asks_for_the_line_above(self):
        """A line starting with 'is not authorized' or a principal's tail needs the line above."""
        assert (True, True, False) == (
            starts_mid_sentence("is not authorized to perform: a:B"),
            starts_mid_sentence("│ user/x is not authorized to perform: a:B"),
            starts_mid_sentence("User: arn:aws:iam::1:user/x is not authorized to perform: a:B"),
        )
