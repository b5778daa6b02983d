"""A real small filesystem for fault tests: a tmpfs mounted by the test, which fills up.

Mounting needs root (CAP_SYS_ADMIN). Where it is impossible the test is skipped with the
reason; in CI (``CI`` set, where we are root) that is a failure instead, so it always runs there.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

MountTmpfs = Callable[..., Path]


def _mount(target: Path, options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        reason = "mounting a tmpfs needs root; run the suite as root (CI does)"
    else:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            return
        reason = f"cannot mount a tmpfs here: {result.stderr.strip()}"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def tmpfs_mounts() -> Iterator[MountTmpfs]:
    """``tmpfs(path, "size=1m")`` mounts a real tmpfs there; unmounted after the test."""
    mounted: list[Path] = []

    def mount(target: Path, options: str = "size=1m") -> Path:
        _mount(target, options)
        mounted.append(target)
        return target

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", "-l", str(target)], check=False)


def remount(target: Path, options: str) -> None:
    """Change a mounted tmpfs (``size=8m``: space returns)."""
    subprocess.run(["mount", "-o", f"remount,{options}", str(target)], check=True)


def fill(directory: Path, name: str = "filler") -> Path:
    """Write a filler file until the filesystem is full; return it (unlink it to free)."""
    filler = directory / name
    with filler.open("wb", buffering=0) as handle:
        chunk = b"\0" * 4096
        with contextlib.suppress(OSError):
            while True:
                handle.write(chunk)
        with contextlib.suppress(OSError):  # the last bytes that fit
            while True:
                handle.write(b"\0")
    with pytest.raises(OSError, match="No space left on device"):
        (directory / "probe").write_bytes(b"x" * 4096)
    return filler
