"""The daemon on a Kubernetes node's log layout, built under a temporary directory.

``var/log/containers/<pod>_<ns>_<container>-<id>.log`` are symlinks into
``var/log/pods/<ns>_<pod>_<uid>/<container>/0.log``, written in CRI framing by one writer
process per container; the daemon (`authz-watcher run`, stdout sink) follows
``var/log/containers/*.log``. The test plays kubelet: it rotates (0.log -> 0.log.<time>, the
runtime told to reopen, the previous rotated file gzipped), starts pods and removes them
(symlink and pod directory). Also: a symlink loop under ``**``, and a FIFO matching the glob.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.follow_daemon import AppWriter, StdoutDaemon, Tally, denial_key, reached
from tests.test_daemon import DEADLINE_SECONDS, wait_for

LINES_PER_SECOND = 150.0
ROTATE_EVERY_SECONDS = 1.0
KUBELET_TICK_SECONDS = 0.05
NAMESPACE = "prod"


class Pod:
    """One pod with one container: its log directory, its symlink, its writer process."""

    def __init__(self, node: Path, name: str, count: int) -> None:
        self.name = name
        self.count = count
        uid = uuid.uuid4()
        self.directory = node / "pods" / f"{NAMESPACE}_{name}_{uid}"
        self.log = self.directory / "app" / "0.log"
        self.link = node / "containers" / f"{name}_{NAMESPACE}_app-{uid.hex}.log"
        self.ledger = node.parent.parent / f"ledger-{name}.json"
        self.writer: AppWriter | None = None
        self.rotated: list[Path] = []
        self.written: dict[int, float] = {}

    def start(self) -> None:
        self.log.parent.mkdir(parents=True)
        prefix = ("--prefix", f"{self.name}-")
        self.writer = AppWriter(
            self.log, self.ledger, self.count, LINES_PER_SECOND, *prefix, "--cri"
        )
        self.link.symlink_to(self.log)  # kubelet links it once the container runs

    def rotate(self) -> None:
        """kubelet: rename 0.log, have the runtime reopen it, gzip the previous rotated file."""
        assert self.writer is not None
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S.%f")
        rotated = self.log.with_name(f"0.log.{stamp}")
        self.log.rename(rotated)
        self.writer.reopen()
        if self.rotated:
            previous = self.rotated[-1]
            with previous.open("rb") as plain, gzip.open(f"{previous}.gz", "wb") as packed:
                shutil.copyfileobj(plain, packed)
            previous.unlink()
        self.rotated.append(rotated)

    def running(self) -> bool:
        return self.writer is not None and self.writer.running()

    def remove(self) -> None:
        """The pod went away: its writer done, its symlink and directory removed."""
        assert self.writer is not None
        self.written = self.writer.finish()
        self.link.unlink()
        shutil.rmtree(self.directory)
        self.writer = None


@pytest.fixture
def node(tmp_path) -> Path:
    node = tmp_path / "var" / "log"
    (node / "containers").mkdir(parents=True)
    (node / "pods").mkdir()
    return node


@pytest.fixture
def daemon(tmp_path, node) -> Iterator[StdoutDaemon]:
    running = StdoutDaemon(tmp_path, [str(node / "containers" / "*.log")])
    yield running
    running.kill()


def play_kubelet(node: Path) -> list[Pod]:
    """Three pods: web and api from the start, jobs from 2.5 s; web removed once it is done.
    Every pod's log rotated every second while its writer runs (never one only milliseconds
    old: before its symlink is seen, nothing tells the daemon where it is)."""
    pods = [Pod(node, "web", 750), Pod(node, "api", 1200)]
    late = Pod(node, "jobs", 750)
    for pod in pods:
        pod.start()
    started = time.monotonic()
    next_rotation = started + ROTATE_EVERY_SECONDS
    while any(pod.running() for pod in pods) or late not in pods:
        time.sleep(KUBELET_TICK_SECONDS)  # kubelet's pace, not a synchronisation
        now = time.monotonic()
        if late not in pods and now - started >= 2.5:  # between two rotations
            late.start()
            pods.append(late)
        if now >= next_rotation:
            next_rotation += ROTATE_EVERY_SECONDS
            for pod in pods:
                if pod.running():
                    pod.rotate()
        web = pods[0]
        if web.writer is not None and not web.running():
            web.remove()
    for pod in pods:
        if pod.writer is not None:
            pod.written = pod.writer.finish()
    return pods


def latencies_ms(daemon: StdoutDaemon, pods: list[Pod]) -> list[float]:
    """Append (the writer's clock after its write) to the event's line on stdout."""
    written = {(f"{pod.name}-", n): at for pod in pods for n, at in pod.written.items()}
    return sorted(
        (arrived - written[denial_key(event)]) * 1000 for arrived, event in daemon.arrivals
    )


class TestKubernetesNode:
    def test_every_denial_once_through_rotations_and_pods_coming_and_going(self, daemon, node):
        """kubelet rotation, a pod appearing, a pod removed: every denial exactly once. The
        append-to-stdout latency is printed (pytest -s), not asserted: speed is measured by
        benchmarks/tail_latency.py (its symlink case is this layout's)."""
        daemon.start()
        pods = play_kubelet(node)
        expected = {(f"{pod.name}-", n) for pod in pods for n in range(pod.count)}
        keys = lambda: {denial_key(e) for e in daemon.events()}  # noqa: E731
        caught_up = reached(lambda: expected <= keys(), DEADLINE_SECONDS)
        assert 0 == daemon.stop()
        tally = Tally.of(daemon.events(), expected)
        latencies = latencies_ms(daemon, pods)
        p99 = latencies[int(len(latencies) * 0.99)]
        rotations = sum(len(pod.rotated) for pod in pods)
        print(  # noqa: T201 - the measured figures, for the report (pytest -s)
            f"kubernetes: {rotations} rotations, {tally}; latency p50"
            f" {statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms"
        )
        missing = sorted(expected - keys())
        print(f"kubernetes: first missing {missing[:20]}")  # noqa: T201
        with (node.parent.parent / "events.jsonl").open("w") as kept:  # for a post-mortem
            kept.writelines(json.dumps(event) + "\n" for event in daemon.events())
        assert caught_up or tally.lost
        assert Tally(len(expected), 0, 0, 0) == tally
        assert {str(node / "containers")} == {
            os.path.dirname(e["source_path"]) for e in daemon.events()
        }, "events name the path the daemon follows, the symlink"
        assert not pods[0].directory.exists(), "the web pod went away"
        assert any(p.name.endswith(".gz") for p in pods[1].log.parent.iterdir())


def cri(message: str) -> str:
    return f"{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')} stdout F {message}\n"


DENIAL = "User: arn:aws:iam::111122223333:user/{who} is not authorized to perform: s3:GetObject"


class TestOddFilesUnderTheGlob:
    def test_symlink_loop_under_double_star_is_followed_once(self, tmp_path):
        """``x/**/*.log`` over a tree with two symlink loops: the daemon starts, and each
        denial of the one real file is emitted once."""
        top = tmp_path / "x"
        (top / "a").mkdir(parents=True)
        (top / "b").mkdir()
        (top / "a" / "up").symlink_to(top)  # x/a/up -> x
        (top / "b" / "over").symlink_to(top / "a")  # x/b/over -> x/a
        log = top / "a" / "app.log"
        log.write_text(DENIAL.format(who="before") + "\n")
        daemon = StdoutDaemon(tmp_path, [str(top / "**" / "*.log")])
        try:
            daemon.start()
            with log.open("a") as handle:
                handle.write(DENIAL.format(who="after") + "\n")
            wait_for(lambda: len(daemon.events()) >= 2, "both denials")
            assert 0 == daemon.stop()
        finally:
            daemon.kill()
        principals = sorted(str(e["principal_arn"]).rsplit("/", 1)[1] for e in daemon.events())
        assert ["after", "before"] == principals

    def test_fifo_matching_the_glob_is_reported_and_skipped(self, tmp_path):
        """A FIFO named like a log: reported once, never opened; the regular file beside it
        is followed, and SIGTERM stops the daemon."""
        logs = tmp_path / "logs"
        logs.mkdir()
        fifo = logs / "pipe.log"
        os.mkfifo(fifo)
        daemon = StdoutDaemon(tmp_path, [str(logs / "*.log")])
        try:
            daemon.start()
            with (logs / "app.log").open("a") as handle:
                handle.write(cri(DENIAL.format(who="regular")))
            wait_for(lambda: len(daemon.events()) >= 1, "the regular file's denial")
            assert 0 == daemon.stop()
        finally:
            daemon.kill()
        skipped = [e for e in daemon.log_events() if e["event"] == "source_skipped"]
        assert [str(fifo)] == [e["path"] for e in skipped]
        assert ["regular"] == [str(e["principal_arn"]).rsplit("/", 1)[1] for e in daemon.events()]
