"""Operational logging: structlog JSON lines on stderr, never mixed with denial events.

Event names are noun + past-tense verb (``source_opened``, ``source_error``); failures carry a
``stage`` and an ``error_type``. Loggers are created by ``configure_logging`` and passed
around, so a test that captures stderr sees what the code logged. structlog is imported on
the first message only: most ``scan`` runs log nothing, and the import costs ~90 ms of start-up.
"""

from __future__ import annotations

import sys
from typing import Protocol, TextIO

INFO = 20  # logging.INFO, without importing logging at start-up


class Logger(Protocol):
    def debug(self, event: str, **fields: object) -> None: ...

    def info(self, event: str, **fields: object) -> None: ...

    def warning(self, event: str, **fields: object) -> None: ...

    def error(self, event: str, **fields: object) -> None: ...


class _LazyLogger:
    """A structlog logger configured on its first message."""

    def __init__(self, stream: TextIO, level: int) -> None:
        self._stream = stream
        self._level = level
        self._logger: Logger | None = None

    def _real(self) -> Logger:
        if self._logger is None:
            import structlog  # noqa: PLC0415 - deferred on purpose, see the module docstring

            structlog.configure(
                processors=[
                    structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.JSONRenderer(),
                ],
                wrapper_class=structlog.make_filtering_bound_logger(self._level),
                logger_factory=structlog.PrintLoggerFactory(file=self._stream),
                cache_logger_on_first_use=False,
            )
            self._logger = structlog.get_logger("authz-watcher")
        return self._logger

    def debug(self, event: str, **fields: object) -> None:
        self._real().debug(event, **fields)

    def info(self, event: str, **fields: object) -> None:
        self._real().info(event, **fields)

    def warning(self, event: str, **fields: object) -> None:
        self._real().warning(event, **fields)

    def error(self, event: str, **fields: object) -> None:
        self._real().error(event, **fields)


def configure_logging(stream: TextIO | None = None, level: int = INFO) -> Logger:
    """A logger writing JSON lines to ``stream`` (stderr by default)."""
    return _LazyLogger(stream or sys.stderr, level)
