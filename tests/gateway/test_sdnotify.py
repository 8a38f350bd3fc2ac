"""sd_notify against a real unix datagram socket standing in for systemd's NOTIFY_SOCKET."""

from __future__ import annotations

import socket
from pathlib import Path

from gateway.sdnotify import Notifier


def test_notifications_reach_the_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(2)
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"})
    assert n.enabled
    assert n.watchdog_interval_s == 2.0
    n.ready("collecting")
    n.watchdog()
    n.stopping()
    got = [server.recv(4096).decode() for _ in range(3)]
    assert got == ["READY=1\nSTATUS=collecting", "WATCHDOG=1", "STOPPING=1"]
    n.close()
    server.close()


def test_without_systemd_it_is_a_no_op() -> None:
    n = Notifier({})
    assert not n.enabled
    assert n.ready() is False
    assert n.watchdog_interval_s is None


def test_watchdog_for_another_pid_is_ignored() -> None:
    n = Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
    assert n.watchdog_interval_s is None
