"""Faults: recovery of a 2-worker `annae serve` (own PostgreSQL and Redis) from injected faults.

Runs tests/test_faults.py (kill -9 a worker, SIGSTOP one, restart Redis, restart PostgreSQL while
6 chats are open and an agent replies) and writes its measurements, against the targets, to
docs/benchmarks.md. ``ANNAE_FAULTS_SLACK`` (default 1) loosens the test's own assertions on an
overloaded machine; the table always compares with the real targets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.report import table, write_section

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {  # report key: (fault, what is measured, target seconds)
    "worker_killed_respawned_s": ("worker killed (-9)", "replacement started", None),
    "worker_killed_replaced_s": ("worker killed (-9)", "replacement serving", 10.0),
    "worker_hung_respawned_s": ("worker hung (SIGSTOP)", "killed, replacement started", None),
    "worker_hung_replaced_s": ("worker hung (SIGSTOP)", "replacement serving", 10.0),
    "redis_max_delivery_after_recovery_s": (
        "Redis restarted",
        "slowest agent reply in its open chat after Redis is back",
        3.0,
    ),
    "postgres_first_success_s": (
        "PostgreSQL restarted",
        "first successful request after PostgreSQL is back",
        1.0,
    ),
}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "faults.json"
        env = {**os.environ, "ANNAE_FAULTS_REPORT": str(report_path), "PYTHONPATH": str(ROOT)}
        load_before = os.getloadavg()[0]
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "tests/test_faults.py",
                "-q",
                "-p",
                "no:cacheprovider",
            ],
            cwd=ROOT,
            env=env,
        )
        load_after = os.getloadavg()[0]
        if run.returncode != 0 or not report_path.exists():
            raise SystemExit(f"tests/test_faults.py failed ({run.returncode}); nothing written")
        report = json.loads(report_path.read_text())
    rows = []
    for key, (fault, what, target) in TARGETS.items():
        value = report[key]
        met = "—" if target is None else ("yes" if value <= target else "**no**")
        rows.append(
            [fault, what, f"{value:.2f} s", "—" if target is None else f"≤ {target:g} s", met]
        )
    body = table(["fault", "measured", "seconds", "target", "met"], rows)
    body += (
        f"\n\n{report['agent_replies_acknowledged']} agent replies and "
        f"{report['customer_messages_acknowledged']} customer messages acknowledged, none lost, "
        f"every reply shown in its open chat ({report['redis_replies_during_and_after']} of the "
        "replies posted during or after the Redis outage). Load average "
        f"{load_before:.1f} before, {load_after:.1f} after "
        f"(ANNAE_FAULTS_SLACK={os.environ.get('ANNAE_FAULTS_SLACK', '1')})."
    )
    write_section("faults", "Faults (2 workers, own PostgreSQL + Redis)", body)
    print(body)


if __name__ == "__main__":
    main()
