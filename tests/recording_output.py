"""The daemon's side of a source's ``Output`` (watcher/sources/base.py) without sinks: it keeps
what the source hands on, so source tests can drive a source class directly."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from tests.test_daemon import wait_for
from watcher.model import Origin
from watcher.pipeline import Denial
from watcher.sources.base import Source


class Handed(NamedTuple):
    """A message handed on for the extract stage."""

    text: bytes | str
    origin: Origin
    profile: str | None
    timestamp: str | None

    @property
    def message(self) -> str:
        text = self.text
        return text.decode("utf-8", "replace") if isinstance(text, bytes) else text


@dataclass
class RecordingOutput:
    """Records every message and denial handed on; fails a source that hands on while paused."""

    paused: bool = False
    handed: list[Handed] = field(default_factory=list)
    denials_handed: list[Denial] = field(default_factory=list)

    def text(
        self,
        text: bytes | str,
        origin: Origin,
        *,
        profile: str | None = None,
        timestamp: str | None = None,
    ) -> int:
        assert not self.paused, "handed on while paused"
        self.handed.append(Handed(text, origin, profile, timestamp))
        return 1

    def denials(self, denials: Iterable[Denial]) -> int:
        assert not self.paused, "handed on while paused"
        before = len(self.denials_handed)
        self.denials_handed.extend(denials)
        return len(self.denials_handed) - before

    def messages(self) -> list[str]:
        return [handed.message for handed in self.handed]

    def event_ids(self) -> list[str]:
        return [str(denial.extra["event_id"]) for denial in self.denials_handed]

    def read_until(self, source: Source, count: int, what: str = "messages") -> list[str]:
        """``source.read`` until ``count`` messages were handed on in all (the deadline fails
        the test); every message so far."""

        def enough() -> bool:
            source.read(None, self)
            return len(self.handed) >= count

        wait_for(enough, f"{count} {what} handed on (have {len(self.handed)})")
        return self.messages()


def commit(source: Source) -> None:
    """What the daemon does once the sinks have everything: run the source's save, if any."""
    save = source.checkpoint()
    if save is not None:
        save()
