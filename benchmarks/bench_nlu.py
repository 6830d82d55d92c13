"""BANKING77: the answer engine against two plain baselines, full data and 10-shot.

Each Annae run is a real `annae eval --json` in its own process (so fit time includes
embedding and peak memory is that process's own). Baselines run here, on one thread:
TF-IDF + logistic regression, and frozen all-MiniLM-L6-v2 + logistic regression.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.report import table, write_section

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "banking77"
SEEDS = (0, 1, 2)
MODEL_NAMES = {"svm": "SVM", "logreg": "logistic regression"}
SHOTS = 10


def read(name: str) -> tuple[list[str], list[str]]:
    with open(DATA / name, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def few_shot(texts, labels, k, seed):
    rng = np.random.default_rng(seed)
    by: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by.setdefault(lab, []).append(i)
    idx = sorted(
        j for ids in by.values() for j in rng.choice(ids, size=min(k, len(ids)), replace=False)
    )
    return [texts[i] for i in idx], [labels[i] for i in idx]


def write_csv(path: Path, texts, labels) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "category"])
        w.writerows(zip(texts, labels, strict=True))
    return path


# Runs `annae eval` and, at exit, writes the process's own peak memory (VmHWM) to stderr.
# VmHWM belongs to the address space the program exec'd into; ru_maxrss from wait4 would also
# count the pages the child inherited from this (large) benchmark process before its exec.
EVAL_WITH_PEAK = """
import atexit, runpy, sys

def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print("PEAK_KB", line.split()[1], file=sys.stderr, flush=True)

atexit.register(peak)
sys.argv = ["annae", *sys.argv[1:]]
runpy.run_module("annae.cli", run_name="__main__")
"""


def run_annae(train: Path, test: Path) -> dict:
    """`annae eval --json` in a child process; adds its peak memory."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ANNAE_THREADS": "1"}
    args = ["eval", "--train", str(train), "--test", str(test), "--label-col", "category"]
    proc = subprocess.run(
        [sys.executable, "-c", EVAL_WITH_PEAK, *args, "--json"],
        capture_output=True,
        env=env,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"annae eval failed: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    peaks = [
        int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_KB")
    ]
    result["peak_mb"] = round(peaks[-1] / 1024) if peaks else None
    return result


def oracle_coverage(conf, correct, target=0.95) -> tuple[float, float]:
    """Coverage and precision at the lowest threshold reaching ``target`` *on the test set itself*."""
    order = np.argsort(-conf)
    prec = np.cumsum(correct[order]) / np.arange(1, len(conf) + 1)
    ok = np.flatnonzero(prec >= target)
    if not len(ok):
        return 0.0, float("nan")
    n = ok[-1] + 1
    return n / len(conf), float(prec[n - 1])


def baselines(train_x, train_y, test_x, test_y, test_emb, encoder) -> dict[str, dict]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    out = {}
    with threadpool_limits(1):
        y = np.array(test_y)
        t = time.perf_counter()
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        lr = LogisticRegression(C=10, max_iter=2000).fit(vec.fit_transform(train_x), train_y)
        fit = time.perf_counter() - t
        p = lr.predict_proba(vec.transform(test_x))
        out["TF-IDF + LR"] = _score(
            p, lr.classes_, y, fit, lambda q: lr.predict_proba(vec.transform([q])), test_x
        )

        t = time.perf_counter()
        emb = encoder.encode([s.lower() for s in train_x])
        lr2 = LogisticRegression(C=10, max_iter=2000).fit(emb, train_y)
        fit = time.perf_counter() - t
        p = lr2.predict_proba(test_emb)
        out["frozen MiniLM + LR"] = _score(
            p,
            lr2.classes_,
            y,
            fit,
            lambda q: lr2.predict_proba(encoder.encode([q.lower()])),
            test_x,
        )
    return out


def _score(p, classes, y, fit, one, test_x) -> dict:
    pred = classes[p.argmax(1)]
    conf = p.max(1)
    correct = pred == y
    cov, prec = oracle_coverage(conf, correct)
    lat = []
    for q in test_x[:300]:
        t = time.perf_counter()
        one(q)
        lat.append((time.perf_counter() - t) * 1000)
    return {
        "in_scope_accuracy": float(correct.mean()),
        "coverage": cov,
        "precision": prec,
        "fit_seconds": fit,
        "latency_ms_p50": float(np.percentile(lat, 50)),
        "latency_ms_p99": float(np.percentile(lat, 99)),
    }


COLD_START = """
import json, sys, time
t0 = time.perf_counter()
import onnxruntime, kiwipiepy, sklearn.linear_model  # noqa: F401  (the Python imports)
from annae.nlu.engine import Engine
t1 = time.perf_counter()
engine = Engine.load(sys.argv[1], warm=False)
d = engine.decide("배송은 얼마나 걸려요?")
t2 = time.perf_counter()
print(json.dumps({"imports_s": t1 - t0, "load_and_first_answer_s": t2 - t1, "type": d.type,
                  "torch_imported": "torch" in sys.modules}))
"""


def cold_start(tmp: Path) -> dict:
    """Train on the demo KB, save, then load it in a fresh process and answer one question."""
    from annae.kb.demo import demo_path
    from annae.kb.importers import parse_file
    from annae.nlu.engine import Engine

    data = parse_file(demo_path())
    texts = [t for e in data.entries for t in e.examples] + data.oos_examples
    labels = [e.key for e in data.entries for _ in e.examples] + ["oos"] * len(data.oos_examples)
    answers = {
        e.key: {"id": i, "question": e.question, "answer": e.answer}
        for i, e in enumerate(data.entries)
    }
    engine = Engine.fit(
        texts, labels, answers, documents={k: [v["answer"]] for k, v in answers.items()}
    )
    engine.save(tmp / "demo-model")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", COLD_START, str(tmp / "demo-model")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    return {
        k: float(np.median([r[k] for r in runs])) for k in ("imports_s", "load_and_first_answer_s")
    } | {
        "torch_imported": any(r["torch_imported"] for r in runs),
        "demo_fit_s": engine.manifest["metrics"]["total_fit_seconds"],
        "demo_cv_accuracy": engine.manifest["metrics"]["cv_accuracy"],
        "demo_threshold": engine.manifest["threshold"],
    }


def main() -> None:
    from annae.nlu.encoder import Encoder, set_threads

    set_threads(1)
    train_x, train_y = read("train.csv")
    test_x, test_y = read("test.csv")
    encoder = Encoder("bundled", threads=1)
    test_emb = encoder.encode([s.lower() for s in test_x])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        test_csv = write_csv(tmp / "test.csv", test_x, test_y)
        settings = [("full (10,003)", train_x, train_y, None)]
        settings += [
            (f"{SHOTS}-shot seed {s}", *few_shot(train_x, train_y, SHOTS, s), s) for s in SEEDS
        ]
        print("  cold start on the demo KB", flush=True)
        cold = cold_start(tmp)
        results: dict[str, list] = {}
        for name, tx, ty, _seed in settings:
            print(f"  {name}: annae", flush=True)
            a = run_annae(write_csv(tmp / "train.csv", tx, ty), test_csv)
            print(f"  {name}: baselines", flush=True)
            b = baselines(tx, ty, test_x, test_y, test_emb, encoder)
            group = "full" if name.startswith("full") else "few"
            results.setdefault(group, []).append((a, b))
            print("    " + json.dumps({"annae": a, "baselines": b}, default=float), flush=True)
    for group, label in (
        ("full", "full training data (10,003)"),
        ("few", f"{SHOTS} per intent, mean of {len(SEEDS)} seeds"),
    ):
        runs = results[group]
        a = {
            # None (e.g. no answered question at all) counts as missing
            k: np.nanmean([np.nan if r[0][k] is None else r[0][k] for r in runs])
            for k in (
                "in_scope_accuracy",
                "coverage_at_target_precision",
                "answered_precision",
                "fit_seconds",
                "latency_ms_p50",
                "latency_ms_p99",
                "peak_mb",
                "threshold",
            )
        }
        rows.append(
            [
                label,
                "**Annae** (TF-IDF chars+words+morphemes, MiniLM on ONNX Runtime, calibrated "
                + " / ".join(sorted({MODEL_NAMES[r[0]["classifier"]] for r in runs}))
                + ")",
                f"**{a['in_scope_accuracy']:.2%}**",
                f"{a['coverage_at_target_precision']:.1%}",
                f"{a['answered_precision']:.2%}",
                f"{a['fit_seconds']:.0f}",
                f"{a['latency_ms_p50']:.1f}",
                f"{a['latency_ms_p99']:.1f}",
                f"{a['peak_mb']:.0f}",
            ]
        )
        for base in runs[0][1]:
            m = {k: np.nanmean([r[1][base][k] for r in runs]) for k in runs[0][1][base]}
            rows.append(
                [
                    label,
                    base,
                    f"{m['in_scope_accuracy']:.2%}",
                    f"{m['coverage']:.1%}*",
                    f"{m['precision']:.2%}*",
                    f"{m['fit_seconds']:.0f}",
                    f"{m['latency_ms_p50']:.1f}",
                    f"{m['latency_ms_p99']:.1f}",
                    "—",
                ]
            )
    body = table(
        [
            "training data",
            "model",
            "accuracy",
            "coverage @0.95",
            "answered precision",
            "fit s",
            "p50 ms",
            "p99 ms",
            "peak MB",
        ],
        rows,
    )
    chosen = [MODEL_NAMES[r[0]["classifier"]] for r in results["few"]]
    few_models = f"{chosen[0]} on every" if len(set(chosen)) == 1 else f"{', '.join(chosen)} on the"
    body += f"""

The classifier is a linear SVM from 3,000 training examples up; below, cross-validation on the
training data chooses a multinomial logistic regression or the SVM (it chose {few_models}
{SHOTS}-shot seed; annae/nlu/classifier.py). The encoder is all-MiniLM-L6-v2 written as an ONNX
graph at training (float32 checked against torch, cosine > 0.9999) and run by ONNX Runtime in int8
on one thread, one question at a time (docs/engine.md).
Accuracy is top-1 on the 3,080 test questions (published: BERT fine-tuned 93.66 %, USE+ConveRT
93.36 % on full data; USE+ConveRT 85.19 % at 10 per intent). Annae's coverage and answered
precision use the threshold it chose **from the training data alone**, assuming 20 % out-of-scope
traffic (BANKING77's test set has none, so its real precision here is higher than 0.95).
\\* Baselines have no threshold of their own: their coverage/precision use the *oracle* threshold
picked on the test set itself, an upper bound. Fit time includes embedding the training set;
latency is one question at a time on one thread after warm-up; peak MB is the `annae eval`
process's maximum resident memory. Full JSON of the Annae runs: `annae eval --train … --test …
--label-col category --json`."""
    few = results["few"]
    body += (
        f"\n\n{SHOTS} per intent, seed by seed (accuracy / p99 ms): "
        + ", ".join(
            f"seed {s}: {r[0]['in_scope_accuracy']:.2%} / {r[0]['latency_ms_p99']:.1f}"
            for s, r in zip(SEEDS, few, strict=True)
        )
        + "."
    )
    body += f"""

**Start-up** (demo gift-shop KB, 60 entries, bundled encoder; median of 3 fresh processes):
importing ONNX Runtime, kiwipiepy and scikit-learn took {cold["imports_s"]:.1f} s (serving never
imports torch: {"it was imported" if cold["torch_imported"] else "checked"}); loading the saved model and
answering the first (Korean) question took **{cold["load_and_first_answer_s"]:.2f} s** beyond those
imports. Training on the demo KB took {cold["demo_fit_s"]:.0f} s (cross-validated accuracy
{cold["demo_cv_accuracy"]:.3f}, answer threshold {cold["demo_threshold"]:.3f})."""
    write_section("nlu", "Answer engine on BANKING77", body)
    print(body)


if __name__ == "__main__":
    main()
