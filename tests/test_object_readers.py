"""Objects read into denials by child processes (sources/object_readers.py): real spawned
children, killed for real."""

from __future__ import annotations

import gzip
import io
import json
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from threading import Thread
from typing import Any

import pytest

from tests.conftest import REPO
from tests.test_daemon import wait_for
from tests.test_decode import KNOWN, credentials, decoder_for  # noqa: F401 - a fixture
from tests.trail_queue import trail_object, trail_record
from watcher.events import utc_now
from watcher.log import configure_logging
from watcher.model import DEFAULT_CLOUDTRAIL_ERROR_CODES, Event
from watcher.pipeline import Denial, DenialBuilder, with_event
from watcher.sources.object_readers import (
    NoObjectReader,
    ObjectReaderError,
    ObjectReaders,
    ObjectReadersClosed,
)
from watcher.sources.s3_objects import ObjectFormatError, UnrecognisedObjectError, object_denials

PATH = "s3://trail/AWSLogs/111122223333/CloudTrail/us-east-1/k.json.gz"
NOW = utc_now()
JOIN_SECONDS = 60.0


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "log.jsonl"


@pytest.fixture
def readers(log_path: Path) -> Iterator[ObjectReaders]:
    with log_path.open("w") as stream:
        started = ObjectReaders(1, configure_logging(stream))
        yield started
        started.close()


def read(readers: ObjectReaders, body: bytes, profile: str | None = "trail") -> list[Denial]:
    return readers.denials(
        body, PATH, NOW, error_codes=DEFAULT_CLOUDTRAIL_ERROR_CODES, profile=profile
    )


def denials_here(body: bytes) -> list[Denial]:
    return object_denials(
        io.BytesIO(body), PATH, NOW, error_codes=DEFAULT_CLOUDTRAIL_ERROR_CODES, profile="trail"
    )


def read_here(body: bytes) -> list[Denial]:
    """What a child gives for ``body``, made in this process."""
    return [with_event(denial) for denial in denials_here(body)]


def error_of(reading: Any) -> Exception:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the kind is what is compared
        reading()
    assert isinstance(caught.value, Exception)
    return caught.value


def children() -> list[int]:
    """Pids of the object readers alive (``active_children`` also reaps the dead ones)."""
    return [
        p.pid
        for p in multiprocessing.active_children()
        if p.name == "authz-watcher-object-reader" and p.pid is not None
    ]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def state_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def logged(log_path: Path, name: str) -> list[dict[str, Any]]:
    lines = log_path.read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if entry["event"] == name]


def long_object(records: int) -> bytes:
    """A CloudTrail object whose reading takes a child a second or more of CPU (20,000
    denials: 1.5 s here; a record that is no denial costs far less), made fast."""
    record = json.dumps(trail_record(0))
    text = '{"Records": [' + ",".join([record] * records) + "]}"
    return gzip.compress(text.encode(), compresslevel=1)


def events_of(denials: list[Denial]) -> list[Event]:
    builder = DenialBuilder()
    return [builder.event(denial, builder.decode(denial)) for denial in denials]


def test_a_child_gives_what_reading_in_the_process_gives(readers):
    """The same denials, each with its event built already (what the daemon would build)."""
    body = trail_object([trail_record(n, denial=n % 3 != 0) for n in range(30)])
    expected = denials_here(body)
    assert len(expected) == 20
    there = read(readers, body)
    assert [None] * 20 == [denial.event for denial in expected]
    assert all(denial.event is not None for denial in there)
    assert events_of(expected) == events_of(there)
    assert [replace(d, text="", event=None) for d in expected] == [
        replace(d, event=None) for d in there
    ]


@pytest.mark.usefixtures("credentials")
def test_a_blob_to_decode_comes_back_without_its_event_for_the_daemon_to_decode(readers, sts):
    """A child has no STS client: a denial carrying a whole blob comes back with its text, and
    the daemon's decoder decodes it; one with no blob beside it comes back built."""
    with_blob = trail_record(1)
    with_blob["errorMessage"] += f". Encoded authorization failure message: {KNOWN}"
    blob, plain = read(readers, trail_object([with_blob, trail_record(2)]), profile=None)
    assert (None, with_blob["errorMessage"]) == (blob.event, json.loads(blob.text)["errorMessage"])
    assert plain.event is not None
    builder = DenialBuilder(decoder=decoder_for(sts))
    event = builder.event(blob, builder.decode(blob))
    assert ("decoded", [KNOWN]) == (event["decode_status"], [c.blob for c in sts.decode_calls()])
    assert events_of(denials_here(trail_object([with_blob])))[0]["raw"] == event["raw"]


def test_broken_and_unrecognised_objects_fail_as_they_do_in_the_process(readers):
    broken = trail_object([trail_record(1)])[:-12]
    for body, kind in ((broken, ObjectFormatError), (b"hello", UnrecognisedObjectError)):
        there = error_of(lambda b=body: read(readers, b))
        here = error_of(lambda b=body: read_here(b))
        assert (kind, str(here)) == (type(there), str(there))
    assert len(read(readers, trail_object([trail_record(2)]))) == 1  # the child lives on


def test_a_child_killed_between_objects_is_replaced_and_the_object_read(readers, log_path):
    (pid,) = children()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: pid not in children(), "the killed child reaped")
    body = trail_object([trail_record(3)])
    assert read_here(body) == read(readers, body)
    (replaced,) = logged(log_path, "s3_object_reader_ended")
    assert (pid, "killed by SIGKILL") == (replaced["pid"], replaced["ended"])
    (new,) = children()
    assert pid != new


def test_with_no_child_to_be_had_the_caller_is_told_and_the_next_start_works(readers, log_path):
    """Out of file descriptors, no child can be started: NoObjectReader (the caller reads the
    object itself), said once; once descriptors are free again, a child reads the next one."""
    (pid,) = children()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: pid not in children(), "the killed child reaped")
    body = trail_object([trail_record(5)])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.dup(0)
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))  # no new descriptor
    try:
        outcomes = [error_of(lambda: read(readers, body)) for _ in range(2)]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert [NoObjectReader, NoObjectReader] == [type(outcome) for outcome in outcomes]
    (not_started,) = logged(log_path, "s3_object_reader_not_started")
    assert "Too many open files" in not_started["error"]
    assert read_here(body) == read(readers, body)
    assert 1 == len(logged(log_path, "s3_object_reader_started"))
    assert 1 == len(children())


def long_reads(readers: ObjectReaders, pid: int, count: int) -> tuple[list[Thread], list[object]]:
    """``count`` threads reading a long object each (what each got or raised in the list),
    once the child ``pid`` is busy with the first."""
    before = cpu_seconds(pid)
    outcomes: list[object] = []

    def reading() -> None:
        try:
            outcomes.append(read(readers, long_object(20_000)))
        except Exception as exc:  # noqa: BLE001 - what the read raised is the assertion
            outcomes.append(exc)

    threads = [Thread(target=reading) for _ in range(count)]
    for thread in threads:
        thread.start()
    wait_for(lambda: cpu_seconds(pid) > before + 0.2, "the child busy with a long object")
    return threads, outcomes


def test_a_child_killed_while_it_reads_fails_that_object_and_the_next_is_read(readers):
    (pid,) = children()
    (thread,), outcome = long_reads(readers, pid, 1)
    os.kill(pid, signal.SIGKILL)
    thread.join(JOIN_SECONDS)
    (error,) = outcome
    assert isinstance(error, ObjectReaderError)
    assert "the process reading it ended (killed by SIGKILL)" == str(error)
    assert len(read(readers, trail_object([trail_record(4)]))) == 1


def test_a_stop_ends_reads_in_hand_and_waiting_and_close_leaves_no_child(readers):
    (pid,) = children()
    threads, outcomes = long_reads(readers, pid, 2)  # one reads, one waits for the child
    readers.stop()
    for thread in threads:
        thread.join(JOIN_SECONDS)
    assert [ObjectReadersClosed, ObjectReadersClosed] == [type(o) for o in outcomes]
    readers.close()
    assert [] == children()
    assert isinstance(error_of(lambda: read(readers, b"")), ObjectReadersClosed)


def test_a_child_that_does_nothing_with_an_object_in_hand_is_killed(log_path):
    """A stopped child (SIGSTOP, or blocked) would hold its object, and the message the
    watcher extends for ever: after ``stall_seconds`` without CPU it is killed, the object
    fails, and a new child reads the next one."""
    with log_path.open("w") as stream:
        readers = ObjectReaders(1, configure_logging(stream), stall_seconds=1.0)
        try:
            (pid,) = children()
            os.kill(pid, signal.SIGSTOP)
            body = trail_object([trail_record(6)])
            error = error_of(lambda: read(readers, body))
            assert isinstance(error, ObjectReaderError)
            assert "the process reading it used no CPU for 1 s (stopped?); killed" == str(error)
            (ended,) = logged(log_path, "s3_object_reader_ended")
            assert (pid, "killed by SIGKILL") == (ended["pid"], ended["ended"])
            assert read_here(body) == read(readers, body)
        finally:
            readers.close()


def test_signals_to_the_whole_process_group_leave_the_children_to_the_daemon(readers):
    """Ctrl-C, a hang-up or a supervisor's SIGTERM sent to the group reach the children too:
    the daemon acts on them (and kills its children itself); the children read on."""
    (pid,) = children()
    body = trail_object([trail_record(7)])
    assert read_here(body) == read(readers, body)  # it has begun serving
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        os.kill(pid, signum)
    assert read_here(body) == read(readers, body)
    assert [pid] == children()


PARENT_DIES = """
import os, sys, threading
sys.path.insert(0, {repo!r})
from tests.test_object_readers import children, cpu_seconds, long_object, read
from tests.test_daemon import wait_for
from tests.test_decode import KNOWN, credentials, decoder_for  # noqa: F401 - a fixture
from watcher.log import configure_logging
from watcher.sources.object_readers import ObjectReaders
readers = ObjectReaders(1, configure_logging())
(pid,) = children()
before = cpu_seconds(pid)
threading.Thread(target=read, args=(readers, long_object(20_000)), daemon=True).start()
wait_for(lambda: cpu_seconds(pid) > before + 0.2, "the child busy")
print(pid, flush=True)
os._exit(0)  # as kill -9 would: nothing closes the children
"""


def test_a_child_whose_daemon_died_finishes_quietly(tmp_path):
    """The daemon killed while its child reads: the child's answer finds no one; it ends
    without a traceback in the daemon's log (their stderr is one)."""
    parent = subprocess.run(
        [sys.executable, "-c", PARENT_DIES.format(repo=str(REPO))],
        capture_output=True,
        text=True,
        timeout=JOIN_SECONDS,
        check=True,
    )  # returns once every writer of its stderr (the child too) has ended
    child = int(parent.stdout.strip())
    wait_for(lambda: not Path(f"/proc/{child}").exists() or "Z" in state_of(child), "its end")
    assert "" == parent.stderr
