"""Recommendations on Online Retail: the hybrid next to every baseline, same split, same run.

Trains on interactions before 2011-11-01 and scores what each known customer bought after it,
in two settings (products new to the customer, and all products). Also times the bulk import
of the whole file into SQLite. Writes the ``recommend`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from benchmarks.report import table, write_section

DATA = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "datasets"
    / "online-retail"
    / "online_retail.csv.gz"
)
SPLIT = "2011-11-01"
K = 10
TARGETS = {"novel": 0.13, "repeat": 0.38, "fit_seconds": 60, "latency_ms_p99": 5}


def _load() -> float:
    """Seconds to import the whole file into a fresh SQLite database (all rows, one transaction)."""
    from annae.recommend.data import PRESETS, load_interactions
    from annae.recommend.store import import_frame
    from annae.store.db import get_engine, init_db

    with tempfile.TemporaryDirectory() as tmp:
        engine = init_db(get_engine(f"sqlite:///{tmp}/bench.db"))
        start = time.perf_counter()
        frame, report = load_interactions(DATA, PRESETS["online-retail"])
        import_frame(engine, frame, report)
        seconds = time.perf_counter() - start
        engine.dispose()
    return seconds


def _row(name: str, r: dict) -> list:
    n, rep = r["novel"], r["repeat"]
    return [
        name,
        f"{n[f'ndcg@{K}']:.4f}",
        f"{n[f'recall@{K}']:.4f}",
        f"{n[f'precision@{K}']:.4f}",
        f"{rep[f'ndcg@{K}']:.4f}",
        f"{rep[f'recall@{K}']:.4f}",
        f"{rep[f'precision@{K}']:.4f}",
        f"{n[f'coverage@{K}']:.3f}",
        f"{r['fit_seconds']:.1f} ({r.get('fit_cpu_seconds', 0):.1f})",
        f"{r['latency_ms_p50']:.2f} / {r['latency_ms_p99']:.2f}",
        f"{r.get('cpu_ms_p50', 0):.2f} / {r.get('cpu_ms_p99', 0):.2f}",
    ]


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from annae.recommend.data import PRESETS
    from annae.recommend.train import DEFAULT_BASELINES, evaluate_file

    load = os.getloadavg()[0]
    start = time.perf_counter()
    result = evaluate_file(DATA, PRESETS["online-retail"], SPLIT, K, baselines=DEFAULT_BASELINES)
    wall = time.perf_counter() - start
    import_s = _load()
    load = max(load, os.getloadavg()[0])

    headers = [
        "model",
        f"novel NDCG@{K}",
        f"novel recall@{K}",
        f"novel precision@{K}",
        f"repeat NDCG@{K}",
        f"repeat recall@{K}",
        f"repeat precision@{K}",
        f"coverage@{K}",
        "fit s (CPU s)",
        "wall ms p50 / p99",
        "CPU ms p50 / p99",
    ]
    rows = [_row("**hybrid** (default)", result)]
    rows += [_row(name, r) for name, r in result["baselines"].items()]
    d = result["data"]
    met = {
        "novel": result["novel"][f"ndcg@{K}"] >= TARGETS["novel"],
        "repeat": result["repeat"][f"ndcg@{K}"] >= TARGETS["repeat"],
        "fit": result["fit_seconds"] <= TARGETS["fit_seconds"],
        "latency": result["latency_ms_p99"] <= TARGETS["latency_ms_p99"],
    }
    weights = result["blend"]["weights"]
    val = result["blend"]["validation"]
    body = f"""
`annae rec eval --interactions online_retail.csv.gz --split-date {SPLIT} --k {K}`: train before the
date, score the products each known customer bought after it. **novel**: only products new to
that customer; **repeat**: all products (re-orders count). Every row comes from the same run
and the same cleaning ({d["rows_read"]:,} rows read, {d["cancellations"]:,} cancellations,
{d["missing_customer"]:,} without a customer, {d["non_product_codes"]:,} non-product codes
dropped; {d["train_interactions"]:,} training rows, {d["products"]:,} products,
{result["n_customers"]:,} known test customers, {d["new_test_customers"]:,} of
{d["test_customers"]:,} test customers were new). One thread everywhere (threadpoolctl, implicit
`num_threads=1`).

{table(headers, rows)}

Fit and latency are wall-clock on a shared 2-core machine (load average about {load:.0f} while this
ran, other engineers' jobs included), so they are inflated; the CPU columns are the process's
own CPU time for the same work. Latency = scoring the whole catalogue for one customer and
taking the top {K} (no database).

Targets from the issue: novel NDCG@10 ≥ {TARGETS["novel"]} ({"met" if met["novel"] else "missed"}),
repeat NDCG@10 ≥ {TARGETS["repeat"]} ({"met" if met["repeat"] else "missed"}), fit ≤ {TARGETS["fit_seconds"]} s
({"met" if met["fit"] else "missed"} in wall-clock here, {result["fit_cpu_seconds"]:.0f} CPU s),
p99 ≤ {TARGETS["latency_ms_p99"]} ms ({"met" if met["latency"] else "missed"} in wall-clock here,
{result["cpu_ms_p99"]:.2f} CPU ms).

Validation ({val.get("windows")} windows of {val.get("days")} days at the end of the training period;
the test period is never seen; `customers` counts all windows, the held-out ones are from the
newest): `{json.dumps({m: val.get(m) for m in ("novel", "repeat")})}`.
Fit phases (s): `{json.dumps(result["blend"]["timings"])}`.

Learnt linear weights (first stage; bagged gradient-boosted trees re-rank its top candidates):
novel `{json.dumps({k: v for k, v in weights["novel"].items() if v})}`,
repeat `{json.dumps({k: v for k, v in weights["repeat"].items() if v})}`.

Bulk import of the whole file into SQLite (read, clean, write {d["rows_kept"]:,} interactions in one
transaction): {import_s:.1f} s. Whole benchmark: {wall:.0f} s.
"""
    write_section("recommend", "Recommendations (Online Retail, split 2011-11-01)", body)
    out = Path(tempfile.gettempdir()) / "annae_bench_recommend.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote docs/benchmarks.md (recommend); full JSON in {out}")


if __name__ == "__main__":
    main()
