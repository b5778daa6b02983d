"""sources.lines as a message reader: framing, joining, and streaming with final/resume_offset.

The follower's use is modelled exactly: it reads [offset, end) where end is just after a
newline, commits ``resume_offset``, reads again from there when more data came, and after a
quiet second reads once more with ``final=True``. Whatever the poll boundaries, it must see the
same messages at the same offsets as one final read of the whole file.
"""

from __future__ import annotations

import io
import json
import random
import re
import textwrap

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.conftest import load_jsonl
from tests.test_unwrap import judged_fields
from watcher.extract import SECOND_WORDS_BYTES, find_denials
from watcher.model import BlobState, Finding
from watcher.sources.framing import Framing
from watcher.sources.lines import iter_candidates

MULTILINE_DENIALS = load_jsonl("multiline_denials.jsonl")
PLAINTEXT_DENIALS = load_jsonl("plaintext_denials.jsonl")
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
PREFIX = "Encoded authorization failure message: "

Message = tuple[int, int, bytes, str | None]


def read(
    data: bytes, *, final: bool = True, framing: Framing = "auto", chunk_bytes: int = 1 << 20
) -> tuple[list[Message], int]:
    """One scan as a caller makes it: the messages and the resume offset."""
    scan = iter_candidates(
        io.BytesIO(data),
        framing=framing,
        final=final,
        chunk_bytes=chunk_bytes,
        also_one_of=SECOND_WORDS_BYTES,
    )
    messages = [(c.line_offset, c.end_offset, c.text, c.timestamp) for c in scan]
    return messages, scan.resume_offset


def follow(data: bytes, cuts: list[int], *, framing: Framing = "auto") -> list[Message]:
    """The follower: polls that see the file grow to each cut, then a final read after a pause."""
    seen: list[Message] = []
    offset = 0
    for cut in [*sorted(cuts), len(data)]:
        end = data.rfind(b"\n", 0, cut) + 1  # only whole lines are read while following
        if end <= offset:
            continue
        messages, resume = read(data[offset:end], final=False, framing=framing, chunk_bytes=64)
        seen += [(a + offset, b + offset, text, ts) for a, b, text, ts in messages]
        offset += resume
    messages, _ = read(data[offset:], final=True, framing=framing, chunk_bytes=64)
    seen += [(a + offset, b + offset, text, ts) for a, b, text, ts in messages]
    return seen


def judged(f: Finding) -> tuple[object, ...]:
    """The fields an event of this finding is judged by."""
    fields = (f.principal_arn, f.action, f.resource, f.policy_type, f.explicit_deny)
    return (*fields, f.encoded_message, f.blob_state)


def events_of(text: bytes, framing: Framing = "auto") -> list[tuple[object, ...]]:
    """The judged fields of every denial the reader and the extractor find in ``text``."""
    fields = []
    for candidate in iter_candidates(
        io.BytesIO(text), framing=framing, also_one_of=SECOND_WORDS_BYTES
    ):
        fields.extend(judged(f) for f in find_denials(candidate.text.decode()))
    return fields


def cri(parts: list[str], stream: str = "stderr", time: str = "2026-11-28T09:20:02.25Z") -> bytes:
    """A message as a CRI runtime writes it: P lines, then the F line."""
    tags = ["P"] * (len(parts) - 1) + ["F"]
    return b"".join(
        f"{time} {stream} {tag} {part}\n".encode() for tag, part in zip(tags, parts, strict=True)
    )


def findings_through_the_reader(text: str) -> list[Finding]:
    """What `scan` and the daemon extract from ``text`` written to a file."""
    scan = iter_candidates(
        io.BytesIO((text + "\n").encode()), framing="auto", also_one_of=SECOND_WORDS_BYTES
    )
    return [f for candidate in scan for f in find_denials(candidate.text.decode())]


class TestCorpusThroughTheReader:
    @pytest.mark.parametrize("sample", MULTILINE_DENIALS, ids=[s["id"] for s in MULTILINE_DENIALS])
    def test_multiline_sample_read_from_a_file_gives_its_expected_fields(self, sample):
        """The reader's messages give each sample's labelled fields, as the whole text does."""
        findings = findings_through_the_reader(sample["text"])
        assert findings, "a denial without an event"
        assert sample["expected"] == judged_fields(findings)

    @pytest.mark.parametrize("sample", PLAINTEXT_DENIALS, ids=[s["id"] for s in PLAINTEXT_DENIALS])
    def test_plaintext_denial_read_from_a_file_is_one_message(self, sample):
        """Each plain-text denial (some wrapped) is one message with its action and principal."""
        (finding,) = findings_through_the_reader(sample["text"])
        expected = sample["expected"]
        assert (expected["principal_arn"], expected["action"], expected["resource"]) == (
            finding.principal_arn,
            finding.action,
            finding.resource,
        )


class TestStreaming:
    @settings(max_examples=60, deadline=None)
    @given(
        sample=st.sampled_from(MULTILINE_DENIALS),
        cuts=st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=6),
    )
    def test_any_poll_boundaries_give_the_messages_of_one_final_read(self, sample, cuts):
        """Held messages are re-read from their first line, never emitted twice or lost.

        A message whose sentence is whole when the data ends goes out at once (no wait for
        a context line that may follow), so where a poll ends between it and its context
        line, the message is the same denial with less context: compared by where each
        message starts."""
        data = (sample["text"] + "\n").encode()
        expected, _ = read(data)
        followed = follow(data, [int(c * len(data)) for c in cuts])
        assert [m[0] for m in expected] == [m[0] for m in followed]

    def test_polls_at_line_ends_of_one_write_give_the_messages_of_one_final_read(self):
        """Lines written together are read together: the same messages, text and all."""
        for sample in MULTILINE_DENIALS:
            data = (sample["text"] + "\n").encode()
            assert read(data)[0] == follow(data, [])

    def test_a_message_open_at_the_end_is_held_until_final(self):
        """'on resource:' ends the data: nothing is yielded, resume is that line."""
        data = (
            b"noise\nUser: arn:aws:iam::1:user/a is not authorized to perform: a:B on resource:\n"
        )
        assert ([], 6) == read(data, final=False)
        (message,), resume = read(data, final=True)
        assert (6, len(data)) == (message[0], resume)

    def test_the_next_poll_completes_the_held_message_at_its_first_line(self):
        """Reading again from resume_offset with the rest joins the whole sentence."""
        first = b"noise\nUser: arn:aws:iam::1:user/a is not authorized\n"
        data = first + b"to perform: s3:GetObject\nlater line\n"
        _, resume = read(first, final=False)
        (message,), end = read(data[resume:], final=False)
        assert (
            0,
            b"User: arn:aws:iam::1:user/a is not authorized to perform: s3:GetObject",
            len(data) - resume,
        ) == (message[0], message[2], end)

    def test_a_complete_last_line_goes_out_at_once(self):
        """A whole sentence at the end of the data is not held back for a context line that
        may never come: the last denial of a quiet file is emitted on the poll that reads it."""
        data = b"User: arn:aws:iam::1:user/a is not authorized to perform: s3:GetObject\n"
        assert ([(0, len(data) - 1, data[:-1], None)], len(data)) == read(data, final=False)

    def test_a_complete_message_with_its_continuation_in_the_same_read_is_joined(self):
        """The Go SDK's 'status code' line written with the sentence joins it."""
        data = (
            b"User: arn:aws:iam::1:user/a is not authorized to perform: s3:GetObject\n"
            b"\tstatus code: 403, request id: 5e6f\n"
        )
        ((_, end, text, _),), resume = read(data, final=False)
        assert (len(data) - 1, len(data)) == (end, resume)
        assert text.endswith(b"status code: 403, request id: 5e6f")

    def test_nothing_after_a_held_message_is_emitted(self):
        """A held stdout partial holds back a complete stderr denial written after it."""
        held = b"2026-11-28T09:20:02Z stdout P User: arn:aws:iam::1:user/a is not auth\n"
        other = cri(["User: arn:aws:iam::1:user/b is not authorized to perform: s3:GetObject"])
        assert ([], 0) == read(held + other + b"x\n", final=False)

    def test_a_principal_line_at_the_end_is_read_again(self):
        """'User: ARN' alone on the last line waits for its 'is not authorized' line."""
        data = b"noise\nAccessDenied: User:\narn:aws:iam::1:user/a\n"
        assert ([], 6) == read(data, final=False)
        quiet = b"noise\nnothing to see\n"
        assert ([], len(quiet)) == read(quiet, final=False)


class TestFraming:
    def test_cri_partials_cut_inside_the_arn_give_the_whole_resource(self):
        """P+P+F, cut inside 'targetgroup/tgShop': the resource is whole, the time is CRI's."""
        sentence = (
            "User: arn:aws:sts::111122223333:assumed-role/lb/i-0abc is not authorized to "
            "perform: elasticloadbalancing:CreateTargetGroup on resource: "
            "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/tgShop/0123"
        )
        data = cri([sentence[:60], sentence[60:150], sentence[150:]])
        (message,), _ = read(data)
        (finding,) = find_denials(message[2].decode())
        expected_resource = (
            "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/tgShop/0123"
        )
        assert (expected_resource, "2026-11-28T09:20:02.250Z") == (finding.resource, message[3])

    def test_trigger_word_split_over_partials_is_still_found(self):
        """'is not autho' | 'rized to perform': the partial tag itself is searched for."""
        data = cri(["User: arn:aws:iam::1:user/a is not autho", "rized to perform: s3:GetObject"])
        (message,), _ = read(data)
        assert (
            b"User: arn:aws:iam::1:user/a is not authorized to perform: s3:GetObject" == message[2]
        )

    def test_other_streams_between_partials_are_their_own_messages(self):
        """A stdout denial between two stderr partials is read once, and so is the stderr one."""
        data = (
            b"2026-11-28T09:20:02Z stderr P User: arn:aws:iam::1:user/a is not authorized to \n"
            + cri(
                ["User: arn:aws:iam::1:user/b is not authorized to perform: s3:PutObject"], "stdout"
            )
            + b"2026-11-28T09:20:03Z stderr F perform: s3:GetObject\n"
        )
        texts = sorted(message[2] for message in read(data)[0])
        assert [
            b"User: arn:aws:iam::1:user/a is not authorized to perform: s3:GetObject",
            b"User: arn:aws:iam::1:user/b is not authorized to perform: s3:PutObject",
        ] == texts

    def test_partials_after_another_streams_line_are_not_read_twice(self):
        """The later P and F parts of a joined message are never a message of their own."""
        data = (
            b"2026-11-28T09:20:02Z stderr P User: arn:aws:iam::1:user/a is not authorized to \n"
            b"2026-11-28T09:20:02Z stdout F noise\n"
            b"2026-11-28T09:20:02Z stderr P perform: s3:Get\n"
            b"2026-11-28T09:20:02Z stderr F Object\n"
        )
        messages, _ = read(data)
        assert [b"User: arn:aws:iam::1:user/a is not authorized to perform: s3:GetObject"] == [
            message[2] for message in messages
        ]

    def test_blob_over_partials_is_rejoined_and_complete(self):
        """A blob split over P lines is one blob, worth an STS call."""
        rng = random.Random(3)
        blob = "".join(rng.choice(ALPHABET) for _ in range(700))
        line = f"You are not authorized to perform this operation. {PREFIX}{blob}"
        data = cri([line[:200], line[200:500], line[500:]])
        assert [(blob, BlobState.COMPLETE)] == [f[5:] for f in events_of(data)]

    def test_blob_in_a_partial_without_final_part_is_truncated(self):
        """A P line with no F by the end of final data: the blob is cut, never sent to STS."""
        rng = random.Random(4)
        blob = "".join(rng.choice(ALPHABET) for _ in range(300))
        line = f"You are not authorized to perform this operation. {PREFIX}{blob}"
        data = b"2026-11-28T09:20:02Z stdout P " + line.encode() + b"\n"
        assert [(blob, BlobState.TRUNCATED)] == [f[5:] for f in events_of(data)]

    def test_docker_json_file_is_unwrapped_with_its_time(self):
        """docker's {"log","stream","time"}: the message without framing, the time as given."""
        record = {
            "log": "User: arn:aws:iam::1:user/a is not authorized to perform: s3:GetObject\n",
            "stream": "stderr",
            "time": "2026-11-28T09:20:04.123456789+01:00",
        }
        (message,), _ = read(json.dumps(record).encode() + b"\n")
        assert (
            b"User: arn:aws:iam::1:user/a is not authorized to perform: s3:GetObject",
            "2026-11-28T08:20:04.123Z",
        ) == (message[2], message[3])

    def test_docker_partials_are_joined(self):
        """A docker log without its newline continues in the next record of its stream."""
        time = "2026-11-28T09:20:04Z"
        lines = [
            {"log": "User: arn:aws:iam::1:user/a is not authorized to perf", "time": time},
            {"log": "orm: s3:GetObject\n", "time": time},
        ]
        data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        (message,), _ = read(data, framing="docker")
        assert (
            b"User: arn:aws:iam::1:user/a is not authorized to perform: s3:GetObject" == message[2]
        )

    def test_plain_framing_leaves_cri_lines_alone(self):
        """format: plain reads a CRI-looking line as text: its time is not taken."""
        data = cri(["User: arn:aws:iam::1:user/a is not authorized to perform: s3:GetObject"])
        (message,), _ = read(data, framing="plain")
        assert (data.rstrip(b"\n"), None) == (message[2], message[3])

    def test_zap_json_line_gives_its_ts(self):
        """controller-runtime's {"ts": epoch seconds} becomes the message's timestamp."""
        line = (
            '{"level":"error","ts":1651073143.6192567,"error":"AccessDenied: User: '
            'arn:aws:iam::1:user/a is not authorized to perform: s3:GetObject"}\n'
        )
        (message,), _ = read(line.encode())
        assert "2022-04-27T15:25:43.619Z" == message[3]


_PREFIXES = ["", "│ ", "> ", "    ", "2026-11-28T09:20:01.1234567Z ", "[terraform]: │ "]
_SENTENCES = st.builds(
    lambda account, name, action, resource, clause: (
        f"api error AccessDenied: User: arn:aws:iam::{account}:user/{name} is not authorized "
        f"to perform: {action} on resource: {resource}{clause}"
    ),
    st.from_regex(r"[0-9]{12}", fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9.@_-]{0,30}", fullmatch=True),
    st.sampled_from(["s3:GetObject", "iam:PassRole", "ec2:RunInstances", "kms:Decrypt"]),
    st.from_regex(r"arn:aws:s3:::[a-z0-9-]{3,20}/[a-z0-9/._-]{1,40}", fullmatch=True),
    st.sampled_from(
        [
            "",
            " because no identity-based policy allows the s3:GetObject action",
            " with an explicit deny in a service control policy",
            " with an explicit deny",
            " because no permissions boundary allows the s3:GetObject action",
        ]
    ),
)


class TestProperties:
    @settings(max_examples=150, deadline=None)
    @given(
        sentence=_SENTENCES,
        width=st.integers(min_value=20, max_value=120),
        prefix=st.sampled_from(_PREFIXES),
    )
    def test_word_wrapped_denial_gives_the_event_of_the_unwrapped_line(
        self, sentence, width, prefix
    ):
        """Wrapped at any width, with any producer's prefix, between two unrelated lines."""
        wrapped = textwrap.wrap(sentence, width, break_long_words=False, break_on_hyphens=False)
        text = (
            "noise before\n" + "".join(prefix + line + "\n" for line in wrapped) + "noise after\n"
        )
        assert events_of(sentence.encode()) == events_of(text.encode())

    @settings(max_examples=150, deadline=None)
    @given(
        sentence=_SENTENCES,
        cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=6),
        stream=st.sampled_from(["stdout", "stderr"]),
    )
    def test_denial_split_into_random_cri_partials_gives_the_same_event(
        self, sentence, cuts, stream
    ):
        """Any P/F split of one message (even inside the trigger word) changes no field."""
        points = sorted({c for c in cuts if c < len(sentence)})
        parts = [sentence[a:b] for a, b in zip([0, *points], [*points, len(sentence)], strict=True)]
        assert events_of(sentence.encode()) == events_of(cri(parts, stream))

    @settings(max_examples=100, deadline=None)
    @given(
        sentence=_SENTENCES,
        width=st.integers(min_value=12, max_value=60),
    )
    def test_hard_cut_action_or_principal_is_rejoined(self, sentence, width):
        """A terminal that cuts at a fixed width inside 'User: arn:...:' or the action."""
        head, tail = sentence.split(" is not authorized", 1)
        principal_start = head.index("arn:")
        cut = principal_start + min(width, len(head) - principal_start - 1)
        if not re.search(r":$", head[:cut]):  # only the cut this grammar can see: after a ':'
            cut = head.index(":user/") + 1
        text = head[:cut] + "\n│ " + head[cut:] + " is not authorized" + tail + "\n"
        assert events_of(sentence.encode()) == events_of(text.encode())

    @settings(max_examples=200, deadline=None)
    @given(
        sentence=_SENTENCES,
        width=st.integers(min_value=20, max_value=120),
        prefix=st.sampled_from(_PREFIXES),
    )
    def test_denial_cut_at_a_fixed_width_gives_the_same_fields(self, sentence, width, prefix):
        """A terminal that cuts every line at the same column, inside words, ARNs and actions.

        Read as a whole text (find_denials): the file reader searches for the whole trigger
        word, so a cut inside 'authoriz' itself is only found this way. The last piece is kept
        shorter than the width: a full last line followed by another line cannot be told
        from a cut one, by anyone. Nor can one full line cut inside the last token
        ("...s3:::0" | "00/0": a bucket named "0" and a line "00/0"): the width shows only
        when two lines fill it.
        """
        assume(len(sentence) % width != 0)
        pieces = [sentence[i : i + width] for i in range(0, len(sentence), width)]
        assume(len(pieces) > 2 or " " in sentence[width - 1 :])
        text = "noise before\n" + "".join(f"{prefix}{p}\n" for p in pieces) + "noise after\n"
        expected = [judged(f) for f in find_denials(sentence)]
        assert expected == [judged(f) for f in find_denials(text)]


class TestFoundByHypothesis:
    """Failing examples the properties above found, kept as plain tests."""

    def test_one_cut_inside_the_arn_prefix_of_the_resource(self):
        """'on resource: a' | 'rn:aws:s3:::000/0': the 'a' was the start of the ARN."""
        sentence = (
            "api error AccessDenied: User: arn:aws:iam::000000000000:user/a is not authorized "
            "to perform: kms:Decrypt on resource: arn:aws:s3:::000/0"
        )
        text = f"noise before\n{sentence[:119]}\n{sentence[119:]}\nnoise after\n"
        assert [judged(f) for f in find_denials(sentence)] == [
            judged(f) for f in find_denials(text)
        ]
