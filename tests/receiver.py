"""A local HTTP receiver for webhook tests: records what it gets, fails on demand.

``Receiver(slack=True)`` is Slack-shaped: it reads ``text`` as Slack's mrkdwn does, records
the mentions that would notify people (``<!channel>``, ``<!here>``, ``<@U123>``) outside code,
and refuses a text over Slack's 40,000 characters with 400 ``msg_too_long``.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.local_server import LocalServer, QuietHandler

SLACK_MAX_TEXT_CHARS = 40_000
_SLACK_CODE_RE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
_SLACK_MENTION_RE = re.compile(r"<(?:!channel|!here|!everyone|!subteam\^[^>]*|@[UW][^>]*)>")


def slack_live_mentions(text: str) -> list[str]:
    """The mentions Slack would act on: those outside code blocks and inline code."""
    return _SLACK_MENTION_RE.findall(_SLACK_CODE_RE.sub("", text))


class Receiver(LocalServer):
    """``with Receiver() as r``: POSTs to ``r.url`` are recorded in ``r.received``.

    ``r.answers`` holds status codes to answer next (then 200); "hang" answers after the
    client has given up; "slow" answers 200 after half a second.
    """

    def __init__(self, port: int = 0, *, slack: bool = False) -> None:
        self.slack = slack
        self.mentions: list[str] = []  # live mentions in received Slack texts
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.answers: deque[int | str] = deque()
        self.attempts = 0
        self._lock = threading.Lock()
        super().__init__(port)

    thread_name = "receiver"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.attempts += 1
                    answer = receiver.answers.popleft() if receiver.answers else 200
                if answer == "hang":  # answer only after the client has given up
                    receiver._stopping.wait(5)
                    answer = 504
                if answer == "slow":  # take it, but only after half a second
                    receiver._stopping.wait(0.5)
                    answer = 200
                status = int(answer)
                if status == 200 and receiver.slack:
                    status = receiver._read_slack(json.loads(body))
                if status == 200:
                    with receiver._lock:
                        receiver.received.append(json.loads(body))
                        receiver.headers.append(dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler

    def _read_slack(self, message: dict[str, Any]) -> int:
        """Slack's view of an incoming-webhook message: its status, and who it would ping."""
        text = message.get("text")
        if not isinstance(text, str) or not text:
            return 400  # no_text
        if len(text) > SLACK_MAX_TEXT_CHARS:
            return 400  # msg_too_long
        with self._lock:
            self.mentions.extend(slack_live_mentions(text))
        return 200
