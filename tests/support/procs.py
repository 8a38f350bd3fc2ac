"""Helpers to run real servers for tests: free ports, waiting for a port, Mosquitto."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def mosquitto_binary() -> str:
    for cand in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise RuntimeError("mosquitto is not installed: run scripts/bootstrap.sh")


@dataclass
class Broker:
    """A real Mosquitto broker on 127.0.0.1:port with persistence in ``workdir``."""

    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.workdir}/\n"
            "autosave_interval 1\n"
            # The agent acks after commit: let enough QoS 1 messages be in flight to fill a burst.
            "max_inflight_messages 1000\n"
            "max_queued_messages 1000000\n"
            "max_queued_bytes 0\n"
            "log_type error\n"
            "log_type warning\n"
            f"log_dest file {self.workdir}/mosquitto.log\n"
            # Started as root, mosquitto drops to user 'mosquitto', which cannot write persistence into a
            # private temp dir: the broker would silently lose sessions on restart. Stay root in tests.
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def running_broker(workdir: Path, port: int | None = None) -> Iterator[Broker]:
    workdir.mkdir(parents=True, exist_ok=True)
    broker = Broker(port or free_port(), workdir)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
