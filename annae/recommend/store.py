"""Database side of recommendations: bulk import, catalogue, consent, interactions, entry links.

Other capabilities call these functions; they never touch the ``rec_*`` tables directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Connection, Engine, delete, func, insert, select
from sqlalchemy.orm import Session

from annae import errors
from annae.recommend.data import KINDS, ImportFileError, ImportReport
from annae.store.db import iso, rowcount, utcnow
from annae.store.tables.recommend import (
    RecCustomer,
    RecEntryProduct,
    RecInteraction,
    RecProduct,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

CHUNK = 20_000
Progress = Callable[[int, int], None]


class RecommendError(errors.AnnaeError, ValueError):
    """A recommendation request or change that cannot be done (unknown id, bad kind)."""

    status, code = 422, "invalid"


class ProductNotFound(errors.NotFound, RecommendError):
    pass


# -- import -------------------------------------------------------------------------------------
def import_frame(
    engine: Engine,
    frame: pd.DataFrame,
    report: ImportReport,
    *,
    replace: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Write a cleaned frame (see :func:`annae.recommend.data.clean_interactions`) in one transaction.

    New customers and products are added (existing ones keep their data, products get a
    missing name/price filled in); interactions are appended, tagged with ``report.source``.
    Importing the same source twice is refused unless ``replace`` deletes its earlier rows.
    """
    import pandas as pd

    start = time.perf_counter()
    source = (report.source or "import")[:200]
    with engine.begin() as conn:
        already = _count(conn, RecInteraction, RecInteraction.source == source)
        if already and not replace:
            raise ImportFileError(
                f"{source} was already imported ({already} interactions); use --replace to import it again"
            )
        if already:
            conn.execute(delete(RecInteraction).where(RecInteraction.source == source))
        now = utcnow()
        have_c = set(conn.scalars(select(RecCustomer.id)))
        customers = [
            {"id": c[:100], "name": None, "country": None, "created_at": now}
            for c in pd.unique(frame["customer"].astype(str))
            if c not in have_c
        ]
        for i in range(0, len(customers), CHUNK):
            conn.execute(insert(RecCustomer), customers[i : i + CHUNK])
        report.new_customers = len(customers)

        have_p = set(conn.scalars(select(RecProduct.id)))
        products = _product_table(frame)
        new = products[~products["product"].isin(have_p)]
        new = new.astype(object).where(new.notna(), None)  # NaN and pandas' NA: None
        rows = [
            {
                "id": str(r.product)[:100],
                "name": str(r.name or "")[:500],
                "description": str(r.description or ""),
                "price": r.price,
                "category": str(r.category)[:200] if r.category is not None else None,
                "active": True,
                "created_at": now,
                "updated_at": now,
            }
            for r in new.itertuples(index=False)
        ]
        for i in range(0, len(rows), CHUNK):
            conn.execute(insert(RecProduct), rows[i : i + CHUNK])
        report.new_products = len(rows)

        total = len(frame)
        columns = {
            "customer_id": frame["customer"].astype(str).str.slice(0, 100).to_numpy(),
            "product_id": frame["product"].astype(str).str.slice(0, 100).to_numpy(),
            "at": pd.to_datetime(frame["time"], utc=True).dt.to_pydatetime(),
            "quantity": frame["quantity"].astype(int).to_numpy().tolist(),
            "kind": frame["kind"].astype(str).to_numpy(),
        }
        done = 0
        for i in range(0, total, CHUNK):
            batch = list(zip(*(col[i : i + CHUNK] for col in columns.values()), strict=True))
            _bulk_insert_interactions(conn, batch, source)
            done = min(total, i + CHUNK)
            if progress:
                progress(done, total)
        report.interactions_written = done
    report.seconds = round(time.perf_counter() - start, 2)
    return report


def imported_rows(engine: Engine, source: str) -> int:
    """How many stored interactions came from ``source`` (a file name)."""
    with engine.connect() as conn:
        return _count(conn, RecInteraction, RecInteraction.source == source[:200])


def _count(db: Connection | Session, table: type, *where: ColumnElement[bool]) -> int:
    """How many rows of ``table`` match every condition in ``where``."""
    return db.scalar(select(func.count()).select_from(table).where(*where)) or 0


def _bulk_insert_interactions(conn, rows: list[tuple], source: str) -> None:
    """Append interaction rows (customer, product, at, quantity, kind) inside ``conn``'s transaction:
    COPY on PostgreSQL, ``executemany`` on the raw SQLite cursor, SQLAlchemy Core elsewhere."""
    dialect = conn.dialect.name
    raw = conn.connection.driver_connection
    if dialect == "postgresql" and hasattr(raw, "cursor"):
        with (
            raw.cursor() as cur,
            cur.copy(
                "COPY rec_interactions (customer_id, product_id, at, quantity, kind, source) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row((*row, source))
    elif dialect == "sqlite":
        cur = raw.cursor()
        cur.executemany(
            "INSERT INTO rec_interactions (customer_id, product_id, at, quantity, kind, source) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(c, p, t.strftime("%Y-%m-%d %H:%M:%S.%f"), q, k, source) for c, p, t, q, k in rows],
        )
        cur.close()
    else:
        keys = ("customer_id", "product_id", "at", "quantity", "kind")
        conn.execute(
            insert(RecInteraction), [dict(zip(keys, r, strict=True), source=source) for r in rows]
        )


def _product_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per product: its latest name/description/category and median price."""
    cols = ["product", "name", "description", "category"]
    last = frame[cols].copy()
    for c in ("name", "description", "category"):
        last[c] = last[c].astype(object)
    last = last.groupby("product", sort=False).last().reset_index()
    price = frame.groupby("product", sort=False)["price"].median()
    last["price"] = last["product"].map(price).astype(float)
    last["product"] = last["product"].astype(str)
    return last


# -- reading for training ------------------------------------------------------------------------
def interactions_frame(session: Session) -> pd.DataFrame:
    """Every stored interaction with the product's name and description (for training)."""
    import pandas as pd

    stmt = select(
        RecInteraction.customer_id,
        RecInteraction.product_id,
        RecInteraction.at,
        RecInteraction.quantity,
        RecInteraction.kind,
        RecProduct.name,
        RecProduct.description,
    ).join(RecProduct, RecProduct.id == RecInteraction.product_id)
    rows = session.execute(stmt).all()
    frame = pd.DataFrame(
        rows, columns=["customer", "product", "time", "quantity", "kind", "name", "description"]
    )
    if not frame.empty:
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame


# -- catalogue -----------------------------------------------------------------------------------
def upsert_product(
    session: Session,
    product_id: str,
    *,
    name: str = "",
    description: str = "",
    price: float | None = None,
    category: str | None = None,
    active: bool = True,
) -> RecProduct:
    """Create or update a product."""
    product_id = _id(product_id, "product id")
    row = session.get(RecProduct, product_id)
    if row is None:
        row = RecProduct(
            id=product_id,
            name=name,
            description=description,
            price=price,
            category=category,
            active=active,
        )
        session.add(row)
    else:
        row.name, row.description, row.price, row.category, row.active = (
            name or row.name,
            description or row.description,
            price if price is not None else row.price,
            category or row.category,
            active,
        )
    session.flush()
    return row


def delete_product(session: Session, product_id: str) -> None:
    """Mark a product deleted: it stays in history but is never recommended again."""
    row = session.get(RecProduct, _id(product_id, "product id"))
    if row is None:
        raise ProductNotFound(f"no product with id {product_id!r}")
    row.active = False
    session.flush()


def products_by_id(session: Session, ids: Iterable[str]) -> dict[str, RecProduct]:
    ids = list(dict.fromkeys(ids))
    if not ids:
        return {}
    return {p.id: p for p in session.scalars(select(RecProduct).where(RecProduct.id.in_(ids)))}


def counts(session: Session) -> dict[str, int]:
    """How many customers, products (active) and interactions are stored."""
    return {
        "customers": _count(session, RecCustomer),
        "products": _count(session, RecProduct),
        "active_products": _count(session, RecProduct, RecProduct.active.is_(True)),
        "interactions": _count(session, RecInteraction),
    }


# -- customers and consent ---------------------------------------------------------------------------
def _id(value: object, what: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise RecommendError(f"{what} must be a non-empty string, got {value!r}")
    text = str(value).strip()
    if len(text) > 100:
        raise RecommendError(f"{what} is longer than 100 characters")
    return text


def get_customer(session: Session, customer_id: str) -> RecCustomer | None:
    return session.get(RecCustomer, _id(customer_id, "customer id"))


def ensure_customer(session: Session, customer_id: str, *, name: str | None = None) -> RecCustomer:
    """The customer, created (without marketing consent) if new."""
    row = get_customer(session, customer_id)
    if row is None:
        row = RecCustomer(id=_id(customer_id, "customer id"), name=name)
        session.add(row)
        session.flush()
    return row


def has_marketing_consent(session: Session, customer_id: str) -> bool:
    """Whether recommendations may be shown to this customer: their latest consent event for
    ``marketing`` (``annae.privacy.consent``) is a grant; no record means no."""
    from annae.privacy.consent import ConsentError, has_consent

    try:
        return has_consent(session, customer_id, "marketing")
    except ConsentError:
        return False


CONSENT_TEXT = "recommendations-v1"
"""The notice version recorded when consent is set from the recommendations CLI or API."""


def set_marketing_consent(
    session: Session, customer_id: str, granted: bool, *, source: str = "recommend"
) -> None:
    """Record that a customer gave (or withdrew) consent to marketing recommendations."""
    from annae.privacy import consent

    if not isinstance(granted, bool):
        raise RecommendError(f"granted must be true or false, got {granted!r}")
    customer_id = ensure_customer(session, customer_id).id
    if granted:
        consent.grant(session, customer_id, "marketing", text_version=CONSENT_TEXT, source=source)
    else:
        consent.withdraw(session, customer_id, "marketing", source=source)
    session.flush()


def set_marketing_consent_bulk(
    session: Session, granted: bool, customer_ids: Iterable[str] | None = None
) -> int:
    """Set consent for many customers at once (all when ``customer_ids`` is None); returns the count."""
    stmt = select(RecCustomer.id)
    if customer_ids is not None:
        stmt = stmt.where(RecCustomer.id.in_([_id(c, "customer id") for c in customer_ids]))
    ids = list(session.scalars(stmt))
    for cid in ids:
        set_marketing_consent(session, cid, granted, source="recommend-bulk")
    return len(ids)


# -- interactions from the chat ---------------------------------------------------------------------
def record_interaction(
    session: Session,
    customer_id: str,
    product_id: str,
    *,
    kind: str = "click",
    quantity: int = 1,
    at: datetime | None = None,
    source: str = "chat",
) -> RecInteraction:
    """Store one interaction (a click on a product card, a mention in a conversation ...)."""
    if kind not in KINDS:
        raise RecommendError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise RecommendError(f"quantity must be a positive integer, got {quantity!r}")
    product = session.get(RecProduct, _id(product_id, "product id"))
    if product is None:
        raise ProductNotFound(f"no product with id {product_id!r}")
    ensure_customer(session, customer_id)
    row = RecInteraction(
        customer_id=str(customer_id).strip(),
        product_id=product.id,
        at=at or utcnow(),
        quantity=quantity,
        kind=kind,
        source=str(source)[:200],
    )
    session.add(row)
    session.flush()
    return row


# -- knowledge-base entries ↔ products -----------------------------------------------------------------
def link_entry(session: Session, entry_id: int, product_ids: Iterable[str]) -> list[str]:
    """Link a KB entry to products (replacing its links); returns the linked ids."""
    from annae.kb.entries import KBError, get_entry

    try:
        get_entry(session, int(entry_id))
    except (KBError, TypeError, ValueError) as exc:
        raise RecommendError(str(exc)) from exc
    ids = [_id(p, "product id") for p in product_ids]
    found = products_by_id(session, ids)
    missing = [p for p in ids if p not in found]
    if missing:
        raise ProductNotFound(f"no product with id {', '.join(map(repr, missing[:5]))}")
    session.execute(delete(RecEntryProduct).where(RecEntryProduct.entry_id == int(entry_id)))
    for pid in dict.fromkeys(ids):
        session.add(RecEntryProduct(entry_id=int(entry_id), product_id=pid))
    session.flush()
    return list(dict.fromkeys(ids))


def entry_products(session: Session, entry_id: int) -> list[str]:
    """Products linked to a KB entry, in link order."""
    stmt = (
        select(RecEntryProduct.product_id)
        .where(RecEntryProduct.entry_id == int(entry_id))
        .order_by(RecEntryProduct.id)
    )
    return list(session.scalars(stmt))


MIN_GROUP = 3
"""A product counts as "customers who asked about this also bought" only when at least this many
different customers did: the suggestion never reflects one person's purchases."""


def asked_also_bought(
    session: Session,
    entry_id: int,
    k: int,
    *,
    exclude: Iterable[str] = (),
    min_customers: int = MIN_GROUP,
) -> list[tuple[str, int]]:
    """Active products bought by customers who asked about ``entry_id`` (their conversation
    interest, :func:`record_entry_interest`), as ``(product id, number of customers)``, most
    customers first; only products at least ``min_customers`` of them bought."""
    asked = (
        select(RecInteraction.customer_id)
        .where(
            RecInteraction.source == f"entry:{int(entry_id)}",
            RecInteraction.kind == "conversation",
        )
        .distinct()
    )
    n = func.count(func.distinct(RecInteraction.customer_id))
    stmt = (
        select(RecInteraction.product_id, n)
        .join(RecProduct, RecProduct.id == RecInteraction.product_id)
        .where(
            RecInteraction.customer_id.in_(asked),
            RecInteraction.kind == "purchase",
            RecProduct.active.is_(True),
        )
        .group_by(RecInteraction.product_id)
        .having(n >= min_customers)
        .order_by(n.desc(), RecInteraction.product_id)
        .limit(k)
    )
    skip = list(exclude)
    if skip:
        stmt = stmt.where(RecInteraction.product_id.not_in(skip))
    return [(pid, int(count)) for pid, count in session.execute(stmt)]


def has_entry_interest(session: Session, customer_id: str, entry_id: int, since: datetime) -> bool:
    """Whether the customer's interest in ``entry_id`` was recorded at or after ``since``."""
    stmt = (
        select(RecInteraction.id)
        .where(
            RecInteraction.customer_id == str(customer_id).strip(),
            RecInteraction.source == f"entry:{int(entry_id)}",
            RecInteraction.kind == "conversation",
            RecInteraction.at >= since,
        )
        .limit(1)
    )
    return session.scalar(stmt) is not None


def record_entry_interest(session: Session, entry_id: int, customer_id: str) -> int:
    """An answered question about a linked entry counts as interest in its products; returns how many."""
    products = entry_products(session, entry_id)
    for pid in products:
        record_interaction(
            session, customer_id, pid, kind="conversation", source=f"entry:{int(entry_id)}"
        )
    return len(products)


# -- a customer's data, for their export and erasure (annae.privacy.rights) --------------------------
def customer_ids(session: Session) -> set[str]:
    """Every customer id with a profile or an interaction."""
    ids = set(session.scalars(select(RecCustomer.id)))
    ids.update(session.scalars(select(RecInteraction.customer_id).distinct()))
    return {c for c in ids if c}


def holds_customer(session: Session, customer_id: str) -> bool:
    """Whether the customer has a profile or an interaction."""
    return session.get(RecCustomer, customer_id) is not None or bool(
        _count(session, RecInteraction, RecInteraction.customer_id == customer_id)
    )


def export_customer(session: Session, customer_id: str) -> dict:
    """The customer's profile and interactions, JSON-ready."""
    rec = session.get(RecCustomer, customer_id)
    rows = session.scalars(
        select(RecInteraction)
        .where(RecInteraction.customer_id == customer_id)
        .order_by(RecInteraction.at)
    )
    interactions = [
        {"product_id": r.product_id, "at": iso(r.at), "quantity": r.quantity, "kind": r.kind,
         "source": r.source}
        for r in rows
    ]  # fmt: skip
    profile = rec and {"name": rec.name, "country": rec.country, "created_at": iso(rec.created_at)}
    return {"recommendation_profile": profile, "interactions": interactions}


def erase_customer(session: Session, customer_id: str) -> dict[str, int]:
    """Delete the customer's interactions and profile; how many interactions."""
    rec = session.get(RecCustomer, customer_id)
    interactions = delete(RecInteraction).where(RecInteraction.customer_id == customer_id)
    count = rowcount(session.execute(interactions))
    if rec is not None:
        session.delete(rec)
    return {"interactions": count}
