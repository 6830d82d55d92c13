"""Turning classifier scores into calibrated confidences, and choosing thresholds.

All of it is estimated from out-of-fold predictions on the training data only:

* **Temperature scaling**: ``p = softmax(scores / T)`` with ``T`` chosen to
  minimise the log-loss of out-of-fold predictions.
* **Answer threshold**: the precision of answers at threshold ``t`` in traffic
  where a share ``π`` of questions is out of scope is

      precision(t) = (1-π)·P(correct, conf≥t | in scope)
                     / ((1-π)·P(conf≥t | in scope) + π·P(conf≥t | out of scope))

  The in-scope terms come from out-of-fold predictions; the out-of-scope term
  from the examples labelled ``oos`` (scored out of fold) pooled with
  *pseudo out-of-scope* questions: the examples of entries that were held out
  of training altogether (their entries are unknown to that model, which is
  exactly what an out-of-scope question is). ``t`` is the lowest confidence
  at which the estimated precision still reaches the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax


def fit_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the log-loss of ``softmax(scores / T)``."""
    rows = np.arange(len(labels))
    finite = np.isfinite(scores[rows, labels])
    scores, labels, rows = scores[finite], labels[finite], np.arange(finite.sum())
    if len(labels) == 0:
        return 1.0

    def nll(log_t: float) -> float:
        return -log_softmax(scores / np.exp(log_t), axis=1)[rows, labels].mean()

    res = minimize_scalar(nll, bounds=(np.log(1e-3), np.log(10.0)), method="bounded")
    return float(np.exp(res.x))


def probabilities(scores: np.ndarray, temperature: float) -> np.ndarray:
    return softmax(scores / temperature, axis=1)


@dataclass
class ThresholdChoice:
    threshold: float
    expected_precision: float
    expected_coverage: float
    reached_target: bool


def choose_threshold(
    conf_in: np.ndarray,
    correct_in: np.ndarray,
    conf_oos: np.ndarray,
    *,
    target: float,
    oos_share: float,
    min_answered: int = 10,
) -> ThresholdChoice:
    """Lowest threshold whose estimated precision (see module doc) reaches ``target``."""
    conf_in = np.asarray(conf_in, dtype=float)
    correct_in = np.asarray(correct_in, dtype=bool)
    conf_oos = np.asarray(conf_oos, dtype=float)
    n_in, n_oos = len(conf_in), len(conf_oos)
    if n_in == 0:
        return ThresholdChoice(1.0, 0.0, 0.0, False)
    pi = oos_share if n_oos else 0.0
    cands = np.unique(np.concatenate([conf_in, [1.0]]))[::-1]  # high to low
    in_sorted = np.sort(conf_in)
    ok_sorted = np.sort(conf_in[correct_in])
    oos_sorted = np.sort(conf_oos)
    best = ThresholdChoice(float(cands[0]) + 1e-9, 1.0, 0.0, False)
    for i, t in enumerate(cands):
        a_in = (n_in - np.searchsorted(in_sorted, t, "left")) / n_in
        c_in = (len(ok_sorted) - np.searchsorted(ok_sorted, t, "left")) / n_in
        # add-one smoothing: a handful of out-of-scope examples never proves a rate of zero
        a_oos = (n_oos - np.searchsorted(oos_sorted, t, "left") + 1) / (n_oos + 2) if n_oos else 0.0
        answered = (1 - pi) * a_in + pi * a_oos
        precision = (1 - pi) * c_in / answered if answered > 0 else 1.0
        if precision >= target:
            best = ThresholdChoice(float(t), float(precision), float(answered), True)
        elif i >= min_answered:
            break
    return best
