"""The installed service under a real systemd (PID 1 in systemd-nspawn): what the unit promises.

One container is booted for the module (tests/nspawn.py: an overlay of /, so nothing on the host
changes); the tests run in order on it, as an operator would: `make install`, start, look at the
process, feed it a log, reload, break the config, freeze it, have a unit log a denial to the
journal, stop it. The watchdog is shortened with a drop-in (3 s instead of 30 s) so the module
runs in well under a minute.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.nspawn import Container, remove_containers_of_dead_runs, why_nspawn_cannot_run
from tests.test_daemon import wait_for
from tests.wheelhouse import offline_pip_environment, wheelhouse

_SKIP_REASON = why_nspawn_cannot_run()
pytestmark = pytest.mark.skipif(_SKIP_REASON is not None, reason=str(_SKIP_REASON))

UNIT = "authz-watcher.service"
SOURCE = "/usr/src/authz-watcher"
WHEELHOUSE = "/usr/src/wheelhouse"
BUILD = "/root/authz-watcher-build"
CONFIG = "/etc/authz-watcher/authz-watcher.yaml"
APP_LOG = "/var/log/app/app.log"
EVENT_FILE = "/var/log/authz-watcher/events.jsonl"
WATCHDOG_SECONDS = 3
ADM_GID = "4"  # Debian's adm group
DENIER = "denier.service"  # a unit that logs a denial to the journal (its stdout)


def python_in_container() -> str:
    """This Python as the container sees it: the repository's venv through its bind at SOURCE
    (the container mounts its own /tmp, where a CI clone lives), else the same path."""
    try:
        return f"{SOURCE}/{Path(sys.executable).relative_to(REPO)}"
    except ValueError:
        return sys.executable


MOTO = "moto.service"  # moto's server in the container, for the s3_sqs source
MOTO_URL = "http://127.0.0.1:5000"
AWS_ENVIRONMENT = (
    f"AWS_ENDPOINT_URL={MOTO_URL}\nAWS_DEFAULT_REGION=us-east-1\n"
    "AWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY=testing\n"
)
# Run in the container by the test's own Python, with the repository's tests importable.
QUEUE_SCRIPT = f"""
import sys
from types import SimpleNamespace
import boto3
sys.path.insert(0, {SOURCE!r})
from tests.trail_queue import TrailQueue, trail_key, trail_object, trail_record
client = lambda service: boto3.client(
    service, endpoint_url={MOTO_URL!r}, region_name="us-east-1",
    aws_access_key_id="testing", aws_secret_access_key="testing",
)
putting = sys.argv[1:] == ["put"]  # the queue made before: not purged again
queue = TrailQueue(SimpleNamespace(client=client), keep_test_event=putting)
if putting:
    queue.put(trail_key("in-the-unit"), trail_object([trail_record(7), trail_record(8)]))
print(queue.url)
"""
# What `make install` copies from: the files pyproject.toml, the Makefile and the unit need.
PROJECT_FILES = ("Makefile", "pyproject.toml", "README.md", "watcher", "systemd", "config")


def denial(user: str) -> str:
    return (
        f"2026-11-29T04:00:00Z ERROR User: arn:aws:iam::111122223333:user/{user} "
        "is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::bucket/key\n"
    )


def config(extra_sinks: str = "", extra_sources: str = "") -> str:
    return (
        "state_dir: /var/lib/authz-watcher\n"
        "sources:\n"
        f"  - type: file\n    paths: [{APP_LOG}]\n    start_at: beginning\n"
        + extra_sources
        + "decode:\n  enabled: false\n"
        "sinks:\n  - type: stdout\n" + extra_sinks
    )


TEST_DROP_IN = f"""[Service]
# The test's only change to the unit: a short watchdog and restart delay (seconds, not minutes).
WatchdogSec={WATCHDOG_SECONDS}s
RestartSec=200ms
"""


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    wheels = wheelhouse()
    booted = Container(tmp_path_factory.mktemp("nspawn") / "boot.log")
    try:
        booted.boot([(REPO, SOURCE), (wheels, WHEELHOUSE)])
        yield booted
    finally:
        booted.close()


def show(container: Container, *properties: str) -> dict[str, str]:
    output = container.run("systemctl", "show", UNIT, *(f"--property={p}" for p in properties))
    return dict(line.split("=", 1) for line in output.stdout.splitlines())


def main_pid(container: Container) -> int:
    return int(show(container, "MainPID")["MainPID"])


def journal(container: Container) -> str:
    return container.run("journalctl", "--unit", UNIT, "--output=cat", "--no-pager").stdout


def journal_events(container: Container) -> list[dict[str, Any]]:
    """The authz_denial events the stdout sink wrote to the journal."""
    lines = journal(container).splitlines()
    return [json.loads(line) for line in lines if line.startswith('{"') and "authz_denial" in line]


def journald_events(container: Container) -> list[dict[str, Any]]:
    return [e for e in journal_events(container) if e["source_kind"] == "journald"]


def principals(events: list[dict[str, Any]]) -> list[str]:
    return sorted(str(e["principal_arn"]).rsplit("/", 1)[-1] for e in events)


def process_status(container: Container) -> dict[str, str]:
    status = container.run("cat", f"/proc/{main_pid(container)}/status").stdout
    return {k: v.strip() for k, v in (line.split(":", 1) for line in status.splitlines())}


class TestInstalledService:
    def test_make_install_inside_the_container(self, container):
        """`make install` (offline, from the wheelhouse) puts the venv, unit and config in place."""
        container.run("mkdir", "-p", BUILD)
        container.run("cp", "-r", *(f"{SOURCE}/{name}" for name in PROJECT_FILES), BUILD)
        result = container.run(
            "make",
            "-C",
            BUILD,
            "install",
            env=offline_pip_environment(Path(WHEELHOUSE)),
            check=False,
            timeout=300,
        )
        assert 0 == result.returncode, result.stdout + result.stderr
        cfg = container.run("cat", "/opt/authz-watcher/venv/pyvenv.cfg").stdout
        assert "home = /usr/bin" in cfg.splitlines(), "built from the system Python"

    def test_start_returns_after_ready(self, container):
        """`systemctl start` returns once the daemon said READY=1: the unit is already active."""
        container.write(APP_LOG, denial("ana"), mode="0640", owner="root:adm")
        container.write(CONFIG, config())
        container.write(f"/etc/systemd/system/{UNIT}.d/test.conf", TEST_DROP_IN)
        # Referenced by a loaded target, the unit stays loaded once stopped, so systemd still
        # knows how it ended (an unreferenced inactive unit is unloaded, its status with it).
        container.run("systemctl", "add-wants", "basic.target", UNIT)
        container.run("systemctl", "daemon-reload")
        container.run("systemctl", "start", UNIT, timeout=60)
        state = show(container, "ActiveState", "SubState", "StatusText")
        assert ("active", "running") == (state["ActiveState"], state["SubState"]), journal(
            container
        )
        assert state["StatusText"].endswith("bytes behind"), "the STATUS= sent with READY=1"

    def test_runs_as_a_dynamic_user(self, container):
        """The process runs as the transient user systemd allocated (DynamicUser=yes)."""
        uid = process_status(container)["Uid"].split()
        name = container.run("getent", "passwd", uid[0]).stdout.split(":")[0]
        assert "authz-watcher" == name
        assert 61184 <= int(uid[0]) <= 65519, "the dynamic range"
        assert len(set(uid)) == 1, "real, effective, saved and filesystem uid are one"

    def test_is_in_group_adm(self, container):
        """SupplementaryGroups=adm: the group that reads /var/log."""
        assert ADM_GID in process_status(container)["Groups"].split()

    def test_has_no_capabilities(self, container):
        """CapabilityBoundingSet= empty: no capability in any set (also inheritable, ambient)."""
        status = process_status(container)
        sets = {k: status[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
        assert dict.fromkeys(sets, "0000000000000000") == sets

    def test_cannot_gain_privileges(self, container):
        """NoNewPrivileges=yes."""
        assert "1" == process_status(container)["NoNewPrivs"]

    def test_runs_under_a_seccomp_filter(self, container):
        """SystemCallFilter=: seccomp mode 2 (filter)."""
        assert "2" == process_status(container)["Seccomp"]

    def test_a_root_adm_0640_log_is_read_and_its_denial_is_in_the_journal(self, container):
        """Group adm reads a 0640 root:adm log in /var/log; the stdout event is in the journal."""
        assert "640 root adm" == container.run("stat", "-c", "%a %U %G", APP_LOG).stdout.strip()
        wait_for(lambda: journal_events(container), "ana's denial in the journal")
        event = journal_events(container)[0]
        assert ("ana", APP_LOG) == (principals([event])[0], event["source_path"])

    def test_reload_applies_a_new_config_in_the_same_process(self, container):
        """`systemctl reload`: the new config's file sink is written to; MainPID is unchanged."""
        pid = main_pid(container)
        sink = f"  - type: file\n    path: {EVENT_FILE}\n"
        container.write(CONFIG, config(extra_sinks=sink))
        container.run("systemctl", "reload", UNIT)
        container.append(APP_LOG, denial("bob"))
        wait_for(
            lambda: "user/bob" in container.run("cat", EVENT_FILE, check=False).stdout,
            "bob's denial in the file sink the reload added",
        )
        assert pid == main_pid(container)

    def test_a_broken_config_fails_the_reload_and_the_service_keeps_running(self, container):
        """check-config in ExecReload= rejects it: reload fails, the same process goes on."""
        pid = main_pid(container)
        good = container.run("cat", CONFIG).stdout
        container.write(CONFIG, "sources: [\n")
        try:
            result = container.run("systemctl", "reload", UNIT, check=False)
            state = show(container, "ActiveState", "SubState")
        finally:
            container.write(CONFIG, good)  # the next restart runs check-config again
        assert 0 != result.returncode
        assert ("active", "running") == (state["ActiveState"], state["SubState"])
        assert pid == main_pid(container)

    def test_a_stopped_process_is_restarted_by_the_watchdog_without_repeating_an_event(
        self, container
    ):
        """SIGSTOP: no WATCHDOG=1; systemd kills and restarts it; nothing read is sent again."""
        pid = main_pid(container)
        container.run("kill", "-STOP", str(pid))

        def restarted() -> bool:
            state = show(container, "MainPID", "ActiveState", "SubState")
            return state["MainPID"] not in ("0", str(pid)) and state["SubState"] == "running"

        wait_for(restarted, "the watchdog to restart the service", deadline=60)
        assert "1" == show(container, "NRestarts")["NRestarts"]
        assert (
            "Watchdog timeout" in container.run("journalctl", "--unit", UNIT, "--no-pager").stdout
        )
        container.append(APP_LOG, denial("carol"))
        wait_for(lambda: "carol" in principals(journal_events(container)), "carol's denial")
        events = journal_events(container)
        assert ["ana", "bob", "carol"] == principals(events)
        assert [1] * 3 == list(Counter(e["event_id"] for e in events).values())

    def test_is_in_group_systemd_journal(self, container):
        """SupplementaryGroups=systemd-journal: the group that reads the system journal."""
        gid = container.run("getent", "group", "systemd-journal").stdout.split(":")[2]
        assert gid in process_status(container)["Groups"].split()

    def test_a_unit_logging_a_denial_to_the_journal_gives_its_event(self, container):
        """With a journald source on every unit, a denial another unit prints (stdout to the
        journal) becomes one event naming that unit; the service's own events, journal
        entries too, are not read back as new denials."""
        opened = journal(container).count("journal_opened")
        container.write(CONFIG, config(extra_sources="  - type: journald\n"))  # every unit
        container.run("systemctl", "reload", UNIT)
        wait_for(lambda: journal(container).count("journal_opened") > opened, "the journal opened")
        for user in ("dave", "erin"):
            unit = f"[Service]\nType=oneshot\nExecStart=/bin/echo '{denial(user).strip()}'\n"
            container.write(f"/etc/systemd/system/{DENIER}", unit)
            container.run("systemctl", "daemon-reload")
            container.run("systemctl", "start", DENIER, timeout=60)
            wait_for(
                lambda u=user: u in principals(journald_events(container)),
                f"{user}'s denial from {DENIER}",
            )
        events = journald_events(container)
        assert (["dave", "erin"], {DENIER}) == (
            principals(events),
            {e["source_path"] for e in events},
        )

    def test_an_s3_sqs_source_reads_objects_in_a_reader_process_under_the_unit(self, container):
        """The unit's sandbox lets the s3_sqs source spawn its reader process: an object put
        in a bucket on moto (in the container) gives its denials; the reader is in the unit."""
        python = python_in_container()
        container.run("systemd-run", f"--unit={MOTO}", "--", python, "-m", "moto.server",
                      "-H", "127.0.0.1", "-p", "5000")  # fmt: skip
        answers = ["-c", f"import urllib.request; urllib.request.urlopen({MOTO_URL!r}, timeout=5)"]
        wait_for(lambda: 0 == container.run(python, *answers, check=False).returncode,
                 "moto's server answering in the container")  # fmt: skip
        queue_url = container.run(python, "-c", QUEUE_SCRIPT).stdout.strip()
        good = container.run("cat", CONFIG).stdout
        container.write("/etc/default/authz-watcher", AWS_ENVIRONMENT)  # read at a (re)start
        source = f"  - type: s3_sqs\n    queue_url: {queue_url}\n    wait_time: 1s\n"
        container.write(CONFIG, config(extra_sources=source))
        container.run("systemctl", "restart", UNIT, timeout=60)
        container.run(python, "-c", QUEUE_SCRIPT, "put")
        from_s3 = lambda: [e for e in journal_events(container) if e["source_kind"] == "cloudtrail"]  # noqa: E731
        wait_for(lambda: 2 == len(from_s3()), "the object's two denials")
        assert ["user7", "user8"] == principals(from_s3())
        children = container.run("ps", "--ppid", str(main_pid(container)), "-o", "args=").stdout
        assert "spawn_main" in children, children
        assert "s3_object_reader" not in journal(container), "no reader died or was replaced"
        container.write(CONFIG, good)  # the stop below times a daemon with no long poll
        container.run("systemctl", "reload", UNIT)
        wait_for(lambda: "spawn_main" not in container.run(
            "ps", "--ppid", str(main_pid(container)), "-o", "args=", check=False).stdout,
            "the reader gone with the source")  # fmt: skip

    def test_stop_exits_0_within_a_second(self, container):
        """SIGTERM drains and exits 0; systemd's own timestamps say how long the stop took."""
        container.run("systemctl", "stop", UNIT, timeout=60)
        state = show(
            container,
            "ExecMainCode",
            "ExecMainStatus",
            "Result",
            "ActiveExitTimestampMonotonic",
            "InactiveEnterTimestampMonotonic",
        )
        stopping_since = int(state["ActiveExitTimestampMonotonic"])
        stop_microseconds = int(state["InactiveEnterTimestampMonotonic"]) - stopping_since
        assert stopping_since > 0, "systemd still has the unit's record (add-wants above)"
        exited = ("1", "0", "success")  # CLD_EXITED with status 0, not killed by a signal
        assert exited == (state["ExecMainCode"], state["ExecMainStatus"], state["Result"])
        assert 0 < stop_microseconds < 1_000_000, f"stop took {stop_microseconds} µs"


def test_the_harness_leaves_no_mount_or_cgroup_behind(tmp_path):
    """After close(): no overlay or tmpfs of the harness on the host, no cgroup left."""
    mounts_before = Path("/proc/self/mountinfo").read_text()
    booted = Container(tmp_path / "boot.log")
    try:
        booted.boot([])
        assert "active" == booted.run("systemctl", "is-active", "basic.target").stdout.strip()
    finally:
        booted.close()
    assert mounts_before == Path("/proc/self/mountinfo").read_text()
    assert [] == [cgroup for cgroup in booted.cgroups if cgroup.exists()]


KILLED_RUN = """
import sys, time
from pathlib import Path
from tests.nspawn import Container
container = Container(Path(sys.argv[1]))
container.boot([])
print(*container.cgroups, flush=True)
time.sleep(600)  # killed by the test long before
"""


def running(pid: int) -> bool:
    """Alive and not a zombie (the killed run's children wait for the host's init to reap them)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_run_killed_outright_is_cleaned_up_by_the_next(tmp_path):
    """A run SIGKILLed with its container up leaves it behind; the next boot removes it all."""
    with subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(tmp_path / "boot.log")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    ) as run:
        assert run.stdout is not None
        cgroups = [Path(p) for p in run.stdout.readline().split()]
        run.kill()
    procs = [f for cgroup in cgroups for f in cgroup.rglob("cgroup.procs")]
    left = [int(pid) for f in procs for pid in f.read_text().split()]
    assert left, "the dead run's container is still running"
    remove_containers_of_dead_runs()
    assert [] == [c for c in cgroups if c.exists()]
    assert [] == [pid for pid in set(left) if running(pid)]
