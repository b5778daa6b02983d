"""sources: ``type: s3_sqs`` — S3 notifications and EventBridge events on an SQS queue.

    receiver thread   long-polls the queue; a received message is a lease (its visibility)
    worker threads    body -> objects / records (sources/sqs_messages.py); GetObject, its
                      bytes read into denials by a child process (sources/object_readers.py;
                      ``processes: 0``, or an object too large to hold, is streamed through
                      sources/s3_objects.py in the thread); the denials wait in ``ready``
    keeper thread     extends every lease at half the visibility timeout while it is held
    daemon thread     ``read`` hands the denials on; the save ``checkpoint`` returns records
                      the objects as seen and acknowledges the messages, once every sink has them
    deleter thread    deletes acknowledged messages, up to 10 a call (a message waits at most
                      DELETE_BATCH_WAIT_SECONDS for others; at a stop, all of them at once)

A message is deleted only after every sink has its events, so a crash loses nothing: the
message comes back after its visibility timeout, to this watcher or another one sharing the
queue, and its denials carry the same ``event_id`` (CloudTrail's ``eventID``). At most
``workers`` messages are held unacknowledged at once (received, being read, or handed on);
a failing sink therefore stops receiving. Acknowledged messages waiting for their deletion do
not count: they hold nothing back. ``close`` releases what it still holds (visibility 0), so
another watcher takes it at once; those releases are counted in the state database, so that
they do not count toward ``max_receive_count``.
"""

from __future__ import annotations

import io
import math
import re
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config as BotocoreConfig
from botocore.exceptions import BotoCoreError, ClientError

from watcher.config import S3SqsSource
from watcher.events import utc_now
from watcher.pipeline import Denial
from watcher.sources.base import Output, Progress, RemoteSource, Save, SourceContext, Wake
from watcher.sources.cloudtrail import is_denial, record_denial
from watcher.sources.lines import Readable
from watcher.sources.object_readers import (
    NoObjectReader,
    ObjectReaderError,
    ObjectReaders,
    ObjectReadersClosed,
)
from watcher.sources.s3_objects import (
    CLOUDTRAIL_LOG_KEY,
    ObjectFormatError,
    UnrecognisedObjectError,
    object_denials,
    object_path,
)
from watcher.sources.sqs_messages import MessageContents, MessageFormatError, message_contents
from watcher.state import ObjectVersion

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

DEFAULT_KEY_PATTERN = CLOUDTRAIL_LOG_KEY
SQS_BATCH_MAX = 10  # ReceiveMessage, DeleteMessageBatch, ChangeMessageVisibilityBatch
MAX_HANDED_ON_PER_READ = 64
LARGEST_OBJECT_FOR_A_CHILD_BYTES = 16 * 1024 * 1024  # larger: streamed in the worker thread
READ_CHUNK_BYTES = 1024 * 1024
SEEN_OBJECTS_MAX = 100_000
SEEN_OBJECTS_TTL_SECONDS = 3 * 86400.0  # S3's repeated notifications come within hours
SEEN_OBJECTS_EXPIRY_INTERVAL_SECONDS = 3600.0
RELEASES_TTL_SECONDS = 14 * 86400.0  # SQS keeps a message at most 14 days
RECEIVE_RETRY_FIRST_SECONDS = 1.0
RECEIVE_RETRY_MAX_SECONDS = 60.0
DELETE_BATCH_WAIT_SECONDS = 0.2  # one DeleteMessageBatch for several acknowledgements
DELETE_RETRY_FIRST_SECONDS = 1.0
DELETE_RETRY_MAX_SECONDS = 30.0
STOP_GRACE_SECONDS = 5.0  # beyond wait_time, for the threads to end at a stop
STOP_CALL_SECONDS = 5.0  # each call at a stop (release, last deletions): one try, this long
_GONE_CODES = frozenset({"NoSuchKey", "404", "NoSuchBucket"})
_QUEUE_REGION = re.compile(r"^https://sqs[.-]([a-z0-9-]+)\.amazonaws\.com")


class _Stopped(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The source is closing: the object in hand is given up (its message is released)."""


@dataclass(slots=True, eq=False)
class _Lease:
    """One received message, held until it is deleted or released."""

    message_id: str
    receipt: str
    body: str
    receive_count: int
    extend_at: float  # monotonic time of the next visibility extension
    failure: str = ""  # why the last read of its objects failed, if it did
    unanswered: bool = False  # that failure was no answer from S3 (the watcher's network)


@dataclass(slots=True, eq=False)
class _Outcome:
    """A message read in full: its denials, waiting to be handed on and acknowledged."""

    reader: _QueueReader
    lease: _Lease
    denials: list[Denial]
    objects: list[ObjectVersion] = field(default_factory=list)  # remembered once acknowledged
    size_bytes: int = 0


def queue_region(queue_url: str) -> str | None:
    """The region a queue URL names (``https://sqs.eu-west-1.amazonaws.com/...``), if any."""
    if queue_url.startswith("https://queue.amazonaws.com/"):
        return "us-east-1"
    match = _QUEUE_REGION.match(queue_url)
    return None if match is None else match.group(1)


class _ObjectsInFlight:
    """Objects this watcher is reading or has handed on and not yet acknowledged, by the
    message that carries them: a copy of the notification received meanwhile (S3 delivers
    at least once) is not read again; the seen-objects table covers copies after the ack."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._carrier: dict[ObjectVersion, str] = {}  # version -> message id

    def claim(self, version: ObjectVersion, message_id: str) -> bool:
        """True when ``message_id`` is to read the object (no other message has it)."""
        with self._lock:
            return self._carrier.setdefault(version, message_id) == message_id

    def release(self, message_id: str) -> None:
        """The message was acknowledged or will come back: its objects are free again."""
        with self._lock:
            for version in [v for v, m in self._carrier.items() if m == message_id]:
                del self._carrier[version]


class _StoppableBody:
    """An object's body that gives up as soon as the source closes (a large object)."""

    def __init__(self, body: Readable, stopping: threading.Event) -> None:
        self._body = body
        self._stopping = stopping
        self.size_bytes = 0

    def read(self, size: int = -1, /) -> bytes:
        if self._stopping.is_set():
            raise _Stopped
        data: bytes = self._body.read(size)
        self.size_bytes += len(data)
        return data


class _QueueReader:
    """One configured queue: its receiver, workers and keeper threads, and its leases."""

    def __init__(
        self,
        config: S3SqsSource,
        context: SourceContext,
        ready: deque[_Outcome],
        wake: Wake,
        in_flight: _ObjectsInFlight,
    ) -> None:
        self.config = config
        self.in_flight = in_flight
        self._store = context.store
        self._log = context.log
        self._ready = ready
        self._wake = wake
        self._key_pattern = re.compile(config.key_pattern or DEFAULT_KEY_PATTERN)
        self._leases: dict[str, _Lease] = {}  # receipt -> lease
        self._acknowledged: set[str] = set()  # receipts of leases waiting to be deleted
        # One lock; each kind of thread waits on its own condition, so that a message taken
        # wakes one worker, not every thread of the reader.
        self._lock = threading.Lock()
        self._work_ready = threading.Condition(self._lock)  # workers: a message to read
        self._room = threading.Condition(self._lock)  # receiver: fewer messages held
        self._deletions = threading.Condition(self._lock)  # deleter: acknowledged messages
        self._stopping = threading.Event()
        self._work: deque[_Lease] = deque()
        self._to_delete: deque[_Lease] = deque()  # acknowledged, not deleted yet
        self._threads: list[threading.Thread] = []
        self._sqs, self._s3 = self._clients(config)
        self._object_readers: ObjectReaders | None = None
        self.visibility_errors: set[str] = set()  # why the last visibility change failed

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self.config.processes > 0:  # more than `workers` would never be busy
            count = min(self.config.processes, self.config.workers)
            self._object_readers = ObjectReaders(count, self._log)
        name = self.config.queue_url.rsplit("/", 1)[-1]
        targets = [(self._receive_loop, "receiver"), (self._keep_loop, "keeper")]
        targets += [(self._delete_loop, "deleter")]
        targets += [(self._work_loop, f"worker-{n}") for n in range(self.config.workers)]
        for target, role in targets:
            thread = threading.Thread(target=target, name=f"s3_sqs-{name}-{role}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            for condition in (self._work_ready, self._room, self._deletions):
                condition.notify_all()
        if self._object_readers is not None:
            self._object_readers.stop()

    def join(self) -> None:
        """Wait for the threads, at most ``wait_time`` and a grace: one stuck in a call to an
        endpoint that accepts and never answers is left behind (it runs on as a daemon thread
        until the process ends; what it holds is released or deleted below)."""
        deadline = time.monotonic() + self.config.wait_time_seconds + STOP_GRACE_SECONDS
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = sorted(t.name for t in self._threads if t.is_alive())
        if stuck:
            self._log.warning(
                "sqs_stop_not_waited", queue=self.config.queue_url, threads=stuck,
                detail="their calls to the endpoint got no answer in time; the stop goes on",
            )  # fmt: skip
        self._threads.clear()
        if self._object_readers is not None:
            self._object_readers.close()

    def release_all(self) -> None:
        """Give every message still held back to the queue now (visibility 0), and delete the
        acknowledged ones a stuck deleter left (their events are out: given back, another
        watcher would emit them again). Each call tried once, briefly: the endpoint may hang."""
        with self._lock:
            leases = list(self._leases.values())
            due = [lease for lease in leases if lease.receipt in self._acknowledged]
            leases = [lease for lease in leases if lease.receipt not in self._acknowledged]
            self._leases.clear()
            self._acknowledged.clear()
        self._sqs = self._stop_client()
        for chunk in _chunks(due):
            self._delete([lease for _, lease in chunk])  # failures come back: same event_id
        if leases:
            failed = self._change_visibility(leases, 0)
            released = [lease.message_id for lease in leases if lease not in failed]
            try:  # so that this watcher's own stops do not make a message look like poison
                self._store.count_releases(released, time.time())
            except sqlite3.Error as exc:
                self._log.warning("sqs_releases_not_counted", error=str(exc))
            self._log.info(
                "sqs_messages_released", queue=self.config.queue_url,
                released=len(leases) - len(failed),
                detail="not acknowledged by every sink; visible again for any watcher",
            )  # fmt: skip
            if failed:
                self._log.warning(
                    "sqs_release_failed", queue=self.config.queue_url, failed=len(failed),
                    error="; ".join(sorted(self.visibility_errors)),
                    detail=f"visible again for any watcher when their visibility timeout "
                    f"({self._visibility_seconds} s) ends; nothing is lost",
                )  # fmt: skip

    def acknowledge(self, leases: list[_Lease]) -> None:
        """Messages whose events every sink has: the deleter thread deletes them (the daemon's
        thread, in a save, never waits for SQS; deletions batch up while one is sent)."""
        with self._lock:
            self._to_delete.extend(leases)
            self._acknowledged.update(lease.receipt for lease in leases)
            self._deletions.notify()
            self._room.notify()

    def _delete_loop(self) -> None:
        """Delete what was acknowledged, up to 10 a call; at a stop, everything still due. A
        deletion that fails for a reason that may pass (the endpoint, a 5xx) is tried again
        with backoff while the lease is held (the keeper extends it), so a network blip does
        not hand the message to another watcher; at a stop it is tried once."""
        retry_seconds = DELETE_RETRY_FIRST_SECONDS
        reported: str | None = None  # the retryable failure last logged
        while (batch := self._next_deletions()) is not None:
            again, reason = self._delete(batch)
            if self._stopping.is_set():
                again = []  # given up: the messages come back after their visibility timeout
            with self._lock:
                for lease in batch:
                    if lease not in again:
                        self._leases.pop(lease.receipt, None)
                        self._acknowledged.discard(lease.receipt)
                self._to_delete.extendleft(reversed(again))
            if not again:
                if reported is not None and reason is None:
                    self._log.info("sqs_delete_recovered", queue=self.config.queue_url)
                    reported = None
                retry_seconds = DELETE_RETRY_FIRST_SECONDS
                continue
            if reason != reported:
                self._log.warning(
                    "sqs_delete_failed", queue=self.config.queue_url, error=reason,
                    failed=len(again), retry_seconds=retry_seconds,
                    detail="retried with backoff while this watcher holds the messages; "
                    "logged again if the reason changes, sqs_delete_recovered when it works",
                )  # fmt: skip
                reported = reason
            self._stopping.wait(retry_seconds)
            retry_seconds = min(retry_seconds * 2, DELETE_RETRY_MAX_SECONDS)

    def _next_deletions(self) -> list[_Lease] | None:
        """Up to 10 acknowledged leases, once 10 are due or the first has waited
        DELETE_BATCH_WAIT_SECONDS (at once when stopping); None when stopped with none due."""
        with self._lock:
            while not self._to_delete and not self._stopping.is_set():
                self._deletions.wait()
            if not self._to_delete:
                return None
            deadline = time.monotonic() + DELETE_BATCH_WAIT_SECONDS
            while len(self._to_delete) < SQS_BATCH_MAX and not self._stopping.is_set():
                seconds_left = deadline - time.monotonic()
                if seconds_left <= 0:
                    break
                self._deletions.wait(seconds_left)
            count = min(SQS_BATCH_MAX, len(self._to_delete))
            return [self._to_delete.popleft() for _ in range(count)]

    def _delete(self, leases: list[_Lease]) -> tuple[list[_Lease], str | None]:
        """DeleteMessageBatch; the leases worth trying again and why. Deletions SQS refuses
        for good (an expired receipt: SenderFault) are logged here and not tried again."""
        entries = [{"Id": str(n), "ReceiptHandle": lease.receipt} for n, lease in enumerate(leases)]
        try:
            reply = self._sqs.delete_message_batch(
                QueueUrl=self.config.queue_url,
                Entries=entries,  # type: ignore[arg-type]
            )
        except (BotoCoreError, ClientError) as exc:
            return leases, str(exc)
        refused = [f for f in reply.get("Failed", []) if f.get("SenderFault", True)]
        if refused:
            self._log.warning(
                "sqs_delete_failed", queue=self.config.queue_url, failed=len(refused),
                error=f"{refused[0]['Code']}: {refused[0].get('Message', '')}",
                detail="refused by SQS: the message comes back after its visibility timeout; "
                "this watcher skips its objects, another one emits their events again "
                "(same event_id)",
            )  # fmt: skip
        transient = [f for f in reply.get("Failed", []) if not f.get("SenderFault", True)]
        again = [leases[int(f["Id"])] for f in transient]
        reason = f"{transient[0]['Code']}: {transient[0].get('Message', '')}" if again else None
        return again, reason

    @property
    def unacknowledged(self) -> int:
        """Messages held that are not waiting for their deletion."""
        with self._lock:
            return len(self._leases) - len(self._acknowledged)

    # -- receiving ---------------------------------------------------------------------------

    def _receive_loop(self) -> None:
        retry_seconds = RECEIVE_RETRY_FIRST_SECONDS
        reported: str | None = None  # the failure last logged: once per reason, not per retry
        while self._room_to_receive():
            try:
                messages = self._receive(
                    min(SQS_BATCH_MAX, self.config.workers - self.unacknowledged)
                )
            except (BotoCoreError, ClientError) as exc:
                if str(exc) != reported:
                    self._log.warning(
                        "sqs_receive_failed", queue=self.config.queue_url, error=str(exc),
                        retry_seconds=retry_seconds,
                        detail=f"retried with backoff up to {RECEIVE_RETRY_MAX_SECONDS:.0f} s; "
                        "logged again if the reason changes, sqs_receive_recovered when it works",
                    )  # fmt: skip
                    reported = str(exc)
                self._stopping.wait(retry_seconds)
                retry_seconds = min(retry_seconds * 2, RECEIVE_RETRY_MAX_SECONDS)
                continue
            if reported is not None:
                self._log.info("sqs_receive_recovered", queue=self.config.queue_url)
                reported = None
            retry_seconds = RECEIVE_RETRY_FIRST_SECONDS
            for message in messages:
                self._take(message)

    def _room_to_receive(self) -> bool:
        """Wait until half a batch fits under ``workers`` unacknowledged messages (receiving
        one at a time as each is acknowledged would double the requests); False once stopping."""
        batch = min(SQS_BATCH_MAX, self.config.workers)
        most = self.config.workers - max(1, batch // 2)
        with self._lock:
            while (
                len(self._leases) - len(self._acknowledged) > most and not self._stopping.is_set()
            ):
                self._room.wait()
        return not self._stopping.is_set()

    def _receive(self, count: int) -> list[MessageTypeDef]:
        reply = self._sqs.receive_message(
            QueueUrl=self.config.queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=int(self.config.wait_time_seconds),
            VisibilityTimeout=self._visibility_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        return reply.get("Messages", [])

    def _take(self, message: MessageTypeDef) -> None:
        lease = _Lease(
            message_id=message.get("MessageId", ""),
            receipt=message.get("ReceiptHandle", ""),
            body=message.get("Body", ""),
            receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
            extend_at=time.monotonic() + self._visibility_seconds / 2,
        )
        with self._lock:
            self._leases[lease.receipt] = lease  # released by close() if stopping already
            if not self._stopping.is_set():
                self._work.append(lease)
                self._work_ready.notify()

    # -- reading messages and objects --------------------------------------------------------

    def _work_loop(self) -> None:
        while True:
            with self._lock:
                while not self._work and not self._stopping.is_set():
                    self._work_ready.wait()
                if self._stopping.is_set():
                    return
                lease = self._work.popleft()
            try:
                outcome = self._read_message(lease)
            except _Stopped:
                return  # the lease stays held; close() releases it
            except Exception as exc:  # noqa: BLE001 - one bad message never stops a worker
                self._log.error(
                    "source_error", stage="source", path=self.config.queue_url,
                    message_id=lease.message_id, error=f"{type(exc).__name__}: {exc}",
                )  # fmt: skip
                outcome = None
            if outcome is None and lease.unanswered:
                self._not_counted(lease)
            if outcome is None:
                try:
                    outcome = self._given_up(lease)
                except Exception as exc:  # noqa: BLE001 - one bad message never stops a worker
                    self._log.error(
                        "source_error", stage="source", path=self.config.queue_url,
                        message_id=lease.message_id, error=f"{type(exc).__name__}: {exc}",
                    )  # fmt: skip
            if outcome is None:
                self._let_come_back(lease)
            else:
                self._ready.append(outcome)
                self._wake()

    def _not_counted(self, lease: _Lease) -> None:
        """A read that got no answer from S3 (unreachable, timed out: this watcher's network,
        not the message) does not count toward ``max_receive_count``: an outage of S3 alone
        must not turn every message received meanwhile into poison. Counted as a release."""
        try:
            self._store.count_releases([lease.message_id], time.time())
        except sqlite3.Error as exc:
            self._log.warning("sqs_releases_not_counted", error=str(exc))

    def _given_up(self, lease: _Lease) -> _Outcome | None:
        """A message that failed again after ``max_receive_count`` receives is dropped (an
        outcome with nothing in it, so it is deleted); None: let it come back."""
        limit = self.config.max_receive_count
        if limit < 0 or lease.receive_count <= limit:
            return None
        try:
            receives = lease.receive_count - self._store.releases_of(lease.message_id)
        except sqlite3.Error:
            return None  # cannot tell: let it come back rather than drop it
        if receives <= limit:  # the rest were this watcher giving it back at a stop
            return None
        self._drop(
            lease,
            f"failed again after {receives} receives, not counting this watcher's releases "
            f"at a stop nor reads S3 did not answer (max_receive_count {limit})"
            + (f"; the last failure: {lease.failure}" if lease.failure else ""),
            objects=_object_paths(lease.body),
        )
        return _Outcome(self, lease, [])

    def _let_come_back(self, lease: _Lease) -> None:
        """A failure worth retrying: stop extending it; it reappears after its timeout."""
        self.in_flight.release(lease.message_id)
        with self._lock:
            self._leases.pop(lease.receipt, None)
            self._room.notify()

    def _read_message(self, lease: _Lease) -> _Outcome | None:
        """The message's denials; None to let it come back (a transient failure)."""
        outcome = _Outcome(self, lease, [])
        try:
            contents = message_contents(lease.body)
        except MessageFormatError as exc:
            self._drop(lease, str(exc))
            return outcome
        if contents.test_event:
            self._log.info("sqs_test_event_deleted", queue=self.config.queue_url)
            return outcome
        outcome.denials.extend(self._api_call_denials(contents))
        named: set[tuple[str, str]] = set()
        for version in contents.objects:
            if (version.bucket, version.key) in named:
                continue  # named twice in one message: one read gets what is there now
            named.add((version.bucket, version.key))
            if not self._read_object(version, outcome):
                return None
        return outcome

    def _api_call_denials(self, contents: MessageContents) -> Iterator[Denial]:
        observed_at = utc_now()
        for record in contents.api_calls:
            if is_denial(record, self.config.error_codes):
                yield record_denial(
                    record, 0, self.config.queue_url, observed_at, self.config.aws_profile
                )

    def _read_object(self, version: ObjectVersion, outcome: _Outcome) -> bool:
        """Add the object's denials to ``outcome``; False when it should be tried again."""
        path = object_path(version.bucket, version.key)
        if not self._key_pattern.search(version.key):
            self._log.debug("s3_object_ignored", object=path, detail="key_pattern")
            return True
        if self._store.object_seen(version):
            self._log.info("s3_object_skipped", object=path, detail="already read by this watcher")
            return True
        if not self.in_flight.claim(version, outcome.lease.message_id):
            self._log.info(
                "s3_object_skipped", object=path,
                detail="another notification of it is being read by this watcher",
            )  # fmt: skip
            return True
        try:
            reply = self._s3.get_object(Bucket=version.bucket, Key=version.key)
            body = _StoppableBody(reply["Body"], self._stopping)
            try:
                denials = self._denials(body, reply.get("ContentLength", 0), path)
            finally:
                reply["Body"].close()
        except ObjectReadersClosed:
            raise _Stopped from None
        except ObjectReaderError as exc:
            self._retry_later(outcome.lease, path, str(exc))
            return False
        except (ObjectFormatError, UnrecognisedObjectError) as exc:
            self._drop(outcome.lease, str(exc), objects=[path])
            return True
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _GONE_CODES:
                self._drop(outcome.lease, f"the object is gone ({code})", objects=[path])
                return True
            self._retry_later(outcome.lease, path, str(exc))
            return False
        except (BotoCoreError, OSError) as exc:
            outcome.lease.unanswered = True
            self._retry_later(outcome.lease, path, str(exc))
            return False
        outcome.denials.extend(denials)
        outcome.objects.append(version)
        outcome.size_bytes += body.size_bytes
        self._log.info("s3_object_read", object=path, denials=len(denials))
        return True

    def _denials(self, body: _StoppableBody, size: int, path: str) -> list[Denial]:
        """The object's denials, read by a child process; streamed here when there are no
        children or the object is too large to hold in memory."""
        readers = self._object_readers
        codes, profile = self.config.error_codes, self.config.aws_profile
        if readers is None or size > LARGEST_OBJECT_FOR_A_CHILD_BYTES:
            return object_denials(body, path, utc_now(), error_codes=codes, profile=profile)
        data = b"".join(iter(lambda: body.read(READ_CHUNK_BYTES), b""))
        try:
            return readers.denials(data, path, utc_now(), error_codes=codes, profile=profile)
        except NoObjectReader:  # said by the readers; this object is read here
            stream = io.BytesIO(data)
            return object_denials(stream, path, utc_now(), error_codes=codes, profile=profile)

    def _drop(self, lease: _Lease, reason: str, objects: list[str] | None = None) -> None:
        self._log.error(
            "sqs_message_dropped", queue=self.config.queue_url, message_id=lease.message_id,
            objects=objects or [], error=reason,
            detail="deleted; the other messages are unaffected",
        )  # fmt: skip

    def _retry_later(self, lease: _Lease, path: str, error: str) -> None:
        lease.failure = f"{path}: {error}"
        self._log.warning(
            "s3_object_read_failed", object=path, message_id=lease.message_id, error=error,
            receive_count=lease.receive_count,
            detail="the message comes back after its visibility timeout",
        )  # fmt: skip

    # -- keeping leases ----------------------------------------------------------------------

    def _keep_loop(self) -> None:
        while not self._stopping.wait(self._seconds_to_next_extension()):
            now = time.monotonic()
            with self._lock:
                due = [lease for lease in self._leases.values() if lease.extend_at <= now]
            if not due:
                continue
            failed = self._change_visibility(due, self._visibility_seconds)
            for lease in due:
                lease.extend_at = now + self._visibility_seconds / 2
            with self._lock:
                lost = [lease for lease in failed if lease.receipt in self._leases]
            if lost:
                self._log.warning(
                    "sqs_extension_failed", queue=self.config.queue_url, failed=len(lost),
                    error="; ".join(sorted(self.visibility_errors)),
                    detail="the message may be read again by another watcher (same event_id)",
                )  # fmt: skip

    def _seconds_to_next_extension(self) -> float:
        with self._lock:
            times = [lease.extend_at for lease in self._leases.values()]
        half = self._visibility_seconds / 2
        return max(0.0, min(times, default=time.monotonic() + half) - time.monotonic())

    def _change_visibility(self, leases: list[_Lease], seconds: int) -> list[_Lease]:
        """ChangeMessageVisibilityBatch; the leases it failed for (the reasons in
        ``visibility_errors``, for the log)."""
        failed: list[_Lease] = []
        self.visibility_errors = set()
        for chunk in _chunks(leases):
            entries = [
                {"Id": str(n), "ReceiptHandle": lease.receipt, "VisibilityTimeout": seconds}
                for n, lease in chunk
            ]
            try:
                reply = self._sqs.change_message_visibility_batch(
                    QueueUrl=self.config.queue_url,
                    Entries=entries,  # type: ignore[arg-type]
                )
            except (BotoCoreError, ClientError) as exc:
                failed.extend(lease for _, lease in chunk)
                self.visibility_errors.add(str(exc))
                continue
            by_id = dict(chunk)
            for failure in reply.get("Failed", []):
                failed.append(by_id[int(failure["Id"])])
                self.visibility_errors.add(f"{failure.get('Code')}: {failure.get('Message')}")
        return failed

    @property
    def _visibility_seconds(self) -> int:
        return math.ceil(self.config.visibility_timeout_seconds)

    # -- AWS ---------------------------------------------------------------------------------

    def _stop_client(self) -> SQSClient:
        """An SQS client for the calls of a stop: one try each, STOP_CALL_SECONDS at most."""
        quick = BotocoreConfig(
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=STOP_CALL_SECONDS,
            read_timeout=STOP_CALL_SECONDS,
        )
        try:
            return self._session.client("sqs", config=quick)
        except (BotoCoreError, ValueError):
            return self._sqs

    def _clients(self, config: S3SqsSource) -> tuple[SQSClient, S3Client]:
        session = boto3.Session(
            profile_name=config.aws_profile,
            region_name=config.region or queue_region(config.queue_url),
        )
        self._session = session
        botocore_config = BotocoreConfig(
            retries={"mode": "standard"},
            max_pool_connections=config.workers + 2,
            read_timeout=config.wait_time_seconds + 40,
        )
        return (
            session.client("sqs", config=botocore_config),
            session.client("s3", config=botocore_config),
        )


def _object_paths(body: str) -> list[str]:
    try:
        return [object_path(o.bucket, o.key) for o in message_contents(body).objects]
    except MessageFormatError:
        return []


def _chunks(leases: list[_Lease]) -> Iterator[list[tuple[int, _Lease]]]:
    for start in range(0, len(leases), SQS_BATCH_MAX):
        yield list(enumerate(leases[start : start + SQS_BATCH_MAX]))


class S3SqsSources(RemoteSource):
    """Every configured ``s3_sqs`` queue behind the source protocol (sources/base.py)."""

    kind = "s3_sqs"

    def __init__(self, configs: tuple[S3SqsSource, ...], context: SourceContext) -> None:
        self._configs = configs
        self._context = context
        self._ready: deque[_Outcome] = deque()
        self._handed_on: list[_Outcome] = []  # not yet acknowledged by a save
        self._readers: list[_QueueReader] = []
        self._in_flight = _ObjectsInFlight()
        self._more_ready = False
        self._next_expiry = 0.0
        self._remember_failed = False

    def start(self, wake: Wake) -> None:
        self._forget_old_objects()
        for config in self._configs:
            try:
                reader = _QueueReader(config, self._context, self._ready, wake, self._in_flight)
            except (BotoCoreError, ValueError) as exc:
                self._context.log.error(  # noqa: TRY400 - the reason is in `error`
                    "source_error", stage="source", path=config.queue_url,
                    error=f"cannot set up SQS and S3 clients: {exc}",
                    detail="this queue is not read; fix the config or the environment (a queue "
                    "URL that names no region needs `region:` or AWS_REGION), then reload "
                    "(SIGHUP) or restart",
                )  # fmt: skip
                continue
            reader.start()
            self._readers.append(reader)
            self._context.log.info("sqs_queue_opened", queue=config.queue_url)

    def read(self, changed: set[str] | None, out: Output) -> int:
        del changed  # messages wake the loop; no paths matter
        size = 0
        handed = 0
        while self._ready and not out.paused and handed < MAX_HANDED_ON_PER_READ:
            outcome = self._ready.popleft()
            out.denials(outcome.denials)
            self._handed_on.append(outcome)
            size += outcome.size_bytes
            handed += 1
        self._more_ready = bool(self._ready) and handed == MAX_HANDED_ON_PER_READ
        return size

    def checkpoint(self) -> Save | None:
        """Deletes every message handed on and not yet deleted, remembering its objects."""
        held = list(self._handed_on)
        if not held:
            return None

        def save() -> None:
            pending = {id(outcome) for outcome in self._handed_on}
            done = [outcome for outcome in held if id(outcome) in pending]
            if not done:
                return
            self._remember([version for outcome in done for version in outcome.objects])
            for reader in {id(o.reader): o.reader for o in done}.values():
                reader.acknowledge([o.lease for o in done if o.reader is reader])
            for outcome in done:
                self._in_flight.release(outcome.lease.message_id)
            finished = {id(outcome) for outcome in done}
            self._handed_on = [o for o in self._handed_on if id(o) not in finished]
            self._forget_old_objects()

        return save

    def _remember(self, versions: list[ObjectVersion]) -> None:
        """Record the objects read, for skipping S3's repeated notifications. A state disk
        that refuses does not hold back the deletions: the sinks have the events, and a
        message given back at a stop would have them emitted again."""
        try:
            self._context.store.remember_objects(versions, time.time())
        except sqlite3.Error as exc:
            if not self._remember_failed:
                self._context.log.warning(
                    "s3_objects_not_remembered", error=str(exc), objects=len(versions),
                    detail="the state database refused (a full disk?): the messages are "
                    "deleted all the same; a repeated notification of these objects would be "
                    "read again (same event_id); said once until it works again",
                )  # fmt: skip
            self._remember_failed = True
            return
        self._remember_failed = False

    @property
    def more_ready(self) -> bool:
        return self._more_ready

    def progress(self) -> Progress:
        return Progress(followed=len(self._readers))

    def close(self) -> None:
        """Stop every thread, then release what is still held (not acknowledged)."""
        for reader in self._readers:
            reader.stop()
        for reader in self._readers:
            reader.join()
            reader.release_all()
        self._readers.clear()
        self._ready.clear()
        self._handed_on.clear()

    def _forget_old_objects(self, clock: Callable[[], float] = time.monotonic) -> None:
        if clock() < self._next_expiry:
            return
        self._next_expiry = clock() + SEEN_OBJECTS_EXPIRY_INTERVAL_SECONDS
        self._context.store.forget_objects(time.time() - SEEN_OBJECTS_TTL_SECONDS, SEEN_OBJECTS_MAX)
        self._context.store.forget_releases(time.time() - RELEASES_TTL_SECONDS)
