"""`make install` / `make uninstall`: files land where the unit expects them, twice over.

The venv step (`make install-venv`) installs from a wheelhouse built once on the host
(tests/wheelhouse.py), with no index. It is run in a private mount namespace (tests/nspawn.py)
where the staged venv is bound at its final path, or a Python is placed under /home or /root,
so nothing on the host changes. tests/test_systemd_nspawn.py runs the whole `make install`
under a real systemd.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, parse_events
from tests.nspawn import private_mounts_command, why_private_mounts_cannot_run
from tests.wheelhouse import offline_pip_environment, wheelhouse

_NO_PRIVATE_MOUNTS = why_private_mounts_cannot_run()
needs_private_mounts = pytest.mark.skipif(
    _NO_PRIVATE_MOUNTS is not None, reason=str(_NO_PRIVATE_MOUNTS)
)

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_install_is_idempotent_and_uninstall_removes_the_program(tmp_path):
    options = [f"DESTDIR={tmp_path}"]
    program = tmp_path / "opt/authz-watcher/venv/bin/authz-watcher"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")  # what install-venv would have put there
    for _ in range(2):
        result = make("install-files", *options)
        assert 0 == result.returncode, result.stderr
    unit = tmp_path / "etc/systemd/system/authz-watcher.service"
    config = tmp_path / "etc/authz-watcher/authz-watcher.yaml"
    assert unit.read_text() == (REPO / "systemd/authz-watcher.service").read_text()
    assert program.exists()
    assert "/opt/authz-watcher/venv/bin/authz-watcher run" in unit.read_text()
    config.write_text("# edited by the operator\n")
    assert 0 == make("install-files", *options).returncode
    assert "# edited by the operator\n" == config.read_text(), "an existing config is kept"
    result = make("uninstall", *options)
    assert 0 == result.returncode, result.stderr
    assert not unit.exists()
    assert not (tmp_path / "opt/authz-watcher").exists()
    assert config.exists(), "uninstall keeps the configuration"


def files_naming(directory: Path, text: str) -> list[Path]:
    """Regular files under directory whose bytes contain text (scripts, configs, bytecode)."""
    needle = text.encode()
    return [
        path
        for path in directory.rglob("*")
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes()
    ]


@needs_private_mounts
def test_a_venv_built_under_destdir_works_at_its_final_path(tmp_path):
    """DESTDIR staging: nothing in the venv names DESTDIR, and it runs from /opt/authz-watcher."""
    stage = tmp_path / "stage"
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "install-venv", f"DESTDIR={stage}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, **offline_pip_environment(wheelhouse())},
    )
    assert 0 == result.returncode, result.stdout + result.stderr
    assert [] == files_naming(stage, str(stage))
    venv = "/opt/authz-watcher/venv"
    at_final_path = private_mounts_command(
        # /opt/authz-watcher is the staged tree; the stage itself is hidden behind a tmpfs.
        ["/opt", (str(stage / "opt/authz-watcher"), "/opt/authz-watcher"), str(stage)],
        [f"{venv}/bin/authz-watcher", "scan", "--no-decode", str(REPO / "examples/logs")],
    )
    scan = subprocess.run(at_final_path, capture_output=True, text=True, check=False, cwd=REPO)
    assert 0 == scan.returncode, scan.stderr
    assert {"authz_denial"} == {event["event"] for event in parse_events(scan.stdout)}


@needs_private_mounts
@pytest.mark.parametrize(
    "python",
    [
        "/home/dev/.pyenv/versions/3.11.9/bin/python3",
        "/root/.asdf/installs/python/3.11/bin/python3",
    ],
)
def test_a_python_the_service_cannot_see_is_refused_with_what_to_do(tmp_path, python):
    """PYTHON= under /home or /root (hidden by ProtectHome=yes): make stops before the venv."""
    hidden_top = "/" + python.split("/")[1]
    system_python = os.path.realpath("/usr/bin/python3")
    install = ["make", "-C", str(REPO), "install-venv", f"DESTDIR={tmp_path}", f"PYTHON={python}"]
    command = private_mounts_command([hidden_top, (system_python, python)], install)
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert 0 != result.returncode
    assert f"{python} is under {hidden_top}, which the service cannot see" in result.stderr
    assert "make install PYTHON=/usr/bin/python3" in result.stderr
    assert not (tmp_path / "opt/authz-watcher/venv").exists(), "stopped before building it"


@pytest.mark.skipif(not os.path.exists("/usr/bin/python3"), reason="no system Python")
def test_without_python_the_system_python_builds_the_venv():
    """`make install` ignores a pyenv/asdf `python3` on PATH unless PYTHON= says otherwise."""
    result = make("--dry-run", "install-venv", "DESTDIR=/nonexistent")
    assert "/usr/bin/python3 -m venv /nonexistent/opt/authz-watcher/venv" in result.stdout
