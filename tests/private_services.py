"""A Redis and a PostgreSQL of the test's own, on free ports, that a test may stop and restart.

The machine's shared services (5432, 6379) are used by other tests and people at the same time:
fault tests must never stop them. These run from temporary folders and die with the test.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from served import free_port


def _wait_port(port: int, up: bool, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise AssertionError(f"port {port} did not go {'up' if up else 'down'}")


class PrivateRedis:
    """``redis-server`` on a free port, no persistence."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port, up=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        _wait_port(self.port, up=False)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"no {name} under /usr/lib/postgresql/*/bin")
    return found[-1]


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (``initdb`` into a temporary folder, trust auth)."""

    def __init__(self) -> None:
        # directly under /tmp: the postgres user must reach it (pytest's tmp_path is root-only)
        self.folder = Path(tempfile.mkdtemp(prefix="annae-pg-"))
        self.data = self.folder / "pgdata"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        # PostgreSQL refuses to run as root: as root, run it as the postgres user
        self._user = "postgres" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/annae"

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._user:
            shutil.chown(self.folder, "postgres")
            os.chmod(self.folder, 0o700)
        subprocess.run(
            [
                _pg_bin("initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            user=self._user,
        )
        self.start()
        subprocess.run(
            [
                _pg_bin("createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "annae",
            ],
            check=True,
            capture_output=True,
            user=self._user,
        )

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                _pg_bin("postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.folder}",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=100",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=self._user,
        )
        _wait_port(self.port, up=True)
        deadline = time.time() + 30
        while time.time() < deadline:  # accepting TCP is not yet accepting queries
            ok = (
                subprocess.run(
                    [_pg_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"]
                ).returncode
                == 0
            )
            if ok:
                return
            time.sleep(0.05)
        raise AssertionError("private PostgreSQL did not get ready")

    def stop(self) -> None:
        """Fast shutdown (SIGINT): every connection is cut, like a database restart."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _wait_port(self.port, up=False)

    def remove(self) -> None:
        """Stop the server and delete its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
