"""Operational logging: structlog JSON lines on stderr, never mixed with denial events.

Event names are noun + past-tense verb (``source_opened``, ``source_error``); failures carry a
``stage`` and an ``error_type``. Loggers are created after ``configure_logging`` and passed
around, so a test that captures stderr sees what the code logged.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

Logger = structlog.typing.FilteringBoundLogger


def configure_logging(stream: TextIO | None = None, level: int = logging.INFO) -> Logger:
    """Set structlog up for JSON on ``stream`` (stderr by default) and return a logger."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    logger: Logger = structlog.get_logger("authz-watcher")
    return logger
