"""report: a denial event -> the short summary a person reads in a terminal (``decode``).

The JSON event stays the contract for machines; this is the view for someone who just pasted
an error: what was denied, to whom, why, and the statement to paste into a policy.

Principal and resource names come from log lines anyone can write, so every value shown on a
terminal goes through ``terminal_safe``: control characters (ESC, OSC titles and links, CR,
C1 codes, bidirectional overrides) are shown escaped (``\x1b``), never sent to the terminal.
"""

from __future__ import annotations

import json
import os
import re
from typing import TextIO

from watcher.model import Event

# Context keys every decoded message carries and that say nothing the summary does not already.
_OBVIOUS_CONDITIONS = frozenset(
    {"aws:Resource", "aws:Type", "aws:ARN", "aws:Account", "aws:ID", "aws:Service"}
)
MAX_CONDITIONS_SHOWN = 6

# DEL, C1 controls, and the bidirectional controls that reorder what is shown (a regex class).
DEL_C1_AND_BIDI_CONTROLS = r"\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_TERMINAL_UNSAFE_RE = re.compile(rf"[\x00-\x1f{DEL_C1_AND_BIDI_CONTROLS}]")

_RED = "\033[31m"
_BOLD = "\033[1m"
_DIM = "\033[2m"
_GREEN = "\033[32m"
_RESET = "\033[0m"


def use_colour(stream: TextIO) -> bool:
    """Colour on a terminal unless NO_COLOR is set (https://no-color.org) or TERM=dumb."""
    return (
        stream.isatty()
        and "NO_COLOR" not in os.environ
        and os.environ.get("TERM", "") not in ("", "dumb")
    )


def summary(event: Event, *, colour: bool) -> str:
    """A few lines: the denied action, principal, resource, reason, conditions, the fix."""

    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if colour else text

    action = event["action"] or event["operation"] or "(action unknown)"
    lines = [paint(_BOLD + _RED, "Denied: ") + paint(_BOLD, terminal_safe(action))]
    rows = [
        ("principal", event["principal_arn"]),
        ("resource", event["resource"]),
        ("why", event["reason"]),
        ("conditions", _conditions(event["conditions"])),
        ("error", event["error_code"]),
        ("decoding", _decoding(event)),
    ]
    lines.extend(
        f"  {paint(_DIM, f'{label:<10}')} {terminal_safe(value)}" for label, value in rows if value
    )
    policy = event["suggested_policy"]
    if policy is not None:
        lines.append("")
        lines.append(paint(_GREEN, "  Policy that would allow it (see 'why' for where it goes):"))
        lines.extend(f"  {line}" for line in json.dumps(policy, indent=2).splitlines())
    return "\n".join(lines)


def _conditions(conditions: dict[str, list[str]]) -> str | None:
    shown = [
        f"{key}={','.join(values)}"
        for key, values in sorted(conditions.items(), key=lambda item: item[0].startswith("aws:"))
        if key not in _OBVIOUS_CONDITIONS
    ]
    if not shown:
        return None
    more = len(shown) - MAX_CONDITIONS_SHOWN
    text = "  ".join(shown[:MAX_CONDITIONS_SHOWN])
    return text + (f"  (+{more} more)" if more > 0 else "")


def _decoding(event: Event) -> str | None:
    status = event["decode_status"]
    if status in ("decoded", "cached", "not_needed"):
        return None
    return f"{status}: {event['decode_error']}" if event["decode_error"] else status


def terminal_safe(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\u202e``)."""
    return _TERMINAL_UNSAFE_RE.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
