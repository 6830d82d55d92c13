"""Real ``annae serve`` processes for tests: start on a free port, wait until up, stop."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from browser_fixtures import free_port

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Served:
    """One ``annae serve`` command (a supervisor and its workers, or a single process)."""

    proc: subprocess.Popen
    base: str
    log: Path

    @property
    def ws(self) -> str:
        return self.base.replace("http://", "ws://")

    def wait_up(self, timeout: float = 90, ready_path: str = "/readyz") -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"annae serve exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}"
                )
            try:
                if httpx.get(self.base + ready_path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"annae serve did not get ready:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def serve(
    home: Path,
    db_url: str,
    *,
    models: Path | None = None,
    workers: int = 1,
    redis_url: str | None = None,
    extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Served:
    """Start ``python -m annae.cli serve`` (this checkout's code) with ``home`` and ``db_url``."""
    home.mkdir(parents=True, exist_ok=True)
    if models is not None and not (home / "models").exists():
        shutil.copytree(models, home / "models")
    port = free_port()
    full_env = {
        **os.environ,
        # this checkout first; then the suite's secret ledger (tests/ledger, set by conftest)
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        "ANNAE_HOME": str(home),
        "ANNAE_DATABASE_URL": db_url,
        "ANNAE_ENCODER": "none",
        "ANNAE_TARGET_PRECISION": "0.8",
        "OMP_NUM_THREADS": "1",
        **(env or {}),
    }
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if redis_url:
        full_env["ANNAE_REDIS_URL"] = redis_url
    else:
        full_env.pop("ANNAE_REDIS_URL", None)
    log = home / f"serve-{port}.log"
    cmd = [
        sys.executable,
        "-m",
        "annae.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        *extra_args,
    ]
    proc = subprocess.Popen(
        cmd, env=full_env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    return Served(proc, f"http://127.0.0.1:{port}", log)


def recv_until(ws, predicate, timeout: float = 10) -> dict:
    """The first JSON frame from ``ws`` that satisfies ``predicate`` (AssertionError on timeout)."""
    deadline = time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0:
            raise AssertionError("the event did not arrive")
        event = json.loads(ws.recv(timeout=left))
        if predicate(event):
            return event
