"""sources: S3 objects' bytes -> their denials in child processes (``s3_sqs``'s ``processes``).

A watcher is one Python process, whose threads run one at a time, and turning an object into
its denials (gunzip, JSON, the extract stage) is most of its CPU per object. So ``s3_sqs``
hands an object's bytes to a child process and gets its denials back, pickled, each with its
event built unless a blob in it waits for the daemon's decoder (``with_event``: explaining
denials and masking the secrets in their excerpts took over a third of the daemon's
interpreter); everything else stays in the daemon's process (SQS, GetObject, decoding, the
state, the sinks, the log). The children are spawned (fresh interpreters: none of the
daemon's threads, locks or clients) when the source starts, and read one object at a time
each.

A child that dies while it reads (killed, out of memory) fails that object like any failed
read (its message comes back, and counts toward ``max_receive_count``), and a new one is
started for the next object; one found dead before it was given an object is replaced and the
object given to the new one. When no child can be started (the system refuses a process),
the caller reads the object itself (``NoObjectReader``). At a stop the children are killed:
what they held is given back to the queue with the rest.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Literal

from watcher.log import Logger
from watcher.pipeline import Denial, with_event
from watcher.sources.s3_objects import ObjectFormatError, UnrecognisedObjectError, object_denials

STOP_JOIN_SECONDS = 5.0
STALL_SECONDS = 60.0  # a child that used no CPU this long with an object in hand is stuck

_Request = tuple[bytes, str, datetime, tuple[str, ...], str | None]
_Reply = (
    tuple[Literal["denials"], list[Denial]] | tuple[Literal["format", "unrecognised", "error"], str]
)


class ObjectReaderError(Exception):
    """The child reading the object died or failed before it answered."""


class ObjectReadersClosed(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The readers were stopped: the object in hand is given up."""


class NoObjectReader(Exception):  # noqa: N818 - a control-flow signal, not an error
    """No child could be started (said in the log): read the object some other way."""


@dataclass(slots=True, eq=False)
class _Slot:
    """A place for one child; empty until one is started, and again once it ended."""

    process: BaseProcess | None = None
    connection: Connection | None = None


class ObjectReaders:
    """``count`` child processes, each reading one object at a time."""

    def __init__(self, count: int, log: Logger, *, stall_seconds: float = STALL_SECONDS) -> None:
        self._spawn = multiprocessing.get_context("spawn")
        self._log = log
        self._stall_seconds = stall_seconds
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)
        self._slots = [_Slot() for _ in range(count)]
        self._idle = list(self._slots)
        self._stopped = False
        self._start_failed = False  # said once until a start works again
        for slot in self._slots:
            self._start(slot)

    def denials(
        self,
        data: bytes,
        path: str,
        observed_at: datetime,
        *,
        error_codes: tuple[str, ...],
        profile: str | None,
    ) -> list[Denial]:
        """What ``object_denials`` gives for ``data``, read by a free child (waiting for one).
        Raises ObjectFormatError, UnrecognisedObjectError, ObjectReaderError, NoObjectReader,
        or ObjectReadersClosed once stopped."""
        request: _Request = (data, path, observed_at, error_codes, profile)
        slot = self._take()
        try:
            reply = self._ask(slot, request)
        finally:
            self._give_back(slot)
        if reply[0] == "denials":
            return reply[1]
        if reply[0] == "format":
            raise ObjectFormatError(reply[1])
        if reply[0] == "unrecognised":
            raise UnrecognisedObjectError(reply[1])
        raise ObjectReaderError(reply[1])

    def stop(self) -> None:
        """Kill the children: a thread waiting for one gets ObjectReadersClosed."""
        with self._lock:
            self._stopped = True
            self._free.notify_all()
        for slot in self._slots:
            process = slot.process  # a worker may empty the slot meanwhile (a child ended)
            if process is not None:
                process.kill()

    def close(self) -> None:
        """After ``stop`` and once no thread uses them: reap the children, close the pipes."""
        self.stop()
        for slot in self._slots:
            self._emptied(slot)

    def _ask(self, slot: _Slot, request: _Request) -> _Reply:
        connection = slot.connection or self._start(slot)
        if connection is None:
            raise NoObjectReader
        try:
            try:
                connection.send(request)
            except OSError:  # dead before it had this object: not the object's doing
                self._lost(slot)
                connection = self._start(slot)
                if connection is None:
                    raise NoObjectReader from None
                connection.send(request)
            reply = self._answer(slot, connection)
        except (EOFError, OSError):
            if self._stopped:
                raise ObjectReadersClosed from None
            ended = self._lost(slot)
            raise ObjectReaderError(f"the process reading it ended ({ended})") from None
        return reply

    def _answer(self, slot: _Slot, connection: Connection) -> _Reply:
        """The child's reply. One that used no CPU for ``stall_seconds`` with the object in
        hand (stopped, or blocked) is killed: ObjectReaderError. Its held message would
        otherwise be extended for ever, out of every other watcher's reach."""
        pid = None if slot.process is None else slot.process.pid
        last_cpu: float | None = None  # looked at only once the answer is slow in coming
        still_since = time.monotonic()
        while not connection.poll(min(5.0, self._stall_seconds / 4)):
            cpu, now = _cpu_seconds(pid), time.monotonic()
            if cpu is None or cpu != last_cpu:
                last_cpu, still_since = cpu, now
            elif now - still_since >= self._stall_seconds and slot.process is not None:
                slot.process.kill()
                self._lost(slot)
                raise ObjectReaderError(
                    f"the process reading it used no CPU for {self._stall_seconds:.0f} s "
                    "(stopped?); killed"
                )
        reply: _Reply = connection.recv()
        return reply

    def _take(self) -> _Slot:
        with self._lock:
            while not self._idle and not self._stopped:
                self._free.wait()
            if self._stopped:
                raise ObjectReadersClosed
            return self._idle.pop()

    def _give_back(self, slot: _Slot) -> None:
        with self._lock:
            self._idle.append(slot)
            self._free.notify()

    def _start(self, slot: _Slot) -> Connection | None:
        """Start a child in the empty ``slot``: its pipe; None (said once) when the system
        refuses."""
        with self._lock:
            if self._stopped:
                raise ObjectReadersClosed
            try:
                ours, theirs = self._spawn.Pipe()
            except OSError as exc:  # out of file descriptors
                self._not_started(exc)
                return None
            process = self._spawn.Process(
                target=serve, args=(theirs,), name="authz-watcher-object-reader", daemon=True
            )
            try:
                process.start()
            except OSError as exc:
                ours.close()
                self._not_started(exc)
                return None
            finally:
                theirs.close()
            slot.process, slot.connection = process, ours
        if self._start_failed:
            self._log.info("s3_object_reader_started", pid=process.pid)
            self._start_failed = False
        return ours

    def _not_started(self, error: OSError) -> None:
        if not self._start_failed:
            self._log.error(
                "s3_object_reader_not_started", error=str(error),
                detail="objects are read in the daemon's own threads meanwhile; a start is "
                "tried again for each object, said again once one works",
            )  # fmt: skip
        self._start_failed = True

    def _lost(self, slot: _Slot) -> str:
        """A child found dead: emptied and said; how it ended."""
        pid = None if slot.process is None else slot.process.pid
        ended = self._emptied(slot)
        self._log.warning(
            "s3_object_reader_ended", pid=pid, ended=ended,
            detail="a child process reading objects ended; a new one reads the next object",
        )  # fmt: skip
        return ended

    def _emptied(self, slot: _Slot) -> str:
        """Reap the slot's child and close its pipe; how it ended."""
        ended = "" if slot.process is None else _how_it_ended(slot.process)
        if slot.connection is not None:
            slot.connection.close()
        slot.process, slot.connection = None, None
        return ended


def _cpu_seconds(pid: int | None) -> float | None:
    """User and system CPU time of a process (Linux /proc); None when it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _how_it_ended(process: BaseProcess) -> str:
    process.join(STOP_JOIN_SECONDS)
    code = process.exitcode
    if code is None:
        process.kill()
        process.join(STOP_JOIN_SECONDS)
        return "its pipe closed while it ran; killed"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def serve(connection: Connection) -> None:
    """A child's life: read the objects it is sent until the daemon's end of the pipe closes.
    Signals sent to the daemon's whole process group (a terminal's Ctrl-C or hang-up, a
    supervisor's SIGTERM) are the daemon's to act on: it kills its children itself."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    while True:
        reply: _Reply
        try:
            data, path, observed_at, error_codes, profile = connection.recv()
        except (EOFError, OSError):
            return  # the daemon's end closed: it stopped or died
        except Exception as exc:  # noqa: BLE001 - out of memory receiving it: said, not printed
            reply = ("error", f"receiving the object: {_described(exc)}")
        else:
            reply = _read(data, path, observed_at, error_codes, profile)
        try:
            connection.send(reply)
        except OSError:
            return  # the daemon died while we read


def _read(
    data: bytes,
    path: str,
    observed_at: datetime,
    error_codes: tuple[str, ...],
    profile: str | None,
) -> _Reply:
    try:
        stream = io.BytesIO(data)
        denials = object_denials(
            stream, path, observed_at, error_codes=error_codes, profile=profile
        )
    except ObjectFormatError as exc:
        return ("format", str(exc))
    except UnrecognisedObjectError as exc:
        return ("unrecognised", str(exc))
    except Exception as exc:  # noqa: BLE001 - said to the daemon, which names the object
        return ("error", _described(exc))
    return ("denials", [with_event(denial) for denial in denials])


def _described(error: Exception) -> str:
    detail = str(error) or ("out of memory" if isinstance(error, MemoryError) else "no detail")
    return f"{type(error).__name__}: {detail}"
