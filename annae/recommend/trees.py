"""Gradient-boosted trees flattened into numpy arrays, for sub-millisecond scoring of one customer.

scikit-learn's ``HistGradientBoostingClassifier.predict_proba`` costs ~20 µs of Python per tree;
here every tree walks one level at a time for all rows together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# each node array: the column of scikit-learn's node records it comes from, its dtype, and what
# pads trees with fewer nodes (a padding node is a leaf worth 0)
_NODES = {
    "feature": ("feature_idx", np.int32, 0),
    "threshold": ("num_threshold", np.float64, 0.0),
    "left": ("left", np.int32, 0),
    "right": ("right", np.int32, 0),
    "missing_left": ("missing_go_to_left", bool, False),
    "leaf": ("is_leaf", bool, True),
    "value": ("value", np.float64, 0.0),
}


@dataclass
class TreeEnsemble:
    """Padded node arrays (trees × nodes); ``decision(x)`` is the raw log-odds."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    missing_left: np.ndarray
    leaf: np.ndarray
    value: np.ndarray
    baseline: float
    depth: int

    @classmethod
    def from_sklearn(cls, model) -> TreeEnsemble:
        """Flatten a fitted binary ``HistGradientBoostingClassifier`` (numerical features only)."""
        trees = [preds[0].nodes for preds in model._predictors]
        shape = (len(trees), max(len(t) for t in trees))
        arrays = {}
        for name, (column, dtype, fill) in _NODES.items():
            arrays[name] = np.full(shape, fill, dtype)
            for t, nodes in enumerate(trees):
                arrays[name][t, : len(nodes)] = nodes[column]
        return cls(
            **arrays,
            baseline=float(np.ravel(model._baseline_prediction)[0]),
            depth=int(max(t["depth"].max() for t in trees)) if trees else 0,
        )

    @classmethod
    def average(cls, parts: list[TreeEnsemble]) -> TreeEnsemble:
        """One ensemble whose decision is the mean of ``parts``' decisions (trees side by side)."""
        if len(parts) == 1:
            return parts[0]
        width = max(p.feature.shape[1] for p in parts)
        arrays = {}
        for name, (_column, _dtype, fill) in _NODES.items():
            each = [getattr(p, name) for p in parts]
            arrays[name] = np.concatenate(
                [np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=fill) for a in each]
            )
        arrays["value"] = arrays["value"] / len(parts)
        return cls(
            **arrays,
            baseline=float(np.mean([p.baseline for p in parts])),
            depth=max(p.depth for p in parts),
        )

    def __post_init__(self) -> None:
        n_trees, width = self.feature.shape
        offset = np.repeat(np.arange(n_trees, dtype=np.int64) * width, width)
        leaf = self.leaf.ravel()
        self._left = self.left.ravel().astype(np.int64) + offset
        self._right = self.right.ravel().astype(np.int64) + offset
        self._left[leaf] = np.flatnonzero(leaf)  # leaves point at themselves
        self._right[leaf] = np.flatnonzero(leaf)
        self._feature = self.feature.ravel().astype(np.int64)
        self._threshold = self.threshold.ravel()
        self._value = self.value.ravel()
        self._start = np.arange(n_trees, dtype=np.int64) * width

    def decision(self, x: np.ndarray) -> np.ndarray:
        """Raw scores (log-odds) for rows of ``x`` (no missing values)."""
        n_rows, n_feat = x.shape
        flat_x = np.ascontiguousarray(x, dtype=np.float64).ravel()
        row_off = (np.arange(n_rows, dtype=np.int64) * n_feat)[None, :]
        node = np.repeat(self._start[:, None], n_rows, axis=1)
        for _ in range(self.depth):
            go_left = flat_x[row_off + self._feature[node]] <= self._threshold[node]
            node = np.where(go_left, self._left[node], self._right[node])
        return self.baseline + self._value[node].sum(axis=0)
