"""The hybrid's repurchase signals (decayed counts, customer repeat share), its validation
windows, bagged re-rankers, and models saved with the first signal set."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pandas as pd
import pytest

from annae.recommend.hybrid import _V1_FEATURES, FEATURES, Hybrid, _decayed_counts
from annae.recommend.matrix import Interactions
from annae.recommend.models import top_k
from annae.recommend.sample import synthetic_frame


@pytest.fixture(scope="module")
def shop() -> Interactions:
    return Interactions.from_frame(synthetic_frame())


def tiny() -> Interactions:
    """Customer a: product p on days 0 and 1, q on days 99 and 100, r on day 50; b: p once."""
    day = pd.Timestamp("2024-01-01", tz="UTC")
    rows = [("a", "p", 0), ("a", "p", 1), ("a", "q", 99), ("a", "q", 100), ("a", "r", 50)]
    rows += [("b", "p", 100)]
    return Interactions.from_frame(
        pd.DataFrame(
            {
                "customer": [c for c, _, _ in rows],
                "product": [p for _, p, _ in rows],
                "time": [day + pd.Timedelta(days=d, hours=12) for _, _, d in rows],
            }
        )
    )


def test_decayed_counts_favour_recent_reorders():
    data = tiny()
    hist = data.counts()
    decay = _decayed_counts(data, 30.0, hist)
    a = 0  # customer codes follow sorted ids
    p, q, r = (int(np.flatnonzero(data.item_ids == x)[0]) for x in "pqr")
    got = dict(
        zip(hist[a].indices.tolist(), decay[hist.indptr[a] : hist.indptr[a + 1]], strict=True)
    )
    assert hist[a, p] == hist[a, q] == 2  # same number of shopping days...
    assert got[q] > 1.5 > got[r] > got[p] > 0  # ...but q was re-ordered lately
    # ages in whole days from the last day of the data: 0 and 1 (half-life 30 days)
    assert got[q] == pytest.approx(1.0 + 2.0 ** (-1 / 30), rel=1e-5)


def test_customer_repeat_share_and_breadth():
    model = Hybrid(learn=False).fit(tiny())
    # a: 5 (product, day) purchases of 3 products -> 2 re-orders; b: none
    assert model.user_repeat_[0] == pytest.approx(2 / 5)
    assert model.user_repeat_[1] == 0.0
    assert model.user_breadth_[0] > model.user_breadth_[1]


def test_several_validation_windows_add_training_customers(shop):
    one = Hybrid(val_days=10, val_windows=1, min_val_customers=10, min_rerank_customers=10)
    two = Hybrid(val_days=10, val_windows=2, min_val_customers=10, min_rerank_customers=10)
    one.fit(shop)
    two.fit(shop)
    assert one.validation_["windows"] == 1 and two.validation_["windows"] == 2
    assert two.validation_["repeat"]["customers"] > one.validation_["repeat"]["customers"]
    # the held-out customers (newest window) are the same either way
    assert (
        two.validation_["repeat"]["holdout_customers"]
        == one.validation_["repeat"]["holdout_customers"]
    )


def test_bagged_reranker_has_every_bags_trees(shop):
    args = dict(val_days=20, trees=10, min_val_customers=10, min_rerank_customers=10)
    single = Hybrid(bags=1, **args).fit(shop)
    bagged = Hybrid(bags=3, **args).fit(shop)
    assert bagged.rerankers_["repeat"].feature.shape[0] == 3 * 10
    assert single.rerankers_["repeat"].feature.shape[0] == 10


def test_a_hybrid_saved_with_the_first_signal_set_scores_as_before(shop):
    model = Hybrid(val_days=20, min_val_customers=10, rerank=False).fit(shop)
    where = np.array([FEATURES.index(f) for f in _V1_FEATURES])
    new = np.setdiff1d(np.arange(len(FEATURES)), where)
    for w in model.weights_.values():
        w[new] = 0.0  # what an old model knew
    state = copy.deepcopy(model.__getstate__())
    for name in ("decay_", "decay14_", "first_", "user_repeat_", "user_breadth_", "user_gap_"):
        del state[name]
    del state["trend_"], state["fresh_"], state["bags"]
    state["weights_"] = {m: w[where] for m, w in state["weights_"].items()}
    old = pickle.loads(pickle.dumps(model))
    old.__dict__.clear()
    old.__setstate__(state)
    assert old.bags == 3
    users = np.arange(shop.n_users)
    for mode in ("novel", "repeat"):
        assert np.array_equal(top_k(old.score(users, mode), 5), top_k(model.score(users, mode), 5))
        assert np.array_equal(
            top_k(old.score(users[:1], mode), 5), top_k(model.score(users[:1], mode), 5)
        )
