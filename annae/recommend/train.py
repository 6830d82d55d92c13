"""Training from the database and the evaluation harness behind ``annae rec train/eval``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine
from threadpoolctl import threadpool_limits

from annae.recommend.data import ColumnMap, load_interactions
from annae.recommend.evaluate import Split, model_ranker, score_model, time_split
from annae.recommend.hybrid import Hybrid
from annae.recommend.matrix import Interactions
from annae.recommend.models import BASELINES, Recommender, top_k
from annae.recommend.registry import SavedModel, registry_for
from annae.recommend.store import RecommendError, interactions_frame
from annae.store.db import session_scope

DEFAULT_BASELINES = tuple(BASELINES)


def train_from_db(
    engine: Engine,
    models_dir: Path,
    *,
    engine_kind: str = "local",
    spark_master: str = "local[2]",
    progress: Callable[[str], None] | None = None,
) -> SavedModel:
    """Train on every stored interaction and make the result the live model."""
    say = progress or (lambda _msg: None)
    say("reading interactions")
    with session_scope(engine) as session:
        frame = interactions_frame(session)
    if frame.empty:
        raise RecommendError("no interactions stored yet: run 'annae rec import FILE' first")
    start = time.perf_counter()
    data = Interactions.from_frame(frame)
    model: Recommender
    extra: dict[str, Any]
    if engine_kind == "local":
        say(
            "fitting the hybrid (EASE, kNN, ALS, TF-IDF, popularity, repurchase; blend on a validation split)"
        )
        with threadpool_limits(1):
            hybrid = Hybrid().fit(data)
        extra = hybrid.learnt()
        model, kind = hybrid, "hybrid"
    elif engine_kind == "spark":
        from annae.recommend.spark import SparkALS

        say(f"fitting ALS on Spark ({spark_master})")
        als = SparkALS(master=spark_master).fit(data)
        extra = {
            "params": {
                "master": spark_master,
                "rank": als.factors,
                "iterations": als.iterations,
            }
        }
        model, kind = als, "als"
    else:
        raise RecommendError(f"engine must be 'local' or 'spark', got {engine_kind!r}")
    fit_s = time.perf_counter() - start
    manifest = {
        "kind": kind,
        "engine": engine_kind,
        "n_customers": data.n_users,
        "n_products": data.n_items,
        "n_interactions": int(len(data.users)),
        "fit_seconds": round(fit_s, 2),
        "data_end": pd.Timestamp(data.end_time, unit="s", tz="UTC").isoformat(),
        **extra,
    }
    say("saving")
    with session_scope(engine) as session:
        return registry_for(models_dir).save(model, manifest, session)


def latency(
    model: Recommender, users: np.ndarray, k: int = 10, sample: int = 500, seed: int = 0
) -> dict[str, float]:
    """Per-customer time to score the catalogue and take the top k, one thread: wall-clock ms
    (p50, p99) and the CPU ms of the same calls (what it costs when the machine is not shared)."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(users, min(sample, len(users)), replace=False) if len(users) else users
    wall, cpu = [], []
    with threadpool_limits(1):
        for u in pick[:20]:  # warm-up
            _one(model, int(u), k)
        for u in pick:
            t, c = time.perf_counter(), time.thread_time()
            _one(model, int(u), k)
            cpu.append((time.thread_time() - c) * 1e3)
            wall.append((time.perf_counter() - t) * 1e3)
    return {
        f"{name}_p{q}": round(float(np.percentile(ms, q)), 3) if ms else 0.0
        for name, ms in (("latency_ms", wall), ("cpu_ms", cpu))
        for q in (50, 99)
    }


def _one(model: Recommender, user: int, k: int) -> np.ndarray:
    return top_k(model.score(np.array([user])), k)  # the hybrid's default: the "repeat" ranking


def _fit_timed(model: Recommender, data: Interactions) -> dict[str, float]:
    """Fit ``model`` on ``data``; the wall-clock and CPU seconds it took."""
    start, cpu = time.perf_counter(), time.process_time()
    model.fit(data)
    return {
        "fit_seconds": round(time.perf_counter() - start, 2),
        "fit_cpu_seconds": round(time.process_time() - cpu, 2),
    }


def hybrid_ranker(model: Hybrid, split: Split, k: int):
    def rank(users: np.ndarray, novel: bool) -> np.ndarray:
        return top_k(model.score(users, "novel" if novel else "repeat"), k)

    return rank


def evaluate_file(
    path: str | Path,
    mapping: ColumnMap,
    split_date: str,
    k: int = 10,
    baselines: tuple[str, ...] = DEFAULT_BASELINES,
    progress: Callable[[str], None] | None = None,
    **params,
) -> dict:
    """Everything ``annae rec eval --json`` prints: the hybrid and every baseline on one split."""
    say = progress or (lambda _msg: None)
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise RecommendError(
            f"unknown baseline(s) {', '.join(unknown)}; known: {', '.join(BASELINES)}"
        )
    say("reading and cleaning the file")
    frame, report = load_interactions(path, mapping)
    split = time_split(frame, split_date)
    result: dict = {"model": "hybrid", "split_date": str(split_date), "k": k}
    with threadpool_limits(1):
        say("fitting the hybrid")
        model = Hybrid(**params)
        timings = _fit_timed(model, split.train)
        say("scoring the hybrid")
        result.update(score_model(hybrid_ranker(model, split, k), split, k, batch=128))
        result.update(timings)
        result.update(latency(model, split.users, k))
        result["n_customers"] = int(len(split.users))
        result["blend"] = model.learnt()
        result["baselines"] = {}
        for name in baselines:
            say(f"baseline {name}")
            base = BASELINES[name]()
            timings = _fit_timed(base, split.train)
            res: dict[str, Any] = score_model(model_ranker(base, split, k), split, k)
            res.update(timings)
            res.update(latency(base, split.users, k, sample=200))
            result["baselines"][name] = res
    result["data"] = {
        "file": Path(path).name,
        "rows_read": report.rows_read,
        "rows_kept": report.rows_kept,
        "cancellations": report.cancellations,
        "missing_customer": report.missing_customer,
        "non_positive_quantity": report.non_positive_quantity,
        "non_product_codes": report.non_product_codes,
        "train_interactions": int(len(split.train.users)),
        "products": split.train.n_items,
        "test_customers": split.test_customers,
        "new_test_customers": split.new_customers,
    }
    return result
