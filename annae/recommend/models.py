"""Baseline recommenders with scikit-learn style ``fit``/``predict`` over :class:`Interactions`.

Every model scores known customers (codes of the data it was fitted on) against the whole
catalogue: ``score(users) -> (len(users), n_items)`` float32. ``predict`` takes the top k.
"""

from __future__ import annotations

import logging
from typing import Self

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from annae.recommend.matrix import DAY, Interactions, binarize

log = logging.getLogger(__name__)


def ndcg(gains: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    """Per-row NDCG@k of ranked relevance ``gains`` (rows × at most k) when ``n_rel`` products
    are relevant per row (rows with none are the caller's to mask); rank r counts 1 / log2(r + 1)."""
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (gains * disc[: gains.shape[1]]).sum(axis=1)
    ideal = np.cumsum(disc)[np.clip(np.minimum(n_rel, k).astype(int) - 1, 0, k - 1)]
    return dcg / ideal


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores per row, best first."""
    scores = np.atleast_2d(scores)
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _rows(mat: sp.csr_matrix, users: np.ndarray) -> sp.csr_matrix:
    return mat[np.asarray(users)]


class Recommender:
    """Base class: ``fit(data)`` stores the customer histories; subclasses implement ``score``."""

    name = "base"

    def fit(self, data: Interactions) -> Self:
        self.n_items_ = data.n_items
        self.history_ = data.counts()
        self.user_ids_ = data.user_ids
        self.item_ids_ = data.item_ids
        self.item_names_ = data.item_names
        self._fit(data)
        return self

    def user_code(self, customer_id: str) -> int | None:
        """The row of a customer in this model, or None if it was not in the training data."""
        if getattr(self, "_user_index", None) is None:
            self._user_index = {str(u): i for i, u in enumerate(self.user_ids_)}
        return self._user_index.get(str(customer_id))

    def item_code(self, product_id: str) -> int | None:
        if getattr(self, "_item_index", None) is None:
            self._item_index = {str(p): i for i, p in enumerate(self.item_ids_)}
        return self._item_index.get(str(product_id))

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_user_index", None)
        state.pop("_item_index", None)
        return state

    def __setstate__(self, state: dict) -> None:
        """Models saved by an older version get defaults for parameters added since."""
        import inspect

        for name, param in inspect.signature(type(self).__init__).parameters.items():
            if name != "self" and param.default is not inspect.Parameter.empty:
                state.setdefault(name, param.default)
        self.__dict__.update(state)

    def _fit(self, data: Interactions) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def score(self, users: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def predict(self, users: np.ndarray, k: int = 10, *, exclude_seen: bool = False) -> np.ndarray:
        """Top-k product codes per customer (optionally without what each already bought)."""
        users = np.atleast_1d(users)
        scores = self.score(users).astype(np.float32, copy=True)
        if exclude_seen:
            hist = _rows(self.history_, users)
            scores[hist.nonzero()] = -np.inf
        return top_k(scores, k)


class Popularity(Recommender):
    """Distinct buyers per product, optionally over the last ``days`` days only."""

    def __init__(self, days: float | None = None) -> None:
        self.days = days
        self.name = "popularity" if days is None else f"popularity_{int(days)}d"

    def _fit(self, data: Interactions) -> None:
        mask = np.ones(len(data.times), bool)
        if self.days is not None:
            mask = data.times >= data.end_time - self.days * DAY
        pairs = np.unique(data.users[mask].astype(np.int64) * data.n_items + data.items[mask])
        counts = np.bincount(pairs % data.n_items, minlength=data.n_items).astype(np.float32)
        # tie-break by all-time popularity so short windows still rank the whole catalogue
        overall = np.bincount(data.items, minlength=data.n_items).astype(np.float32)
        self.counts_ = counts
        self.item_scores_ = counts + overall / (overall.max() + 1.0) * 0.5

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_scores_, (len(np.atleast_1d(users)), self.n_items_)).copy()


class Repurchase(Recommender):
    """The customer's own most frequent products (most recent first on ties), then popularity."""

    name = "repurchase_popularity"

    def __init__(self, fallback: Recommender | None = None) -> None:
        self.fallback = fallback

    def _fit(self, data: Interactions) -> None:
        self.fallback_ = self.fallback or Popularity()
        if not hasattr(self.fallback_, "item_scores_"):
            self.fallback_.fit(data)
        self.recency_ = data.last_seen()

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.atleast_1d(users)
        pop = self.fallback_.score(users)
        pop = pop / (pop.max(axis=1, keepdims=True) + 1e-9)
        counts = _rows(self.history_, users).toarray()
        rec = _rows(self.recency_, users)
        fresh = np.zeros_like(counts)
        fresh[rec.nonzero()] = 1.0 / rec.data
        return (counts * 2.0 + fresh + (counts > 0) * 1.0 + pop * 0.5).astype(np.float32)


class _Neighbours(Recommender):
    """Scores are the customer's past products (once each) times a product × product similarity."""

    similarity_: sp.csr_matrix  # set by ``_fit``

    def score(self, users: np.ndarray) -> np.ndarray:
        hist = binarize(_rows(self.history_, np.atleast_1d(users)))
        return np.asarray((hist @ self.similarity_).todense(), dtype=np.float32)


class ItemKNN(_Neighbours):
    """Item-item cosine similarity over who bought what, ``neighbours`` per product."""

    name = "item_knn"

    def __init__(self, neighbours: int = 100, shrink: float = 10.0) -> None:
        self.neighbours = neighbours
        self.shrink = shrink

    def _fit(self, data: Interactions) -> None:
        self.similarity_ = cosine_neighbours(binarize(self.history_), self.neighbours, self.shrink)


def cosine_neighbours(x: sp.csr_matrix, neighbours: int, shrink: float = 0.0) -> sp.csr_matrix:
    """Item × item cosine similarity of the columns of ``x`` keeping the top ``neighbours`` per row."""
    x = sp.csc_matrix(x, dtype=np.float32)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
    gram = (x.T @ x).tocsr().astype(np.float32)
    gram.setdiag(0)
    gram.eliminate_zeros()
    coo = gram.tocoo()
    denom = norms[coo.row] * norms[coo.col] + shrink + 1e-9
    sim = sp.csr_matrix((coo.data / denom, (coo.row, coo.col)), shape=gram.shape)
    return keep_top(sim, neighbours)


def keep_top(mat: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of each row of a sparse matrix."""
    mat = mat.tocsr()
    rows, cols, vals = [], [], []
    for r in range(mat.shape[0]):
        start, end = mat.indptr[r], mat.indptr[r + 1]
        if end == start:
            continue
        data = mat.data[start:end]
        idx = mat.indices[start:end]
        if end - start > k:
            sel = np.argpartition(-data, k - 1)[:k]
            data, idx = data[sel], idx[sel]
        rows.append(np.full(len(idx), r, np.int32))
        cols.append(idx)
        vals.append(data)
    if not rows:
        return sp.csr_matrix(mat.shape, dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
        shape=mat.shape,
    )


class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder (Steck 2019): closed form via a float32 Cholesky solve.

    Past ``max_items`` products the dense item × item inverse is too costly (cubic time,
    quadratic memory); then it fits :class:`ALS` instead and says so in ``fallback_``.
    """

    name = "ease"

    def __init__(self, l2: float = 250.0, max_items: int = 12000) -> None:
        self.l2 = l2
        self.max_items = max_items

    def _fit(self, data: Interactions) -> None:
        self.fallback_: ALS | None = None
        if data.n_items > self.max_items:
            log.warning(
                "EASE: %d products > max_items=%d, using ALS instead", data.n_items, self.max_items
            )
            self.fallback_ = ALS().fit(data)
            return
        x = binarize(self.history_)
        gram = np.asarray((x.T @ x).todense(), dtype=np.float32)
        gram[np.diag_indices_from(gram)] += self.l2
        factor = sla.cho_factor(gram, lower=True, overwrite_a=True, check_finite=False)
        precision = sla.cho_solve(
            factor, np.eye(gram.shape[0], dtype=np.float32), check_finite=False
        )
        weights = -precision / np.diag(precision)[None, :]
        np.fill_diagonal(weights, 0.0)
        self.weights_ = np.ascontiguousarray(weights, dtype=np.float32)

    def score(self, users: np.ndarray) -> np.ndarray:
        if self.fallback_ is not None:
            return self.fallback_.score(users)
        hist = binarize(_rows(self.history_, np.atleast_1d(users)))
        return np.asarray(hist @ self.weights_, dtype=np.float32)


class _Factors(Recommender):
    """Scores are user factors · item factors (ALS, BPR, Spark ALS)."""

    user_factors_: np.ndarray  # set by ``_fit``
    item_factors_: np.ndarray

    def score(self, users: np.ndarray) -> np.ndarray:
        return (self.user_factors_[np.atleast_1d(users)] @ self.item_factors_.T).astype(np.float32)


def _confidence(counts: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    conf = counts.copy().astype(np.float32)
    conf.data = 1.0 + alpha * np.log1p(conf.data)
    return conf


class ALS(_Factors):
    """Implicit-feedback matrix factorisation (Hu, Koren, Volinsky 2008) via ``implicit``, one thread."""

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.1,
        iterations: int = 15,
        alpha: float = 10.0,
        random_state: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.alpha = alpha
        self.random_state = random_state

    def _fit(self, data: Interactions) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        model = AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            iterations=self.iterations,
            alpha=1.0,
            num_threads=1,
            random_state=self.random_state,
            calculate_training_loss=False,
        )
        with threadpool_limits(1):
            model.fit(_confidence(self.history_, self.alpha), show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)


class BPR(_Factors):
    """Bayesian Personalised Ranking (Rendle et al. 2009) via ``implicit``, one thread."""

    name = "bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        random_state: int = 0,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state

    def _fit(self, data: Interactions) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        model = BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            num_threads=1,
            random_state=self.random_state,
        )
        with threadpool_limits(1):
            model.fit(binarize(self.history_), show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)


class ContentKNN(_Neighbours):
    """TF-IDF over product names and descriptions: similar descriptions score high.

    Works for products nobody bought yet (cold start) and customers with a single interaction.
    """

    name = "content"

    def __init__(self, neighbours: int = 50) -> None:
        self.neighbours = neighbours

    def _fit(self, data: Interactions) -> None:
        texts = (
            [str(t or "") for t in data.item_text] if len(data.item_text) else [""] * data.n_items
        )
        if not any(t.strip() for t in texts):
            self.similarity_ = sp.csr_matrix((data.n_items, data.n_items), dtype=np.float32)
            return
        # imported here: sklearn (with scipy.stats) costs a serving worker ~1 s of start-up
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(
            analyzer="word",
            ngram_range=(1, 2),
            min_df=1,
            sublinear_tf=True,
            token_pattern=r"(?u)\b\w+\b",
        )
        tfidf = vec.fit_transform(texts).astype(np.float32)
        self.vectorizer_, self.tfidf_ = vec, tfidf.tocsr()
        sim = (tfidf @ tfidf.T).tocsr()
        sim.setdiag(0)
        sim.eliminate_zeros()
        self.similarity_ = keep_top(sim, self.neighbours)

    def text_similarity(self, text: str) -> np.ndarray:
        """Cosine similarity of any text (a new product's description) to every product."""
        if getattr(self, "vectorizer_", None) is None:
            return np.zeros(self.n_items_, np.float32)
        vec = self.vectorizer_.transform([text]).astype(np.float32)
        return np.asarray((self.tfidf_ @ vec.T).todense()).ravel()


BASELINES = {
    "popularity": lambda: Popularity(),
    "popularity_7d": lambda: Popularity(days=7),
    "repurchase_popularity": lambda: Repurchase(),
    "item_knn": lambda: ItemKNN(),
    "ease": lambda: EASE(),
    "als": lambda: ALS(),
    "bpr": lambda: BPR(),
    "content": lambda: ContentKNN(),
}
