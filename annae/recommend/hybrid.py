"""The default recommender: every signal blended, with the blend fitted on a time-based
validation split carved from the end of the training period (never from the test period).

Two stages. A linear blend (weights by coordinate ascent on validation NDCG@10) ranks the
whole catalogue; gradient-boosted trees, trained on the same validation split, re-rank its
top candidates. There are two of each: ``novel`` (products new to the customer, "you may
also like") and ``repeat`` (everything; it decides how "buy again" and "you may also like"
interleave).
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from annae.recommend.matrix import DAY, Interactions, binarize
from annae.recommend.models import (
    ALS,
    EASE,
    ContentKNN,
    ItemKNN,
    Popularity,
    Recommender,
    ndcg,
    top_k,
)
from annae.recommend.trees import TreeEnsemble

log = logging.getLogger(__name__)

# Signals for any product ("you may also like").
NOVEL = (
    "ease",
    "ease_recent",
    "knn",
    "als",
    "content",
    "pop",
    "pop7",
    "pop30",
    "activity",
    "user_recent",
    "user_repeat",
    "user_breadth",
    "user_due",
    "trend",
    "item_fresh",
)
# Signals about the customer's own past products ("buy again"); zero elsewhere.
REPEAT = (
    "hist",
    "hist_count",
    "hist_logcount",
    "hist_share",
    "hist_recency",
    "hist_recency7",
    "hist_recency90",
    "hist_pop7",
    "hist_rate",
    "hist_last",
    "hist_due",
    "hist_decay",
    "hist_decay_share",
    "hist_decay14",
    "hist_own_due",
)
FEATURES = NOVEL + REPEAT
F = {name: j for j, name in enumerate(FEATURES)}
# the signals of hybrids saved before the decayed-count, customer and trend signals were added
_V1_FEATURES = (
    *NOVEL[:10],
    *REPEAT[:11],
)

_BASE = {
    "ease": 1.0,
    "ease_recent": 0.3,
    "knn": 0.2,
    "als": 0.3,
    "content": 0.1,
    "pop7": 0.5,
    "pop30": 0.2,
}
DEFAULT_WEIGHTS = {
    "novel": _BASE,
    "repeat": {
        **_BASE,
        "hist": 1.0,
        "hist_count": 1.0,
        "hist_logcount": 0.5,
        "hist_share": 0.5,
        "hist_recency": 0.5,
        "hist_pop7": 0.5,
        "hist_rate": 0.5,
        "hist_decay": 0.5,
    },
}
GRID = (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
MODES = ("novel", "repeat")
MIX = (0.0, 0.25, 0.5, 1.0, 2.0)  # how much of the linear blend is added to the trees' score


def _scale_rows(mat: np.ndarray) -> np.ndarray:
    """Divide each row by its largest absolute value (per-customer normalisation)."""
    peak = np.abs(mat).max(axis=1, keepdims=True)
    return mat / np.where(peak > 0, peak, 1.0)


def _log_scale(counts: np.ndarray) -> np.ndarray:
    top = np.log1p(counts.max()) if len(counts) and counts.max() > 0 else 1.0
    return (np.log1p(counts) / top).astype(np.float32)


class Hybrid(Recommender):
    """Blend of EASE (ALS past ``ease_max_items``), item kNN, ALS, description TF-IDF,
    all-time / 30-day / 7-day popularity and the customer's repurchase signals."""

    name = "hybrid"

    def __init__(
        self,
        val_days: float = 30.0,
        max_val_users: int = 2000,
        candidates: int = 100,
        serve_candidates: int = 50,
        ease_max_items: int = 12000,
        als_factors: int = 64,
        recency_days: float = 30.0,
        decay_days: float = 90.0,
        learn: bool = True,
        rerank: bool = True,
        negatives: float = 0.3,
        trees: int = 80,
        bags: int = 3,
        min_val_customers: int = 50,
        min_rerank_customers: int = 300,
        holdout: float = 0.25,
        max_history: int = 200,
        val_windows: int = 4,
        val_stride_days: float | None = None,
        random_state: int = 0,
    ) -> None:
        self.min_val_customers = min_val_customers
        self.min_rerank_customers = min_rerank_customers
        self.holdout = holdout
        self.max_history = max_history
        self.val_windows = val_windows
        self.val_stride_days = val_stride_days
        self.val_days = val_days
        self.max_val_users = max_val_users
        self.candidates = candidates
        self.serve_candidates = serve_candidates
        self.ease_max_items = ease_max_items
        self.als_factors = als_factors
        self.recency_days = recency_days
        self.decay_days = decay_days
        self.learn = learn
        self.rerank = rerank
        self.negatives = negatives
        self.trees = trees
        self.bags = bags
        self.random_state = random_state

    # -- fitting ---------------------------------------------------------------------------
    def _fit(self, data: Interactions) -> None:
        self.weights_ = {
            m: np.array([DEFAULT_WEIGHTS[m].get(f, 0.0) for f in FEATURES], np.float32)
            for m in MODES
        }
        self.rerankers_: dict[str, TreeEnsemble] = {}
        self.mix_: dict[str, float] = {}
        self.weights_source_ = "default"
        self.validation_: dict = {}
        self.timings_: dict[str, float] = {}
        if self.learn:
            self._learn(data)
        t = time.perf_counter()
        self._fit_components(data)
        self.timings_["components"] = round(time.perf_counter() - t, 2)

    def _fit_components(self, data: Interactions) -> None:
        with threadpool_limits(1):
            self.ease_ = EASE(max_items=self.ease_max_items).fit(data)
            self.knn_ = ItemKNN().fit(data)
            self.als_ = ALS(factors=self.als_factors, random_state=self.random_state).fit(data)
            self.content_ = ContentKNN().fit(data)
        c7 = Popularity(days=7).fit(data).counts_
        c30 = Popularity(days=30).fit(data).counts_
        self.pop_ = _log_scale(Popularity().fit(data).counts_)
        self.pop7_ = _log_scale(c7)
        self.pop30_ = _log_scale(c30)
        hist = self.history_
        self.days_ = _entries_of(data.last_seen(), hist, "recency")
        buyers = np.bincount(hist.indices, minlength=data.n_items)
        repeaters = np.bincount(hist.indices[hist.data > 1], minlength=data.n_items)
        self.item_rate_ = (repeaters / np.maximum(buyers, 1)).astype(np.float32)
        user_day = np.unique(data.users.astype(np.int64) * 100_000 + data.times // int(DAY))
        self.user_days_ = np.bincount(user_day // 100_000, minlength=data.n_users).astype(
            np.float32
        )
        self.item_gap_ = _repurchase_gaps(data)
        self.decay_ = _decayed_counts(data, self.decay_days, hist)
        self.decay14_ = _decayed_counts(data, 14.0, hist)
        self.first_ = _entries_of(data.last_seen(first=True), hist, "first-seen")
        self.trend_ = np.clip(np.log((c7 + 1.0) / (c30 * 7.0 / 30.0 + 1.0)) / 2.0, -1.0, 1.0)
        self.trend_ = self.trend_.astype(np.float32)
        last_sold = np.full(data.n_items, -np.inf)
        np.maximum.at(last_sold, data.items, data.times.astype(np.float64))
        self.fresh_ = np.exp(-(data.end_time - last_sold) / DAY / 14.0).astype(np.float32)
        trip_users, trip_days = user_day // 100_000, user_day % 100_000
        span = np.zeros(data.n_users)
        np.maximum.at(span, trip_users, trip_days.astype(np.float64))
        first_trip = np.full(data.n_users, np.inf)
        np.minimum.at(first_trip, trip_users, trip_days.astype(np.float64))
        span = np.where(np.isfinite(first_trip), span - first_trip, 0.0)
        # the customer's mean days between shopping days (60 with a single one)
        self.user_gap_ = np.where(
            self.user_days_ > 1, span / np.maximum(self.user_days_ - 1, 1), 60.0
        ).astype(np.float32)
        # share of the customer's (product, day) purchases that re-bought an earlier product
        n_hist = np.diff(hist.indptr)
        owner = np.repeat(np.arange(data.n_users), n_hist)
        total = np.bincount(owner, weights=hist.data, minlength=data.n_users)
        self.user_repeat_ = ((total - n_hist) / np.maximum(total, 1.0)).clip(0.0, 1.0)
        self.user_repeat_ = self.user_repeat_.astype(np.float32)
        self.user_breadth_ = (np.log1p(n_hist) / 6.0).astype(np.float32)

    def _window(
        self, data: Interactions, end: float, rng: np.random.Generator
    ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None, int]:
        """Base models fitted before ``end - val_days``; candidates for the customers who bought
        in the ``val_days`` after it (None when there are too few)."""
        cut = end - self.val_days * DAY
        early = data.times < cut
        late_mask = ~early & (data.times < end)
        if early.sum() == 0 or late_mask.sum() == 0:
            return None, 0
        part = data.subset(early)
        seen = np.bincount(part.users, minlength=data.n_users) > 0
        late = data.subset(late_mask)
        val_users = np.unique(late.users[seen[late.users]])
        if len(val_users) < self.min_val_customers:
            return None, len(val_users)
        inner = Hybrid(
            learn=False,
            ease_max_items=self.ease_max_items,
            als_factors=self.als_factors,
            recency_days=self.recency_days,
            decay_days=self.decay_days,
            max_history=self.max_history,
            random_state=self.random_state,
        ).fit(part)
        if len(val_users) > self.max_val_users:
            val_users = np.sort(rng.choice(val_users, self.max_val_users, replace=False))
        truth = sp.csr_matrix(
            (np.ones(len(late.users), np.float32), (late.users, late.items)),
            shape=(data.n_users, data.n_items),
        )[val_users]
        truth.data[:] = 1.0
        return inner._candidates(val_users, truth), len(val_users)

    def _learn(self, data: Interactions) -> None:
        """Fit the blend weights and re-rankers on the last ``val_windows`` × ``val_days`` of
        ``data`` (held-out customers come from the most recent window only)."""
        t0 = time.perf_counter()
        rng = np.random.default_rng(self.random_state)
        windows = []
        stride = self.val_stride_days or self.val_days
        for back in range(self.val_windows):
            got, n_users = self._window(data, data.end_time - back * stride * DAY, rng)
            if got is None:
                if back == 0:
                    log.info("hybrid: %d validation customers, using default weights", n_users)
                    self.validation_ = {"customers": int(n_users), "note": "too few to learn from"}
                    return
                break
            windows.append(got)
        self.timings_["validation"] = round(time.perf_counter() - t0, 2)
        for mode in MODES:
            t1 = time.perf_counter()
            parts = [win[mode] for win in windows]
            newest = np.zeros(sum(len(p[2]) for p in parts), bool)
            newest[: len(parts[0][2])] = True
            feats, labels, n_rel = (np.concatenate([p[j] for p in parts]) for j in range(3))
            keep = n_rel > 0
            feats, labels, n_rel, newest = feats[keep], labels[keep], n_rel[keep], newest[keep]
            active = [f in NOVEL or mode == "repeat" for f in FEATURES]
            # a quarter of the validation customers is held out to choose how much of the
            # linear blend to add to the trees' scores (the trees fit the rest)
            # the same customers are held out whatever the number of windows (newest rows first)
            hold = newest & (
                np.random.default_rng(self.random_state).random(len(n_rel)) < self.holdout
            )
            fit = ~hold
            w, before, after = coordinate_ascent(
                feats[fit], labels[fit], n_rel[fit], self.weights_[mode], active
            )
            self.weights_[mode] = w
            report = {
                "customers": int(keep.sum()),
                "ndcg@10_default_blend": round(before, 4),
                "ndcg@10_learnt_blend": round(after, 4),
            }
            if self.rerank and fit.sum() >= self.min_rerank_customers:
                ens = self._fit_reranker(feats[fit], labels[fit], rng)
                self.rerankers_[mode] = ens
                x = feats[hold]
                raw = ens.decision(x.reshape(-1, x.shape[2])).reshape(x.shape[:2])
                linear = x @ w
                tried = {a: ndcg_at(raw + a * linear, labels[hold], n_rel[hold]) for a in MIX}
                self.mix_[mode] = max(tried, key=tried.__getitem__)
                report["holdout_customers"] = int(hold.sum())
                report["ndcg@10_holdout_blend"] = round(
                    ndcg_at(linear, labels[hold], n_rel[hold]), 4
                )
                report["ndcg@10_holdout_trees"] = round(tried[0.0], 4)
                report["ndcg@10_holdout_trees_plus_blend"] = round(tried[self.mix_[mode]], 4)
                report["mix"] = self.mix_[mode]
            self.validation_[mode] = report
            self.timings_[f"learn_{mode}"] = round(time.perf_counter() - t1, 2)
        self.weights_source_ = "validation"
        self.validation_["days"] = self.val_days
        self.validation_["windows"] = len(windows)

    def _fit_reranker(
        self, feats: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> TreeEnsemble:
        """Gradient-boosted trees over the candidates' signals (all positives, some negatives);
        ``bags`` ensembles, each on its own sample of negatives, averaged (steadier rankings)."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        x = feats.reshape(-1, feats.shape[2])
        y = labels.ravel()
        bags = []
        for b in range(max(self.bags, 1)):
            keep = y | (rng.random(len(y)) < self.negatives)
            model = HistGradientBoostingClassifier(
                max_iter=self.trees,
                learning_rate=0.1,
                max_leaf_nodes=31,
                max_depth=6,
                min_samples_leaf=50,
                early_stopping=False,
                random_state=self.random_state + b,
            )
            with threadpool_limits(1):
                model.fit(x[keep], y[keep])
            bags.append(TreeEnsemble.from_sklearn(model))
        return TreeEnsemble.average(bags)

    def _candidates(
        self, users: np.ndarray, truth: sp.csr_matrix, batch: int = 128
    ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per mode and customer the top ``candidates`` products by the default blend: features,
        labels, and the number of relevant products (relevant ones outside the candidates count too)."""
        m = min(self.candidates, self.n_items_)
        parts: dict[str, list[list[np.ndarray]]] = {mode: [[], [], []] for mode in MODES}
        for start in range(0, len(users), batch):
            sel = slice(start, start + batch)
            f = self.features(users[sel])
            for mode in MODES:
                s = f @ self.weights_[mode]
                t = truth[sel]
                if mode == "novel":
                    h = binarize(self.history_[users[sel]])
                    s[h.nonzero()] = -np.inf
                    t = (t - t.multiply(h)).tocsr()
                    t.eliminate_zeros()
                cand = top_k(s, m)
                rows = np.arange(len(cand))[:, None]
                parts[mode][0].append(f[rows, cand])
                parts[mode][1].append(np.asarray(t[rows, cand].todense()) > 0)
                parts[mode][2].append(np.asarray(t.sum(axis=1)).ravel())
        out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for mode in MODES:
            feats, labels, n_rel = parts[mode]
            out[mode] = (np.concatenate(feats), np.concatenate(labels), np.concatenate(n_rel))
        return out

    # -- scoring ---------------------------------------------------------------------------
    def features(self, users: np.ndarray) -> np.ndarray:
        """(customers, products, len(FEATURES)) signal values, each scaled to about [0, 1]."""
        users = np.atleast_1d(users)
        out = np.zeros((len(users), self.n_items_, len(FEATURES)), np.float32)
        hist = self.history_[users]
        ptr = self.history_.indptr
        days = (
            np.concatenate([self.days_[ptr[u] : ptr[u + 1]] for u in users])
            if len(users)
            else np.zeros(0)
        )
        rows, cols = np.repeat(np.arange(len(users)), np.diff(hist.indptr)), hist.indices
        # the profile (what similarity signals start from): the max_history most recent products
        keep = np.ones(len(cols), bool)
        for r in np.flatnonzero(np.diff(hist.indptr) > self.max_history):
            a, b = hist.indptr[r], hist.indptr[r + 1]
            keep[a:b] = _most_recent(days[a:b], self.max_history)
        binary = sp.csr_matrix(
            (keep.astype(np.float32), hist.indices, hist.indptr), shape=hist.shape
        )
        recent = sp.csr_matrix(
            (
                np.exp(-days / self.recency_days).astype(np.float32) * keep,
                hist.indices,
                hist.indptr,
            ),
            shape=hist.shape,
        )
        ease = self.ease_
        if ease.fallback_ is None:
            out[:, :, F["ease"]] = _scale_rows(np.asarray(binary @ ease.weights_))
            out[:, :, F["ease_recent"]] = _scale_rows(np.asarray(recent @ ease.weights_))
        else:
            out[:, :, F["ease"]] = _scale_rows(ease.fallback_.score(users))
        out[:, :, F["knn"]] = _scale_rows((binary @ self.knn_.similarity_).toarray())
        out[:, :, F["als"]] = _scale_rows(self.als_.score(users))
        out[:, :, F["content"]] = _scale_rows((binary @ self.content_.similarity_).toarray())
        out[:, :, F["pop"]] = self.pop_
        out[:, :, F["pop7"]] = self.pop7_
        out[:, :, F["pop30"]] = self.pop30_
        out[:, :, F["activity"]] = (np.log1p(self.user_days_[users]) / 5.0)[:, None]
        out[:, :, F["user_repeat"]] = self.user_repeat_[users][:, None]
        out[:, :, F["user_breadth"]] = self.user_breadth_[users][:, None]
        out[:, :, F["trend"]] = self.trend_
        out[:, :, F["item_fresh"]] = self.fresh_
        has = np.diff(hist.indptr) > 0

        def per_customer(ufunc: np.ufunc, values: np.ndarray) -> np.ndarray:
            """``ufunc`` over each customer's entries of ``hist`` (0 for a customer without any)."""
            got = np.zeros(len(users), np.float32)
            got[has] = ufunc.reduceat(values, hist.indptr[:-1][has])
            return got

        if len(cols):
            counts = hist.data
            last_rows = per_customer(np.minimum, days)
            out[:, :, F["user_recent"]] = np.where(has, np.exp(-last_rows / 30.0), 0.0)[:, None]
            out[:, :, F["user_due"]] = np.where(has, self._due(last_rows, users), 0.0)[:, None]
            entries = np.concatenate([np.arange(ptr[u], ptr[u + 1]) for u in users])
            decay = self.decay_[entries]
            out[rows, cols, len(NOVEL) :] = self._repeat_signals(
                counts,
                days,
                decay,
                cols,
                per_customer(np.maximum, counts)[rows],
                last_rows[rows],
                self.user_days_[users][rows],
                per_customer(np.maximum, decay)[rows],
                self.decay14_[entries],
                self.first_[entries],
            )
        return out

    def score(self, users: np.ndarray, mode: str = "repeat") -> np.ndarray:
        """Scores for every product; with re-rankers the top ``serve_candidates`` of the blend are
        re-scored by the trees and placed above the rest."""
        users = np.atleast_1d(users)
        if len(users) == 1:
            return self._score_one(int(users[0]), mode)[None, :]
        feats = self.features(users)
        linear = feats @ self.weights_[mode]
        if mode == "novel":
            linear[feats[:, :, F["hist"]] > 0] = -np.inf
        ens = self.rerankers_.get(mode)
        if ens is None:
            return linear
        cand = top_k(linear, min(self.serve_candidates, self.n_items_))
        rows = np.arange(len(cand))[:, None]
        raw = ens.decision(feats[rows, cand].reshape(-1, feats.shape[2])).reshape(cand.shape)
        raw = raw + self.mix_.get(mode, 0.0) * linear[rows, cand]
        return _place_on_top(linear, cand, raw)

    def _signals_one(self, user: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One customer's NOVEL signals for every product (len(NOVEL) × products), their past
        products (sorted codes) and those products' REPEAT signals."""
        n = self.n_items_
        start, end = self.history_.indptr[user], self.history_.indptr[user + 1]
        idx = self.history_.indices[start:end]
        counts = self.history_.data[start:end]
        days = self.days_[start:end]
        novel = np.zeros((len(NOVEL), n), np.float32)
        keep = _most_recent(days, self.max_history) if len(idx) > self.max_history else slice(None)
        pidx, pdays = idx[keep], days[keep]  # the profile: at most max_history recent products
        ease = self.ease_
        if ease.fallback_ is None:
            two = sp.csr_matrix(
                (
                    np.concatenate(
                        [np.ones(len(pidx), np.float32), np.exp(-pdays / self.recency_days)]
                    ),
                    np.concatenate([pidx, pidx]),
                    np.array([0, len(pidx), 2 * len(pidx)]),
                ),
                shape=(2, n),
            )
            both = two @ ease.weights_
            novel[F["ease"]], novel[F["ease_recent"]] = both[0], both[1]
        else:
            novel[F["ease"]] = ease.fallback_.score(np.array([user]))[0]
        novel[F["knn"]] = _sum_rows(self.knn_.similarity_, pidx, n)
        novel[F["als"]] = self.als_.user_factors_[user] @ self.als_.item_factors_.T
        novel[F["content"]] = _sum_rows(self.content_.similarity_, pidx, n)
        for j in (F["ease"], F["ease_recent"], F["knn"], F["als"], F["content"]):
            peak = np.abs(novel[j]).max()
            if peak > 0:
                novel[j] /= peak
        novel[F["pop"]] = self.pop_
        novel[F["pop7"]] = self.pop7_
        novel[F["pop30"]] = self.pop30_
        novel[F["activity"]] = np.log1p(self.user_days_[user]) / 5.0
        novel[F["user_recent"]] = np.exp(-days.min() / 30.0) if len(days) else 0.0
        novel[F["user_repeat"]] = self.user_repeat_[user]
        novel[F["user_breadth"]] = self.user_breadth_[user]
        novel[F["user_due"]] = self._due(days.min(), user) if len(days) else 0.0
        novel[F["trend"]] = self.trend_
        novel[F["item_fresh"]] = self.fresh_
        return novel, idx, self._history_block(counts, days, idx, user, start, end)

    def _rows_for(
        self, novel: np.ndarray, idx: np.ndarray, hist: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        """Full feature rows (len(items) × len(FEATURES)) from :meth:`_signals_one`'s parts."""
        x = np.zeros((len(items), len(FEATURES)), np.float32)
        x[:, : len(NOVEL)] = novel[:, items].T
        if len(idx):
            pos = np.minimum(np.searchsorted(idx, items), len(idx) - 1)
            inside = idx[pos] == items
            x[inside, len(NOVEL) :] = hist[pos[inside]]
        return x

    def _score_one(self, user: int, mode: str) -> np.ndarray:
        """The same as :meth:`score` for one customer without building the full feature tensor."""
        w = self.weights_[mode]
        n = self.n_items_
        novel, idx, hist = self._signals_one(user)
        linear = w[: len(NOVEL)] @ novel
        linear[idx] += hist @ w[len(NOVEL) :]
        if mode == "novel":
            linear[idx] = -np.inf
        ens = self.rerankers_.get(mode)
        if ens is None:
            return linear
        cand = top_k(linear, min(self.serve_candidates, n))[0]
        x = self._rows_for(novel, idx, hist, cand)
        raw = ens.decision(x) + self.mix_.get(mode, 0.0) * linear[cand]
        return _place_on_top(linear[None, :], cand[None, :], raw[None, :])[0]

    def _history_block(
        self, counts: np.ndarray, days: np.ndarray, cols: np.ndarray, user: int, a: int, b: int
    ) -> np.ndarray:
        """The REPEAT signals for one customer's past products (history_ entries ``a:b``)."""
        if not len(cols):
            return np.zeros((0, len(REPEAT)), np.float32)
        decay = self.decay_[a:b]
        n = len(cols)
        return self._repeat_signals(
            counts,
            days,
            decay,
            cols,
            np.full(n, counts.max(), np.float32),
            np.full(n, days.min(), np.float32),
            np.full(n, self.user_days_[user], np.float32),
            np.full(n, decay.max(), np.float32),
            self.decay14_[a:b],
            self.first_[a:b],
        )

    def _due(self, since: np.ndarray | float, users: np.ndarray | int) -> np.ndarray | float:
        """Days since the customer's last shopping day over their usual gap, scaled to [0, 1]."""
        return np.clip(since / np.maximum(self.user_gap_[users], 1.0), 0.0, 3.0) / 3.0

    def _repeat_signals(
        self,
        counts: np.ndarray,
        days: np.ndarray,
        decay: np.ndarray,
        cols: np.ndarray,
        peak: np.ndarray,
        last: np.ndarray,
        user_days: np.ndarray,
        decay_peak: np.ndarray,
        decay14: np.ndarray,
        first: np.ndarray,
    ) -> np.ndarray:
        """REPEAT signals for (customer, past product) entries: shopping days with it, days since,
        decayed count; ``peak``/``last``/``user_days``/``decay_peak`` are the owner's largest
        count, most recent purchase, number of shopping days and largest decayed count."""
        gap = self.item_gap_[cols]
        own_gap = (first - days) / np.maximum(counts - 1.0, 1.0)  # the customer's re-order gap
        return np.stack(
            [
                np.ones_like(counts),
                np.log1p(counts) / np.log1p(np.maximum(peak, 1.0)),
                np.log1p(counts) / 3.0,
                counts / np.maximum(user_days, 1.0),
                np.exp(-days / self.recency_days),
                np.exp(-days / 7.0),
                np.exp(-days / 90.0),
                self.pop7_[cols],
                self.item_rate_[cols],
                (days <= last + 0.5).astype(np.float32),
                np.exp(-np.abs(days - gap) / np.maximum(gap, 7.0)),
                np.log1p(decay) / 2.0,
                decay / np.maximum(decay_peak, 1e-6),
                np.log1p(decay14) / 2.0,
                np.where(
                    counts > 1, np.exp(-np.abs(days - own_gap) / np.maximum(own_gap, 7.0)), 0.0
                ),
            ],
            axis=1,
        ).astype(np.float32)

    def contributions(self, user: int, items: np.ndarray, mode: str = "repeat") -> np.ndarray:
        """(len(items), len(FEATURES)) weight × signal for one customer: which signal drove each product."""
        novel, idx, hist = self._signals_one(int(user))
        return self._rows_for(novel, idx, hist, np.asarray(items)) * self.weights_[mode]

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "weights_" in state and "decay_" not in state:
            self._upgrade_v1()

    def _upgrade_v1(self) -> None:
        """A hybrid saved with the first signal set scores as before: the signals added since get
        weight 0, no tree splits on them, and their inputs are zeros."""
        where = np.array([F[f] for f in _V1_FEATURES])
        for mode, w in self.weights_.items():
            new = np.zeros(len(FEATURES), np.float32)
            new[where] = w
            self.weights_[mode] = new
        self.rerankers_ = {
            mode: dataclasses.replace(ens, feature=where[ens.feature].astype(np.int32))
            for mode, ens in self.rerankers_.items()
        }
        entries, users, items = len(self.days_), len(self.user_days_), self.n_items_
        self.decay_ = np.zeros(entries, np.float32)
        self.decay14_ = np.zeros(entries, np.float32)
        self.first_ = self.days_.copy()
        self.user_repeat_ = np.zeros(users, np.float32)
        self.user_breadth_ = np.zeros(users, np.float32)
        self.user_gap_ = np.zeros(users, np.float32)
        self.trend_ = np.zeros(items, np.float32)
        self.fresh_ = np.zeros(items, np.float32)

    def weights(self) -> dict[str, dict[str, float]]:
        return {
            m: {f: round(float(v), 3) for f, v in zip(FEATURES, w, strict=True)}
            for m, w in self.weights_.items()
        }

    def learnt(self) -> dict:
        """What fitting learnt, for a manifest or a report: blend weights, validation, timings."""
        return {"weights": self.weights(), "validation": self.validation_, "timings": self.timings_}


def _most_recent(days: np.ndarray, cap: int) -> np.ndarray:
    """Mask of the ``cap`` most recent entries (fewest days ago; ties by position)."""
    mask = np.zeros(len(days), bool)
    mask[np.argsort(days, kind="stable")[:cap]] = True
    return mask


def _repurchase_gaps(data: Interactions) -> np.ndarray:
    """Per product the median days between one customer's purchases of it (its re-order cycle)."""
    import pandas as pd

    day = data.times // int(DAY)
    trip = pd.DataFrame({"u": data.users, "i": data.items, "d": day}).drop_duplicates()
    g = trip.groupby(["u", "i"])["d"].agg(["min", "max", "count"])
    g = g[g["count"] > 1]
    gaps = ((g["max"] - g["min"]) / (g["count"] - 1)).groupby(level="i").median()
    out = np.full(data.n_items, float(gaps.median()) if len(gaps) else 60.0, np.float32)
    out[gaps.index.to_numpy()] = gaps.to_numpy()
    return out


def _decayed_counts(data: Interactions, half_life: float, hist: sp.csr_matrix) -> np.ndarray:
    """Per (customer, product) entry of ``hist`` the shopping days with the product, each
    weighted 2^(-days ago / ``half_life``) (recent re-orders count more)."""
    key = data.daily()
    age = data.end_time / DAY - key["d"].to_numpy() - 0.5
    mat = sp.csr_matrix(
        (
            key["w"].to_numpy(np.float64) * np.exp2(-age / half_life),
            (key["u"].to_numpy(), key["i"].to_numpy()),
        ),
        shape=hist.shape,
    )
    mat.sum_duplicates()
    return _entries_of(mat, hist, "decayed-count").astype(np.float32)


def _entries_of(mat: sp.csr_matrix, hist: sp.csr_matrix, what: str) -> np.ndarray:
    """The values of ``mat``, one per entry of ``hist`` (both matrices hold the same entries)."""
    if not (
        np.array_equal(mat.indptr, hist.indptr) and np.array_equal(mat.indices, hist.indices)
    ):  # pragma: no cover
        raise AssertionError(f"history and {what} matrices differ in structure")
    return mat.data


def _sum_rows(mat: sp.csr_matrix, rows: np.ndarray, n: int) -> np.ndarray:
    """Sum of some rows of a CSR matrix as a dense vector (faster than slicing for one customer)."""
    if not len(rows):
        return np.zeros(n, np.float32)
    starts, lengths = mat.indptr[rows], mat.indptr[rows + 1] - mat.indptr[rows]
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    sel = offsets + np.arange(lengths.sum())
    return np.bincount(mat.indices[sel], weights=mat.data[sel], minlength=n).astype(np.float32)


def _place_on_top(linear: np.ndarray, cand: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Candidates get the trees' scores; every other product ranks below all of them by the blend."""
    finite = np.isfinite(linear)
    top = linear[finite].max() if finite.any() else 0.0
    out = np.where(finite, linear - top + raw.min() - 1.0, -np.inf).astype(np.float64)
    out[np.arange(len(cand))[:, None], cand] = raw
    return out


def ndcg_at(scores: np.ndarray, labels: np.ndarray, n_rel: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@k over rows of candidate scores (labels mark relevant candidates)."""
    gains = np.take_along_axis(labels, top_k(scores, k), axis=1)
    return float(ndcg(gains, n_rel, k).mean()) if len(gains) else 0.0


def coordinate_ascent(
    feats: np.ndarray,
    labels: np.ndarray,
    n_rel: np.ndarray,
    start: np.ndarray,
    active: list[bool],
    rounds: int = 2,
) -> tuple[np.ndarray, float, float]:
    """Greedy per-weight grid search maximising NDCG@10 (RankLib's coordinate ascent)."""
    w = start.astype(np.float32).copy()
    w[~np.asarray(active)] = 0.0
    first = best = ndcg_at(feats @ w, labels, n_rel)
    for _ in range(rounds):
        improved = False
        for j in np.flatnonzero(active):
            for value in GRID:
                if value == w[j]:
                    continue
                trial = w.copy()
                trial[j] = value
                if not trial.any():
                    continue
                got = ndcg_at(feats @ trial, labels, n_rel)
                if got > best + 1e-5:
                    best, w, improved = got, trial, True
        if not improved:
            break
    return w, first, best
