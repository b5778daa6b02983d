"""sinks: events -> an HTTP webhook (generic JSON, or a Slack-compatible message).

``format: json`` posts the event itself; ``format: slack`` posts ``{"text": ...}`` with a
summary and the suggested policy. ``${VAR}`` in the URL and headers is taken from the
environment when the sink is built, and the URL (which often is the secret) is never logged.

Principal and resource names are attacker-controlled text: in Slack text they are escaped
(``&`` ``<`` ``>``, so ``<!channel>`` cannot ping anyone) and their backticks neutralised (so
they cannot close the policy's code block); the text is cut to Slack's limit with a note.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request

from watcher.config import ENV_REFERENCE_RE, webhook_url_problem
from watcher.errors import ConfigError
from watcher.model import Event
from watcher.sinks.delivery import PermanentDeliveryError, RetryableDeliveryError

USER_AGENT = "authz-watcher"
SLACK_TEXT_MAX_CHARS = 4000  # Slack's advice for a message's text; it cuts at 40,000
_SLACK_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "`": "\u02cb"})


def expand_environment(text: str, where: str) -> str:
    """``${VAR}`` -> its value; a variable that is not set is a configuration error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return os.environ[name]

    return ENV_REFERENCE_RE.sub(value, text)


def expand_headers(headers: dict[str, str], where: str) -> dict[str, str]:
    """Headers with ``${VAR}`` expanded; a value with CR or LF (header injection, or a token
    read with its newline) is a configuration error that names the header, never the value."""
    expanded = {}
    for name, value in headers.items():
        text = expand_environment(value, f"{where}: header {name}")
        if "\r" in text or "\n" in text or "\r" in name or "\n" in name:
            raise ConfigError(
                f"{where}: header {name.strip()!r} contains a line break (CR or LF); "
                "check the value or the environment variable it comes from"
            )
        expanded[name] = text
    return expanded


class WebhookDelivery:
    def __init__(
        self, url: str, *, body_format: str, headers: dict[str, str], timeout_seconds: float
    ) -> None:
        self._url = expand_environment(url, "webhook url")
        problem = webhook_url_problem(self._url)
        if problem is not None:
            raise ConfigError(f"webhook url: {problem}")
        self._format = body_format
        self._headers = expand_headers(headers, "webhook")
        self._timeout = timeout_seconds

    def __call__(self, event: Event) -> None:
        body = slack_message(event) if self._format == "slack" else event
        request = urllib.request.Request(  # noqa: S310 - URL checked in __init__
            self._url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **self._headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            if status >= 500 or status in (408, 429):
                raise RetryableDeliveryError(f"HTTP {status}") from exc
            raise PermanentDeliveryError(f"HTTP {status}") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            raise RetryableDeliveryError(
                f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            ) from exc


def slack_message(event: Event) -> dict[str, str]:
    """A Slack incoming-webhook message: what happened, and the fix when there is one."""
    if event["event"] == "authz_alert":
        group = ", ".join(f"{k}={slack_escape(str(v))}" for k, v in event["group"].items())
        text = (
            f":no_entry: *authz-watcher* rule `{slack_escape(event['rule'])}`: {event['count']} "
            f"denials in {event['window_seconds']:g} s for {group} "
            f"({event['first_seen']} .. {event['last_seen']})"
        )
    else:
        principal = slack_escape(event.get("principal_arn") or "someone")
        action = slack_escape(event.get("action") or "an action")
        text = (
            f":no_entry: *authz-watcher*: {principal} was denied {action}. "
            f"{slack_escape(event.get('reason') or '')}"
        ).strip()
    policy = event.get("suggested_policy")
    if policy:
        text += (
            "\nPolicy that would allow it:\n```"
            + slack_escape(json.dumps(policy, indent=2))
            + "```"
        )
    return {"text": cut_slack_text(text)}


def slack_escape(text: str) -> str:
    """Text from a log line made inert in Slack: no mentions, links or code-block escapes."""
    return text.translate(_SLACK_ESCAPES)


def cut_slack_text(text: str, limit: int = SLACK_TEXT_MAX_CHARS) -> str:
    """``text`` within ``limit`` characters, with a note when cut; never half an ``&amp;``,
    and an open code block is closed."""
    if len(text) <= limit:
        return text
    note = f"\n_(cut to {limit:,} characters; the whole event is in the JSON sinks)_"
    kept = text[: limit - len(note) - len("```")]
    ampersand = kept.rfind("&", max(0, len(kept) - len("&amp;")))
    if ampersand >= 0 and ";" not in kept[ampersand:]:
        kept = kept[:ampersand]
    if kept.count("```") % 2:
        kept += "```"
    return kept + note
