"""CPU of one customer turn in one process, this code against an older checkout, alternating.

The service-around-the-engine part of issue 15, measured where the load benchmarks are too noisy
to show a 10 % change: the app in one process (`TestClient`, PostgreSQL, no Redis), the demo KB
with a lexical model (no sentence encoders: they cost the same in both), customers asking demo
questions one after another. Each run is a fresh process and database; runs of this code and of
``ANNAE_BASELINE`` alternate, ``ROUNDS`` each. The machines of this project change speed by up to
2x within minutes, so the table gives the fastest and the median run of each and their ratios.
The client's share of the CPU (building and reading the requests in the same process) is in both.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

from benchmarks.report import run_json, table, write_section

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = int(os.environ.get("ANNAE_BENCH_TURN_ROUNDS", "9"))
TURNS = 400
PG_ADMIN = os.environ.get(
    "ANNAE_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

# one run: a fresh database, the app, 60 warm-up turns, then TURNS timed turns (process CPU)
RUN = r"""
import json, os, shutil, sys, tempfile, time, uuid
from sqlalchemy import create_engine, text
admin_url, models, turns = sys.argv[1], sys.argv[2], int(sys.argv[3])
name = "annae_bench_turn_" + uuid.uuid4().hex[:10]
admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
with admin.connect() as c:
    c.execute(text(f'CREATE DATABASE "{name}"'))
url = admin_url.rsplit("/", 1)[0] + "/" + name
home = tempfile.mkdtemp()
shutil.copytree(models, home + "/models")
os.environ.update(ANNAE_HOME=home, ANNAE_DATABASE_URL=url, ANNAE_ENCODER="none",
                  ANNAE_RATE_IP="0", ANNAE_RATE_CONVERSATION="0")
os.environ.pop("ANNAE_REDIS_URL", None)
from fastapi.testclient import TestClient
from annae.kb.demo import demo_path
from annae.kb.importers import import_kb
from annae.store.db import get_engine, init_db
from annae.web.app import create_app
import_kb(init_db(get_engine(url)), demo_path(), author="bench")
questions = ["How long does shipping take?", "배송 보통 며칠 걸려요?", "Do you offer gift wrapping?",
             "환불은 언제 들어와요?", "Can I pay with PayPal?", "선물 포장 되나요?"]
types = {}
try:
    with TestClient(create_app()) as client:
        convs = []
        for _ in range(20):
            body = client.post("/api/v1/conversations", json={}).json()
            convs.append((body["id"], {"Authorization": "Bearer " + body["token"]}))
        def turn(i):
            conv_id, auth = convs[i % len(convs)]
            r = client.post(f"/api/v1/conversations/{conv_id}/messages",
                            json={"text": questions[i % len(questions)]}, headers=auth)
            assert r.status_code == 200, r.text
            return r.json()["type"]
        for i in range(60):
            turn(i)
        start = time.process_time()
        for i in range(turns):
            kind = turn(i)
            types[kind] = types.get(kind, 0) + 1
        cpu_ms = (time.process_time() - start) / turns * 1000
finally:
    get_engine(url).dispose()
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
print(json.dumps({"cpu_ms": cpu_ms, "types": types}))
"""

TRAIN = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, "tests")
from api_support import train_demo_model
print(json.dumps({"models": str(train_demo_model(Path(sys.argv[1])))}))
"""


def main() -> None:
    baseline = os.environ.get("ANNAE_BASELINE")
    versions = [("this code", str(ROOT))] + ([("before", baseline)] if baseline else [])
    with tempfile.TemporaryDirectory() as tmp:
        # one model for every run (trained by this code; the baseline loads it the same way)
        models = run_json(["-c", TRAIN, tmp], str(ROOT))["models"]
        runs: dict[str, list[float]] = {name: [] for name, _ in versions}
        answered: dict[str, float] = {}
        for _ in range(ROUNDS):
            for name, path in versions:
                result = run_json(["-c", RUN, PG_ADMIN, models, str(TURNS)], path)
                runs[name].append(result["cpu_ms"])
                answered[name] = result["types"].get("answer", 0) / TURNS
                print(name, f"{result['cpu_ms']:.2f} ms", flush=True)
    names = [n for n, _ in versions]
    best = {n: min(runs[n]) for n in names}
    median = {n: statistics.median(runs[n]) for n in names}
    rows = [
        ["fastest run, CPU ms per turn", *[f"{best[n]:.2f}" for n in names]],
        ["median run, CPU ms per turn", *[f"{median[n]:.2f}" for n in names]],
        ["every run", *[" / ".join(f"{v:.2f}" for v in runs[n]) for n in names]],
        ["turns answered", *[f"{answered[n]:.0%}" for n in names]],
    ]
    body = [
        f"One process (`TestClient`, PostgreSQL, no Redis), the demo KB with a lexical model; "
        f"{TURNS} customer turns per run after 60 warm-up turns, {ROUNDS} runs of each version "
        "alternating, each in a fresh process and database (`benchmarks/bench_turn.py`). CPU is "
        "the process's own, client included.",
        "",
        table(["measure", *names], rows),
    ]
    if baseline:
        body += [
            "",
            f"This code / before: fastest {best[names[0]] / best[names[1]]:.2f}, median "
            f"{median[names[0]] / median[names[1]]:.2f}.",
        ]
    write_section("turn", "CPU of one customer turn in one process", "\n".join(body))


if __name__ == "__main__":
    main()
