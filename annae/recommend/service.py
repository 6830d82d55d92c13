"""Recommendations as the API and the chat show them: two lists, reasons, consent, catalogue filter."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from annae.recommend.hybrid import FEATURES, Hybrid
from annae.recommend.models import Recommender, top_k
from annae.recommend.registry import SavedModel
from annae.recommend.store import (
    ProductNotFound,
    RecommendError,
    asked_also_bought,
    entry_products,
    get_customer,
    has_marketing_consent,
    products_by_id,
)
from annae.store.tables.recommend import RecInteraction, RecProduct

LISTS = ("mixed", "buy_again", "also_like")
MAX_K = 100
NO_CONSENT = "no marketing consent: this customer has not agreed to product recommendations"
REASON_BEFORE = "you bought this before"
REASON_WEEK = "popular this week"
REASON_POPULAR = "popular with customers"
PERSONAL, GENERAL = "personal", "general"
"""Chat cards: ``personal`` from the customer's own history (marketing consent), ``general``
computed without the visitor's data (the same for everyone asking about the entry)."""
CARDS = 3
"""Product cards shown after an answer, in every channel."""
FOR_YOU = "for you: "
FOR_EVERYONE = "for everyone: "
REASON_QUESTION = FOR_YOU + "about your question"
REASON_LINKED = FOR_EVERYONE + "goes with this answer"
REASON_ASKED = FOR_EVERYONE + "customers who asked about this also bought"

_GROUPS = {
    "together": ("ease", "ease_recent", "knn", "als"),
    "content": ("content",),
    "week": ("pop7", "trend", "item_fresh"),  # selling now, rising this week
    "popular": ("pop", "pop30", "activity"),
}


@dataclass
class Item:
    """One recommended product, ready for JSON."""

    product_id: str
    name: str
    price: float | None
    score: float
    list: str  # "buy_again" | "also_like" | "popular"
    reason: str
    because: str | None = None  # the product that explains it, when there is one

    def to_dict(self) -> dict:
        return asdict(self)


def _check_k(k: object) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise RecommendError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return k


def _scores(model: Recommender, user: int, mode: str) -> np.ndarray:
    if isinstance(model, Hybrid):
        return np.asarray(model.score(np.array([user]), mode)[0], dtype=np.float64)
    scores = np.asarray(model.score(np.array([user]))[0], dtype=np.float64)
    hist = model.history_[user].indices
    if mode == "novel":
        scores[hist] = -np.inf
    else:  # a plain model gets the customer's own products as a boost for "buy again"
        scores[hist] += np.abs(scores).max() + 1.0
    return scores


def _name(model: Recommender, code: int) -> str:
    names = getattr(model, "item_names_", None)
    name = str(names[code]) if names is not None and len(names) > code else ""
    return name or str(model.item_ids_[code])


def _best_neighbour(model: Recommender, history: np.ndarray, item: int, kind: str) -> int | None:
    """The customer's past product that most explains ``item`` (co-purchase or description)."""
    if not len(history):
        return None
    if isinstance(model, Hybrid):
        sim = model.content_.similarity_ if kind == "content" else model.knn_.similarity_
        col = sim[:, [item]] if sp.isspmatrix_csc(sim) else _column(sim, item)
        vals = np.asarray(col[history].todense()).ravel()
        if kind != "content" and not vals.any() and model.ease_.fallback_ is None:
            vals = model.ease_.weights_[history, item]
    elif hasattr(model, "item_factors_"):
        f = model.item_factors_
        vals = (
            f[history]
            @ f[item]
            / (np.linalg.norm(f[history], axis=1) * np.linalg.norm(f[item]) + 1e-9)
        )
    else:
        return None
    return int(history[int(np.argmax(vals))]) if np.max(vals) > 0 else None


def _column(mat: sp.csr_matrix, item: int) -> sp.csr_matrix:
    """Column ``item`` of a CSR matrix as a sparse column, without converting the whole matrix."""
    hits = mat.indices == item
    rows = np.repeat(np.arange(mat.shape[0]), np.diff(mat.indptr))[hits]
    return sp.csr_matrix(
        (mat.data[hits], (rows, np.zeros(len(rows), int))), shape=(mat.shape[0], 1)
    )


def explain(
    model: Recommender, user: int, item: int, mode: str, contrib: np.ndarray | None = None
) -> tuple[str, str | None]:
    """A short reason for recommending ``item`` to customer code ``user`` (and the product behind
    it); ``contrib`` is the item's row of :meth:`Hybrid.contributions` when already computed."""
    history = model.history_[user].indices
    if item in set(history.tolist()):
        return REASON_BEFORE, None
    group = "together"
    if isinstance(model, Hybrid):
        if contrib is None:
            contrib = model.contributions(user, np.array([item]), mode)[0]
        sums = {g: sum(contrib[FEATURES.index(f)] for f in feats) for g, feats in _GROUPS.items()}
        group = max(sums, key=sums.__getitem__)
    if group == "week":
        return REASON_WEEK, None
    if group == "popular":
        return REASON_POPULAR, None
    best = _best_neighbour(model, history, item, group)
    if best is None:
        return REASON_POPULAR, None
    pid = str(model.item_ids_[best])
    if group == "content":
        return f"similar to {_name(model, best)}, which you bought", pid
    return f"bought by customers who bought {_name(model, best)}", pid


def _active(session: Session, ids: list[str]) -> dict[str, RecProduct]:
    return {pid: p for pid, p in products_by_id(session, ids).items() if p.active}


def _take(
    session: Session,
    model: Recommender,
    scores: np.ndarray,
    k: int,
    allowed: np.ndarray | None = None,
) -> list[tuple[int, float, RecProduct]]:
    """The k best-scoring products that still exist in the catalogue (deleted ones are skipped)."""
    scores = scores.copy()
    if allowed is not None:
        mask = np.full(len(scores), -np.inf)
        mask[allowed] = 0.0
        scores = scores + mask
    want = k + 10
    while True:
        codes = [int(c) for c in top_k(scores, min(want, len(scores)))[0] if np.isfinite(scores[c])]
        live = _active(session, [str(model.item_ids_[c]) for c in codes])
        picked = [
            (c, float(scores[c]), live[str(model.item_ids_[c])])
            for c in codes
            if str(model.item_ids_[c]) in live
        ]
        if len(picked) >= k or want >= len(scores) or len(codes) < want:
            return picked[:k]
        want *= 4


def popular(session: Session, saved: SavedModel | None, k: int) -> list[Item]:
    """Popular products (last 7 days of the data when a model exists, else from the database)."""
    model = saved.model if saved else None
    if isinstance(model, Hybrid):  # its popularity signals
        scores = model.pop7_ + 1e-3 * model.pop_
        return [
            Item(p.id, p.name, p.price, round(s, 4), "popular", REASON_WEEK)
            for _c, s, p in _take(session, model, scores.astype(np.float64), k)
        ]
    last = session.scalar(select(func.max(RecInteraction.at)))
    if last is None:
        return []
    from datetime import timedelta

    n = func.count(func.distinct(RecInteraction.customer_id))
    stmt = (
        select(RecInteraction.product_id, n.label("n"))
        .join(RecProduct, RecProduct.id == RecInteraction.product_id)
        .where(RecInteraction.at >= last - timedelta(days=7), RecProduct.active.is_(True))
        .group_by(RecInteraction.product_id)
        .order_by(n.desc(), RecInteraction.product_id)
        .limit(k)
    )
    rows = session.execute(stmt).all()
    products = products_by_id(session, [r[0] for r in rows])
    return [
        Item(pid, products[pid].name, products[pid].price, float(n), "popular", REASON_WEEK)
        for pid, n in rows
    ]


def recommend(
    session: Session, saved: SavedModel | None, customer_id: str, k: int = 10, list_: str = "mixed"
) -> dict:
    """Recommendations for one customer: ``{"customer_id", "consent", "personalised", "list",
    "model_version", "reason", "items": [...]}``.

    - customer not in the database: popular products (no personal data is used);
    - customer without marketing consent: no products, ``consent: false`` and the reason;
    - customer the model has not seen yet: popular products;
    - otherwise ``mixed`` (the repeat-inclusive ranking, each item tagged ``buy_again`` or
      ``also_like``), ``buy_again`` (own past products) or ``also_like`` (products new to them).
    """
    k = _check_k(k)
    if list_ not in LISTS:
        raise RecommendError(f"list must be one of {', '.join(LISTS)}, got {list_!r}")
    customer = get_customer(session, customer_id)
    out: dict[str, Any] = {
        "customer_id": str(customer_id).strip(),
        "list": list_,
        "consent": None,
        "personalised": False,
        "model_version": saved.version if saved else None,
        "reason": None,
        "items": [],
    }

    def popular_instead(reason: str) -> dict:
        out["reason"] = reason
        if list_ != "buy_again":
            out["items"] = [i.to_dict() for i in popular(session, saved, k)]
        return out

    if customer is None:
        return popular_instead("unknown customer: popular products")
    out["consent"] = has_marketing_consent(session, customer.id)
    if not out["consent"]:
        out["reason"] = NO_CONSENT
        return out
    model = saved.model if saved else None
    user = model.user_code(customer.id) if model is not None else None
    if model is None or user is None:
        return popular_instead("no purchase history in the current model yet: popular products")
    out["personalised"] = True
    history = model.history_[user].indices
    mode = "novel" if list_ == "also_like" else "repeat"
    allowed = history if list_ == "buy_again" else None
    picked = _take(session, model, _scores(model, user, mode), k, allowed=allowed)
    seen = set(history.tolist())
    codes = np.array([c for c, _s, _p in picked], dtype=np.int64)
    contribs = (
        model.contributions(user, codes, mode) if isinstance(model, Hybrid) and len(codes) else None
    )
    for n, (code, score, product) in enumerate(picked):
        reason, because = explain(
            model, user, code, mode, None if contribs is None else contribs[n]
        )
        tag = "buy_again" if code in seen else "also_like"
        item = Item(product.id, product.name, product.price, round(score, 4), tag, reason, because)
        out["items"].append(item.to_dict())
    return out


def similar(session: Session, saved: SavedModel | None, product_id: str, k: int = 10) -> dict:
    """Products bought by the same customers (co-purchase), or with a similar description for
    products the model has not seen; deleted products never appear."""
    k = _check_k(k)
    product = products_by_id(session, [str(product_id).strip()]).get(str(product_id).strip())
    if product is None:
        raise ProductNotFound(f"no product with id {product_id!r}")
    out: dict[str, Any] = {
        "product_id": product.id,
        "name": product.name,
        "model_version": saved.version if saved else None,
        "items": [],
    }
    model = saved.model if saved else None
    if model is None:
        return out
    code = model.item_code(product.id)
    content = getattr(model, "content_", None)
    if code is None:
        if content is None:
            return out
        scores = content.text_similarity(f"{product.name} {product.description}").astype(np.float64)
        reason = f"similar description to {product.name}"
        picked = _take(session, model, np.where(scores > 0, scores, -np.inf), k)
        out["items"] = [
            Item(p.id, p.name, p.price, round(s, 4), "also_like", reason, product.id).to_dict()
            for _c, s, p in picked
        ]
        return out
    together = np.zeros(model.n_items_, np.float64)
    described = np.zeros(model.n_items_, np.float64)
    if isinstance(model, Hybrid):
        together = model.knn_.similarity_[code].toarray().ravel().astype(np.float64)
        described = model.content_.similarity_[code].toarray().ravel().astype(np.float64)
    elif hasattr(model, "item_factors_"):
        f = model.item_factors_
        together = (f @ f[code]) / (np.linalg.norm(f, axis=1) * np.linalg.norm(f[code]) + 1e-9)
    scores = together + 0.3 * described
    scores[code] = -np.inf
    scores[scores <= 0] = -np.inf
    name = product.name or product.id
    for c, s, p in _take(session, model, scores, k):
        reason = (
            f"bought by customers who bought {name}"
            if together[c] >= 0.3 * described[c]
            else f"similar description to {name}"
        )
        out["items"].append(
            Item(p.id, p.name, p.price, round(s, 4), "also_like", reason, product.id).to_dict()
        )
    return out


def recommend_for_entry(
    session: Session, saved: SavedModel | None, entry_id: int, customer_id: str | None, k: int = 3
) -> list[dict]:
    """Product cards for the chat after an answer about ``entry_id``: the entry's linked products
    first (ranked for the customer when the model knows them), then similar ones; empty without
    marketing consent or when the entry has no linked products."""
    k = _check_k(k)
    linked = entry_products(session, entry_id)
    if not linked or customer_id is None or not has_marketing_consent(session, customer_id):
        return []
    live = _active(session, linked)
    linked = [p for p in linked if p in live]
    model = saved.model if saved else None
    user = model.user_code(customer_id) if model is not None else None
    order = linked
    if model is not None and user is not None:
        scores = _scores(model, user, "repeat")
        order = sorted(
            linked, key=lambda p: -scores[c] if (c := model.item_code(p)) is not None else np.inf
        )
    cards = [
        Item(p, live[p].name, live[p].price, 1.0, "also_like", REASON_QUESTION).to_dict()
        for p in order[:k]
    ]
    if len(cards) < k and model is not None and linked:
        _fill_similar(session, saved, linked[0], cards, k, FOR_YOU)
    return cards


def _fill_similar(
    session: Session,
    saved: SavedModel | None,
    product_id: str,
    cards: list[dict],
    k: int,
    prefix: str,
) -> None:
    """Top ``cards`` up to ``k`` with products bought together with (or like) ``product_id``."""
    have = {c["product_id"] for c in cards}
    for extra in similar(session, saved, product_id, k=k)["items"]:
        if len(cards) >= k:
            break
        if extra["product_id"] not in have:
            cards.append({**extra, "reason": prefix + extra["reason"]})
            have.add(extra["product_id"])


def suggest_for_entry(
    session: Session, saved: SavedModel | None, entry_id: int, k: int = 3
) -> list[dict]:
    """Non-personal cards after an answer about ``entry_id``, for anyone (anonymous visitors,
    customers without marketing consent): computed without the visitor's data.

    The entry's linked products, then what customers who asked about it also bought (counted
    over at least :data:`~annae.recommend.store.MIN_GROUP` customers, one slot kept for it when
    there is any), then products bought together with the first linked one (the model's
    item-to-item co-purchase, the same for everyone). Empty when the entry has no linked products.
    """
    k = _check_k(k)
    linked = entry_products(session, entry_id)
    if not linked:
        return []
    live = _active(session, linked)
    linked = [p for p in linked if p in live]
    asked = asked_also_bought(session, entry_id, k, exclude=linked)
    take = linked[: k - 1] if asked and len(linked) >= k else linked[:k]
    cards = [
        Item(p, live[p].name, live[p].price, 1.0, "also_like", REASON_LINKED).to_dict()
        for p in take
    ]
    found = products_by_id(session, [pid for pid, _n in asked])
    for pid, n in asked:
        if len(cards) >= k:
            break
        p = found[pid]
        cards.append(Item(p.id, p.name, p.price, float(n), "also_like", REASON_ASKED).to_dict())
    if len(cards) < k and saved is not None and saved.model is not None and linked:
        _fill_similar(session, saved, linked[0], cards, k, FOR_EVERYONE)
    return cards


def card(item: dict, kind: str = PERSONAL) -> dict:
    """What a chat shows of a recommended product (``kind``: personal or general)."""
    return {**{key: item[key] for key in ("product_id", "name", "price", "reason")}, "kind": kind}
