"""daemon: ``authz-watcher run`` — the pipeline kept running over followed files.

    start: config -> state -> sinks -> decoding -> sources -> observer
    loop:  signals (TERM/INT: stop, HUP: reload) -> changed paths -> read sources -> commit
    stop:  observer -> drain decodes -> flush sinks -> commit -> close (reverse of start)

The daemon knows sources only through their protocol (``sources/base.py``); the daemon itself
is the ``Output`` they hand messages and denials to. Signal handlers only record the signal
and wake the loop. A source's checkpoint (a file's offset, a message's deletion) is saved only
after every event read before it has been written and flushed by every sink (at-least-once);
SIGTERM drains and commits, so a stop/start emits nothing twice. A sink that cannot take
events (a full disk) pauses reading and holds the commits back (``CommitGate``); at SIGTERM it
gets at most ``SHUTDOWN_SINK_TIMEOUT_SECONDS``, then what every sink has is committed.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from queue import Empty, SimpleQueue
from types import FrameType

from watcher.alerts import AlertEngine
from watcher.backpressure import CommitGate
from watcher.config import Config, load_config
from watcher.decode import DecodeCache, StsDecoder
from watcher.errors import ConfigError
from watcher.events import utc_now
from watcher.extract import might_contain_denial, might_contain_denial_bytes
from watcher.log import Logger
from watcher.metrics import Metrics
from watcher.model import Event, Origin
from watcher.pipeline import Denial, DenialBuilder, OrderedDecodingEmitter
from watcher.sinks import Sink, Sinks
from watcher.sinks.file import FileSink
from watcher.sinks.remote import check_remote_sinks, remote_sink
from watcher.sinks.stdout import StdoutSink
from watcher.sources.base import Save, Source, SourceContext
from watcher.sources.registry import Sources, check_available
from watcher.sources.watch import ChangedPaths, DirectoryWatcher, Wakeup
from watcher.state import StateDirectoryLock, StateStore
from watcher.systemd import Notifier

DEFAULT_POLL_SECONDS = 5.0
CACHE_EXPIRY_INTERVAL_SECONDS = 3600.0
STATUS_INTERVAL_SECONDS = 5.0
OUTBOX_CHECK_SECONDS = 1.0  # while an outbox is full, how often it is counted again
SHUTDOWN_SINK_TIMEOUT_SECONDS = 10.0  # how long SIGTERM waits for a failing sink
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(slots=True)
class Counters:
    """What STATUS= and the logs report."""

    lines_matched: int = 0  # messages handed on by the sources
    denials: int = 0
    decoded: int = 0
    alerts: int = 0
    commits: int = 0  # checkpoints saved
    sink_errors: int = 0


class Daemon:
    """Runs until SIGTERM/SIGINT; ``run`` returns the exit status."""

    def __init__(self, config_path: str, log: Logger) -> None:
        self._config_path = config_path
        self._log = log
        self._signals: SimpleQueue[int] = SimpleQueue()
        self._signalled = Wakeup()  # wakes the waits of a pause; file changes do not
        self._changes = ChangedPaths()
        self._missing_directories: set[str] = set()
        self.counters = Counters()
        self.metrics = Metrics()
        self._notifier = Notifier(log)
        self._next_status = 0.0
        self._outbox_full: dict[str, str] = {}  # sink name -> why reading waits for it
        self._read_once = False  # a source was read since the start
        self._next_expiry = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> int:
        self._install_signal_handlers()  # a SIGTERM while starting stops it cleanly once up
        config = load_config(self._config_path)
        check_available(config)
        check_remote_sinks(config)
        _raise_open_file_limit()
        lock = StateDirectoryLock(config.state_dir)  # first: a second daemon stops here
        try:
            store = StateStore(config.state_dir, self._log)
            try:
                return self._run_with(config, store)
            finally:
                store.close()
                self._changes.close()
                self._signalled.close()
        finally:
            lock.release()

    def _run_with(self, config: Config, store: StateStore) -> int:
        self._store = store
        self._config = config
        self._sinks = _build_sinks(config, store, self._log, self._count_sink_error)
        self._report_stranded_outbox()
        self._gate = CommitGate(self._flush_sinks, self._log, on_failure=self._count_sink_error)
        self._alerts = AlertEngine(config.alerts, store=store)
        self._emitter = self._build_emitter(config)
        self._sources = Sources(SourceContext(store, self._log), self._changes.wake)
        self._sources.configure(config)
        self._watcher = self._build_watcher(config)
        self._watcher.start()
        stop_metrics = self.metrics.serve(config.metrics.listen) if config.metrics.listen else None
        self._watch_directories()  # the loop's first turn finds and reads every file
        self._log.info("daemon_started", config=self._config_path, state=str(store.path))
        self._notifier.ready(self._status())
        try:
            self._loop()
        finally:
            self._notifier.stopping()
            if stop_metrics is not None:
                stop_metrics()
            self._watcher.stop()
            self._emitter.close()
            self._write_alerts(self._alerts.flush_summaries())
            self._save_alert_windows()
            self._close_sinks()  # the gate saves the last checkpoints once the sinks have all
            self._sources.close()
            self._log.info("daemon_stopped", **asdict(self.counters))
        return 0

    def _install_signal_handlers(self) -> None:
        for signum in (*_STOP_SIGNALS, signal.SIGHUP):
            signal.signal(signum, self._record_signal)

    def _record_signal(self, signum: int, frame: FrameType | None) -> None:
        del frame
        self._signals.put_nowait(signum)
        self._signalled.set()
        self._changes.wake()

    # -- the loop ----------------------------------------------------------------------------

    def _loop(self) -> None:
        next_reconcile = 0.0
        self._next_expiry = time.monotonic() + CACHE_EXPIRY_INTERVAL_SECONDS
        while True:
            if self._handle_signals():
                return
            now = time.monotonic()
            self._housekeeping(now)
            if self._paused_for_sinks() or self._paused_for_outbox():
                continue
            changed = self._changes.take()
            look_at_all = now >= next_reconcile  # every file, every pattern expanded again
            if look_at_all:
                next_reconcile = now + self._poll_seconds()
            self._read_sources(None if look_at_all else changed)
            if any(source.more_ready for source in self._sources):
                continue
            waits = [next_reconcile - time.monotonic(), 1.0]
            waits += [s for s in map(Source.seconds_to_next_read, self._sources) if s is not None]
            self._changes.wait(max(0.0, min(waits)))

    def _paused_for_sinks(self) -> bool:
        """While a sink fails, read nothing: retry it when due, else wait (signals wake us)."""
        if not self._gate.blocked:
            return False
        self._gate.retry()
        if not self._gate.blocked:
            return False
        self._wait_for_signal(min(self._gate.seconds_until_retry(), 1.0))
        return True

    def _paused_for_outbox(self) -> bool:
        """While a remote sink's outbox is full, read nothing: what was read is durable in
        it, but a receiver's long outage must not fill the disk. Checked about once a second."""
        full = self._sinks.full()
        for name in sorted(full.keys() - self._outbox_full.keys()):
            self._log.warning(
                "sink_outbox_full", sink=name, reason=full[name],
                detail="reading waits until the receiver takes events; nothing is lost",
            )  # fmt: skip
        for name in sorted(self._outbox_full.keys() - full.keys()):
            self._log.info("sink_outbox_drained", sink=name, detail="reading again")
        self._outbox_full = full
        if full:
            self._wait_for_signal(OUTBOX_CHECK_SECONDS)
        return bool(full)

    def _wait_for_signal(self, timeout: float) -> None:
        """Sleep up to ``timeout``, or until a signal. Not ``_changes.wait``: file changes keep
        it awake while reading is paused (they wait in ``_changes`` until it resumes)."""
        self._signalled.wait(timeout)
        self._signalled.clear()

    def _housekeeping(self, now: float) -> None:
        """Watchdog ping, STATUS=, storm summaries that came due, the hourly decode cleanup."""
        self._notifier.ping_if_due(now)  # from this loop only: a wedged loop stops pinging
        if now >= self._next_status:
            self._notifier.status(self._status())
            self._next_status = now + STATUS_INTERVAL_SECONDS
        summaries = self._alerts.due_summaries(time.time())
        if summaries:  # a storm's minute ended, maybe while nothing else was read
            self._write_alerts(summaries)
            self._sinks.flush()
        if now >= self._next_expiry:  # expired decodes are never served; keep the file small
            removed = self._store.expire_decodes(time.time())
            self._log.info("decode_cache_expired", removed=removed)
            self._next_expiry = now + CACHE_EXPIRY_INTERVAL_SECONDS

    def _watch_directories(self) -> None:
        wanted = {directory for source in self._sources for directory in source.directories()}
        missing = set(self._watcher.watch(wanted))
        for directory in sorted(missing - self._missing_directories):
            self._log.info(
                "source_directory_missing",
                path=directory,
                detail="checked again every poll interval; files there are read once it exists",
            )
        self._missing_directories = missing

    def _poll_seconds(self) -> float:
        """How often local sources (those that watch directories) are looked at in full;
        remote kinds keep their own ``poll_interval`` on their own threads."""
        intervals = [s.poll_interval_seconds for s in self._config.local_sources]
        return min(intervals, default=DEFAULT_POLL_SECONDS)

    def _flush_sinks(self) -> dict[str, str]:
        """Emit every pending decode, flush every sink; the failing sinks' reasons by name."""
        self._emitter.flush()
        return self._sinks.flush()

    def _save_alert_windows(self) -> None:
        """At a stop; a state database that refuses them (a full disk) costs only that."""
        try:
            self._alerts.save_windows()
        except sqlite3.Error as exc:
            self._log.warning(
                "alert_windows_not_saved", error=str(exc),
                detail="after the restart, a group in progress counts from zero and a cooldown "
                "in force is forgotten",
            )  # fmt: skip

    def _close_sinks(self) -> None:
        """Give a failing sink at most SHUTDOWN_SINK_TIMEOUT_SECONDS, commit, then close."""
        self._signalled.clear()  # the stop signal itself; only a later one cuts a wait short
        deadline = time.monotonic() + SHUTDOWN_SINK_TIMEOUT_SECONDS
        self._gate.drain(deadline, self._wait_for_signal)
        if self._gate.unsaved:
            failing = self._gate.failing
            self._log.warning(
                "checkpoints_not_saved", sinks=sorted(failing),
                error="; ".join(f"{name}: {reason}" for name, reason in sorted(failing.items())),
                detail="held back until every sink had the events, or refused by the state "
                "database (a full disk?): what was read since the last checkpoint saved is "
                "read again at the next start (same event_id)",
            )  # fmt: skip
        for name, reason in sorted(self._sinks.close().items()):
            self._log.warning(
                "sink_not_drained", sink=name, error=reason,
                timeout_seconds=SHUTDOWN_SINK_TIMEOUT_SECONDS,
                detail="its events were not committed; they are read again at the next start",
            )  # fmt: skip

    def _status(self) -> str:
        """One line for `systemctl status`; also refreshes the gauges."""
        progress = [source.progress() for source in self._sources]
        followed = sum(p.followed for p in progress)
        behind = sum(p.bytes_behind for p in progress)
        self.metrics.files_watched.set(followed)
        self.metrics.bytes_behind.set(behind)
        c = self.counters
        failing = ", ".join(sorted(self._gate.failing))
        full = ", ".join(sorted(self._outbox_full))
        paused = f", paused: {failing} failing" if failing else ""
        if full and not failing:  # before the first read, nothing is followed yet: say so
            paused += f", paused{'' if self._read_once else ' before the first read'}: {full}"
            paused += " outbox full"
        return (
            f"{c.denials} denials ({c.decoded} decoded), {c.alerts} alerts, "
            f"{followed} files, {behind} bytes behind{paused}"
            + (f", {c.sink_errors} sink errors" if c.sink_errors else "")
        )

    def _reopen_sinks(self) -> None:
        try:
            self._sinks.reopen()
        except ConfigError as exc:  # e.g. a symbolic link planted where the event file was
            self._log.error(
                "sink_reopen_failed", error=str(exc), detail="still writing to the open file"
            )

    def _count_sink_error(self, sink: str) -> None:
        self.metrics.sink_errors.labels(sink).inc()
        self.counters.sink_errors += 1

    def _emit_event(self, event: Event) -> None:
        self.metrics.count_event(event)
        if event.get("decode_status") in ("decoded", "cached"):
            self.counters.decoded += 1
        self._sinks.write(event)
        self._write_alerts(self._alerts.observe(event, time.time()))

    def _write_alerts(self, alerts: list[Event]) -> None:
        for alert in alerts:
            self.counters.alerts += 1
            self.metrics.alerts.labels(alert["rule"]).inc()
            self._sinks.write(alert)

    # -- the sources' Output (sources/base.py) -----------------------------------------------

    @property
    def paused(self) -> bool:
        return self._gate.blocked

    def text(
        self,
        text: bytes | str,
        origin: Origin,
        *,
        profile: str | None = None,
        timestamp: str | None = None,
    ) -> int:
        self.counters.lines_matched += 1
        self.metrics.lines_matched.inc()
        if isinstance(text, bytes):
            if not might_contain_denial_bytes(text):
                return 0
            text = text.decode("utf-8", "replace")
        elif not might_contain_denial(text):
            return 0
        count = self._emitter.add(text, origin, utc_now(), profile=profile, timestamp=timestamp)
        self.counters.denials += count
        return count

    def denials(self, denials: Iterable[Denial]) -> int:
        count = self._emitter.add_denials(denials)
        self.counters.denials += count
        return count

    def _read_sources(self, changed: set[str] | None) -> None:
        """Read every source; each one's checkpoint is saved once every sink has the events
        (now, or when a failing sink has recovered; reading waits for that)."""
        for source in self._sources:
            if self._gate.blocked:
                break
            self.metrics.bytes_read.inc(source.read(changed, self))
            self._read_once = True
            save = source.checkpoint()
            if save is not None:
                self._gate.commit((source.kind, id(source)), self._counted(save))
        self._watch_directories()

    def _counted(self, save: Save) -> Save:
        def counted() -> None:
            save()
            self.counters.commits += 1

        return counted

    # -- signals -----------------------------------------------------------------------------

    def _handle_signals(self) -> bool:
        """Act on recorded signals; True when the daemon should stop."""
        while True:
            try:
                signum = self._signals.get_nowait()
            except Empty:
                return False
            if signum in _STOP_SIGNALS:
                self._log.info("daemon_stopping", signal=signal.Signals(signum).name)
                return True  # STOPPING=1 goes out as the shutdown starts, in run()
            if signum == signal.SIGHUP:
                self._notifier.reloading()
                self._reload()
                self._notifier.ready(self._status())

    def _reload(self) -> None:
        try:
            config = load_config(self._config_path)
            check_available(config)
            check_remote_sinks(config)  # before any sink of the new config starts a worker
            sinks = (
                _build_sinks(config, self._store, self._log, self._count_sink_error)
                if config.sinks != self._config.sinks
                else None
            )
        except ConfigError as exc:
            self._log.error("config_reload_failed", error=str(exc), detail="old config kept")
            return
        self._emitter.close()
        if sinks is not None:
            self._close_sinks()
            self._sinks = sinks
            self._report_stranded_outbox()
            # a removed sink's full outbox no longer pauses reading, and was not drained
            self._outbox_full = {
                name: why for name, why in self._outbox_full.items() if name in sinks.names
            }
        else:
            self._reopen_sinks()
        self._alerts.update_rules(config.alerts)
        self._emitter = self._build_emitter(config)
        self._config = config
        self._gate.flush()  # a source rebuilt below leaves no save behind in the gate
        self._sources.configure(config)
        self._read_sources(None)
        self._log.info("config_reloaded", config=self._config_path)

    def _report_stranded_outbox(self) -> None:
        """Events queued for a webhook or SNS topic no longer configured (removed, or its URL
        changed) stay in the outbox, kept for a sink configured again with the same URL or
        topic: say so, at start and at each reload that changes the sinks."""
        try:
            waiting = self._store.outbox_counts()
        except sqlite3.Error as exc:
            self._log.warning("sink_outbox_unreadable", error=str(exc))
            return
        for name in sorted(waiting.keys() - self._sinks.names):
            self._log.warning(
                "sink_outbox_stranded", sink=name, events=waiting[name],
                detail="no configured sink delivers these events; they stay in the state "
                "database and go out if a sink with the same url or topic_arn is configured "
                "again",
            )  # fmt: skip

    # -- construction ------------------------------------------------------------------------

    def _build_emitter(self, config: Config) -> OrderedDecodingEmitter:
        if config.decode.enabled:
            cache = DecodeCache(config.decode.cache_ttl_seconds, self._store)
            decoder = StsDecoder(
                config.decode, self._log, cache, on_call=self.metrics.observe_decode_call
            )
            builder = DenialBuilder(decoder=decoder)
        else:
            builder = DenialBuilder(
                disabled_reason="decoding disabled in the configuration (decode.enabled: false)"
            )
        return OrderedDecodingEmitter(
            builder, self._emit_event, max_concurrency=config.decode.max_concurrency
        )

    def _build_watcher(self, config: Config) -> DirectoryWatcher:
        sources = config.local_sources
        return DirectoryWatcher(
            self._changes,
            polling=any(s.use_polling for s in sources),
            poll_seconds=self._poll_seconds() if sources else 1.0,
        )


def _raise_open_file_limit() -> None:
    """One descriptor per followed file: lift the soft limit (often 1024) to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _build_sinks(
    config: Config, store: StateStore, log: Logger, on_error: Callable[[str], None]
) -> Sinks:
    """The configured sinks; remote ones deliver from the outbox in the state database."""
    sinks: list[Sink] = []
    for sink in config.sinks:
        if sink.type == "stdout":
            sinks.append(StdoutSink(events=sink.events))
        elif sink.type == "file" and sink.path is not None:
            sinks.append(
                FileSink(sink.path, events=sink.events, follow_symlinks=sink.follow_symlinks)
            )
        else:
            remote = remote_sink(sink, store, log, on_error=on_error, bounded=True)
            if remote is not None:
                sinks.append(remote)
    return Sinks(sinks)
