"""The exceptions authz-watcher raises, so callers can catch at the right level.

WatcherError                  base of everything below; never escapes the CLI as a traceback
├── ConfigError               the configuration file is unreadable or invalid (exit status 2)
├── UsageError                the command line is wrong (exit status 2)
└── StateError                the state directory or database cannot be used
    └── StateDirectoryError   state_dir cannot be created, or another daemon holds it (exit
        │                     status 2: restarting would not help)
        └── StateDirectoryBusyError   another process holds the state directory's lock
"""

from __future__ import annotations


class WatcherError(Exception):
    """Base class of every error authz-watcher reports to a person."""


class ConfigError(WatcherError):
    """The configuration is invalid; the message reads ``file:line: key.path: reason``."""


class UsageError(WatcherError):
    """The command line cannot be carried out as given."""


class StateError(WatcherError):
    """The state directory or database cannot be used."""


class StateDirectoryError(StateError):
    """``state_dir`` cannot be created or used, or another process holds its lock."""


class StateDirectoryBusyError(StateDirectoryError):
    """Another process holds the lock on ``state_dir`` (its PID is in the message)."""
