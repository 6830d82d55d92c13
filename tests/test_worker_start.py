"""What a serving worker loads when it starts: a killed or hung worker's replacement is only as
fast as this (docs/deployment.md "Faults"), so heavy libraries that only training needs stay out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from annae.kb.demo import demo_path
from annae.kb.importers import import_kb
from annae.store.db import get_engine, init_db

SCRIPT = """
import json, sys
from starlette.testclient import TestClient
from annae.web.app import create_app
with TestClient(create_app()) as client:
    status = client.get("/readyz").status_code
print(json.dumps({"status": status, "modules": sorted(sys.modules)}))
"""


def test_a_worker_starts_without_sklearn_or_torch(tmp_path, models):
    db_url = f"sqlite:///{tmp_path / 'annae.db'}"
    import_kb(init_db(get_engine(db_url)), demo_path(), author="test")
    get_engine(db_url).dispose()
    shutil.copytree(models, tmp_path / "home" / "models")
    env = {**os.environ, "ANNAE_HOME": str(tmp_path / "home"), "ANNAE_DATABASE_URL": db_url}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["status"] == 200
    loaded = set(report["modules"])
    assert "annae.nlu.engine" in loaded and "kiwipiepy" in loaded  # the model is really loaded
    heavy = {"sklearn", "scipy.stats", "torch", "sentence_transformers", "pyspark", "implicit"}
    assert not heavy & loaded, sorted(heavy & loaded)
