"""extract: text -> Findings. Pure functions, no I/O; the hot path of the pipeline.

A denial is made of up to three parts, in this order when all are present:

* the lead sentence ``You are not authorized to perform this operation.``;
* the plain-text sentence ``User: ARN is not authorized to perform: ACTION [on resource: RES]
  [because no TYPE policy allows ... | with an explicit deny in a TYPE policy[: ARN]]``;
* the blob after ``Encoded authorization failure message:``.

Parts that follow each other belong to one denial (one denial, one event); a part that
repeats starts the next denial. Every regex here is anchored on a literal word and uses
possessive or bounded repetition, so the time is linear in the text whatever it holds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import NamedTuple

from watcher.model import BlobState, Finding
from watcher.unwrap import unwrap_text

# Every part of every denial contains this, so a text without it holds no denial:
# "Encoded authorization failure message", "not authorized", "UnauthorizedOperation".
TRIGGER = "authoriz"
TRIGGER_BYTES = TRIGGER.encode()

MAX_BLOB_CHARS = 10_240
# Real blobs are hundreds of characters. A shorter token is a fragment (cut by a person or a
# tool) and is kept but never sent to STS; tokens shorter than this are placeholders.
COMPLETE_BLOB_MIN_CHARS = 64
FRAGMENT_MIN_CHARS = 16
PLACEHOLDER_MAX_DISTINCT_CHARS = 4  # "xxxxxxxxxxxxxxxxxxxx", "--------------------"

# How far back from "is not authorized" the principal may start, and how far the resource
# and reason may run after the action.
PRINCIPAL_LOOKBACK_CHARS = 2048
RESOURCE_MAX_CHARS = 2048
RESOURCE_GAP_CHARS = 80

_LEAD_RE = re.compile(r"You\s++are\s++not\s++authorized\s++to\s++(perform\s++this\s++operation)?")
_BLOB_RE = re.compile(
    r"authorization\s++failure\s++message:\s{0,16}+"
    r"(?P<token>[A-Za-z0-9_-]*+)(?P<ellipsis>\.\.\.|\u2026)?"
)
# The action is "service:Action"; a display that turned its line breaks into spaces may leave
# "iam: PassRole" (a space after the colon, then the capitalised action name).
_PLAIN_RE = re.compile(
    r"(?:\bis\s++)?+\bnot\s++authorized\s++to\s++perform:\s*+"
    r"(?P<action>[A-Za-z0-9-]++:(?: (?=[A-Z]))?+[A-Za-z0-9*]++)"
)
# A denial sentence cut before its action, at the very end of the text: what a follower flushes
# when the rest of a wrapped message never came. Still a denial (of an unknown action).
_CUT_PLAIN_RE = re.compile(
    r"(?:\bis\s++)?+\bnot\s++authorized(?:\s++to(?:\s++perform:?+)?+)?+[\s.]*+\Z"
)
_ON_RESOURCE_RE = re.compile(r"\s++on\s++(?:(?P<this>this\s++resource)|resource:\s*+)")
_RESOURCE_END_RE = re.compile(
    r"\s++(?:because\b|with\s++an\s++explicit\s++deny\b)|\s*+\((?:Service|SDK)\b"
)
_POLICY_TYPES = (
    r"(?P<ptype>identity-based|resource-based|service\s++control|resource\s++control"
    r"|permissions\s++boundary|sessions?+|VPC\s++endpoint|role\s++trust)"
)
_IMPLICIT_RE = re.compile(
    r"\s*+because\s++(?P<clause>no\s++" + _POLICY_TYPES + r"(?:\s++polic(?:y|ies))?+"
    r"\s++allows?+\s++the\s++[A-Za-z0-9-]++:[A-Za-z0-9*]++(?:\s++action\b)?+)",
    re.IGNORECASE,
)
_EXPLICIT_RE = re.compile(
    r"\s*+with\s++an\s++explicit\s++deny(?:\s++in\s++(?:an?\s++|the\s++)?+"
    + _POLICY_TYPES
    + r"(?:\s++polic(?:y|ies))?+(?::\s*+(?P<policy_arn>arn:[^\s\"'\\]++))?+)?+",
    re.IGNORECASE,
)

_POLICY_TYPE_NAMES = {
    "identity-based": "identity-based",
    "resource-based": "resource-based",
    "service control": "service control",
    "resource control": "resource control",
    "permissions boundary": "permissions boundary",
    "session": "session",
    "sessions": "session",
    "vpc endpoint": "vpc endpoint",
    "role trust": "role trust",
}

# (substring that must be present, regex): the regex runs only when the substring is there.
_ERROR_CODE_RES = (
    (
        "error occurred",
        re.compile(r"An\s++error\s++occurred\s++\((?P<code>[A-Za-z][\w.]{0,80}+)\)"),
    ),
    ("api error", re.compile(r"api\s++error\s++(?P<code>[A-Za-z][\w.]{0,80}+):")),
    ("Error Code", re.compile(r"Error\s++Code:\s*+(?P<code>[A-Za-z][\w.]{0,80}+)")),
    ("errorCode", re.compile(r"errorCode\\?\"?\s*+[:=]\s*+\\?\"(?P<code>[A-Za-z][\w.]{0,80}+)")),
    (
        ": ",
        re.compile(
            r"(?P<code>\b[A-Z][A-Za-z]{2,60}+(?:\.[A-Z][A-Za-z]{2,60}+)?+):\s++(?:You|User:|not\s)"
        ),
    ),
)
_OPERATION_RES = (
    ("operation", re.compile(r"when\s++calling\s++the\s++(?P<op>\w{1,100}+)\s++operation")),
    (
        "operation error",
        re.compile(r"operation\s++error\s++(?P<service>[\w .-]{1,40}?):\s*+(?P<op>\w{1,100}+)"),
    ),
    ("API:", re.compile(r"API:\s*+(?P<service>[a-z0-9-]{1,40}+):(?P<op>\w{1,100}+)")),
)
_SERVICE_RE = re.compile(r"\(Service:\s*+(?P<service>[\w .-]{1,40}?)\s*+[;,)]")
_REQUEST_ID_RE = re.compile(
    r"(?i:request[ _-]?+id)\\?\"?\s*+[:=]\s*+\\?\"?(?P<rid>[0-9A-Za-z][0-9A-Za-z-]{7,80}+)"
)

_ISO_TS_RE = re.compile(
    r"\[?(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[T ](?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})"
    r"(?:[.,](?P<frac>\d{1,9}))?(?P<tz>Z|[+-]\d{2}:?\d{2})?"
)
_SLASH_TS_RE = re.compile(
    r"\[?(?P<y>\d{4})/(?P<mo>\d{2})/(?P<d>\d{2})[ T](?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})"
)
_SYSLOG_TS_RE = re.compile(
    r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(?P<d>\d{1,2}) "
    r"(?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})\b"
)
_RFC3339_RE = re.compile(
    r"(?P<date>\d{4}-\d\d-\d\d)[T ](?P<clock>\d\d:\d\d:\d\d)(?:[.,](?P<frac>\d{1,9}))?"
    r"\s*(?P<tz>Z|z|[+-]\d\d:?\d\d)?"
)
_STRUCTURED_TIME_RE = re.compile(
    r"(?:^|[\s{,])\"?(?:ts|time|@timestamp|timestamp)\"?\s*[:=]\s*"
    r"(?:\"(?P<quoted>[^\"]{1,40})\"|(?P<bare>[0-9][0-9.:TZ+-]{0,39}))"
)
_EPOCH_MILLIS_MIN = 10**11  # larger numbers are milliseconds (10**11 s is the year 5138)
# A bare number is a time only in this range (2001 to 5138 in seconds, or in milliseconds):
# "time=12" in a message is a duration, not 1970.
_EPOCH_SECONDS_MIN = 10**9
_EPOCH_MAX = 10**14
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# The parser's private values are NamedTuples: as light as dataclasses to use, and about six
# times cheaper to define, which counts at start-up (`scan` is often a short run).
class _Blob(NamedTuple):
    token: str | None
    state: BlobState


_NO_BLOB = _Blob(None, BlobState.ABSENT)


class _Plain(NamedTuple):
    principal_arn: str | None
    action: str | None  # None: the sentence was cut before its action (end of a message)
    resource: str | None
    policy_type: str | None
    explicit_deny: bool | None  # None: the text names no reason (older wording)
    policy_arn: str | None
    because: str | None


class _Part(NamedTuple):
    start: int
    end: int
    lead: bool = False
    generic_lead: bool = False  # "You are not authorized to <something else>"
    plain: _Plain | None = None
    blob: _Blob | None = None


class _Group:
    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[_Part] = []

    def accepts(self, part: _Part) -> bool:
        if part.lead:
            return False
        if part.plain is not None:
            return all(p.lead for p in self.parts)
        return all(p.blob is None for p in self.parts)


def might_contain_denial(text: str) -> bool:
    """The cheap pre-filter: False means ``find_denials`` would certainly return nothing.

    Every denial has the trigger and either ``perform`` (the plain-text sentence, the EC2 lead
    sentence) or ``message:`` (the blob prefix); "Unauthorized" or "authorized" alone is not one.
    """
    return TRIGGER in text and ("perform" in text or "message:" in text)


# Besides the trigger, every denial holds one of these (see ``might_contain_denial``).
SECOND_WORDS_BYTES = (b"perform", b"message:")


def might_contain_denial_bytes(data: bytes) -> bool:
    """``might_contain_denial`` for raw bytes, before decoding them."""
    return TRIGGER_BYTES in data and any(word in data for word in SECOND_WORDS_BYTES)


def find_denials(text: str, *, now: datetime | None = None) -> list[Finding]:
    """Every denial in ``text`` (a log line, a record's message, or a pasted multi-line error).

    ``now`` fixes the year of syslog-style timestamps that carry none.
    """
    if "\n" in text:  # before the pre-filter: a wrap may have cut the trigger ("au" | "thorized")
        text = unwrap_text(text)
    if not might_contain_denial(text):
        return []
    parts = sorted(_find_parts(text), key=lambda part: part.start)
    groups: list[_Group] = []
    for part in parts:
        if not groups or not groups[-1].accepts(part):
            groups.append(_Group())
        groups[-1].parts.append(part)
    groups = [g for g in groups if not all(p.generic_lead for p in g.parts)]
    if not groups:
        return []

    timestamp = parse_leading_timestamp(text, now=now) or structured_timestamp(text)
    findings = []
    for ordinal, group in enumerate(groups):
        context_start = groups[ordinal - 1].parts[-1].end if ordinal > 0 else 0
        context_end = groups[ordinal + 1].parts[0].start if ordinal + 1 < len(groups) else len(text)
        context = _context(text[context_start:context_end])
        findings.append(_finding(ordinal, group.parts, context, timestamp))
    return findings


def _find_parts(text: str) -> list[_Part]:
    # Each regex runs only when a plain substring test (C speed) says it can match.
    parts: list[_Part] = []
    if "authorized" in text:
        parts.extend(
            _Part(m.start(), m.end(), lead=m.group(1) is not None, generic_lead=m.group(1) is None)
            for m in _LEAD_RE.finditer(text)
        )
    if "message:" in text:
        parts.extend(
            _Part(
                m.start(), m.end(), blob=classify_blob(m.group("token"), bool(m.group("ellipsis")))
            )
            for m in _BLOB_RE.finditer(text)
        )
    if "perform:" in text:
        parts.extend(_parse_plain(text, m) for m in _PLAIN_RE.finditer(text))
    if "authorized" in text[-40:]:
        cut = _cut_plain(text)
        if cut is not None:
            parts.append(cut)
    return parts


def _cut_plain(text: str) -> _Part | None:
    """``User: ARN is not authorized to perform:`` and nothing after it: a denial whose action
    never came (a wrapped message flushed before its next line). Needs its principal."""
    match = _CUT_PLAIN_RE.search(text, max(0, len(text) - 40))
    if match is None:
        return None
    principal, start = _principal_before(text, match.start())
    if principal is None:
        return None
    plain = _Plain(principal, None, None, None, None, None, None)
    return _Part(start, len(text), plain=plain)


def classify_blob(token: str, followed_by_ellipsis: bool) -> _Blob:
    """Tell a real blob from a placeholder, a fragment or a token too long to be one."""
    length = len(token)
    if (
        length < FRAGMENT_MIN_CHARS
        or length > MAX_BLOB_CHARS
        # A real blob varies from its first characters on: "xxxx…", "----…" are filler.
        or len(set(token[:COMPLETE_BLOB_MIN_CHARS])) <= PLACEHOLDER_MAX_DISTINCT_CHARS
    ):
        return _NO_BLOB
    if followed_by_ellipsis or length < COMPLETE_BLOB_MIN_CHARS:
        return _Blob(token, BlobState.TRUNCATED)
    return _Blob(token, BlobState.COMPLETE)


def _parse_plain(text: str, match: re.Match[str]) -> _Part:
    principal, start = _principal_before(text, match.start())
    pos = match.end()
    resource: str | None = None
    on = _ON_RESOURCE_RE.match(text, pos)
    if on is not None:
        if on.group("this") is not None:
            pos = on.end()
        else:
            resource, pos = _resource_at(text, on.end())
    policy_type: str | None = None
    policy_arn: str | None = None
    because: str | None = None
    explicit: bool | None = None
    implicit_m = _IMPLICIT_RE.match(text, pos)
    explicit_m = _EXPLICIT_RE.match(text, pos) if implicit_m is None else None
    if implicit_m is not None:
        explicit = False
        policy_type = _policy_type_name(implicit_m.group("ptype"))
        because = " ".join(implicit_m.group("clause").split())
        pos = implicit_m.end()
    elif explicit_m is not None:
        explicit = True
        ptype = explicit_m.group("ptype")
        policy_type = _policy_type_name(ptype) if ptype is not None else None
        policy_arn = explicit_m.group("policy_arn")
        if policy_arn is not None:
            policy_arn = policy_arn.rstrip(".,;")
        pos = explicit_m.end()
    plain = _Plain(
        principal_arn=principal,
        action=match.group("action").replace(" ", ""),
        resource=resource,
        policy_type=policy_type,
        explicit_deny=explicit,
        policy_arn=policy_arn,
        because=because,
    )
    return _Part(start, pos, plain=plain)


def _principal_before(text: str, is_pos: int) -> tuple[str | None, int]:
    """The token before ``is not authorized``: an ARN, ``anonymous``, or what follows ``User:``."""
    window_start = max(0, is_pos - PRINCIPAL_LOOKBACK_CHARS)
    head = text[window_start:is_pos].rstrip()
    cut = _glued_fragments(head, _last_space(head))
    token = _FRAGMENT_SPACE_RE.sub("", head[cut + 1 :])
    stripped = token.lstrip("\"'(\\")
    if stripped.startswith("User:"):  # "User:arn:..." with no space
        stripped = stripped[len("User:") :]
    before = head[: cut + 1].rstrip()
    has_user_label = before.endswith("User:")
    start = window_start + cut + 1
    if has_user_label:
        start = window_start + len(before) - len("User:")
    if not stripped or stripped == "User:":
        return None, start
    if stripped.startswith("arn:") or has_user_label or stripped == "anonymous":
        return stripped, start
    return None, window_start + cut + 1


_CLOSERS = {"]": "[", "}": "{", ">": "<"}
_OPENERS = {opener: closer for closer, opener in _CLOSERS.items()}


def _last_space(head: str) -> int:
    """Where the last token of ``head`` starts, minus one; a redaction such as ``[account id]``
    inside an ARN holds a space that does not end the token."""
    cut = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
    token = head[cut + 1 :]
    for closer, opener in _CLOSERS.items():
        if token.count(closer) > token.count(opener):
            opened = head.rfind(opener, max(0, cut - 64), cut)
            if opened >= 0 and head.find(closer, opened, cut + 1) < 0:
                return max(head.rfind(" ", 0, opened), head.rfind("\n", 0, opened))
    return cut


# A space before "-" or "/" inside an ARN is where a display turned a line break into a space.
_FRAGMENT_SPACE_RE = re.compile(r" (?=[-/])")
MAX_GLUED_FRAGMENTS = 4


def _glued_fragments(head: str, cut: int) -> int:
    """Where the principal starts when its last token is a fragment (``-EnvController...``)
    of an ARN split by spaces: back to the fragment that starts with ``arn:``."""
    start = cut
    for _ in range(MAX_GLUED_FRAGMENTS):
        if not head.startswith(("-", "/"), start + 1):
            break
        start = head.rfind(" ", 0, start)
        if head.startswith("arn:", start + 1):
            return start
    return cut


def _token_end(text: str, pos: int, end: int) -> int:
    """The end of the whitespace-free token (an ARN, ``*``) at ``pos``; brackets may hold spaces."""
    position = pos
    while position < end:
        char = text[position]
        if char.isspace():
            return position
        if char in _OPENERS:
            closing = text.find(_OPENERS[char], position, min(end, position + 64))
            position = closing if closing >= 0 else position
        position += 1
    return end


def _resource_at(text: str, pos: int) -> tuple[str | None, int]:
    """The resource after ``on resource:``: quoted (S3), a bare ARN, or ``type name`` words."""
    if text.startswith('\\"', pos) or text.startswith('"', pos):
        open_len = 2 if text[pos] == "\\" else 1
        close = text.find('"', pos + open_len, pos + open_len + RESOURCE_MAX_CHARS)
        if close < 0:
            return None, pos
        value_end = close - 1 if text[close - 1] == "\\" else close
        return text[pos + open_len : value_end] or None, close + 1
    limit = min(len(text), pos + RESOURCE_MAX_CHARS)
    end = limit
    for stop in ("\n", '"', "\\"):
        found = text.find(stop, pos, limit)
        if found >= 0:
            end = min(end, found)
    boundary = _RESOURCE_END_RE.search(text, pos, end)
    if boundary is not None:
        end = boundary.start()
    if text.startswith(("arn:", "*"), pos):  # an ARN or "*" holds no space: it ends at one
        token_end = _token_end(text, pos, end)
        gap = text[token_end:end].strip() if boundary is not None else ""
        if gap and not any(char.isspace() for char in gap) and len(gap) <= RESOURCE_GAP_CHARS:
            # "role/cd-paas-ser vice-dev because": one word between the ARN and the clause is
            # the rest of the ARN, split where a display turned a line break into a space.
            value = (text[pos:token_end] + gap).rstrip("'`,;)")
        else:
            end = token_end
            value = text[pos:end].rstrip("'`,;)")
        if value.endswith(".") and not value.endswith(".."):
            value = value[:-1]
        return value or None, end
    value = text[pos:end].strip()
    if value.endswith((".", ",", ";")) and not value.endswith(".."):  # end of the sentence
        value = value[:-1]
    return value or None, end


def _policy_type_name(raw: str) -> str:
    return _POLICY_TYPE_NAMES[" ".join(raw.lower().split())]


class _Context(NamedTuple):
    error_code: str | None
    operation: str | None
    service: str | None
    request_id: str | None


def _finding(ordinal: int, parts: list[_Part], context: _Context, timestamp: str | None) -> Finding:
    blob = next((p.blob for p in parts if p.blob is not None), _NO_BLOB)
    plain = next((p.plain for p in parts if p.plain is not None), None)
    return Finding(
        ordinal=ordinal,
        start=parts[0].start,
        end=parts[-1].end,
        encoded_message=blob.token,
        blob_state=blob.state,
        principal_arn=plain.principal_arn if plain else None,
        action=plain.action if plain else None,
        resource=plain.resource if plain else None,
        policy_type=plain.policy_type if plain else None,
        explicit_deny=plain.explicit_deny if plain else None,
        policy_arn=plain.policy_arn if plain else None,
        because=plain.because if plain else None,
        error_code=context.error_code,
        operation=context.operation,
        service=context.service,
        request_id=context.request_id,
        timestamp=timestamp,
    )


def _context(context: str) -> _Context:
    """The error code, API operation, service and request id found around a denial."""
    error_code = _first_group(_ERROR_CODE_RES, context, "code")
    operation: str | None = None
    service: str | None = None
    for needle, regex in _OPERATION_RES:
        m = regex.search(context) if needle in context else None
        if m is not None:
            operation = m.group("op")
            service = m.groupdict().get("service")
            break
    if service is None and "Service:" in context:
        m = _SERVICE_RE.search(context)
        service = m.group("service") if m is not None else None
    rid = _REQUEST_ID_RE.search(context) if "equest" in context else None
    return _Context(
        error_code=error_code,
        operation=operation,
        service=service.strip() if service else None,
        request_id=rid.group("rid") if rid is not None else None,
    )


def _first_group(
    regexes: tuple[tuple[str, re.Pattern[str]], ...], text: str, name: str
) -> str | None:
    for needle, regex in regexes:
        m = regex.search(text) if needle in text else None
        if m is not None:
            return m.group(name)
    return None


def parse_leading_timestamp(text: str, *, now: datetime | None = None) -> str | None:
    """The ISO-8601 UTC time a log line starts with (ISO, ``YYYY/MM/DD`` or syslog), if any."""
    head = text[:64].lstrip(" \t\ufeff>|\u2502")
    m = _ISO_TS_RE.match(head) or _SLASH_TS_RE.match(head)
    if m is not None:
        fields = m.groupdict()
        micro = int((fields.get("frac") or "0").ljust(6, "0")[:6])
        offset = _utc_offset(fields.get("tz"))
        year, month, day = int(m.group("y")), int(m.group("mo")), int(m.group("d"))
    else:
        m = _SYSLOG_TS_RE.match(head)
        if m is None:
            return None
        reference = now or datetime.now(UTC)
        month = _MONTHS.index(m.group("mon")) + 1
        # Syslog lines carry no year: a December line read in January belongs to last year.
        year = reference.year - 1 if month > reference.month else reference.year
        day, micro, offset = int(m.group("d")), 0, UTC
    try:
        moment = datetime(
            year, month, day, int(m.group("h")), int(m.group("mi")), int(m.group("s")), micro,
            tzinfo=offset,
        )  # fmt: skip
    except ValueError:  # "2024-13-45": not a time after all
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _utc_offset(tz: str | None) -> timezone:
    if tz is None or tz == "Z":
        return UTC
    sign = -1 if tz[0] == "-" else 1
    digits = tz[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))


def iso_millis(value: str) -> str | None:
    """An RFC 3339 time (any precision, any offset) as ISO-8601 UTC with milliseconds and Z."""
    match = _RFC3339_RE.match(value.strip())
    if match is None:
        return None
    fraction = (match.group("frac") or "0").ljust(6, "0")[:6]
    zone = match.group("tz") or "Z"
    zone = "+00:00" if zone in ("Z", "z") else zone
    if len(zone) == 5:  # "+0100"
        zone = zone[:3] + ":" + zone[3:]
    try:
        moment = datetime.fromisoformat(
            f"{match.group('date')}T{match.group('clock')}.{fraction}{zone}"
        )
    except ValueError:
        return None
    return _format(moment)


def epoch_millis(value: float) -> str | None:
    """Epoch seconds, or milliseconds when the number is too large to be seconds."""
    seconds = value / 1000 if value >= _EPOCH_MILLIS_MIN else value
    try:
        return _format(datetime.fromtimestamp(seconds, UTC))
    except (OverflowError, OSError, ValueError):
        return None


def _format(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def structured_timestamp(text: str) -> str | None:
    """The ``ts``/``time``/``@timestamp``/``timestamp`` of a JSON or key=value log line.

    zap and controller-runtime write ``"ts": 1651073143.619`` (epoch seconds) or RFC 3339,
    logrus/bunyan ``"time"``, ECS ``"@timestamp"``, logfmt and klog/logr ``time=...``/``ts=...``.
    """
    if "time" not in text and "ts" not in text:
        return None
    match = _STRUCTURED_TIME_RE.search(text)
    if match is None:
        return None
    value = match.group("quoted") or match.group("bare") or ""
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        number = float(value)
        return epoch_millis(number) if _EPOCH_SECONDS_MIN <= number < _EPOCH_MAX else None
    return iso_millis(value)
