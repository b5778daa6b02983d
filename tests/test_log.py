"""Operational logging: what the libraries log reaches stderr as JSON lines too."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from watcher.log import configure_logging, forward_library_logs


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    root = logging.getLogger()
    before = list(root.handlers)
    forward_library_logs(configure_logging(out))
    yield out
    root.handlers = before


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_library_warning_is_a_json_line(stream: io.StringIO) -> None:
    logging.getLogger("urllib3.connectionpool").warning("Connection pool is full: %s", "sts")
    logging.getLogger("watchdog.observers.inotify").error("inotify watch limit reached")
    logging.getLogger("botocore.credentials").info("Found credentials in environment variables")

    got = [
        (line["event"], line["level"], line["library"], line["message"]) for line in lines(stream)
    ]
    assert got == [
        ("library_logged", "warning", "urllib3.connectionpool", "Connection pool is full: sts"),
        ("library_logged", "error", "watchdog.observers.inotify", "inotify watch limit reached"),
    ]


def test_watchdogs_stop_race_is_not_reported(stream: io.StringIO) -> None:
    """An event read while the observer stops: watchdog calls it an error; nothing is lost."""
    logging.getLogger("watchdog.observers.inotify").error(
        "InotifyEmitter.queue_events() called when the thread is inactive"
    )
    assert stream.getvalue() == ""


def test_configured_twice_forwards_once(stream: io.StringIO) -> None:
    forward_library_logs(configure_logging(stream))
    logging.getLogger("botocore").warning("once")
    assert [line["message"] for line in lines(stream)] == ["once"]
