"""unwrap: the physical lines of one wrapped message -> the message, before extraction.

Sits between the sources and ``extract``: producers split one denial over several lines
(Terraform's ``│ `` boxes wrapped at ~78 columns, the Go SDK v1 ``status code: 403`` line,
hard-wrapped Lambda traces, quoting ``> ``, per-line CI timestamps). The denial's own grammar
decides whether the next line continues the message:

* the text so far stops inside the sentence (``User:``, ``is not authorized``, ``to perform:``,
  ``on resource:``, ``with``, ``because no ... allows the``, ``message:``) -> the next line is
  joined whatever it says;
* the next line starts with a clause the sentence may take (``is not authorized``,
  ``on resource:``, ``because``, ``with an explicit deny``, ``in a ... policy``,
  ``transitively``, ``status code:``, ``(Service:``) -> it is joined;
* anything else starts a new message, so two denials are never merged and the next unrelated
  log line is never swallowed.

Per-line prefixes are removed from continuation lines; a token that cannot hold a space (an
action, an ARN, a blob) cut by the wrap is rejoined without one, and so is a word of the
sentence that a fixed-width terminal cut mid-word ("au" | "thorized"). Pure functions, no I/O.
"""

from __future__ import annotations

import re

# How many physical lines one message may span, and how many lines before the line holding
# the trigger word a message may start (the principal, "User:").
MAX_MESSAGE_LINES = 24
MAX_LINES_BEFORE = 3
MIN_FIXED_WIDTH = 20  # narrower "full" lines are not taken as a terminal's fixed width
MAX_CONTEXT_LINES_BEFORE = 4  # lines of the SDK's error chain above the sentence (see below)

# Prefixes producers put on every line: indentation, box drawing, quoting, <br />, per-line
# timestamps (ISO as CI runners print them, and "MM-DD-YYYY hh:mm:ss PM" of log viewers),
# "[tool]:" relays and severity words.
_PREFIX_RE = re.compile(
    r"(?:[ \t\u00a0]++"
    r"|[\u2502\u2503\u2575\u2577\u2551|]"
    r"|>(?=[ \t]|$)"
    r"|<br\s*+/?>"
    r"|\[?\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?+(?:Z|[+-]\d\d:?\d\d)?+\]?(?=\s)"
    r"|\d\d-\d\d-\d{4} \d\d:\d\d:\d\d(?: [AP]M)?+(?=\s)"
    r"|\[[\w./-]{1,40}\]:(?=\s)"
    r"|(?:ERROR|WARN|WARNING|INFO|DEBUG)(?=\s|$)"
    r"){0,12}+"
)
_TRAILER_CHARS = " \t\r\n\u00a0\u2502\u2503\u2551"
_BR_TAIL_RE = re.compile(r"<br\s*+/?>$")
MAX_TRAILING_BREAKS = 4

# Clauses that may start the line after a denial's sentence (matched case-insensitively).
_CONTINUATION_RE = re.compile(
    r"(?:is\s++)?not\s++authorized\b|on\s++(?:resource\b|this\s++resource\b)|because\b"
    r"|with\s++an?\s++explicit\b|an\s++explicit\s++deny\b|transitively\b"
    r"|status\s++code:|\(Service:|\(SDK\b|request\s++id:",
    re.IGNORECASE,
)
_NOT_AUTHORIZED_START_RE = re.compile(
    r"(?:is\s++)?+(?:not\s++)?+authorized\s++to\b|(?:is\s++)?+not\s++authorized\b", re.IGNORECASE
)
# "is not authorized" continues a line only when that line ends with who was denied (an ARN,
# or a piece of one: a wrap may have cut it).
_PRINCIPAL_END_RE = re.compile(
    r"(?:\bUser:\s*+\S++|(?:^|\s)(?:arn:\S*+|[^\s/]*+/\S*+)|\banonymous)"
    r"(?:\s++is(?:\s++not)?+|\s++not)?+\s*+$",
    re.IGNORECASE,
)
# Where a wrap falls inside the Go SDK v2 error chain before the denial sentence.
_CHAIN_END_RE = re.compile(
    r"(?:\bapi(?:\s++error)?+|\berror|\bhttps\s++response(?:\s++error)?+|\bStatusCode:(?:\s*+\d++)?+"
    r"|\bRequestID:|\bHostID:|\boperation\s++error)$"
)
_ALLOWS_THE_END_RE = re.compile(r"\ballows?\s++the\s++[A-Za-z0-9-]++:[A-Za-z0-9*]++\s*+$")
_ACTION_WORD_RE = re.compile(r"action\b")
# The words of the denial's sentence: a wrap inside one is rejoined ("is not author" | "ized").
_SENTENCE_WORDS = frozenset(
    (
        "user:", "is", "not", "authorized", "to", "perform:", "on", "resource:", "this",
        "resource", "because", "no", "identity-based", "resource-based", "service", "control",
        "permissions", "boundary", "session", "sessions", "vpc", "endpoint", "role", "trust",
        "policy", "policies", "allows", "allow", "the", "action", "with", "an", "explicit",
        "deny", "in", "transitively", "through", "encoded", "authorization", "failure",
        "message:", "you", "are", "operation.",
    )
)  # fmt: skip
_WORD_PIECE_RE = re.compile(r"[a-z][a-z-]*+:?+")
_REST_BEFORE_CLAUSE_RE = re.compile(
    r"[A-Za-z0-9*_./:@+=,-]++\s++(?:on\s++resource:|on\s++this\b|because\b|with\s++an\s++explicit\b"
    r"|is\s++not\s++authorized\b)",
    re.IGNORECASE,
)
_IN_POLICY_RE = re.compile(
    r"in\s++(?:an?\b|the\b|identity|resource|service|permissions|sessions?\b|vpc|role)",
    re.IGNORECASE,
)

_ANCHOR_RE = re.compile(r"authoriz|\bUser:|\barn:", re.IGNORECASE)
_PERFORM_RE = re.compile(r"authorized\s++to\s++perform:\s*+", re.IGNORECASE)
_ACTION_RE = re.compile(r"[A-Za-z0-9-]++(?::[A-Za-z0-9*]*+)?+")
# What a wrap may leave of an action at the end of a line: "cloudforma", "iam:", "iam:Pass".
_ACTION_FRAGMENT_RE = re.compile(r"[A-Za-z0-9-]++:?+")
# The sentence stops in the middle: these end a line only when more follows.
_OPEN_END_RE = re.compile(
    r"(?:\bUser:|\bnot\s++authorized(?:\s++to(?:\s++perform)?+)?+|failure\s++message:"
    r"|\bEncoded(?:\s++authorization(?:\s++failure)?+)?+|(?:arn:|/)\S*+\s++is(?:\s++not)?+)$",
    re.IGNORECASE,
)
OPEN_END_CHARS = 160  # the longest open ending: a piece of ARN, then "is not"
# After the action, the clauses may stop in the middle too.
_CLAUSE_OPEN_RE = re.compile(
    r"\s(?:on(?:\s++resource:?+|\s++this)?+|resource:\s*+(?:role|user|group|policy|instance(?:\s++profile)?+)"
    r"|because(?:\s++no)?+|with(?:\s++an?+)?+(?:\s++explicit)?+"
    r"|deny\s++in(?:\s++an?+|\s++the)?+|transitively(?:\s++through)?+(?:\s++an?+)?+)$",
    re.IGNORECASE,
)
_ARN_TAIL_RE = re.compile(r"(?:^|[\s\"'(])(arn:[^\s\"']*+)$")
_BLOB_TAIL_RE = re.compile(r"message:\s*+[A-Za-z0-9_-]{16,}+$")
# A whole line of blob characters after a blob continues it (PowerShell, fixed-width terminals).
_BLOB_LINE_RE = re.compile(r"[A-Za-z0-9_-]{16,}+(?:\.\.\.)?+")
# Characters of ARNs (IAM names take + = , . @ _ -), actions and blobs.
_TOKEN_START_RE = re.compile(r"[A-Za-z0-9_*/.:@+=,-]")  # (and of the character before a cut)
_NOT_AUTHORIZED_RE = re.compile(r"(?:(?:\bis\s++)?+\bnot\s++)?+\bauthorized\s++to\b")


def content(line: str) -> str:
    """A continuation line without the prefixes and trailers producers put on every line."""
    start = _PREFIX_RE.match(line)
    body = line[start.end() :] if start is not None else line
    return _without_trailer(body)


def first_line(line: str) -> str:
    """The first line of a message keeps its prefix (timestamp, severity) but not its trailer."""
    return _without_trailer(line)


def _without_trailer(line: str) -> str:
    """Without trailing spaces, box sides and ``<br />`` (rstrip, not a regex: a long run of
    spaces inside a line must not cost a scan from each of its positions)."""
    stripped = line.rstrip(_TRAILER_CHARS)
    for _ in range(MAX_TRAILING_BREAKS):
        if not stripped.endswith(">"):
            break
        br = _BR_TAIL_RE.search(stripped, max(0, len(stripped) - 16))
        if br is None:
            break
        stripped = stripped[: br.start()].rstrip(_TRAILER_CHARS)
    return stripped


def joiner(message: str, next_line: str, *, cut_at_width: bool = False) -> str | None:
    """How ``next_line`` continues ``message``: ``" "``, ``""`` (a cut token), or None (no).

    ``cut_at_width``: the line before ``next_line`` filled a fixed width, it did not end in
    a space and ``next_line`` does not start with one: an ARN, action or blob that runs on
    was cut mid-token.
    """
    return _separator(message, next_line, cut_at_width=cut_at_width)


def _separator(message: str, next_line: str, *, cut_at_width: bool) -> str | None:
    following = content(next_line)
    if not following or not message.strip():
        return None
    tail = message[-400:]
    if "User:" in following and "User:" in message and not _cut_token(tail, following):
        return None  # a second principal: the next denial, never merged into this one
    if _NOT_AUTHORIZED_START_RE.match(following) is not None:  # the verb of this line's subject
        return " " if _PRINCIPAL_END_RE.search(tail) is not None else None
    if not _ANCHOR_RE.search(message) and not _ANCHOR_RE.search(following):
        return None
    if _cut_token(tail, following) or (cut_at_width and _token_runs_on(tail, following)):
        return ""
    if _open_ended(tail):
        return " "
    if _BLOB_TAIL_RE.search(tail) is not None and _BLOB_LINE_RE.fullmatch(following):
        return ""
    if _CONTINUATION_RE.match(following) is not None:
        return " "
    if tail.rstrip().lower().endswith("explicit deny") and _IN_POLICY_RE.match(following):
        return " "
    if _ALLOWS_THE_END_RE.search(tail) is not None and _ACTION_WORD_RE.match(following):
        return " "
    return None


def sentence_open(message: str) -> bool:
    """True when the denial sentence at the end of ``message`` cannot end there."""
    return _open_ended(message[-400:])


def _open_ended(tail: str) -> bool:
    """True when the denial sentence at the end of ``tail`` cannot end there."""
    stripped = tail.rstrip()
    if _OPEN_END_RE.search(stripped, max(0, len(stripped) - OPEN_END_CHARS)) is not None:
        return True
    arn = _ARN_TAIL_RE.search(stripped)
    if arn is not None and _arn_is_cut(arn.group(1)):
        return True
    perform = _last_perform(stripped)
    if perform is None:
        return False
    rest = stripped[perform.end() :]
    action = _ACTION_RE.match(rest)
    if action is None:
        return True  # "to perform:" and nothing yet
    clause = rest[action.end() :]
    return _CLAUSE_OPEN_RE.search(clause) is not None or _incomplete_clause(clause)


def _last_perform(text: str) -> re.Match[str] | None:
    matches = list(_PERFORM_RE.finditer(text))
    return matches[-1] if matches else None


def _incomplete_clause(clause: str) -> bool:
    lowered = " ".join(clause.lower().split())
    if "because" in lowered:
        after = lowered[lowered.index("because") :]
        return re.search(r"\ballows?\s+the\s+\S+:\S", after) is None
    if "explicit deny in" in lowered:
        after = lowered[lowered.index("explicit deny in") :]
        return re.search(r"polic(?:y|ies)\b|boundary\b", after) is None
    return False


def _arn_is_cut(arn: str) -> bool:
    """An ARN has six parts and a resource; one that stops before them was cut by the wrap.
    (One ending in "/" or "-" may be whole: an S3 prefix, so it is not taken as cut.)"""
    return arn.count(":") < 5 or arn.endswith(":")


def _cut_token(tail: str, following: str) -> bool:
    """The wrap fell inside an action, an ARN or a word of the sentence: join the halves
    without a space."""
    if tail != tail.rstrip() or _TOKEN_START_RE.match(following) is None:
        return False
    if _cut_word(tail, following):
        return True
    if _CONTINUATION_RE.match(following) is not None:
        return False
    last = tail.rsplit(None, 1)[-1]
    if last.count("[") > last.count("]"):  # inside a redaction such as "[account id]"
        return False
    perform = _last_perform(tail)
    if perform is not None and perform.end() < len(tail):
        fragment = tail[perform.end() :]
        if _ACTION_FRAGMENT_RE.fullmatch(fragment):
            rest = following.split(None, 1)[0]
            return _ACTION_RE.fullmatch(fragment + rest) is not None and ":" in fragment + rest
    if last.startswith("arn:") and _arn_is_cut(last):
        return True
    if _arn_cut_in_its_prefix(tail, last, following):
        return True
    # "...:table/My" + "Table because ...": a token of the sentence (an action, an ARN) cut
    # mid-word by a fixed-width wrap, its rest followed straight by the next clause.
    return _token_slot(tail, last) and _REST_BEFORE_CLAUSE_RE.match(following) is not None


def _arn_cut_in_its_prefix(tail: str, last: str, following: str) -> bool:
    """ "on resource: a" | "rn:aws:s3:::b": the wrap fell inside the "arn:" an ARN slot holds."""
    if not "arn:".startswith(last) or last == "arn:":
        return False
    before = tail[: len(tail) - len(last)].rstrip()
    return before.endswith(("resource:", "User:")) and (last + following).startswith("arn:")


def _token_runs_on(tail: str, following: str) -> bool:
    """At a fixed-width cut: the message ends inside an ARN, an action or a blob."""
    if not tail or _TOKEN_START_RE.match(tail[-1]) is None:
        return False
    if _TOKEN_START_RE.match(following) is None or _CONTINUATION_RE.match(following):
        return False
    last = tail.rsplit(None, 1)[-1]
    before = tail[: len(tail) - len(last)].rstrip()
    return (
        last.startswith("arn:")
        or before.endswith(("message:", "perform:", "resource:", "User:", "allows the"))
        or ":" in last
    )


def _token_slot(tail: str, last: str) -> bool:
    """``last`` is an action just after ``perform:``, or an ARN after ``User:``/``resource:``."""
    perform = _last_perform(tail)
    if perform is not None and tail.endswith(last) and perform.end() == len(tail) - len(last):
        return ":" in last
    return last.startswith("arn:")


def _cut_word(tail: str, following: str) -> bool:
    """A word of the denial's sentence cut mid-word ('author' | 'ized', 'a' | 'llows'): the
    two halves make one of its words, which neither half is alone."""
    last = tail.rsplit(None, 1)[-1].lower()
    if _WORD_PIECE_RE.fullmatch(last) is None:
        return False
    head = following.split(None, 1)[0].lower().rstrip(".,;")
    return last + head in _SENTENCE_WORDS and head not in _SENTENCE_WORDS


def starts_mid_sentence(line: str) -> bool:
    """The line holds ``is not authorized`` with no principal before it: look at the line above."""
    body = content(line)
    match = _NOT_AUTHORIZED_RE.search(body)
    if match is None:
        return False
    before = body[: match.start()].strip()
    if not before:
        return True
    if not match.group().startswith(("is", "not")):  # "X authorized to": not a denial's verb
        return False
    return " " not in before and not before.startswith(("arn:", "User:", "anonymous", "You"))


def continues_into(above: str, line: str) -> bool:
    """``above`` is the start of the SDK error chain that ``line`` goes on with (``operation
    error S3: Op, https response error StatusCode: 403, RequestID: ..., api error Code: ...``),
    wrapped: joined for the operation, error code and request id it carries."""
    if "authoriz" in above or not content(line):
        return False
    return _CHAIN_END_RE.search(content(above)) is not None


def may_begin_message(line: str) -> bool:
    """The line may be the first of a message whose sentence comes on the next line: it ends
    with ``User:``, a principal, or the SDK's error chain before the sentence."""
    body = content(line)
    if body.endswith("User:") or _PRINCIPAL_END_RE.search(body) is not None:
        return True
    return "authoriz" not in body and _CHAIN_END_RE.search(body) is not None


def unwrap_lines(lines: list[str]) -> str:
    """The physical lines of one message as one line (each joined as ``joiner`` says)."""
    message = first_line(lines[0])
    for line in lines[1:]:
        separator = joiner(message, line)
        message += (" " if separator is None else separator) + content(line)
    return message


def unwrap_text(text: str) -> str:
    """Every wrapped message of ``text`` on one line; lines that continue nothing stay apart."""
    if "\n" not in text:
        return text
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    width = fixed_width(lines)
    messages: list[str] = []
    current: str | None = None
    joined = 0
    previous = ""
    prefix = 0  # the shortest producer's prefix of the message's lines
    for line in lines:
        line_prefix = _prefix_width(line)
        if current is not None and joined < MAX_MESSAGE_LINES:
            start = min(prefix, line_prefix)
            cut = (
                width is not None
                and len(previous) == width
                and not previous[-1:].isspace()
                and not line[start : start + 1].isspace()
            )
            separator = joiner(current, line, cut_at_width=cut)
            if separator is not None:
                current += separator + content(line)
                joined += 1
                previous, prefix = line, start
                continue
        if current is not None:
            messages.append(current)
        current, joined, previous, prefix = first_line(line), 1, line, line_prefix
    if current is not None:
        messages.append(current)
    return "\n".join(messages)


def _prefix_width(line: str) -> int:
    match = _PREFIX_RE.match(line)
    return match.end() if match is not None else 0


def fixed_width(lines: list[str]) -> int | None:
    """The width a terminal cut these lines at, when two or more lines fill it exactly."""
    longest = max((len(line) for line in lines), default=0)
    if longest < MIN_FIXED_WIDTH:
        return None
    return longest if sum(1 for line in lines if len(line) == longest) >= 2 else None
