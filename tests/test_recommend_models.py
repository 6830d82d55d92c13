"""Recommenders on data with a known answer, metrics, the tree ensemble, and the hybrid's two paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier

from annae.recommend.evaluate import ranking_metrics, time_split
from annae.recommend.hybrid import Hybrid
from annae.recommend.matrix import Interactions
from annae.recommend.models import (
    ALS,
    BPR,
    EASE,
    ContentKNN,
    ItemKNN,
    Popularity,
    Repurchase,
    top_k,
)
from annae.recommend.sample import synthetic_frame
from annae.recommend.trees import TreeEnsemble


@pytest.fixture(scope="module")
def shop() -> Interactions:
    return Interactions.from_frame(synthetic_frame())


def code(data: Interactions, product: str) -> int:
    return int(np.flatnonzero(data.item_ids == product)[0])


def group_of(data: Interactions, items: np.ndarray) -> set[str]:
    return {str(data.item_ids[i])[0] for i in items}


def customer(data: Interactions, cid: str) -> int:
    return int(np.flatnonzero(data.user_ids == cid)[0])


def test_popularity_counts_distinct_buyers_and_recent_window(shop):
    pop = Popularity().fit(shop)
    buyers = pd.DataFrame({"u": shop.users, "i": shop.items}).drop_duplicates().groupby("i").size()
    assert pop.counts_[buyers.idxmax()] == buyers.max()
    week = Popularity(days=7).fit(shop)
    assert str(shop.item_ids[week.predict(np.array([0]), k=1)[0, 0]]) == "HOT"
    assert (
        week.counts_.sum() == week.counts_[code(shop, "HOT")]
    )  # nothing else sold in the last week


def test_repurchase_puts_own_products_first(shop):
    model = Repurchase().fit(shop)
    u = customer(shop, "C004")
    own = set(model.history_[u].indices)
    top = model.predict(np.array([u]), k=len(own))[0]
    assert set(top) == own


@pytest.mark.parametrize(
    ("factory", "min_hits"),
    [
        (ItemKNN, 12),
        (EASE, 12),
        (ContentKNN, 12),
        (lambda: ALS(factors=8, iterations=10), 10),
        (lambda: BPR(factors=8, iterations=200), 9),
    ],
)
def test_models_recommend_from_the_customers_group(shop, factory, min_hits):
    """Customers buy within group A or B: new products for them should come from their group
    (HOT, bought by both groups, counts as neither)."""
    model = factory().fit(shop)
    hits = 0
    for cid, group in (("C000", "A"), ("C001", "B"), ("C010", "A"), ("C011", "B")):
        top = model.predict(np.array([customer(shop, cid)]), k=3, exclude_seen=True)[0]
        hits += sum(str(shop.item_ids[i])[0] in (group, "H") for i in top)
    assert hits >= min_hits, model.name


def test_ease_falls_back_to_als_past_max_items(shop):
    model = EASE(max_items=5).fit(shop)
    assert model.fallback_ is not None and not hasattr(model, "weights_")
    assert model.score(np.array([0])).shape == (1, shop.n_items)


def test_ease_weights_have_zero_diagonal_and_float32(shop):
    model = EASE().fit(shop)
    assert model.weights_.dtype == np.float32
    assert np.allclose(np.diag(model.weights_), 0)


def test_content_similarity_for_an_unseen_description(shop):
    model = ContentKNN().fit(shop)
    sims = model.text_similarity("blue kitchen mug")
    assert str(shop.item_ids[int(np.argmax(sims))]).startswith("B")


def test_ranking_metrics_by_hand():
    truth = sp.csr_matrix(np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 1]], dtype=np.float32))
    ranked = np.array([[2, 1, 0], [0, 1, 3]])
    m = ranking_metrics(ranked, truth, k=3)
    assert m["recall"].tolist() == [1.0, 0.0]
    assert m["precision"].tolist() == pytest.approx([2 / 3, 0.0])
    ideal = 1 + 1 / np.log2(3)
    assert m["ndcg"][0] == pytest.approx((1 + 1 / np.log2(4)) / ideal)  # hits at ranks 1 and 3
    ranked = np.array([[0, 2, 1], [4, 0, 1]])
    assert ranking_metrics(ranked, truth, k=3)["ndcg"].tolist() == pytest.approx([1.0, 1.0])
    ranked = np.array([[1, 2, 0], [4, 0, 1]])
    m = ranking_metrics(ranked, truth, k=3)
    assert m["ndcg"][0] == pytest.approx((1 / np.log2(3) + 1 / np.log2(4)) / ideal)
    assert m["ndcg"][1] == pytest.approx(1.0)


def test_products_new_after_the_split_count_as_relevant():
    """docs/recommendations.md: products first sold after the date cannot be recommended but
    still count as relevant (recall = hits / relevant products, NDCG's ideal likewise)."""
    truth = sp.csr_matrix(np.array([[1, 0, 1, 0, 0]], dtype=np.float32))
    ranked = np.array([[2, 0, 1]])
    m = ranking_metrics(ranked, truth, k=3, unseen=np.array([2]))
    assert m["recall"].tolist() == [0.5]  # 2 hits of 4 relevant products
    ideal = 1 + 1 / np.log2(3) + 1 / np.log2(4)  # min(k, 4) = 3 hits on top
    assert m["ndcg"][0] == pytest.approx((1 + 1 / np.log2(3)) / ideal)
    frame = synthetic_frame()
    cut = pd.Timestamp("2024-03-01", tz="UTC")
    before = frame[frame["time"] < cut]
    known = str(before["customer"].iloc[0])
    new_rows = pd.DataFrame(
        {
            "customer": [known, known, known],
            "product": ["BRAND-NEW-1", "BRAND-NEW-1", "BRAND-NEW-2"],  # two distinct products
            "time": [cut + pd.Timedelta(days=1)] * 3,
        }
    )
    extended = pd.concat([frame, new_rows.reindex(columns=frame.columns)], ignore_index=True)
    for column in frame.columns.difference(["customer", "product", "time"]):
        extended[column] = extended[column].fillna(frame[column].iloc[0])
    plain, split = time_split(frame, "2024-03-01"), time_split(extended, "2024-03-01")
    assert plain.unseen.sum() > 0  # the synthetic shop launches products after the date too

    def unseen_of(sp_: object) -> int:
        ids = list(sp_.train.user_ids[sp_.users])
        return int(sp_.unseen[ids.index(known)]) if known in ids else 0

    assert unseen_of(split) == unseen_of(plain) + 2
    assert split.unseen.sum() == plain.unseen.sum() + 2


def test_time_split_keeps_test_period_out_of_training():
    frame = synthetic_frame()
    split = time_split(frame, "2024-03-01")
    assert pd.Timestamp(split.train.end_time, unit="s", tz="UTC") < pd.Timestamp(
        "2024-03-01", tz="UTC"
    )
    assert split.truth.shape == (len(split.users), split.train.n_items)
    assert split.truth.nnz > 0
    with pytest.raises(ValueError, match="empty"):
        time_split(frame, "2030-01-01")


def test_tree_ensemble_matches_sklearn():
    rng = np.random.default_rng(0)
    x = rng.random((3000, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(0, 0.2, len(x))) > 1
    model = HistGradientBoostingClassifier(max_iter=30, max_depth=5, early_stopping=False).fit(x, y)
    ens = TreeEnsemble.from_sklearn(model)
    probe = rng.random((200, 6)).astype(np.float32)
    assert np.allclose(ens.decision(probe), model.decision_function(probe), atol=1e-9)


@pytest.fixture(scope="module")
def hybrid(shop) -> Hybrid:
    return Hybrid(
        val_days=20,
        candidates=20,
        serve_candidates=10,
        trees=20,
        min_val_customers=10,
        min_rerank_customers=10,
        max_history=4,  # most customers have more: exercises the profile cap on both paths
    ).fit(shop)


def test_hybrid_learns_on_its_own_validation_period(hybrid):
    assert hybrid.weights_source_ == "validation"
    assert hybrid.validation_["days"] == 20
    assert set(hybrid.rerankers_) == {"novel", "repeat"}
    # the learnt blend is never worse than the default on the data it was chosen on
    for mode in ("novel", "repeat"):
        v = hybrid.validation_[mode]
        assert v["ndcg@10_learnt_blend"] >= v["ndcg@10_default_blend"]


def test_hybrid_one_customer_path_matches_the_batch_path(hybrid, shop):
    users = np.arange(shop.n_users)
    for mode in ("novel", "repeat"):
        batch = top_k(hybrid.score(users, mode), 5)
        one = np.stack([top_k(hybrid.score(np.array([u]), mode), 5)[0] for u in users])
        assert (batch == one).all(), mode


def test_hybrid_novel_mode_never_returns_past_products(hybrid, shop):
    for u in range(0, shop.n_users, 7):
        own = set(hybrid.history_[u].indices)
        top = top_k(hybrid.score(np.array([u]), "novel"), 5)[0]
        assert not own & set(top)
        repeat = top_k(hybrid.score(np.array([u]), "repeat"), 3)[0]
        assert own & set(repeat), (
            "the repeat ranking should lead with some of the customer's own products"
        )


def test_hybrid_without_a_validation_period_uses_default_weights():
    frame = synthetic_frame(customers=10)
    model = Hybrid(val_days=10_000).fit(Interactions.from_frame(frame))
    assert model.weights_source_ == "default"
    assert model.rerankers_ == {}


def test_hybrid_with_too_few_validation_customers_keeps_the_defaults(shop):
    model = Hybrid(val_days=20, min_val_customers=1000).fit(shop)
    assert model.weights_source_ == "default" and model.rerankers_ == {}
    assert model.validation_["note"] == "too few to learn from"
    model = Hybrid(val_days=20, min_val_customers=10, min_rerank_customers=1000).fit(shop)
    assert model.weights_source_ == "validation" and model.rerankers_ == {}


def test_a_model_saved_before_a_new_parameter_still_loads(hybrid, shop):
    import pickle

    state = hybrid.__getstate__()
    del state["max_history"]
    old = Hybrid.__new__(Hybrid)
    old.__setstate__(state)
    assert old.max_history == 200
    again = pickle.loads(pickle.dumps(old))
    assert again.score(np.array([0]), "repeat").shape == (1, shop.n_items)


def test_averaged_tree_ensembles_give_the_mean_decision():
    rng = np.random.default_rng(1)
    x = rng.random((400, 4))
    y = x[:, 0] + 0.3 * rng.random(400) > 0.6
    parts, sk = [], []
    for seed, leaves in ((0, 7), (1, 15), (2, 31)):  # different tree sizes: padding is exercised
        model = HistGradientBoostingClassifier(
            max_iter=10, max_leaf_nodes=leaves, random_state=seed
        ).fit(x[seed::2] if seed else x, y[seed::2] if seed else y)
        parts.append(TreeEnsemble.from_sklearn(model))
        sk.append(model.decision_function(x))
    avg = TreeEnsemble.average(parts)
    assert np.allclose(avg.decision(x), np.mean(sk, axis=0))
    assert TreeEnsemble.average(parts[:1]) is parts[0]
