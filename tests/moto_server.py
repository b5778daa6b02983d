"""moto's server mode as a separate process: S3, SQS, SNS, CloudWatch Logs over real HTTP.

Daemons under test reach it through ``AWS_ENDPOINT_URL`` (``env()``), exactly as they would
reach AWS; tests set it up with real boto3 clients (``client()``). ``reset()`` empties it
between tests that share one server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from types import TracebackType
from typing import Any

import boto3

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
START_DEADLINE_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class MotoServer:
    """``with MotoServer() as aws:`` a moto server on a free local port until the block ends."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MotoServer:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"moto server did not start on {self.url}")
            time.sleep(0.05)  # polling interval while it starts
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=1):  # noqa: S310
                return True
        except OSError:
            return False

    @property
    def pid(self) -> int | None:
        """The server's process id (benchmarks read its CPU time)."""
        return None if self._process is None else self._process.pid

    def reset(self) -> None:
        """Forget every bucket, queue, topic and log group."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - a local URL
            pass

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a daemon (a subprocess) that talks to this server."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_DEFAULT_REGION": REGION,
            **CREDENTIALS,
            **extra,
        }

    def client(self, service: str) -> Any:
        """A real boto3 client of this server."""
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
