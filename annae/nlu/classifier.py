"""The intent classifier: a linear model over stacked features, temperature-calibrated,
with answer and clarify thresholds chosen by cross-validation on the training data.

Below :data:`SMALL_DATA` examples cross-validation chooses between a multinomial logistic
regression (it often generalises better from a few examples per entry: 86.3 % against 85.6 %
for the SVM on BANKING77 with 10 per intent) and a linear SVM; from there up, the linear SVM
(as accurate on large data, and far faster to fit).

scikit-learn conventions: ``fit(texts, labels)``, ``predict_proba(texts)``,
``top_k(texts, k)``. Texts are expected already normalised (``annae.nlu.text.normalize``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, cast

import numpy as np

from annae.nlu import calibration
from annae.nlu.features import FeatureConfig, FrozenTfidf, LexicalFeatures, morphemes, stack
from annae.nlu.policy import CLARIFY_MAX, CLARIFY_MIN_CONFIDENCE

OOS = "oos"
SMALL_DATA = 3000
"""Below this many examples the linear model and the embedding weight are chosen by CV."""
EMBEDDING_WEIGHTS = (1.5, 3.0)
"""Candidate embedding weights for the SVM (small data)."""
LOGREG_WEIGHTS = (2.0, 4.0)
"""Candidate embedding weights for logistic regression (measured flat between 3 and 5)."""
LOGREG_C = 10.0
LOGREG_SOLVER = "newton-cg"
"""Newton-CG reaches the same optimum (the loss is strictly convex) in 4-5x less CPU than the
default L-BFGS-B, whose SciPy 1.17 step costs ten times the loss and gradient at this size
(docs/engine.md, "Training cost")."""
Progress = Callable[[str, int, int], None]


_LIBLINEAR = threading.Lock()
"""Held while a LinearSVC fits: liblinear draws its coordinate order from one random generator
for the whole process (scikit-learn's ``_newrand``, seeded by each fit), so two fits at once in
two threads draw from each other's sequence and the result depends on timing (seen: a
temperature of 1.47440 instead of 1.47444)."""


class TrainingError(ValueError):
    """The training data cannot produce a model (too few entries, empty texts)."""


@dataclass
class Linear:
    """A fitted linear model as its weights (``kind``: the scikit-learn class it came from):
    ``decision_function`` is one sparse-dense product, and serving needs no scikit-learn."""

    kind: str
    coef: np.ndarray  # (n_classes, n_features), one row for two classes like sklearn
    intercept: np.ndarray

    @classmethod
    def of(cls, model) -> Linear:
        return cls(type(model).__name__, np.asarray(model.coef_), np.asarray(model.intercept_))

    def decision_function(self, x) -> np.ndarray:
        raw = np.asarray(x @ self.coef.T) + self.intercept
        return raw.ravel() if raw.shape[1] == 1 else raw


@dataclass
class Fitted:
    lexical: LexicalFeatures
    svm: Linear  # models saved before Linear hold the sklearn model (same decision_function)
    classes: np.ndarray  # indices into IntentClassifier.classes_

    def scores(self, lex_texts, tokens, emb, weight, n_classes) -> np.ndarray:
        parts = self.lexical.parts(list(lex_texts), tokens)
        if isinstance(self.svm, Linear) and all(isinstance(v, FrozenTfidf) for v, _ in parts):
            raw = self._direct(parts, emb, weight)
        else:  # a model saved with scikit-learn objects
            raw = self.svm.decision_function(
                stack(self.lexical.transform(lex_texts, tokens), emb, weight)
            )
        if raw.ndim == 1:  # two classes: sklearn returns one column
            raw = np.stack([-raw, raw], axis=1)
        out = np.full((raw.shape[0], n_classes), -np.inf, dtype=np.float64)
        out[:, self.classes] = raw
        return out

    def _direct(self, parts: list[tuple], emb, weight: float) -> np.ndarray:
        """``decision_function`` of the stacked features without stacking them: each row's
        non-zero features pick their columns of the weights (no scipy matrix is built, which was
        most of the scoring time of a served question). Rows are summed one by one, so a
        question's scores do not depend on the others in its batch."""
        coef = self.svm.coef
        n = len(parts[0][1])
        raw = np.empty((n, coef.shape[0]), dtype=np.float64)
        raw[:] = self.svm.intercept
        offset = 0
        for vec, docs in parts:
            ptr, idx, data = vec.rows(docs)
            cols = idx.astype(np.intp) + offset
            for r in range(n):
                a, b = ptr[r], ptr[r + 1]
                if b > a:
                    raw[r] += coef[:, cols[a:b]].astype(np.float64) @ data[a:b].astype(np.float64)
            offset += len(vec.vocabulary)
        if emb is not None:
            dense = (np.asarray(emb) * weight).astype(np.float32).astype(np.float64)
            block = self._dense_block(offset)
            for r in range(n):
                raw[r] += block @ dense[r]
        return raw.ravel() if raw.shape[1] == 1 else raw

    def _dense_block(self, offset: int) -> np.ndarray:
        """The weights' embedding columns (the last block, from ``offset``) as contiguous
        float64, made once per model (copying them took about 0.1 ms of every scored question)
        and not pickled."""
        block = self.__dict__.get("_dense")
        if block is None:
            block = self.__dict__["_dense"] = np.ascontiguousarray(
                self.svm.coef[:, offset:], np.float64
            )
        return block

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_dense", None)
        return state


@dataclass
class IntentClassifier:
    """Calibrated linear classifier over entries (``oos`` is a class of its own when present)."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    C: float = 0.3
    target_precision: float = 0.95
    clarify_precision: float = 0.80
    """How often the right entry must be among the options when the bot asks to clarify."""
    oos_share: float = 0.20
    folds: int | None = None  # None: 5 below 2,000 examples, else 3
    random_state: int = 0
    model: str = "auto"  # "svm", "logreg", or "auto": chosen by CV below SMALL_DATA, else svm
    n_jobs: int = 1
    """Threads for the independent fits (folds, held-out entries, the final fit); the result
    does not depend on it: each fit is the same and the scores land where they would in turn."""

    # None until fit(), like the other fitted attributes; typed as what fit() leaves
    classes_: np.ndarray = field(init=False, default=cast(np.ndarray, None))
    temperature_: float = field(init=False, default=1.0)
    threshold_: float = field(init=False, default=1.0)
    clarify_threshold_: float = field(init=False, default=1.0)
    oos_score_: calibration.OosScore | None = field(init=False, default=None, repr=False)
    korean_centre_: np.ndarray | None = field(init=False, default=None, repr=False)
    """Subtracted from the e5 block of Korean texts' embeddings (:func:`annae.nlu.multilingual.centred`);
    None: models saved before it, and models without the Korean encoder."""
    fast_: IntentClassifier | None = field(init=False, default=None, repr=False)
    """The Korean fast path (:meth:`annae.nlu.engine.Engine.candidates`): a classifier on the same
    texts with the lexical features alone, calibrated the same way; a Korean question it answers
    on its own is not embedded by e5. None: a model without e5, or saved before it."""
    operating_points_: list[dict] = field(init=False, default_factory=list)
    metrics_: dict = field(init=False, default_factory=dict)
    _model: Fitted | None = field(init=False, default=None, repr=False)

    # ---- training -------------------------------------------------------------------------
    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        embeddings: np.ndarray | None = None,
        progress: Progress | None = None,
        anchor: Sequence[bool] | None = None,
    ) -> IntentClassifier:
        """Fit on normalised ``texts``; ``embeddings`` (one row per text) if the encoder is on.

        ``anchor`` marks texts that describe an entry rather than ask about it (its
        answer): they are always trained on and never scored in cross-validation.
        """
        start = time.perf_counter()
        texts = list(texts)
        label_array = np.asarray(labels, dtype=object)
        if len(texts) != len(label_array):
            raise TrainingError("texts and labels differ in length")
        if any(not t.strip() for t in texts):
            raise TrainingError("training data contains empty texts")
        self.classes_ = np.array(sorted(set(label_array)), dtype=object)
        in_scope = [c for c in self.classes_ if c != OOS]
        if len(in_scope) < 2:
            if len(in_scope) == 0 and len(texts):
                raise TrainingError(
                    "every example is marked out of scope (oos): at least two entries "
                    "with examples are needed"
                )
            raise TrainingError(f"need at least two entries to tell apart, got {len(in_scope)}")
        y = np.searchsorted(self.classes_, label_array)
        is_anchor = np.zeros(len(texts), bool) if anchor is None else np.asarray(anchor, bool)
        tokens = [morphemes(t) for t in texts] if self.features.morphemes else None
        if self.folds is None:
            self.folds = 5 if len(texts) < 2000 else 3
        if self.model not in ("auto", "svm", "logreg"):
            raise TrainingError(f"unknown classifier model {self.model!r} (svm or logreg)")
        oos_idx = self._oos_index()

        def step(stage: str, done: int, total: int) -> None:
            if progress:
                progress(stage, done, total)

        # 1. out-of-fold scores: how the model does on questions it has not seen. On small
        #    data the linear model and the weight of the sentence embeddings are chosen here
        #    too (more weight generalises better from few examples; less suits large or
        #    Korean-heavy data).
        best = None
        candidates = self._candidates(len(texts), embeddings is not None)
        for i, (kind, weight) in enumerate(candidates):
            oof = self._out_of_fold(texts, tokens, embeddings, y, is_anchor, weight, kind)
            step("cross-validation", i + 1, len(candidates))
            ok = (oof.argmax(1) == y)[~is_anchor].mean()
            self.metrics_.setdefault("cv_candidates", []).append(
                {"model": kind, "embedding_weight": weight, "cv_accuracy": round(float(ok), 4)}
            )
            if best is None or ok > best[0] + 1e-9:
                best = (ok, kind, weight, oof)
        assert best is not None  # _candidates offers at least one
        _, self.model, weight, oof = best
        self.features = replace(self.features, embedding_weight=weight)
        self.metrics_.update(embedding_weight=weight, model=self.model)
        # 2. pseudo out-of-scope: score each entry's examples with a model that never saw that
        #    entry; 4. (alongside) the model that serves: all the data
        pseudo = []
        groups = self._class_groups(in_scope)

        def held_out(held: list[str]) -> np.ndarray | None:
            held_idx = np.searchsorted(self.classes_, held)
            train = np.flatnonzero(~np.isin(y, held_idx))
            test = np.flatnonzero(np.isin(y, held_idx) & ~is_anchor)
            if len(np.unique(y[train])) < 2:  # too few entries left to train a model on
                return None
            model = self._fit_subset(texts, tokens, embeddings, y, train)
            rows = _subset(texts, tokens, embeddings, test)
            return model.scores(*rows, self.features.embedding_weight, len(self.classes_))

        def every_row() -> Fitted:
            return self._fit_subset(texts, tokens, embeddings, y, np.arange(len(texts)))

        jobs: list[Callable[[], Any]] = [partial(held_out, held) for held in groups]
        results = self._map(lambda job: job(), [*jobs, every_row])
        for g in range(len(groups)):
            scores = next(results)
            if scores is not None:
                pseudo.append(scores)
            step("out-of-scope simulation", g + 1, len(groups))
        (final,) = results  # the last result; the pool ends with it
        # 3. calibrate and choose thresholds
        self.temperature_ = calibration.fit_temperature(oof, y)
        questions = ~is_anchor
        self._choose_thresholds(
            oof[questions],
            y[questions],
            np.concatenate(pseudo) if pseudo else np.zeros((0, len(self.classes_))),
            oos_idx,
        )
        self._model = final
        step("final fit", 1, 1)
        self.metrics_["fit_seconds"] = round(time.perf_counter() - start, 2)
        self.metrics_["n_train"] = len(texts)
        self.metrics_["n_entries"] = len(in_scope)
        self.metrics_["limits"] = self._limits(texts, label_array, is_anchor)
        return self

    def _limits(self, texts, labels, anchor) -> list[str]:
        """What this model cannot promise, in words (``annae train`` prints them)."""
        m, out = self.metrics_, []
        questions = [(t, lab) for t, lab, a in zip(texts, labels, anchor, strict=True) if not a]
        per_entry = Counter(label for _, label in questions)
        owners: dict[str, set[str]] = {}
        for text, label in questions:
            owners.setdefault(text, set()).add(label)
        thin = [e for e in self.classes_ if e != OOS and per_entry.get(e, 0) < 2]
        if thin:
            out.append(
                f"{len(thin)} of {m['n_entries']} entries have fewer than 2 example questions: "
                "cross-validation cannot test them, so their answers count as unproven "
                "(add 3 or more examples per entry)"
            )
        shared = sum(len(labs) > 1 for labs in owners.values())
        if shared:
            out.append(
                f"{shared} example text(s) appear under more than one entry (or as oos): "
                "the model cannot tell those entries apart"
            )
        if not m.get("n_oos_examples") and not m.get("n_pseudo_oos"):
            out.append(
                "no out-of-scope estimate (no oos examples, and too few entries to hold some "
                "out): the expected precision holds only for questions that one of the "
                "entries answers"
            )
        elif not m.get("n_oos_examples"):
            out.append(
                "no oos examples: out-of-scope questions are estimated from entries held out "
                "of training only (add oos examples of what the bot must not answer)"
            )
        if not m.get("threshold_reached_target"):
            out.append(
                f"the target precision {self.target_precision:.2f} cannot be reached on this "
                "data: the bot will not answer directly; it "
                + (
                    "asks to clarify or hands off"
                    if self.clarify_threshold_ <= 1.0
                    else "hands every question to a person"
                )
                + " (add example questions, or lower the target)"
            )
        return out

    def _candidates(self, n: int, has_embeddings: bool) -> list[tuple[str, float]]:
        """(linear model, embedding weight) pairs to compare by cross-validation."""
        weight = self.features.embedding_weight
        small = n < SMALL_DATA
        if self.model != "auto":
            models = [self.model]
        else:
            models = ["logreg", "svm"] if small else ["svm"]
        out = []
        for model in models:  # logistic regression first: it wins ties
            grid = LOGREG_WEIGHTS if model == "logreg" else EMBEDDING_WEIGHTS
            if has_embeddings and small and weight == 1.5:
                out += [(model, w) for w in grid]
            else:
                out.append((model, weight))
        return out

    def _out_of_fold(self, texts, tokens, embeddings, y, anchor, weight, kind) -> np.ndarray:
        oof = np.full((len(texts), len(self.classes_)), -np.inf)

        def scored(fold: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
            train, test = fold
            fitted = self._fit_subset(texts, tokens, embeddings, y, train, weight, kind)
            return fitted.scores(
                *_subset(texts, tokens, embeddings, test), weight, len(self.classes_)
            )

        folds = list(self._folds(y, anchor))
        for (_, test), scores in zip(folds, self._map(scored, folds), strict=True):
            oof[test] = scores
        return oof

    def _map(self, fn: Callable, items: list) -> Iterator:
        """``fn`` of each item, in order, on :attr:`n_jobs` threads: one thread's feature
        counting (Python, under the GIL) overlaps another's solver (which releases it). The
        SVM's solver runs one at a time (:data:`_LIBLINEAR`); logistic regression's do not."""
        if self.n_jobs <= 1 or len(items) < 2:
            yield from map(fn, items)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(
            min(self.n_jobs, len(items)), thread_name_prefix="annae-fit"
        ) as pool:
            yield from pool.map(fn, items)

    def _oos_index(self) -> int | None:
        hits = np.flatnonzero(self.classes_ == OOS)
        return int(hits[0]) if len(hits) else None

    def _fit_subset(
        self, texts, tokens, emb, y, idx, weight: float | None = None, kind: str | None = None
    ) -> Fitted:
        sub_texts, sub_tokens, sub_emb = _subset(texts, tokens, emb, idx)
        lexical = LexicalFeatures(self.features).fit(sub_texts, sub_tokens)
        weight = self.features.embedding_weight if weight is None else weight
        x = stack(lexical.transform(sub_texts, sub_tokens), sub_emb, weight)
        if len(np.unique(y[idx])) < 2:
            raise TrainingError("a cross-validation fold holds a single entry; add more examples")
        if (kind or self.model) == "logreg":
            from sklearn.linear_model import LogisticRegression

            svm = LogisticRegression(C=LOGREG_C, solver=LOGREG_SOLVER, max_iter=3000)
            alone: contextlib.AbstractContextManager = contextlib.nullcontext()
        else:
            from sklearn.svm import LinearSVC

            svm = LinearSVC(C=self.C, tol=1e-3, random_state=self.random_state, max_iter=5000)
            alone = _LIBLINEAR  # one at a time, or the fit depends on timing
        with alone:
            svm.fit(x, y[idx])
        return Fitted(lexical, Linear.of(svm), svm.classes_)

    def _folds(self, y: np.ndarray, anchor: np.ndarray):
        """Stratified folds; an entry with fewer examples than folds appears in fewer test folds."""
        folds = self.folds
        assert folds is not None  # fit() chose it
        rng = np.random.default_rng(self.random_state)
        fold_of = np.full(len(y), -1, dtype=int)
        offset = 0
        for cls in np.unique(y):
            idx = np.flatnonzero((y == cls) & ~anchor)
            rng.shuffle(idx)
            fold_of[idx] = (np.arange(len(idx)) + offset) % folds
            offset += len(idx)
        for k in range(folds):
            test = np.flatnonzero(fold_of == k)
            train = np.flatnonzero(fold_of != k)  # anchors (-1) are always in training
            if len(test) and len(np.unique(y[train])) >= 2:
                yield train, test

    def _class_groups(self, in_scope: list[str]) -> list[list[str]]:
        rng = np.random.default_rng(self.random_state + 1)
        order = list(in_scope)
        rng.shuffle(order)
        assert self.folds is not None  # fit() chose it
        n = min(self.folds, len(order))
        return [order[i::n] for i in range(n)]

    def _choose_thresholds(self, oof, y, pseudo, oos_idx) -> None:
        """Answer threshold, clarify threshold and out-of-scope score from out-of-fold
        scores (``oof``, rows labelled ``y``) and pseudo out-of-scope scores."""
        probs = calibration.probabilities(oof, self.temperature_)
        in_mask = y != (oos_idx if oos_idx is not None else -1)
        top_in, top_conf = self._top_in_scope(probs)
        correct = top_in == y
        oos_probs = []  # one per source of out-of-scope questions: each weighs the same
        if oos_idx is not None and (~in_mask).any():
            oos_probs.append(probs[~in_mask])
        if len(pseudo):
            oos_probs.append(calibration.probabilities(pseudo, self.temperature_))
        oos_conf = [self._top_in_scope(p)[1] for p in oos_probs]
        curve = calibration.precision_curve(
            top_conf[in_mask], correct[in_mask], oos_conf, oos_share=self.oos_share
        )
        choice = curve.choose(self.target_precision)
        self.threshold_ = choice.threshold
        self.operating_points_ = curve.operating_points()
        self.clarify_threshold_ = self._choose_clarify(probs[in_mask], y[in_mask], oos_probs)
        self.oos_score_ = calibration.fit_oos_score(
            top_conf[in_mask], oos_conf, oos_share=self.oos_share, target=self.target_precision
        )
        self.metrics_.update(
            cv_accuracy=round(float(correct[in_mask].mean()), 4),
            expected_precision=round(choice.expected_precision, 4),
            expected_coverage=round(choice.expected_coverage, 4),
            threshold_reached_target=choice.reached_target,
            temperature=round(self.temperature_, 4),
            n_oos_examples=int((~in_mask).sum()),
            n_pseudo_oos=int(len(pseudo)),
            oos_share_assumed=self.oos_share,
            target_precision=self.target_precision,
            clarify_target=self.clarify_precision,
            oos_threshold=round(self.oos_score_.threshold, 4),
            oos_expected_precision=round(self.oos_score_.expected_precision, 4),
            operating_points=self.operating_points_,
        )

    def _set_confidence(
        self, probs: np.ndarray, k: int = CLARIFY_MAX
    ) -> tuple[np.ndarray, np.ndarray]:
        """Summed confidence of the entries a clarify question offers (the top ``k``, less
        a third one that adds next to nothing: :func:`annae.nlu.policy.clarify_options`),
        and those entries (-1 where dropped), per row."""
        masked = self._mask_oos(probs)
        order = np.argsort(-masked, axis=1)[:, :k]
        conf = np.take_along_axis(masked, order, axis=1)
        keep = np.ones_like(conf, dtype=bool)
        keep[:, 2:] = conf[:, 2:] >= CLARIFY_MIN_CONFIDENCE
        return (conf * keep).sum(1), np.where(keep, order, -1)

    def _choose_clarify(self, probs_in, y_in, oos_probs) -> float:
        """The summed confidence of the options from which a clarify question holds the
        right entry with ``clarify_precision``, among questions below the answer threshold
        (the same estimate as the answer threshold); never above the answer threshold."""
        below = self._top_in_scope(probs_in)[1] < self.threshold_
        sets, order = self._set_confidence(probs_in[below])
        hit = (order == y_in[below][:, None]).any(1)
        oos_sets = []
        for p in oos_probs:
            p = p[self._top_in_scope(p)[1] < self.threshold_]
            oos_sets.append(self._set_confidence(p)[0])
        curve = calibration.precision_curve(sets, hit, oos_sets, oos_share=self.oos_share)
        choice = curve.choose(self.clarify_precision)
        self.metrics_["clarify_expected_precision"] = round(choice.expected_precision, 4)
        self.metrics_["clarify_expected_rate"] = round(choice.expected_coverage * below.mean(), 4)
        if not choice.reached_target or len(sets) == 0:
            return max(self.threshold_, 1.0)
        return min(choice.threshold, self.threshold_)

    # ---- prediction -----------------------------------------------------------------------
    def _mask_oos(self, probs: np.ndarray) -> np.ndarray:
        idx = self._oos_index()
        if idx is None:
            return probs
        probs = probs.copy()
        probs[:, idx] = -1.0
        return probs

    def _top_in_scope(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        masked = self._mask_oos(probs)
        top = masked.argmax(1)
        return top, masked[np.arange(len(top)), top]

    def predict_proba(
        self,
        texts: Sequence[str],
        embeddings: np.ndarray | None = None,
        tokens: list[list[str]] | None = None,
    ) -> np.ndarray:
        """Calibrated probabilities, one column per class in ``classes_`` (``oos`` included);
        ``tokens``: the texts' :func:`morphemes` where the caller has them already."""
        if self._model is None:
            raise RuntimeError("the classifier is not fitted")
        texts = list(texts)
        if not self.uses_morphemes:
            tokens = None
        elif tokens is None:
            tokens = [morphemes(t) for t in texts]
        scores = self._model.scores(
            texts, tokens, embeddings, self.features.embedding_weight, len(self.classes_)
        )
        return calibration.probabilities(scores, self.temperature_)

    @property
    def uses_morphemes(self) -> bool:
        """Whether the fitted features read kiwipiepy's morphemes."""
        return self._model is not None and self._model.lexical.morph is not None

    def top_k(self, probs: np.ndarray, k: int = 3) -> list[list[tuple[str, float]]]:
        """The ``k`` most likely in-scope entries per row, as ``(label, confidence)``."""
        masked = self._mask_oos(probs)
        k = min(k, len(self.classes_) - (self._oos_index() is not None))
        order = np.argsort(-masked, axis=1)[:, :k]
        return [
            [(str(self.classes_[j]), float(masked[i, j])) for j in row]
            for i, row in enumerate(order)
        ]


def _subset(
    texts, tokens, embeddings: np.ndarray | None, idx
) -> tuple[list, list | None, np.ndarray | None]:
    """The rows ``idx`` of the texts, of their tokens and of their embeddings (None stays None)."""
    return (
        [texts[i] for i in idx],
        None if tokens is None else [tokens[i] for i in idx],
        None if embeddings is None else embeddings[idx],
    )


__all__ = ["IntentClassifier", "TrainingError", "OOS"]
