"""Shared fixtures: the real-world corpus, schema validation of every event, the real CLI."""

from __future__ import annotations

import ctypes
import json
import os
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import settings

from tests.moto_server import MotoServer
from tests.sts_server import StsServer
from tests.tmpfs import MountTmpfs, tmpfs_mounts
from watcher.events import schema

# `make test` (and CI) runs every property on a fixed set of examples, so a red run means a
# change broke one, never that a new random draw found an old bug; HYPOTHESIS_PROFILE=explore
# (what `make soak` sets) draws new ones. What exploring finds becomes a plain test.
settings.register_profile("fixed", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fixed"))

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "corpus"
REPO = Path(__file__).parent.parent

_VALIDATOR = jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker())


def load_jsonl(name: str) -> list[dict[str, Any]]:
    with (CORPUS / name).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def validate_event(event: dict[str, Any]) -> dict[str, Any]:
    """Fail the test when an event does not match the shipped JSON Schema."""
    errors = sorted(_VALIDATOR.iter_errors(event), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    return event


def parse_events(stdout: str) -> list[dict[str, Any]]:
    """Every line of a command's stdout as a schema-valid event."""
    return [validate_event(json.loads(line)) for line in stdout.splitlines() if line.strip()]


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str

    def logs(self) -> list[dict[str, Any]]:
        """The structlog JSON lines written to stderr."""
        return [json.loads(line) for line in self.stderr.splitlines() if line.startswith("{")]


def _drop_file_permission_override() -> None:
    """In the child: give up root's power to read any file (CAP_DAC_OVERRIDE, _READ_SEARCH).

    Removing them from the bounding set before exec means the command runs as root but is
    refused by file permissions like any other user, so "unreadable file" tests are real.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2


# The AWS settings every test runs with: no real credentials, no shared config from the
# developer's home, and no instance-metadata lookups (169.254.169.254 is not ours to call).
ISOLATED_AWS_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/authz-watcher-tests/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/authz-watcher-tests/credentials",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(autouse=True)
def _isolated_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Strip the AWS environment so no test can reach real AWS with real credentials."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in ISOLATED_AWS_ENV.items():
        monkeypatch.setenv(name, value)


def run_cli(
    *args: str,
    input_bytes: bytes | None = None,
    env: dict[str, str] | None = None,
    honour_file_permissions: bool = False,
    timeout: float = 120,
) -> Completed:
    """Run the real command line in a subprocess, the way a person or systemd does."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    full_env.update(ISOLATED_AWS_ENV)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        input=input_bytes,
        capture_output=True,
        env=full_env,
        timeout=timeout,
        check=False,
        preexec_fn=_drop_file_permission_override
        if honour_file_permissions and os.geteuid() == 0
        else None,
        cwd=REPO,
    )
    return Completed(
        proc.returncode,
        proc.stdout.decode("utf-8"),
        proc.stderr.decode("utf-8", "replace"),
    )


@pytest.fixture
def sts() -> Iterator[StsServer]:
    """A running local STS endpoint that knows the corpus' decoded messages (see BLOBS)."""
    with StsServer() as server:
        server.behaviour.messages.update(BLOBS)
        yield server


def aws_env(sts: StsServer, **extra: str) -> dict[str, str]:
    """Environment for a subprocess that talks to the local STS with test credentials."""
    return {
        "AWS_ENDPOINT_URL_STS": sts.url,
        "AWS_ACCESS_KEY_ID": "AKIADEFAULTTESTKEY00",
        "AWS_SECRET_ACCESS_KEY": "test-secret-not-real",
        **extra,
    }


def fake_blob(seed: int, length: int = 600) -> str:
    """A blob-shaped token (the corpus has decoded messages but not their blobs)."""
    rng = random.Random(seed)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "".join(rng.choice(alphabet) for _ in range(length))


DECODED = {sample["id"]: sample for sample in load_jsonl("decoded_messages.jsonl")}
# One stand-in blob per real decoded message: what the local STS decodes it to.
BLOBS = {fake_blob(index): sample["decoded"] for index, sample in enumerate(DECODED.values())}
BLOB_OF = {sample_id: fake_blob(index) for index, sample_id in enumerate(DECODED)}


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    """Fail a test that leaves a thread running (as watchdog's own suite does)."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads leaked: {leaked}"


@pytest.fixture
def tmpfs() -> Iterator[MountTmpfs]:
    """``tmpfs(path, "size=1m")`` mounts a real small tmpfs there, unmounted after the test."""
    yield from tmpfs_mounts()


@pytest.fixture(scope="session")
def _moto_process() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def moto_server(_moto_process: MotoServer) -> MotoServer:
    """moto's server (one process for the session), emptied before each test."""
    _moto_process.reset()
    return _moto_process
