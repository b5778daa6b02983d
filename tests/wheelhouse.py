"""The wheels `make install` needs, built once on the host, so installs in tests need no index.

Where it sits: test infrastructure for tests/test_install.py and tests/test_systemd_nspawn.py.
`pip wheel` (with the host's pip configuration) builds the project's runtime dependencies plus
pip and setuptools (the build backend) into `.venv/wheelhouse/<key>`; the key changes with
pyproject.toml and the Python version, so a stale wheelhouse is never used. Installs then run
with PIP_NO_INDEX=1 and PIP_FIND_LINKS=<the wheelhouse>: inside a container with
`--private-network` there is no index to reach anyway.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from tests.conftest import REPO

PYPROJECT = REPO / "pyproject.toml"


def wheelhouse() -> Path:
    """The directory of wheels for this pyproject.toml and Python, built when missing."""
    key = hashlib.sha256(PYPROJECT.read_bytes() + sys.version.encode()).hexdigest()[:16]
    directory = REPO / ".venv" / "wheelhouse" / key
    if directory.is_dir():
        return directory
    # pip for the venv's upgrade step, setuptools to build the project: no index inside.
    wanted = [
        "pip",
        "setuptools>=68",
        *tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"],
    ]
    directory.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory.parent) as building:
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", building, *wanted],
            check=True,
            capture_output=True,
            timeout=600,
        )
        try:
            Path(building).rename(directory)  # whole or absent: never a half-built wheelhouse
        except OSError:
            if not directory.is_dir():  # else another run built it at the same time
                raise
    return directory


def offline_pip_environment(directory: Path) -> dict[str, str]:
    """What makes pip install from the wheelhouse only."""
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(directory)}
