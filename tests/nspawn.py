"""A real systemd as PID 1 for the tests: systemd-nspawn booted over an overlay of /.

Where it sits: test infrastructure for the installed service (tests/test_systemd_nspawn.py) and
for `make install` (tests/test_install.py). Nothing on the host changes:

- `unshare --mount --propagation private` gives the boot step a mount namespace of its own; in
  it a tmpfs goes on /run, and an overlay (lower: /, upper and work: in that tmpfs) becomes the
  container's root. Every write of the container lands in the tmpfs and vanishes with it.
- The boot step moves itself into a cgroup of the harness's own first (nspawn creates `payload`
  and `supervisor` under the current cgroup); closing kills that cgroup's processes and removes
  it, and a run killed before it could close is cleaned up by the next boot.
- `--register=no --keep-unit`: no systemd or D-Bus is needed on the host; `--private-network`
  keeps the booted units off the host's network; `--link-journal=no` keeps the container's
  journal out of the host's /var/log/journal (both roots share one machine id).
- Commands run in the container with `nsenter -t <its PID 1> -a`.

Run as `python -m tests.nspawn boot|private-mounts ...`, it is the step that runs inside the
new mount namespace (mounting, then exec'ing nspawn or the given command).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BOOT_TIMEOUT_SECONDS = 60
SHUTDOWN_TIMEOUT_SECONDS = 20
OVERLAY_DIR = "/run/authz-watcher-nspawn"
CGROUP_PREFIX = "authz-watcher-test-"  # then the PID of the test run and a number
_CONTAINER_NUMBERS = itertools.count()


def why_nspawn_cannot_run() -> str | None:
    """The reason to skip, or None when this machine can boot a container."""
    if shutil.which("systemd-nspawn") is None:
        return "systemd-nspawn is not installed (Debian: apt-get install systemd-container)"
    if not cgroup_hierarchies():
        return "no cgroup hierarchy for nspawn"
    return why_private_mounts_cannot_run()


def why_private_mounts_cannot_run() -> str | None:
    """The reason to skip, or None when this process may mount in a namespace of its own."""
    if os.geteuid() != 0:
        return "mounting in a private mount namespace needs root"
    for tool in ("unshare", "nsenter", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: util-linux, mount)"
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"cannot create a mount namespace here: {probe.stderr.strip()}"
    return None


def cgroup_hierarchies() -> list[Path]:
    """The hierarchies nspawn places the container in: cgroup v2 (unified) and name=systemd."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():  # a pure cgroup v2 host
        return [CGROUP_ROOT]
    found = [CGROUP_ROOT / name for name in ("unified", "systemd")]
    return [path for path in found if (path / "cgroup.procs").exists()]


def private_mounts_command(
    mounts: Sequence[str | tuple[str, str]], command: Sequence[str]
) -> list[str]:
    """A command that runs `command` with mounts only it can see, made in the order given.

    A string is a directory to cover with an empty tmpfs; a pair (source, target) a bind mount,
    its target created when missing.
    """
    options = [m if isinstance(m, str) else f"{m[0]}:{m[1]}" for m in mounts]
    return _in_a_mount_namespace("private-mounts", [f"--mount={o}" for o in options], command)


def _in_a_mount_namespace(step: str, options: Sequence[str], rest: Sequence[str]) -> list[str]:
    """`python -m tests.nspawn STEP OPTIONS -- REST`, in a private mount namespace."""
    unshare = ["unshare", "--mount", "--propagation", "private", "--"]
    return [*unshare, sys.executable, "-m", "tests.nspawn", step, *options, "--", *rest]


class Container:
    """One booted container; `close()` leaves no process, mount or cgroup behind."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        name = f"{CGROUP_PREFIX}{os.getpid()}-{next(_CONTAINER_NUMBERS)}"
        self.cgroups = [hierarchy / name for hierarchy in cgroup_hierarchies()]
        self._nspawn: subprocess.Popen[bytes] | None = None
        self.pid1 = 0

    def boot(self, read_only_binds: Sequence[tuple[Path, str]]) -> None:
        remove_containers_of_dead_runs()
        for cgroup in self.cgroups:
            cgroup.mkdir()
        binds = [f"--bind-ro={source}:{target}" for source, target in read_only_binds]
        with self.log_path.open("wb") as log:
            self._nspawn = subprocess.Popen(
                _in_a_mount_namespace("boot", [f"--cgroup={c}" for c in self.cgroups], binds),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).parent.parent,
            )
        self.pid1 = self._wait_for_pid1()
        self._wait_for_boot()

    def run(
        self,
        *command: str,
        env: dict[str, str] | None = None,
        check: bool = True,
        timeout: float = 60,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the container (all its namespaces), with a clean environment."""
        variables = {"PATH": CONTAINER_PATH, "LANG": "C.UTF-8", **(env or {})}
        result = subprocess.run(
            [
                "nsenter",
                "-t",
                str(self.pid1),
                "-a",
                "--root",
                "--wd",
                "env",
                "-i",
                *(f"{k}={v}" for k, v in variables.items()),
                *command,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
            )
        return result

    def write(self, path: str, text: str, mode: str = "0644", owner: str = "root:root") -> None:
        """Write a file in the container, replacing it, with the given mode and owner."""
        user, group = owner.split(":")
        self.run("install", "-D", "-m", mode, "-o", user, "-g", group, "/dev/null", path)
        self.run("tee", path, stdin=text)

    def append(self, path: str, text: str) -> None:
        self.run("tee", "-a", path, stdin=text)

    def boot_log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def close(self) -> None:
        """Stop the container, then kill whatever is left in its cgroup and remove the cgroup."""
        if self._nspawn is not None and self._nspawn.poll() is None:
            self._nspawn.send_signal(signal.SIGTERM)  # nspawn asks the container to power off
            with contextlib.suppress(subprocess.TimeoutExpired):  # then killed below
                self._nspawn.wait(SHUTDOWN_TIMEOUT_SECONDS)
        for cgroup in self.cgroups:
            _kill_cgroup(cgroup)
        if self._nspawn is not None:
            self._nspawn.wait(SHUTDOWN_TIMEOUT_SECONDS)
        for cgroup in self.cgroups:
            _remove_cgroup(cgroup)

    def _wait_for_boot(self) -> None:
        """Until systemd says the boot is over (before its socket exists it says "offline")."""
        deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
        state = ""
        while time.monotonic() < deadline:
            result = self.run("systemctl", "is-system-running", "--wait", check=False)
            state = result.stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.05)  # PID 1 is up but not listening yet: ask again
        raise AssertionError(f"boot did not finish ({state}):\n{self.boot_log()}")

    def _wait_for_pid1(self) -> int:
        assert self._nspawn is not None
        deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._nspawn.poll() is not None:
                raise AssertionError(f"systemd-nspawn exited early:\n{self.boot_log()}")
            pid = _container_init(self._nspawn.pid)
            if pid is not None:
                return pid
            time.sleep(0.05)  # polling /proc for a process that is being created
        raise AssertionError(
            f"no container PID 1 after {BOOT_TIMEOUT_SECONDS} s:\n{self.boot_log()}"
        )


def remove_containers_of_dead_runs() -> None:
    """A test run killed outright (SIGKILL, a CI timeout) cannot close(): the next one does.

    Its cgroups are named after its PID; once that process is gone, whatever still runs in
    them is killed (which also ends the mount namespace and its overlay) and they are removed.
    """
    for hierarchy in cgroup_hierarchies():
        for cgroup in hierarchy.glob(f"{CGROUP_PREFIX}*-*"):
            owner = int(cgroup.name.removeprefix(CGROUP_PREFIX).split("-")[0])
            if not Path(f"/proc/{owner}").exists():
                _kill_cgroup(cgroup)
                _remove_cgroup(cgroup)


def _container_init(nspawn_pid: int) -> int | None:
    """The child of nspawn that is PID 1 in its own PID namespace (NSpid ends in 1)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        nspid = fields.get("NSpid", "").split()
        child = fields.get("PPid", "").strip() == str(nspawn_pid)
        if child and len(nspid) > 1 and nspid[-1] == "1":
            return int(entry.name)
    return None


def _kill_cgroup(cgroup: Path) -> None:
    if not cgroup.exists():
        return
    kill_file = cgroup / "cgroup.kill"  # cgroup v2: every process of the subtree, at once
    if kill_file.exists():
        kill_file.write_text("1")
        return
    for procs in cgroup.rglob("cgroup.procs"):
        for pid in procs.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def _remove_cgroup(cgroup: Path) -> None:
    """rmdir the subtree, deepest first; a cgroup is removable once its processes are gone."""
    deadline = time.monotonic() + SHUTDOWN_TIMEOUT_SECONDS
    while cgroup.exists():
        try:
            for directory in sorted(
                (p for p in cgroup.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
            ):
                directory.rmdir()
            cgroup.rmdir()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # the kernel releases a cgroup shortly after its last exit


# -- the steps that run inside the new mount namespace -------------------------------------


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def _boot(argv: list[str]) -> NoReturn:
    """Join the harness's cgroups, build the overlay root, exec systemd-nspawn."""
    separator = argv.index("--")
    for option in argv[:separator]:
        cgroup = Path(option.removeprefix("--cgroup="))
        (cgroup / "cgroup.procs").write_text(str(os.getpid()))
    _mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run")
    upper, work, root = (f"{OVERLAY_DIR}/{name}" for name in ("upper", "work", "root"))
    for directory in (upper, work, root):
        os.makedirs(directory)
    _mount("-t", "overlay", "overlay", "-o", f"lowerdir=/,upperdir={upper},workdir={work}", root)
    nspawn = [
        "systemd-nspawn",
        "--quiet",
        f"--directory={root}",
        "--register=no",
        "--keep-unit",
        "--private-network",
        "--link-journal=no",
        "--console=read-only",
        *argv[separator + 1 :],
        "--boot",
        "systemd.unit=basic.target",  # journald and D-Bus, not the host's enabled services
    ]
    os.execvp(nspawn[0], nspawn)  # noqa: S606 - an argument list, no shell


def _private_mounts(argv: list[str]) -> NoReturn:
    """Mount the given tmpfs and binds (creating their targets), then exec the command."""
    separator = argv.index("--")
    for option in argv[:separator]:
        spec = option.removeprefix("--mount=")
        if ":" not in spec:
            _mount("-t", "tmpfs", "tmpfs", spec)
        else:
            source, target = spec.split(":", 1)
            if os.path.isdir(source):
                os.makedirs(target, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                Path(target).touch()
            _mount("--bind", source, target)
    command = argv[separator + 1 :]
    os.execvp(command[0], command)  # noqa: S606 - an argument list, no shell


if __name__ == "__main__":
    step, *arguments = sys.argv[1:]
    if step == "boot":
        _boot(arguments)
    _private_mounts(arguments)
