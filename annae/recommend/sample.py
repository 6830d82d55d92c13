"""Small interaction data for tests and demos: a synthetic shop with a known answer, and slices
of the Online Retail file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

GROUPS = {
    "A": "red garden {} lantern",
    "B": "blue kitchen {} mug",
}


def synthetic_frame(
    customers: int = 80, items_per_group: int = 12, days: int = 120, seed: int = 0
) -> pd.DataFrame:
    """Customers who each buy within one group (A or B) of products, some repeatedly; product
    ``HOT`` sells to many customers in the last week only. Columns as :func:`clean_interactions`."""
    rng = np.random.default_rng(seed)
    end = pd.Timestamp("2024-03-31 12:00", tz="UTC")
    rows = []
    for c in range(customers):
        group = "A" if c % 2 == 0 else "B"
        favourites = rng.choice(items_per_group, size=rng.integers(3, 7), replace=False)
        for _visit in range(rng.integers(3, 8)):
            when = end - pd.Timedelta(days=float(rng.uniform(8, days)))
            for f in rng.choice(
                favourites, size=rng.integers(1, len(favourites) + 1), replace=False
            ):
                rows.append((f"C{c:03d}", f"{group}{f:02d}", when, int(rng.integers(1, 5))))
        if c % 3 == 0:
            when = end - pd.Timedelta(days=float(rng.uniform(0, 6)))
            rows.append((f"C{c:03d}", "HOT", when, 1))
    frame = pd.DataFrame(rows, columns=["customer", "product", "time", "quantity"])
    names = {
        f"{g}{i:02d}": tpl.format(i) for g, tpl in GROUPS.items() for i in range(items_per_group)
    }
    names["HOT"] = "festive star decoration"
    frame["name"] = frame["product"].map(names)
    frame["price"] = 2.5
    frame["description"] = frame["name"]
    frame["category"] = frame["product"].str[0]
    frame["kind"] = "purchase"
    frame["time"] = frame["time"].dt.floor("s")
    return frame.sort_values("time").reset_index(drop=True)


def write_synthetic_csv(path: Path, **kwargs) -> Path:
    """The synthetic shop as a CSV in the default column mapping."""
    frame = synthetic_frame(**kwargs)
    out = frame.rename(
        columns={"customer": "customer_id", "product": "product_id", "time": "timestamp"}
    )
    out.to_csv(path, index=False)
    return path


def retail_slice(source: Path, dest: Path, *, every: int = 20, max_rows: int | None = None) -> Path:
    """Every ``every``-th customer of the Online Retail file (all their rows, plus a few rows
    without a customer), in the original columns, as CSV (gzipped for a ``.gz`` name)."""
    raw = pd.read_csv(source, dtype=str, keep_default_na=False, na_values=[""])
    ids = pd.to_numeric(raw["CustomerID"], errors="coerce")
    keep = (ids.fillna(1).astype("int64") % every == 0) | (
        ids.isna() & (np.arange(len(raw)) % (every * 10) == 0)
    )
    part = raw[keep]
    if max_rows:
        part = part.head(max_rows)
    part.to_csv(dest, index=False, compression="gzip" if str(dest).endswith(".gz") else None)
    return dest
