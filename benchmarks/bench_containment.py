"""Containment at the target precision: the engine of this checkout against the previous one.

Each data set is run through a real ``annae eval --json`` twice in the same run: once with
this checkout's code and once with the previous engine's (the checkout named by
``ANNAE_BASELINE``, default ``/work/main``, put first on ``PYTHONPATH``). Thresholds always
come from the training file only; the test file is scored once.

Data sets (``../shared/datasets``):

* CLINC150: train + valid → test (150 intents, 1,000 out-of-scope test rows);
* CLINC150 with every ``oos`` training row removed (a company without out-of-scope examples);
* BANKING77 full (no out-of-scope test rows);
* ko-delivery: train.csv → test.csv (Korean, colloquial test questions, 50 out of scope);
* the demo KB: every third example of each entry and every second out-of-scope question
  held out as the test file; and the same without its out-of-scope training examples.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from annae.nlu.evaluate import decision_metrics
from benchmarks.bench_nlu import EVAL_WITH_PEAK
from benchmarks.report import table, write_section

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets"
BASELINE = Path(os.environ.get("ANNAE_BASELINE", "/work/main"))
TARGET = 0.95
CACHE = Path(os.environ.get("ANNAE_BENCH_CACHE", Path.home() / ".cache" / "annae-bench"))
"""The previous engine's results, keyed by its git commit and the data: rerunning this
benchmark does not retrain a baseline that cannot have changed."""


def read(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    label = "label" if "label" in rows[0] else "category"
    return [(r["text"], r[label]) for r in rows]


def write(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return path


def demo_split() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The demo KB as train/test: every third example of an entry and every second
    out-of-scope question go to the test file."""
    from annae.kb.demo import demo_path

    data = json.loads(demo_path().read_text())
    train, test = [], []
    for entry in data["entries"]:
        for i, text in enumerate(entry["examples"]):
            (test if i % 3 == 2 else train).append((text, entry["key"]))
    for i, text in enumerate(data["oos"]):
        (test if i % 2 else train).append((text, "oos"))
    return train, test


def datasets(tmp: Path) -> list[tuple[str, Path, Path]]:
    clinc = read(DATA / "clinc150" / "train.csv") + read(DATA / "clinc150" / "valid.csv")
    demo_train, demo_test = demo_split()
    return [
        ("CLINC150", write(tmp / "clinc.csv", clinc), DATA / "clinc150" / "test.csv"),
        (
            "CLINC150, no oos in training",
            write(tmp / "clinc_nooos.csv", [r for r in clinc if r[1] != "oos"]),
            DATA / "clinc150" / "test.csv",
        ),
        (
            "BANKING77 full",
            write(tmp / "banking.csv", read(DATA / "banking77" / "train.csv")),
            write(tmp / "banking_test.csv", read(DATA / "banking77" / "test.csv")),
        ),
        ("ko-delivery", DATA / "ko-delivery" / "train.csv", DATA / "ko-delivery" / "test.csv"),
        ("demo KB", write(tmp / "demo.csv", demo_train), write(tmp / "demo_test.csv", demo_test)),
        (
            "demo KB, no oos in training",
            write(tmp / "demo_nooos.csv", [r for r in demo_train if r[1] != "oos"]),
            write(tmp / "demo_test.csv", demo_test),
        ),
    ]


# Sentence embeddings of batches (training and test texts) come from a disk cache keyed by the
# encoder's configuration, the source of the engine's ``encode`` (an engine that batches int8
# texts gives them other vectors than one that embeds each alone) and the text: both engines
# embed the same ~40,000 texts with the same encoder, which is most of the time of a run on a busy
# machine. Single questions (the latency sample) are always embedded for real.
EMBEDDING_CACHE = """
import hashlib, inspect, json, os
from pathlib import Path
import numpy as np
import annae.nlu.onnx as _onnx

_real_encode = _onnx.OnnxEncoder.encode

def _cached_encode(self, texts, *args, progress=None, **kwargs):
    if len(texts) < 2:
        return _real_encode(self, texts, *args, progress=progress, **kwargs)
    key = json.dumps(self.config, sort_keys=True) + inspect.getsource(_real_encode)
    tag = hashlib.sha1(key.encode()).hexdigest()[:12]
    folder = Path(os.environ["ANNAE_BENCH_EMB_CACHE"]) / tag
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / (hashlib.sha1(t.encode()).hexdigest() + ".npy") for t in texts]
    out = [np.load(p) if p.exists() else None for p in paths]
    todo = [i for i, v in enumerate(out) if v is None]
    if todo:
        fresh = _real_encode(self, [texts[i] for i in todo], *args, **kwargs)
        for j, i in enumerate(todo):
            np.save(paths[i], fresh[j])
            out[i] = fresh[j]
    if progress:
        progress(len(texts))
    return np.stack(out).astype(np.float32)

_onnx.OnnxEncoder.encode = _cached_encode
"""

# The previous engine's `annae eval` may have no containment metrics: run its evaluate() with
# every decision recorded, and compute them here with this checkout's annae.nlu.evaluate. Engines
# from Engine.decide_ranked on decide there; older ones called annae.nlu.evaluate.decide per row.
RECORDED_EVAL = """
import json, sys
from pathlib import Path
import annae.nlu.evaluate as ev
from annae.cli import _read_labelled

rows = []

def record(d, cands):
    rows.append([d.type, cands[0].key if cands else None, cands[0].confidence if cands else 0.0,
                 [c.key for c in d.candidates] if d.type == "clarify" else []])

if hasattr(ev.Engine, "decide_ranked"):
    _ranked = ev.Engine.decide_ranked

    def decide_ranked(self, texts, candidates, *scorers):  # scorers: engines since 204576c
        out = _ranked(self, texts, candidates, *scorers)
        for d, cands in zip(out, candidates):
            record(d, cands)
        return out

    ev.Engine.decide_ranked = decide_ranked
else:
    _decide = ev.decide

    def decide(cands, *args, **kwargs):
        d = _decide(cands, *args, **kwargs)
        record(d, cands)
        return d

    ev.decide = decide
tr = _read_labelled(Path(sys.argv[1]), *sys.argv[2:4])
te = _read_labelled(Path(sys.argv[4]), *sys.argv[2:4])
result = ev.evaluate(*tr, *te, target_precision=float(sys.argv[5]), latency_sample=0)
known = set(tr[1]) - {"oos"}
result["rows"] = rows
result["gold"] = [lab if lab in known else "oos" for lab in te[1]]
print(json.dumps(result, ensure_ascii=False))
"""


def ordered(sets):
    """The data sets, in the order ``BENCH_CONTAINMENT_ONLY`` names them (all by default)."""
    only = os.environ.get("BENCH_CONTAINMENT_ONLY")  # e.g. "ko-delivery;demo KB"
    if not only:
        return sets
    by_name = {name: (name, train, test) for name, train, test in sets}
    return [by_name[n] for n in only.split(";") if n in by_name]


def run_eval(code: Path, train: Path, test: Path, *, recorded: bool = False) -> dict:
    """``annae eval --json`` with the package found first in ``code``; adds CPU seconds.

    ``recorded``: the previous engine, through :data:`RECORDED_EVAL` instead."""
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "OMP_NUM_THREADS": "1",
        "ANNAE_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANNAE_BENCH_EMB_CACHE": str(CACHE / "embeddings"),
    }
    args = ["eval", "--train", str(train), "--test", str(test), "--target-precision", str(TARGET)]
    if recorded:
        script = EMBEDDING_CACHE + RECORDED_EVAL
        cmd = [sys.executable, "-c", script, str(train), "text", "label", str(test)]
        cmd.append(str(TARGET))
    else:
        cmd = [sys.executable, "-c", EMBEDDING_CACHE + EVAL_WITH_PEAK, *args, "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        cmd,
        capture_output=True,
        env=env,
        text=True,
        cwd=code,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"annae eval failed in {code}: {proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if recorded:
        types, top1, conf, offered = zip(*result.pop("rows"), strict=True)
        offered = [set(o) for o in offered]
        result.update(decision_metrics(types, top1, conf, offered, result.pop("gold"), TARGET))
    result["cpu_s"] = round(
        (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1
    )
    return result


def commit_of(code: Path) -> str | None:
    proc = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=code, check=False
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        cwd=code,
        check=False,
    )
    if proc.returncode or dirty.stdout.strip():
        return None  # unknown or uncommitted changes: never cached
    return proc.stdout.strip()


def baseline_eval(train: Path, test: Path, *, cached_only: bool = False) -> dict | None:
    """The previous engine's result for these files, from the cache when its commit is known."""
    commit = commit_of(BASELINE)
    digest = hashlib.sha256(f"{commit}{TARGET}".encode())
    for path in (train, test):
        digest.update(path.read_bytes())
    cached = CACHE / f"{digest.hexdigest()[:24]}.json"
    if commit and cached.exists():
        return json.loads(cached.read_text())
    if cached_only:
        return None
    result = run_eval(BASELINE, train, test, recorded=True)
    result["baseline_commit"] = commit
    if commit:
        CACHE.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(result))
    return result


ENGINE_SOURCES = ("annae/nlu", "annae/dialogue", "annae/settings.py")
"""What ``annae eval`` computes its answers with: the cache key of this checkout's results."""


def code_digest(code: Path) -> str:
    """A digest of the engine's sources under ``code`` (:data:`ENGINE_SOURCES`)."""
    digest = hashlib.sha256()
    for source in ENGINE_SOURCES:
        root = code / source
        paths = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in paths:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(code)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def current_eval(train: Path, test: Path, *, cached_only: bool = False) -> dict | None:
    """This checkout's result, cached by its engine's sources (a change elsewhere, or a rerun
    that only writes the report, does not retrain)."""
    source = code_digest(ROOT)
    digest = hashlib.sha256(f"{source}{TARGET}".encode())
    for path in (train, test):
        digest.update(path.read_bytes())
    cached = CACHE / f"current-{digest.hexdigest()[:24]}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    if cached_only:
        return None
    result = run_eval(ROOT, train, test)
    result["code_digest"] = source[:12]
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(result))
    return result


def pct(value) -> str:
    return "–" if value is None else f"{value:.1%}"


def rows_for(name: str, before: dict | None, after: dict | None) -> list[list[str]]:
    out = []
    for label, r in (("before", before), ("after", after)):
        if r is None:
            out.append([name if label == "before" else "", label] + ["not run"] + [""] * 9)
            continue
        out.append(
            [
                name if label == "before" else "",
                label,
                pct(r.get("answered_precision")),
                pct(r.get("coverage_at_target_precision")),
                pct(r.get("oracle_coverage_at_target")),
                pct(r.get("containment")),
                pct(r.get("in_scope_accuracy")),
                pct(r.get("clarify_rate")),
                pct(r.get("clarify_hit_rate")),
                pct(r.get("wrong_answer_rate")),
                f"{r['threshold']:.3f} / {r['clarify_threshold']:.3f}",
                f"{r['cpu_s']:.0f}",
            ]
        )
    return out


def main() -> None:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        every = [name for name, _, _ in datasets(Path(tmp))]
        for name, train, test in ordered(datasets(Path(tmp))):
            start = time.perf_counter()
            side = os.environ.get("BENCH_CONTAINMENT_SIDE")  # "before" / "after": fill the cache
            # "cached": write the report from results already computed, run nothing new
            cached = side == "cached"
            before = None if side == "after" else baseline_eval(train, test, cached_only=cached)
            after = None if side == "before" else current_eval(train, test, cached_only=cached)
            print(f"  {name}: {time.perf_counter() - start:.0f} s", flush=True)
            if side in ("before", "after"):
                continue
            if before is not None or after is not None:
                results.append((name, before, after))
    if not results:
        return
    (CACHE / "containment.json").write_text(
        json.dumps({n: {"before": b, "after": a} for n, b, a in results}, indent=1)
    )
    missing = [name for name in every if name not in {n for n, _, _ in results}]
    body = table(
        [
            "data set",
            "engine",
            "answered precision",
            "coverage",
            "oracle coverage",
            "containment",
            "top-1 (in scope)",
            "clarify rate",
            "clarify hit rate",
            "wrong answers",
            "thresholds (answer / clarify)",
            "CPU s",
        ],
        [row for n, b, a in results for row in rows_for(n, b, a)],
    )
    write_section(
        "containment",
        f"Containment at target precision {TARGET} (before: commit "
        f"{(commit_of(BASELINE) or str(BASELINE))[:7]}, after: this checkout)",
        DESCRIPTION
        + "\n"
        + body
        + (f"\n\nNot run in this pass: {'; '.join(missing)}." if missing else "")
        + f"\n\nLoad average when the report was written: {os.getloadavg()[0]:.1f}.",
    )


DESCRIPTION = """Each cell is one `annae eval --json` run (train file only → test file), one
thread; the previous engine runs from its own checkout on the same machine. Results are cached
by engine sources and data (a rerun only retrains what changed) and sentence embeddings of
batches by text, so *CPU s* is the model's fit and scoring, not the embedding. *Coverage*: share of all test rows answered;
*oracle coverage*: the share the best single threshold in hindsight would answer at the target
precision with the same scores; *containment*: in-scope rows answered correctly or clarified with
the right entry among the options; *wrong answers*: answered wrongly over all rows (out-of-scope
answered included). The previous engine's `annae eval` has none of the last four: its run
records every decision and this checkout computes them with the same code.
"""


if __name__ == "__main__":
    main()
