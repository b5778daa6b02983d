"""sources: the one protocol every kind of source implements; the daemon knows only this.

    daemon loop:  source.read(changed, out)        what is ready -> out.text / out.denials
                  gate.commit(source, checkpoint)  saved (or acknowledged) once every sink
                                                   has every event read before it

A kind is one module plus its config type: a class built from the tuple of its configured
sources (``SourceContext`` gives the state database and the log) and registered in
``watcher/sources/registry.py``. Local kinds (files, CloudTrail directories) read when the
directories they name change; remote kinds (S3, SQS, the journal, CloudWatch Logs) fetch on
their own threads, hold what they fetched until ``read`` hands it on, and call ``wake`` so the
loop comes for it.

What a source hands on is acknowledged only through ``checkpoint()``: the daemon runs the save
it returns after every sink has flushed every event read so far, so a crash at any moment
loses nothing (at-least-once) and a graceful stop repeats nothing. ``read`` must hand on
nothing while ``out.paused`` (a sink is failing); a save may run much later, and it must cover
everything handed on before it was made (the daemon keeps only the latest save of a source).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from watcher.log import Logger
from watcher.model import Origin
from watcher.pipeline import Denial
from watcher.state import StateStore

Save = Callable[[], None]
Wake = Callable[[], None]


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What every source is built with."""

    store: StateStore
    log: Logger


@dataclass(frozen=True, slots=True)
class Progress:
    """What the status line and the gauges show of a source."""

    followed: int = 0  # files, journals, queues, log groups being read
    bytes_behind: int = 0  # known to be written and not read yet (files)


class Output(Protocol):
    """Where a source hands on what it read."""

    @property
    def paused(self) -> bool:
        """A sink cannot take events: hand on nothing more until a later ``read``."""

    def text(
        self,
        text: bytes | str,
        origin: Origin,
        *,
        profile: str | None = None,
        timestamp: str | None = None,
    ) -> int:
        """A message (a line, an entry, a log event) for the extract stage; returns how many
        denials it held. ``timestamp``: the time the source knows better than the text."""

    def denials(self, denials: Iterable[Denial]) -> int:
        """Denials the source built itself (CloudTrail records); returns how many."""


class Source(Protocol):
    """One kind of source, with every configured source of that kind."""

    kind: str  # the config's ``type``

    def start(self, wake: Wake) -> None:
        """Begin (threads of remote kinds); ``wake()`` makes the loop call ``read`` soon."""

    def directories(self) -> Iterable[tuple[str, bool]]:
        """Local directories whose changes matter, as (path, recursive)."""

    def read(self, changed: set[str] | None, out: Output) -> int:
        """Hand on what is ready; ``changed``: paths changed since the last call, or None to
        look at everything. Returns the bytes read (for the metrics)."""

    def checkpoint(self) -> Save | None:
        """The save that acknowledges everything handed on so far, or None if nothing new."""

    @property
    def more_ready(self) -> bool:
        """``read`` stopped with more ready (a bound per call): call it again at once."""

    def seconds_to_next_read(self) -> float | None:
        """When ``read`` has something to do without a change or ``wake`` (a held message)."""

    def progress(self) -> Progress: ...

    def reconfigure(self, configs: tuple[object, ...]) -> bool:
        """Take new configs of this kind in place (SIGHUP); False: build the kind anew."""

    def close(self) -> None:
        """Stop; what was handed on and not yet acknowledged comes again at the next start."""


class RemoteSource:
    """What the remote kinds (S3, SQS, the journal, CloudWatch Logs) answer alike: no local
    directory to watch (their threads call ``wake``), no timed read, and a change of config
    builds the kind anew (the new one resumes from the saved positions)."""

    def directories(self) -> Iterable[tuple[str, bool]]:
        return ()

    def seconds_to_next_read(self) -> float | None:
        return None

    def reconfigure(self, configs: tuple[object, ...]) -> bool:
        del configs
        return False
