"""`make install` / `make uninstall`: files land where the unit expects them, twice over.

The venv step (`make install-venv`: python -m venv, then pip install .) needs the package
index, which tests do not touch; it was run by hand (see the README). Everything else the
target does is tested here.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO

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
