"""systemd: the unit passes systemd-analyze, and the daemon speaks sd_notify on a real socket."""

from __future__ import annotations

import ctypes
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_daemon import DENIAL, Watcher, append, wait_for
from watcher.log import configure_logging
from watcher.systemd import Notifier

UNIT = REPO / "systemd" / "authz-watcher.service"
_PR_SET_MDWE = 65
_MDWE_REFUSE_EXEC_GAIN = 1


def _deny_write_execute() -> None:
    """In the child: no memory may become writable and executable (kept across exec)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_MDWE, _MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_MDWE) failed")


INSTALLED_BINARY = "/opt/authz-watcher/venv/bin/authz-watcher"


class NotifySocket:
    """What systemd listens on: an AF_UNIX datagram socket; collects every message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.0)  # non-blocking: collect() drains what has arrived
        self.messages: list[str] = []

    def collect(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages

    def has(self, prefix: str) -> bool:
        return any(m.startswith(prefix) for m in self.collect())

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path):
    listener = NotifySocket(tmp_path / "notify.sock")
    yield listener
    listener.close()


class TestNotifier:
    def test_messages_reach_the_socket(self, notify_socket):
        notifier = Notifier(
            configure_logging(io.StringIO()), {"NOTIFY_SOCKET": str(notify_socket.path)}
        )
        notifier.ready("3 denials")
        notifier.status("4 denials")
        notifier.reloading()
        notifier.stopping()
        messages = notify_socket.collect()
        assert "READY=1\nSTATUS=3 denials" == messages[0]
        assert "STATUS=4 denials" == messages[1]
        assert messages[2].startswith("RELOADING=1\nMONOTONIC_USEC=")
        assert "STOPPING=1" == messages[3]

    def test_watchdog_pings_at_half_the_interval(self, notify_socket):
        env = {"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "10000000"}
        notifier = Notifier(configure_logging(io.StringIO()), env)
        for now in (100.0, 101.0, 104.9, 105.0, 109.0, 110.0):
            notifier.ping_if_due(now)
        assert ["WATCHDOG=1"] * 3 == notify_socket.collect()  # at 100, 105 and 110

    def test_watchdog_for_another_pid_is_ignored(self, notify_socket):
        env = {
            "NOTIFY_SOCKET": str(notify_socket.path),
            "WATCHDOG_USEC": "1000000",
            "WATCHDOG_PID": str(os.getpid() + 1),
        }
        Notifier(configure_logging(io.StringIO()), env).ping_if_due(1.0)
        assert [] == notify_socket.collect()

    def test_nothing_happens_without_notify_socket(self):
        notifier = Notifier(configure_logging(io.StringIO()), {})
        notifier.ready("x")
        notifier.ping_if_due(0.0)
        assert not notifier.enabled

    def test_a_vanished_socket_is_reported_once_not_fatal(self, tmp_path):
        stream = io.StringIO()
        notifier = Notifier(configure_logging(stream), {"NOTIFY_SOCKET": str(tmp_path / "gone")})
        notifier.ready("x")
        notifier.status("y")
        assert 1 == stream.getvalue().count("notify_failed")


class TestDaemonProtocol:
    def test_ready_status_watchdog_reload_and_stop(self, tmp_path, notify_socket, monkeypatch):
        monkeypatch.setenv("NOTIFY_SOCKET", str(notify_socket.path))
        monkeypatch.setenv("WATCHDOG_USEC", "400000")  # ping every 0.2 s
        w = Watcher(tmp_path)
        try:
            w.start()
            wait_for(lambda: notify_socket.has("READY=1"), "READY=1")
            ready = next(m for m in notify_socket.collect() if m.startswith("READY=1"))
            assert "STATUS=0 denials (0 decoded), 0 alerts" in ready
            wait_for(
                lambda: sum(m == "WATCHDOG=1" for m in notify_socket.collect()) >= 3,
                "watchdog pings",
            )
            w.signal(signal.SIGHUP)
            wait_for(lambda: notify_socket.has("RELOADING=1"), "RELOADING=1")
            wait_for(
                lambda: sum(m.startswith("READY=1") for m in notify_socket.collect()) == 2,
                "READY=1 after the reload",
            )
            assert 0 == w.stop()
            assert "STOPPING=1" in notify_socket.collect()
        finally:
            w.kill()

    def test_metrics_endpoint_is_scraped(self, tmp_path):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        w = Watcher(tmp_path, extra_config=f"metrics:\n  listen: 127.0.0.1:{port}\n")
        try:
            w.start()
            append(w.logs / "app.log", f"{DENIAL} 1", f"{DENIAL} 2")
            wait_for(lambda: len(w.events()) == 2, "two events")

            def scrape() -> str:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    return r.read().decode()

            counter = (
                'authz_watcher_denials_total{decode_status="not_needed",source_kind="file"} 2.0'
            )
            wait_for(lambda: counter in scrape(), "the denial counter")
            text = scrape()
            assert "authz_watcher_lines_matched_total 2.0" in text
            assert "authz_watcher_files_watched" in text
            assert "authz_watcher_bytes_read_total" in text
            assert 0 == w.stop()
        finally:
            w.kill()

    def test_daemon_works_with_memory_deny_write_execute(self, tmp_path):
        """What MemoryDenyWriteExecute=yes enforces, applied with prctl(PR_SET_MDWE)."""
        probe = subprocess.run(
            [sys.executable, "-c", "import ctypes; l = ctypes.CDLL(None); "
             f"raise SystemExit(l.prctl({_PR_SET_MDWE}, {_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0))"],
            check=False,
        )  # fmt: skip
        if probe.returncode != 0:
            pytest.skip("this kernel has no PR_SET_MDWE")
        w = Watcher(tmp_path, preexec=_deny_write_execute)
        try:
            w.start()
            append(w.logs / "app.log", f"{DENIAL} under MDWE")
            wait_for(lambda: len(w.events()) == 1, "an event from the restricted daemon")
            assert 0 == w.stop()
        finally:
            w.kill()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
class TestUnit:
    def test_verify(self, tmp_path):
        # verify checks that ExecStart= exists: point it at this checkout's installed command.
        command = shutil.which("authz-watcher") or str(
            Path(sys.executable).parent / "authz-watcher"
        )
        unit = tmp_path / "authz-watcher.service"
        unit.write_text(UNIT.read_text().replace(INSTALLED_BINARY, command))
        result = subprocess.run(
            ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
        )
        assert 0 == result.returncode, result.stderr
        assert "authz-watcher" not in result.stderr, result.stderr

    def test_security_exposure_is_low(self):
        result = subprocess.run(
            ["systemd-analyze", "security", "--offline=true", "--threshold=15", str(UNIT)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert 0 == result.returncode, result.stdout[-2000:]
        overall = result.stdout.strip().splitlines()[-1]
        exposure = float(overall.split(":")[1].split()[0])
        assert exposure <= 1.5, overall

    def test_unit_keeps_what_the_daemon_needs(self):
        """Hardening must not take away reading /var/log, the network, or sd_notify."""
        text = UNIT.read_text()
        assert "SupplementaryGroups=adm systemd-journal" in text
        assert "\nPrivateUsers=" not in text
        assert "PrivateNetwork=yes" not in text
        assert "AF_UNIX AF_INET AF_INET6" in text
        assert "Type=notify" in text
        assert "RestartPreventExitStatus=2" in text
        assert "AWS_SECRET_ACCESS_KEY" not in text
