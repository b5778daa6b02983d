"""The exceptions authz-watcher raises, so callers can catch at the right level.

WatcherError                  base of everything below; never escapes the CLI as a traceback
├── ConfigError               the configuration file is unreadable or invalid (exit status 2)
├── UsageError                the command line is wrong (exit status 2)
└── SourceError               one input could not be read (named, the others continue)
    └── TruncatedInputError   a compressed input ended early; what was readable was processed
"""

from __future__ import annotations


class WatcherError(Exception):
    """Base class of every error authz-watcher reports to a person."""


class ConfigError(WatcherError):
    """The configuration is invalid; the message reads ``file:line: key.path: reason``."""


class UsageError(WatcherError):
    """The command line cannot be carried out as given."""


class SourceError(WatcherError):
    """An input (file, directory, stream) could not be read completely."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class TruncatedInputError(SourceError):
    """A compressed input ended before its end-of-stream marker."""
