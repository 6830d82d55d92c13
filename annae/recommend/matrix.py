"""Interactions as integer-coded arrays and sparse customer × product matrices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

DAY = 86400.0


@dataclass
class Interactions:
    """Coded interactions: row ``n`` is customer ``users[n]`` with product ``items[n]`` at ``times[n]``.

    ``user_ids``/``item_ids`` map codes back to external ids; ``item_names`` and
    ``item_text`` describe products (for reasons and content similarity).
    """

    users: np.ndarray
    items: np.ndarray
    times: np.ndarray  # int64 seconds since the epoch
    user_ids: np.ndarray
    item_ids: np.ndarray
    item_names: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    item_text: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    weights: np.ndarray | None = None  # per-row weight (views/clicks count less than purchases)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def end_time(self) -> int:
        return int(self.times.max()) if len(self.times) else 0

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, item_ids: np.ndarray | None = None) -> Interactions:
        """Code a cleaned frame (columns ``customer, product, time`` and optionally ``name``,
        ``description``, ``kind``); ``item_ids`` fixes the catalogue (others are dropped)."""
        import pandas as pd

        customers = frame["customer"].astype(str).to_numpy()
        products = frame["product"].astype(str).to_numpy()
        if item_ids is None:
            item_ids = np.array(sorted(set(products)), dtype=object)
        item_index = pd.Index(item_ids)
        items = item_index.get_indexer(products)
        keep = items >= 0
        user_ids, users = np.unique(customers[keep], return_inverse=True)
        times = frame["time"]
        if pd.api.types.is_datetime64_any_dtype(times):
            secs = times.astype("int64").to_numpy() // _unit_divisor(times)
        else:
            secs = np.asarray(times, dtype=np.int64)
        names = np.array([""] * len(item_ids), dtype=object)
        text = np.array([""] * len(item_ids), dtype=object)

        def latest(column: str) -> tuple[np.ndarray, np.ndarray]:
            """Catalogue positions of the products with a ``column`` value, and their last one."""
            last = frame.loc[keep, ["product", column]].dropna()
            last = last.drop_duplicates("product", keep="last")
            pos = item_index.get_indexer(last["product"].astype(str))
            return pos, last[column].astype(str).to_numpy()

        if "name" in frame:
            pos, values = latest("name")
            names[pos] = values
            text[pos] = names[pos]
        if "description" in frame and frame["description"].notna().any():
            pos, values = latest("description")
            text[pos] = text[pos] + " " + values
        weights = None
        if "kind" in frame:
            kind_w = {"purchase": 1.0, "conversation": 0.5, "click": 0.3, "view": 0.2}
            weights = frame["kind"].astype(str).map(kind_w).fillna(1.0).to_numpy(np.float32)[keep]
        return cls(
            users=users.astype(np.int32),
            items=items[keep].astype(np.int32),
            times=secs[keep].astype(np.int64),
            user_ids=user_ids.astype(object),
            item_ids=np.asarray(item_ids, dtype=object),
            item_names=names,
            item_text=text,
            weights=weights,
        )

    def subset(self, mask: np.ndarray) -> Interactions:
        """The same coding (customers and catalogue) restricted to some rows."""
        return Interactions(
            users=self.users[mask],
            items=self.items[mask],
            times=self.times[mask],
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            item_names=self.item_names,
            item_text=self.item_text,
            weights=None if self.weights is None else self.weights[mask],
        )

    def daily(self) -> pd.DataFrame:
        """One row per customer ``u``, product ``i`` and day ``d`` with the day's largest weight ``w``."""
        import pandas as pd

        day = self.times // int(DAY)
        w = np.ones(len(self.users), np.float32) if self.weights is None else self.weights
        key = pd.DataFrame({"u": self.users, "i": self.items, "d": day, "w": w})
        return key.groupby(["u", "i", "d"], sort=False)["w"].max().reset_index()

    def counts(self) -> sp.csr_matrix:
        """Customer × product matrix of (weighted) distinct-day interaction counts."""
        key = self.daily()
        mat = sp.csr_matrix(
            (key["w"].to_numpy(np.float32), (key["u"].to_numpy(), key["i"].to_numpy())),
            shape=(self.n_users, self.n_items),
        )
        mat.sum_duplicates()
        return mat

    def last_seen(self, first: bool = False) -> sp.csr_matrix:
        """Customer × product matrix of days between the last interaction (the first with
        ``first``) and the data's end (+1)."""
        import pandas as pd

        frame = pd.DataFrame({"u": self.users, "i": self.items, "t": self.times})
        last = frame.groupby(["u", "i"], sort=False)["t"].agg("min" if first else "max")
        last = last.reset_index()
        days = (self.end_time - last["t"].to_numpy()) / DAY + 1.0
        return sp.csr_matrix(
            (days.astype(np.float32), (last["u"].to_numpy(), last["i"].to_numpy())),
            shape=(self.n_users, self.n_items),
        )


def _unit_divisor(times: pd.Series) -> int:
    unit = np.datetime_data(times.dtype.base if hasattr(times.dtype, "base") else times.dtype)[0]
    return {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]


def binarize(mat: sp.csr_matrix) -> sp.csr_matrix:
    out = mat.copy()
    out.data = np.ones_like(out.data, dtype=np.float32)
    return out
