"""systemd: the daemon's side of the sd_notify protocol (READY, STATUS, WATCHDOG, RELOADING,
STOPPING), over the AF_UNIX datagram socket systemd names in ``$NOTIFY_SOCKET``.

Nothing happens when the variable is unset (run by hand, or under another supervisor). The
watchdog interval comes from ``$WATCHDOG_USEC`` (for this process only, per ``$WATCHDOG_PID``);
the daemon pings at half of it, from its main loop, so a wedged pipeline stops pinging.
"""

from __future__ import annotations

import os
import socket
import time

from watcher.log import Logger


class Notifier:
    """Sends sd_notify messages; every method is a no-op without ``$NOTIFY_SOCKET``."""

    def __init__(self, log: Logger, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._log = log
        self._address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_interval_seconds = _watchdog_interval(env)
        self._next_ping = 0.0
        self._failed = False

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self, status: str) -> None:
        self._send(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        self._send(f"STATUS={status}")

    def reloading(self) -> None:
        monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={monotonic_usec}")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def ping_if_due(self, now: float) -> None:
        """WATCHDOG=1 at half the interval systemd asked for; call from the main loop only."""
        if self.watchdog_interval_seconds is None or now < self._next_ping:
            return
        self._send("WATCHDOG=1")
        self._next_ping = now + self.watchdog_interval_seconds / 2

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode(), self._address)
        except OSError as exc:
            if not self._failed:  # say it once; systemd will notice the silence anyway
                self._failed = True
                self._log.warning("notify_failed", error=str(exc))


def _socket_address(path: str) -> str | bytes | None:
    if not path:
        return None
    if path.startswith("@"):  # abstract namespace
        return b"\0" + path[1:].encode()
    return path


def _watchdog_interval(env: dict[str, str] | os._Environ[str]) -> float | None:
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000
