"""deploy/: systemd units and timers, the timers' task script, the container entrypoint, compose.

No container engine runs on this machine (only the docker client is installed), so the image's
entrypoint is run here directly (and in a lean virtualenv by test_lean_install.py), and
compose.yaml is checked for what it wires together.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SYSTEMD = ROOT / "deploy" / "systemd"
ENTRYPOINT = ROOT / "deploy" / "container" / "entrypoint.sh"


@pytest.fixture
def annae_shim(tmp_path) -> dict[str, str]:
    """An `annae` on PATH that runs this checkout (what the package's console script does)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "annae"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m annae.cli "$@"\n')
    shim.chmod(0o755)
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": path}
    env.pop("ANNAE_REDIS_URL", None)
    return env


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_units_and_timers_verify(tmp_path):
    units = []
    for path in sorted(SYSTEMD.glob("*.service")) + sorted(SYSTEMD.glob("*.timer")):
        text = path.read_text()
        # the programs the units name, as installed by docs/deployment.md, exist only there
        text = text.replace("/opt/annae/bin/annae", "/bin/true")
        text = text.replace("/opt/annae/share/annae/annae-task", "/bin/true")
        (tmp_path / path.name).write_text(text)
        units.append(f"./{path.name}")
    assert {"./annae.service", "./annae-task@.service", "./annae-retain.timer"} <= set(units)
    assert {"./annae-retrain.timer", "./annae-backup.timer"} <= set(units)
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    for timer in SYSTEMD.glob("*.timer"):
        target = re.search(r"^Unit=annae-task@(\w+)\.service$", timer.read_text(), re.M)
        assert target and f"  {target.group(1)})" in (SYSTEMD / "annae-task").read_text()


@pytest.mark.slow
def test_backup_task_keeps_the_newest_backups(annae_shim, tmp_path):
    home = tmp_path / "home"
    env = {
        **annae_shim,
        "ANNAE_HOME": str(home),
        "ANNAE_DATABASE_URL": f"sqlite:///{tmp_path / 'annae.db'}",
        "ANNAE_BACKUP_DIR": str(tmp_path / "backups"),
        "ANNAE_BACKUP_KEEP": "2",
    }
    subprocess.run(["annae", "init"], env=env, check=True, capture_output=True)
    (tmp_path / "backups").mkdir()
    (tmp_path / "backups" / "20000101T000000Z").mkdir()  # an unfinished one (no manifest)
    for _ in range(3):
        subprocess.run(
            [str(SYSTEMD / "annae-task"), "backup"], env=env, check=True, capture_output=True
        )
        subprocess.run(["sleep", "1"], check=True)  # names are per second
    kept = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert len(kept) == 2
    assert all((tmp_path / "backups" / name / "manifest.json").is_file() for name in kept)
    done = subprocess.run([str(SYSTEMD / "annae-task"), "nonsense"], env=env, capture_output=True)
    assert done.returncode == 2 and b"usage" in done.stderr


def test_entrypoint_gives_up_on_an_unreachable_database(annae_shim, tmp_path):
    env = {
        **annae_shim,
        "ANNAE_HOME": str(tmp_path / "home"),
        "ANNAE_DATABASE_URL": "postgresql://annae@127.0.0.1:1/annae",
        "ANNAE_DB_WAIT": "2",
    }
    done = subprocess.run(["sh", str(ENTRYPOINT), "serve"], env=env, capture_output=True, text=True)
    assert done.returncode == 1
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert line["level"] == "error" and "database not ready after 2 s" in line["event"]
    done = subprocess.run(
        ["sh", str(ENTRYPOINT), "doctor", "--help"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and "Check the deployment" in done.stdout


def test_compose_wires_two_workers_behind_one_port_with_health_checks():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "annae-1", "annae-2", "proxy"} <= set(services)
    for name in ("annae-1", "annae-2"):
        worker = services[name]
        assert worker["image"] == "annae:serve" and worker["build"]["target"] == "serve"
        assert "/readyz" in " ".join(worker["healthcheck"]["test"])
        assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "annae-home:/data" in worker["volumes"]
        assert worker["environment"]["ANNAE_REDIS_URL"].startswith("redis://redis")
        assert "ports" not in worker  # only the proxy publishes a port
    assert services["proxy"]["ports"] == ["8000:8000"]
    assert "/healthz" in " ".join(services["proxy"]["healthcheck"]["test"])
    assert services["migrate"]["command"] == ["init"]
    nginx = (ROOT / "deploy" / "compose" / "nginx.conf").read_text()
    assert re.findall(r"server (annae-\d):8000", nginx) == ["annae-1", "annae-2"]
    assert services["postgres"]["healthcheck"]["test"][1] == "pg_isready"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.findall(r"^FROM .* AS (\w+)$", dockerfile, re.M) == [
        "base",
        "build",
        "serve",
        "train",
    ]
    for source in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, re.M):
        assert (ROOT / source).exists(), source
