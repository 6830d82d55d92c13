"""Reading interaction files (CSV/Parquet) through a column mapping, with a cleaning report."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from pandas import Series  # for annotations inside functions whose local pd hides the name

KINDS = ("purchase", "view", "conversation", "click")


class ImportFileError(ValueError):
    """A file that cannot be imported at all (nothing is written)."""


def require_pandas(task: str):
    """pandas, which reading purchase data and training a recommender need and serving does not:
    `pip install annae` leaves it out, `annae[recommend]` (or `[train]`) brings it."""
    try:
        import pandas
    except ModuleNotFoundError as exc:
        raise ImportFileError(
            f"{task} needs pandas, which the serving-only install leaves out: "
            "pip install 'annae[recommend]'"
        ) from exc
    return pandas


@dataclass(frozen=True)
class ColumnMap:
    """Which source column holds each field; ``None`` means the file has no such column."""

    customer: str = "customer_id"
    product: str = "product_id"
    time: str = "timestamp"
    quantity: str | None = "quantity"
    price: str | None = "price"
    name: str | None = "name"
    description: str | None = "description"
    category: str | None = "category"
    kind: str | None = "kind"
    invoice: str | None = None
    # invoices starting with this prefix are cancellations (e.g. "C" in Online Retail)
    cancel_prefix: str | None = None
    # product codes that are not products (postage, fees, discounts); exact or ``re:`` regex
    non_products: tuple[str, ...] = ()

    def with_overrides(self, overrides: dict[str, str]) -> ColumnMap:
        """A copy with some fields changed (``{"customer": "CustId"}``); empty string means none."""
        known = set(asdict(self)) - {"non_products"}
        bad = set(overrides) - known
        if bad:
            raise ImportFileError(
                f"unknown mapping field(s): {', '.join(sorted(bad))}; known: {', '.join(sorted(known))}"
            )
        changes: dict[str, Any] = {key: value or None for key, value in overrides.items()}
        return replace(self, **changes)


ONLINE_RETAIL_NON_PRODUCTS = (
    "POST",
    "D",
    "DOT",
    "M",
    "m",
    "BANK CHARGES",
    "C2",
    "PADS",
    "AMAZONFEE",
    "CRUK",
    "S",
    "B",
    "re:^gift_",
    "re:^DCGSSBOY$",
    "re:^DCGSSGIRL$",
)

PRESETS: dict[str, ColumnMap] = {
    "default": ColumnMap(),
    "online-retail": ColumnMap(
        customer="CustomerID",
        product="StockCode",
        time="InvoiceDate",
        quantity="Quantity",
        price="UnitPrice",
        name="Description",
        description=None,
        category=None,
        kind=None,
        invoice="InvoiceNo",
        cancel_prefix="C",
        non_products=ONLINE_RETAIL_NON_PRODUCTS,
    ),
}


@dataclass
class ImportReport:
    """What a file held and what was kept."""

    source: str = ""
    rows_read: int = 0
    rows_kept: int = 0
    cancellations: int = 0
    missing_customer: int = 0
    non_positive_quantity: int = 0
    non_product_codes: int = 0
    non_product_examples: dict[str, int] = field(default_factory=dict)
    customers: int = 0
    products: int = 0
    first_time: str | None = None
    last_time: str | None = None
    # filled by the database import
    new_customers: int = 0
    new_products: int = 0
    interactions_written: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _is_non_product(codes: pd.Series, patterns: tuple[str, ...]) -> pd.Series:
    exact = {p for p in patterns if not p.startswith("re:")}
    mask = codes.isin(exact)
    for pat in (p[3:] for p in patterns if p.startswith("re:")):
        mask |= codes.str.contains(re.compile(pat), regex=True, na=False)
    return mask


def _clean_id(values: pd.Series) -> pd.Series:
    """Strip ids and drop a float-style ``.0`` suffix (``17850.0`` → ``17850``)."""
    out = values.astype("string").str.strip()
    out = out.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    return out.mask(out.isin(["", "nan", "NaN", "None", "null"]))


def _first_bad(raw: pd.Series, parsed: pd.Series) -> str:
    bad = parsed.isna() & raw.notna() & (raw.astype("string").str.strip() != "")
    idx = int(np.flatnonzero(bad.to_numpy())[0])
    return f"line {idx + 2}: {raw.name} {str(raw.iloc[idx])[:60]!r}"


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV (optionally compressed) or Parquet file as strings."""
    path = Path(path)
    if not path.exists():
        raise ImportFileError(f"{path}: no such file")
    pd = require_pandas("reading purchase data")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            if importlib.util.find_spec("pyarrow") is None:
                raise ImportFileError(
                    f"{path.name}: reading Parquet needs pyarrow (pip install 'annae[parquet]'); "
                    "or convert the file to CSV"
                )
            frame = pd.read_parquet(path)
            return frame.astype("string")
        return pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], encoding_errors="replace"
        )
    except ImportFileError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many kinds
        raise ImportFileError(
            f"{path.name}: cannot read the file ({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc


def clean_interactions(
    raw: pd.DataFrame, mapping: ColumnMap, source: str = ""
) -> tuple[pd.DataFrame, ImportReport]:
    """Validate and clean a raw table into ``customer, product, time, quantity, price, name,
    description, category, kind`` rows; raise :class:`ImportFileError` if it is malformed."""
    pd = require_pandas("reading purchase data")
    report = ImportReport(source=source, rows_read=len(raw))
    where = source or "file"
    if raw.empty:
        raise ImportFileError(f"{where}: no rows")
    needed = {"customer": mapping.customer, "product": mapping.product, "time": mapping.time}
    optional = {
        k: getattr(mapping, k)
        for k in ("quantity", "price", "name", "description", "category", "kind", "invoice")
    }
    missing = [
        f"{col!r} (for {field_})" for field_, col in needed.items() if col not in raw.columns
    ]
    missing += [
        f"{col!r} (for {field_})"
        for field_, col in optional.items()
        if col and col not in raw.columns
    ]
    if missing:
        raise ImportFileError(
            f"{where}: missing column(s) {', '.join(missing)}; the file has {', '.join(map(repr, raw.columns[:20]))}"
        )
    out = pd.DataFrame(index=raw.index)
    out["customer"] = _clean_id(raw[mapping.customer])
    out["product"] = raw[mapping.product].astype("string").str.strip()
    times = pd.to_datetime(raw[mapping.time], errors="coerce", utc=True, format="mixed")
    if times.isna().any():
        raise ImportFileError(f"{where}: not a date/time at {_first_bad(raw[mapping.time], times)}")
    out["time"] = times
    if mapping.quantity:
        qty = pd.to_numeric(raw[mapping.quantity], errors="coerce")
        if qty.isna().any():
            raise ImportFileError(
                f"{where}: not a number at {_first_bad(raw[mapping.quantity], qty)}"
            )
        out["quantity"] = qty.round().astype("int64")
    else:
        out["quantity"] = 1
    if mapping.price:
        price = pd.to_numeric(raw[mapping.price], errors="coerce")
        if (price.isna() & raw[mapping.price].notna()).any():
            raise ImportFileError(
                f"{where}: not a price at {_first_bad(raw[mapping.price], price)}"
            )
        out["price"] = price
    else:
        out["price"] = np.nan
    for key in ("name", "description", "category"):
        col = getattr(mapping, key)
        out[key] = raw[col].astype("string").str.strip() if col else pd.NA
    if mapping.kind:
        kind = raw[mapping.kind].astype("string").str.strip().str.lower().fillna("purchase")
        bad = ~kind.isin(KINDS)
        if bad.any():
            idx = int(np.flatnonzero(bad.to_numpy())[0])
            raise ImportFileError(
                f"{where}: line {idx + 2}: kind {kind.iloc[idx]!r} is not one of {', '.join(KINDS)}"
            )
        out["kind"] = kind
    else:
        out["kind"] = "purchase"
    if out["product"].isna().all():
        raise ImportFileError(f"{where}: the product column {mapping.product!r} is empty")

    keep = out["product"].notna()

    def drop(rows: Series) -> Series:
        """Stop keeping ``rows``; those of them that were still kept."""
        nonlocal keep
        dropped = rows & keep
        keep &= ~rows
        return dropped

    if mapping.invoice and mapping.cancel_prefix:
        cancel = raw[mapping.invoice].astype("string").str.startswith(mapping.cancel_prefix)
        report.cancellations = int(drop(cancel.fillna(False)).sum())
    report.missing_customer = int(drop(out["customer"].isna()).sum())
    report.non_positive_quantity = int(drop(out["quantity"] <= 0).sum())
    if mapping.non_products:
        nonprod = drop(_is_non_product(out["product"], mapping.non_products))
        dropped = out.loc[nonprod, "product"]
        report.non_product_codes = len(dropped)
        report.non_product_examples = {
            str(k): int(v) for k, v in dropped.value_counts().head(15).items()
        }
    clean = out[keep].reset_index(drop=True)
    report.rows_kept = len(clean)
    report.customers = int(clean["customer"].nunique())
    report.products = int(clean["product"].nunique())
    if len(clean):
        report.first_time = clean["time"].min().isoformat()
        report.last_time = clean["time"].max().isoformat()
    return clean, report


def load_interactions(
    path: str | Path, mapping: ColumnMap | None = None
) -> tuple[pd.DataFrame, ImportReport]:
    """Read and clean an interactions file."""
    mapping = mapping or PRESETS["default"]
    raw = read_table(path)
    return clean_interactions(raw, mapping, source=Path(path).name)
