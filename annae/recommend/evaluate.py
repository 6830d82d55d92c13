"""Time-split evaluation: train before a date, score what known customers bought after it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from annae.recommend.matrix import Interactions
from annae.recommend.models import Recommender, ndcg, top_k


@dataclass
class Split:
    """Training data plus, per known test customer (by code), the products bought after the date."""

    train: Interactions
    users: np.ndarray  # codes of known customers who bought something in the test period
    truth: sp.csr_matrix  # len(users) × n_items, 1 where bought in the test period
    history: sp.csr_matrix  # len(users) × n_items, 1 where bought before the date
    new_customers: int  # test-period customers never seen before the date
    test_customers: int
    unseen: np.ndarray  # per row of ``users``: distinct test-period products not in the catalogue


def time_split(frame: pd.DataFrame, split_date: str | pd.Timestamp) -> Split:
    """Split a cleaned interactions frame at ``split_date`` (UTC); the catalogue is the training one."""
    cut = pd.Timestamp(split_date)
    if cut.tzinfo is None:
        cut = cut.tz_localize("UTC")
    times = frame["time"]
    before = frame[times < cut]
    after = frame[times >= cut]
    if before.empty or after.empty:
        raise ValueError(f"split date {cut.date()} leaves an empty training or test period")
    train = Interactions.from_frame(before)
    user_index = pd.Index(train.user_ids)
    item_index = pd.Index(train.item_ids)
    u = user_index.get_indexer(after["customer"].astype(str))
    i = item_index.get_indexer(after["product"].astype(str))
    test_customers = after["customer"].nunique()
    known = u >= 0
    new_customers = int(after.loc[~known, "customer"].nunique())
    users = np.unique(u[known])
    row = pd.Index(users).get_indexer(u[known & (i >= 0)])
    truth = sp.csr_matrix(
        (np.ones(len(row), np.float32), (row, i[known & (i >= 0)])),
        shape=(len(users), train.n_items),
    )
    truth.data[:] = 1.0  # (the matrix sums duplicate entries)
    # items bought after the date but not in the training catalogue cannot be recommended;
    # they still count as relevant (they lower recall), so keep their number per customer.
    new_items = known & (i < 0)
    pairs = pd.DataFrame(
        {"u": u[new_items], "p": after["product"].astype(str).to_numpy()[new_items]}
    )
    per_user = pairs.drop_duplicates().groupby("u").size()
    unseen = per_user.reindex(users, fill_value=0).to_numpy(dtype=np.int64)
    hist = train.counts()[users]
    hist.data[:] = 1.0
    return Split(
        train=train,
        users=users,
        truth=truth,
        history=hist.tocsr(),
        new_customers=new_customers,
        test_customers=int(test_customers),
        unseen=unseen,
    )


def ranking_metrics(
    ranked: np.ndarray, truth: sp.csr_matrix, k: int, unseen: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per-row recall, precision and NDCG of ``ranked`` (rows × ≥k product codes) against ``truth``;
    ``unseen`` relevant products per row that no ranking can contain (not in the catalogue)."""
    ranked = ranked[:, :k]
    hits = np.asarray(truth[np.arange(ranked.shape[0])[:, None], ranked].todense()) > 0
    n_rel = np.asarray(truth.sum(axis=1)).ravel()
    if unseen is not None:
        n_rel = n_rel + unseen
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "recall": np.where(n_rel > 0, hits.sum(axis=1) / np.maximum(n_rel, 1), 0.0),
            "precision": hits.sum(axis=1) / k,
            "ndcg": np.where(n_rel > 0, ndcg(hits, n_rel, k), 0.0),
        }


def score_model(
    rank: Callable[[np.ndarray, bool], np.ndarray], split: Split, k: int = 10, batch: int = 512
) -> dict[str, dict[str, float]]:
    """Both settings for one model; ``rank(users, novel)`` returns ≥k product codes per customer."""
    out: dict[str, dict[str, float]] = {}
    for setting, novel in (("novel", True), ("repeat", False)):
        truth = split.truth
        if novel:
            truth = (truth - truth.multiply(split.history)).tocsr()
            truth.eliminate_zeros()
        relevant = np.asarray(truth.sum(axis=1)).ravel() + split.unseen
        rows = np.flatnonzero(relevant > 0)
        metrics: dict[str, list[np.ndarray]] = {"recall": [], "precision": [], "ndcg": []}
        shown: set[int] = set()
        for start in range(0, len(rows), batch):
            sel = rows[start : start + batch]
            ranked = rank(split.users[sel], novel)
            shown.update(np.unique(ranked[:, :k]).tolist())
            for name, vals in ranking_metrics(ranked, truth[sel], k, split.unseen[sel]).items():
                metrics[name].append(vals)
        out[setting] = {
            f"{name}@{k}": round(float(np.concatenate(v).mean()), 4) for name, v in metrics.items()
        }
        out[setting][f"coverage@{k}"] = round(len(shown) / split.train.n_items, 4)
        out[setting]["customers"] = len(rows)
    return out


def model_ranker(
    model: Recommender, split: Split, k: int
) -> Callable[[np.ndarray, bool], np.ndarray]:
    """A ``rank`` function for :func:`score_model` from a fitted model (novel: hide the past)."""
    hist_all = split.train.counts()

    def rank(users: np.ndarray, novel: bool) -> np.ndarray:
        scores = model.score(users).astype(np.float32, copy=True)
        if novel:
            h = hist_all[users]
            scores[h.nonzero()] = -np.inf
        return top_k(scores, k)

    return rank
