"""`annae serve` cold start: from the command to the first `/readyz` 200 (target ≤ 5 s).

The demo knowledge base is trained once with the bundled encoder (served by ONNX Runtime) on
SQLite; then `annae serve` is started ``RUNS`` times per interpreter and timed until `/readyz`
answers 200 (wall time) with the CPU time the process used by then. Interpreters: this one
(the full `[train,test]` install) and each in ``ANNAE_BENCH_PYTHONS`` (e.g. a lean
`pip install annae` virtualenv), comma separated.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.bench_service import _free_port, _prepare, _tree_cpu
from benchmarks.report import table, write_section

RUNS = 5
TARGET_S = 5.0


def _start(python: str, home: Path, database: str) -> tuple[float, float]:
    """Seconds to /readyz 200 and the server's CPU seconds by then."""
    port = _free_port()
    env = {**os.environ, "ANNAE_HOME": str(home), "ANNAE_DATABASE_URL": database}
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if python != sys.executable:
        env.pop("PYTHONPATH", None)  # that interpreter's own installed annae
    started = time.perf_counter()
    proc = subprocess.Popen(
        [python, "-m", "annae.cli", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{python}: annae serve exited with {proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - started, _tree_cpu(proc.pid)
            except httpx.HTTPError:
                pass
            if time.perf_counter() - started > 120:
                raise RuntimeError(f"{python}: not ready after 120 s")
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    pythons = [sys.executable] + [
        p for p in os.environ.get("ANNAE_BENCH_PYTHONS", "").split(",") if p.strip()
    ]
    home = Path(tempfile.mkdtemp(prefix="annae-bench-coldstart-"))
    database = f"sqlite:///{home / 'annae.db'}"
    t0 = time.perf_counter()
    version = _prepare(home, database)
    print(f"trained {version} in {time.perf_counter() - t0:.0f} s", flush=True)
    rows = []
    for python in pythons:
        _start(python, home, database)  # once to warm the page cache and write .pyc files
        walls, cpus = [], []
        for _ in range(RUNS):
            wall, cpu = _start(python, home, database)
            walls.append(wall)
            cpus.append(cpu)
            print(f"{python}: ready in {wall:.2f} s ({cpu:.2f} s CPU)", flush=True)
        load = os.getloadavg()[0]
        median = statistics.median(walls)
        rows.append(
            [
                f"`{python}`",
                f"{median:.2f} s",
                f"{max(walls):.2f} s",
                f"{statistics.median(cpus):.2f} s",
                f"{load:.1f}",
                "met" if median <= TARGET_S else "NOT met",
            ]
        )
    body = (
        f"`annae serve` (one worker, SQLite, the demo model with the bundled encoder on ONNX "
        f"Runtime) until `/readyz` answers 200, {RUNS} starts after one warm-up start. Target: "
        f"≤ {TARGET_S:.0f} s. CPU is the server's own; the load average shows how busy the "
        "machine was.\n\n"
        + table(
            ["interpreter", "median", "slowest", "CPU (median)", "load avg (1 min)", "target"],
            rows,
        )
    )
    write_section("coldstart", "Cold start of `annae serve` to /readyz", body)
    print(body)


if __name__ == "__main__":
    main()
