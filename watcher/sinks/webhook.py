"""sinks: events -> an HTTP webhook (generic JSON, or a Slack-compatible message).

``format: json`` posts the event itself; ``format: slack`` posts ``{"text": ...}`` with a
summary and the suggested policy. ``${VAR}`` in the URL and headers is taken from the
environment when the sink is built, and the URL (which often is the secret) is never logged.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from watcher.errors import ConfigError
from watcher.model import Event
from watcher.sinks.delivery import PermanentDeliveryError, RetryableDeliveryError

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
USER_AGENT = "authz-watcher"


def expand_environment(text: str, where: str) -> str:
    """``${VAR}`` -> its value; a variable that is not set is a configuration error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return os.environ[name]

    return _ENV_RE.sub(value, text)


class WebhookDelivery:
    def __init__(
        self, url: str, *, body_format: str, headers: dict[str, str], timeout_seconds: float
    ) -> None:
        self._url = expand_environment(url, "webhook url")
        scheme = urlsplit(self._url).scheme
        if scheme not in ("http", "https"):
            raise ConfigError(f"webhook url must be http or https, not {scheme or 'empty'!r}")
        self._format = body_format
        self._headers = {
            name: expand_environment(value, f"webhook header {name}")
            for name, value in headers.items()
        }
        self._timeout = timeout_seconds

    def __call__(self, event: Event) -> None:
        body = slack_message(event) if self._format == "slack" else event
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
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
        group = ", ".join(f"{k}={v}" for k, v in event["group"].items())
        text = (
            f":no_entry: *authz-watcher* rule `{event['rule']}`: {event['count']} denials in "
            f"{event['window_seconds']:g} s for {group} "
            f"({event['first_seen']} .. {event['last_seen']})"
        )
    else:
        text = (
            f":no_entry: *authz-watcher*: {event.get('principal_arn') or 'someone'} was denied "
            f"{event.get('action') or 'an action'}. {event.get('reason') or ''}"
        ).strip()
    policy = event.get("suggested_policy")
    if policy:
        text += "\nPolicy that would allow it:\n```" + json.dumps(policy, indent=2) + "```"
    return {"text": text}
