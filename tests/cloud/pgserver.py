"""A real PostgreSQL server for tests: ``initdb`` into a temporary directory, ``pg_ctl start`` on a free port.

The server listens on 127.0.0.1 and a Unix socket in its own directory, with ``fsync=off`` (tests do not
survive power loss; the code under test still commits normally). ``initdb`` refuses to run as root, so as
root the server runs as the ``postgres`` OS user (created by the Debian package) via ``runuser``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import free_port, wait_port

SUPERUSER = "postgres"


def pg_bindir() -> Path:
    """Directory with initdb/pg_ctl: the newest /usr/lib/postgresql/*/bin, else wherever PATH has them."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    if which:
        return Path(which).parent
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found: run scripts/bootstrap.sh")


@dataclass
class PgServer:
    """A running server: ``url(db)`` gives a libpq URL for database ``db`` as the superuser."""

    port: int
    root: Path
    bindir: Path
    os_user: str | None  # run server commands as this OS user (when the tests run as root)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{db}"

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        return ["runuser", "-u", self.os_user, "--", *cmd] if self.os_user else cmd

    def start(self) -> None:
        data = self.root / "data"
        subprocess.run(self._cmd("initdb", "-D", str(data), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8",
                                 "--no-sync", "--locale=C"), check=True, capture_output=True)
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        subprocess.run(self._cmd("pg_ctl", "-D", str(data), "-o", opts, "-l", str(self.root / "server.log"),
                                 "-w", "-t", "60", "start"), check=True, capture_output=True)
        wait_port(self.port, timeout=30)

    def stop(self) -> None:
        subprocess.run(self._cmd("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop"),
                       check=False, capture_output=True)


@contextlib.contextmanager
def running_postgres() -> Iterator[PgServer]:
    os_user = None
    root = Path(tempfile.mkdtemp(prefix="campus-pg-"))
    if os.geteuid() == 0:
        os_user = SUPERUSER
        try:
            pw = pwd.getpwnam(os_user)
        except KeyError as exc:
            raise RuntimeError("running as root needs the 'postgres' OS user (Debian package "
                               "postgresql)") from exc
        os.chmod(root, 0o755)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    server = PgServer(free_port(), root, pg_bindir(), os_user)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
