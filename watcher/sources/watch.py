"""sources: watchdog glue. Observer threads only record "this path changed" and wake the
pipeline; every read happens on the pipeline's own thread.

inotify can overflow (watchdog then drops events) and network filesystems send none, so the
daemon also re-checks every file each ``poll_interval_seconds``; ``use_polling`` swaps the
inotify observer for watchdog's polling one.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading

from watchdog.events import (
    EVENT_TYPE_CLOSED_NO_WRITE,
    EVENT_TYPE_OPENED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

_READ_ONLY_EVENTS = frozenset({EVENT_TYPE_OPENED, EVENT_TYPE_CLOSED_NO_WRITE})


class Wakeup:
    """An event a signal handler may set: a byte down a non-blocking pipe, no lock taken.

    ``threading.Event.set`` takes a lock; a signal handler that runs while the main thread
    holds it (inside ``wait`` or ``clear``) would wait for itself forever.
    """

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def set(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full: a wake-up is already pending
            os.write(self._write_fd, b"\0")

    def wait(self, timeout: float) -> bool:
        """Block until set, or ``timeout`` seconds pass; True when it was set."""
        readable, _, _ = select.select([self._read_fd], [], [], max(0.0, timeout))
        return bool(readable)

    def clear(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read_fd, 4096):
                pass

    def close(self) -> None:
        os.close(self._read_fd)
        os.close(self._write_fd)


class ChangedPaths:
    """A set of changed paths shared between observer threads and the pipeline thread."""

    def __init__(self) -> None:
        self._paths: set[str] = set()
        self._lock = threading.Lock()
        self._wake = Wakeup()

    def add(self, path: str) -> None:
        with self._lock:
            self._paths.add(path)
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def wait(self, timeout: float) -> None:
        """Block until a change or a wake-up arrives, or ``timeout`` seconds pass."""
        self._wake.wait(timeout)

    def close(self) -> None:
        self._wake.close()

    def take(self) -> set[str]:
        with self._lock:
            paths, self._paths = self._paths, set()
            self._wake.clear()
        return paths


class _RecordChanges(FileSystemEventHandler):
    def __init__(self, changes: ChangedPaths) -> None:
        self._changes = changes

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _READ_ONLY_EVENTS:
            return  # our own reads would wake us again: a file opened each look, forever
        self._changes.add(os.fsdecode(event.src_path))
        destination = getattr(event, "dest_path", "")
        if destination:
            self._changes.add(os.fsdecode(destination))


class DirectoryWatcher:
    """Keeps one watchdog observer watching the directories the sources need."""

    def __init__(self, changes: ChangedPaths, *, polling: bool, poll_seconds: float) -> None:
        self._handler = _RecordChanges(changes)
        self._observer: BaseObserver = (
            PollingObserver(timeout=poll_seconds) if polling else Observer()
        )
        self._watched: dict[tuple[str, bool], object] = {}

    def start(self) -> None:
        self._observer.start()

    def watch(self, wanted: set[tuple[str, bool]]) -> list[str]:
        """Watch the existing directories of ``wanted``; return those that do not exist yet."""
        missing = []
        for key in set(self._watched) - wanted:
            self._observer.unschedule(self._watched.pop(key))  # type: ignore[arg-type]
        for directory, recursive in sorted(wanted - set(self._watched)):
            if not os.path.isdir(directory):
                missing.append(directory)
                continue
            try:
                self._watched[(directory, recursive)] = self._observer.schedule(
                    self._handler, directory, recursive=recursive
                )
            except OSError:
                missing.append(directory)
        return missing

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join()
