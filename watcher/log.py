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


# watchdog's inotify emitter logs this when an event arrives while the observer stops: a race
# in its shutdown, harmless to a daemon that is stopping (the next start looks at every file).
_WATCHDOG_STOP_RACE = ("watchdog.observers.inotify", "queue_events() called when the thread")


def forward_library_logs(log: Logger) -> None:
    """Send the standard ``logging`` records of the libraries the daemon uses (watchdog,
    botocore, urllib3), warnings and worse, through ``log`` as ``library_logged`` JSON lines.

    Without a handler Python prints such records to stderr as plain text (watchdog installs
    none), which breaks a reader that expects every line on stderr to be JSON.
    """
    import logging  # noqa: PLC0415 - the daemon only; see the module docstring

    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if record.name == _WATCHDOG_STOP_RACE[0] and _WATCHDOG_STOP_RACE[1] in message:
                return
            report = log.error if record.levelno >= logging.ERROR else log.warning
            report("library_logged", library=record.name, message=message)

    forward = Forward(logging.WARNING)
    forward.set_name("authz-watcher")
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == forward.get_name()]:
        root.removeHandler(handler)  # configured again (tests): one handler, not two
    root.addHandler(forward)
