"""A PostgreSQL server for the tests: the local one if it answers, else a throwaway one.

The throwaway server comes from the installed binaries (``/usr/lib/postgresql/*/bin``):
``initdb`` into a temporary directory, ``pg_ctl start`` on a free port of 127.0.0.1,
``pg_ctl stop`` and removal afterwards. PostgreSQL refuses to run as root, so as root the
binaries run as the ``postgres`` user through ``runuser``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg

LOCAL_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayPostgres:
    """One PostgreSQL cluster in a temporary directory; ``password`` turns on SCRAM auth."""

    def __init__(self, password: str | None = None) -> None:
        self.password = password
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="connectord-pg-"))
        self.data = self.dir / "data"
        self._as_root = os.geteuid() == 0

    @property
    def admin_url(self) -> str:
        auth = f"postgres:{self.password}" if self.password else "postgres"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        command = [str(bin_dir() / argv[0]), *argv[1:]]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> ThrowawayPostgres:
        if self._as_root:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        auth = ["--auth=trust"]
        if self.password:
            pwfile = self.dir / "pw"
            pwfile.write_text(self.password + "\n")
            if self._as_root:
                os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
            auth = ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-E", "UTF8", "--no-sync", *auth
        )
        self.resume()
        return self

    def resume(self) -> None:
        """Start the server (again, after `pause`) on the same port and data."""
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )

    def pause(self) -> None:
        """Stop the server, keeping its data (an outage): ``pg_ctl stop -m fast``."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def ensure_server(admin_url: str = LOCAL_ADMIN) -> Iterator[str]:
    """The admin URL of a server that answers: ``admin_url`` itself, or a throwaway one."""
    if answers(admin_url):
        yield admin_url
        return
    server = ThrowawayPostgres().start()
    try:
        yield server.admin_url
    finally:
        server.stop()


@contextlib.contextmanager
def database(admin_url: str) -> Iterator[str]:
    """A new, uniquely named database on the server, dropped afterwards."""
    import uuid

    name = f"connectord_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
