"""Turning classifier scores into calibrated confidences, and choosing thresholds.

All of it is estimated from out-of-fold predictions on the training data only:

* **Temperature scaling**: ``p = softmax(scores / T)`` with ``T`` chosen to
  minimise the log-loss of out-of-fold predictions.
* **Answer threshold**: the precision of answers at threshold ``t`` in traffic
  where a share ``π`` of questions is out of scope is

      precision(t) = (1-π)·P(correct, conf≥t | in scope)
                     / ((1-π)·P(conf≥t | in scope) + π·P(conf≥t | out of scope))

  The in-scope terms come from out-of-fold predictions. The out-of-scope term is
  the *average over sources* of the share each source answers at ``t``: the
  examples labelled ``oos`` (scored out of fold), and *pseudo out-of-scope*
  questions (the examples of entries held out of training altogether: unknown to
  that model, as an out-of-scope question is). Each source counts once whatever
  its size, so a company's few ``oos`` examples are not drowned by hundreds of
  pseudo ones, and adding them can only replace part of the (pessimistic)
  in-domain estimate by a measured one. Shares are point estimates with a
  half-count prior (Jeffreys), not an upper bound: the target is to land *at*
  the promised precision, not above it. ``t`` is the lowest confidence whose
  estimated precision reaches the target (over the whole curve, not the first
  dip).
* **Clarify threshold**: the same estimate for "the right entry is among the
  options offered", over the questions below the answer threshold, at its own
  (lower) target; never above the answer threshold.
* **Out-of-scope score**: ``P(out of scope | confidence)`` by isotonic regression
  of the same in-scope and out-of-scope rows (weighted ``1-π`` and ``π``); its
  threshold is the lowest score at which "out of scope" is right with the target
  precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax, softmax

PRIOR = 0.5
"""Half a count on each side of every out-of-scope share (Jeffreys prior)."""
CURVE_TARGETS = (0.90, 0.95, 0.98)
"""The operating points ``annae train`` prints and the KB page offers."""


def fit_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the log-loss of ``softmax(scores / T)``."""
    rows = np.arange(len(labels))
    finite = np.isfinite(scores[rows, labels])
    scores, labels, rows = scores[finite], labels[finite], np.arange(finite.sum())
    if len(labels) == 0:
        return 1.0

    def nll(log_t: float) -> float:
        return -log_softmax(scores / np.exp(log_t), axis=1)[rows, labels].mean()

    from scipy.optimize import minimize_scalar  # training only: serving skips its import

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


@dataclass
class Curve:
    """Estimated precision and coverage at each candidate threshold (high to low)."""

    thresholds: np.ndarray
    precision: np.ndarray
    coverage: np.ndarray  # share of all traffic answered
    in_scope_answered: np.ndarray  # share of in-scope questions answered correctly

    def choose(self, target: float) -> ThresholdChoice:
        """The lowest threshold whose estimated precision reaches ``target``."""
        ok = np.flatnonzero(self.precision >= target - 1e-12)
        if not len(ok):
            return ThresholdChoice(float(self.thresholds[0]) + 1e-9, 1.0, 0.0, False)
        i = ok[-1]
        return ThresholdChoice(
            float(self.thresholds[i]), float(self.precision[i]), float(self.coverage[i]), True
        )

    def operating_points(self, targets: Sequence[float] = CURVE_TARGETS) -> list[dict]:
        """One row per target: threshold, expected precision, coverage and containment."""
        out = []
        for target in targets:
            c = self.choose(target)
            i = int(np.searchsorted(-self.thresholds, -c.threshold, "left"))
            contained = float(self.in_scope_answered[i]) if c.reached_target else 0.0
            out.append(
                {
                    "target": target,
                    "threshold": round(c.threshold, 4),
                    "expected_precision": round(c.expected_precision, 4),
                    "expected_coverage": round(c.expected_coverage, 4),
                    "expected_containment": round(contained, 4),
                    "reached_target": c.reached_target,
                }
            )
        return out


def _sources(conf_oos) -> list[np.ndarray]:
    if isinstance(conf_oos, np.ndarray) and conf_oos.dtype != object:
        conf_oos = [conf_oos]
    return [np.sort(np.asarray(c, dtype=float)) for c in conf_oos if len(c)]


def _above(sorted_values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    return len(sorted_values) - np.searchsorted(sorted_values, thresholds, "left")


def oos_answered(conf_oos, thresholds: np.ndarray) -> np.ndarray:
    """Share of out-of-scope questions at or above each threshold: the mean over sources."""
    sources = _sources(conf_oos)
    if not sources:
        return np.zeros(len(thresholds))
    shares = [(_above(s, thresholds) + PRIOR) / (len(s) + 2 * PRIOR) for s in sources]
    return np.mean(shares, axis=0)


def precision_curve(
    conf_in: np.ndarray,
    correct_in: np.ndarray,
    conf_oos: np.ndarray | Sequence[np.ndarray],
    *,
    oos_share: float,
    max_points: int = 2000,
) -> Curve:
    """The estimated precision / coverage curve (see module doc).

    ``conf_oos``: one array, or one array per source of out-of-scope questions (each
    source weighs the same). With no out-of-scope source, ``oos_share`` is taken as 0.
    """
    conf_in = np.asarray(conf_in, dtype=float)
    correct_in = np.asarray(correct_in, dtype=bool)
    n_in = len(conf_in)
    if n_in == 0:
        empty = np.array([1.0])
        return Curve(empty, np.array([0.0]), np.array([0.0]), np.array([0.0]))
    cands = np.unique(np.concatenate([conf_in, [1.0]]))[::-1]  # high to low
    if len(cands) > max_points:  # quantiles are enough; keep the top exact
        cands = np.unique(np.quantile(conf_in, np.linspace(0, 1, max_points)))[::-1]
        cands = np.unique(np.concatenate([cands, [1.0]]))[::-1]
    sources = _sources(conf_oos)
    pi = oos_share if sources else 0.0
    a_in = _above(np.sort(conf_in), cands) / n_in
    c_in = _above(np.sort(conf_in[correct_in]), cands) / n_in
    answered = (1 - pi) * a_in + pi * oos_answered(sources, cands)
    precision = np.where(answered > 0, (1 - pi) * c_in / np.maximum(answered, 1e-12), 0.0)
    return Curve(cands, precision, answered, c_in)


@dataclass
class OosScore:
    """``P(out of scope | top confidence)``: a non-increasing step function of confidence."""

    confidence: np.ndarray  # increasing
    score: np.ndarray
    threshold: float  # "confidently out of scope" from this score up (> 1: never)
    expected_precision: float

    def __call__(self, confidence: float | np.ndarray) -> np.ndarray | float:
        if len(self.confidence) == 0:
            return (
                np.zeros_like(np.asarray(confidence, dtype=float)) if np.ndim(confidence) else 0.0
            )
        out = np.interp(confidence, self.confidence, self.score)
        return out if np.ndim(confidence) else float(out)


def fit_oos_score(
    conf_in: np.ndarray,
    conf_oos: np.ndarray | Sequence[np.ndarray],
    *,
    oos_share: float,
    target: float,
) -> OosScore:
    """Isotonic ``P(out of scope | confidence)`` and the score above which saying "out of
    scope" is right with precision ``target`` (estimated on the same rows)."""
    from sklearn.isotonic import IsotonicRegression

    sources = _sources(conf_oos)
    conf_in = np.asarray(conf_in, dtype=float)
    if not sources or not len(conf_in) or oos_share <= 0:
        return OosScore(np.zeros(0), np.zeros(0), 1.01, 0.0)
    x = np.concatenate([conf_in, *sources])
    is_oos = np.concatenate([np.zeros(len(conf_in)), *[np.ones(len(s)) for s in sources]])
    w = np.concatenate(
        [np.full(len(conf_in), (1 - oos_share) / len(conf_in))]
        + [np.full(len(s), oos_share / len(sources) / len(s)) for s in sources]
    )
    iso = IsotonicRegression(increasing=False, out_of_bounds="clip", y_min=0.0, y_max=1.0)
    iso.fit(x, is_oos, sample_weight=w)
    grid = np.unique(np.concatenate([[0.0, 1.0], iso.X_thresholds_]))
    score = iso.predict(grid)
    # precision of "out of scope" for questions with score ≥ θ, i.e. confidence ≤ c(θ)
    below_in = np.searchsorted(np.sort(conf_in), grid, "right") / len(conf_in)
    below_oos = 1 - oos_answered(sources, np.nextafter(grid, np.inf))
    said = (1 - oos_share) * below_in + oos_share * below_oos
    prec = np.where(said > 0, oos_share * below_oos / np.maximum(said, 1e-12), 0.0)
    # "score ≥ θ" covers every confidence up to the last one scored θ (the score is flat in
    # steps): judge each level by that whole region
    region_end = np.searchsorted(-score, -score, "right") - 1
    prec = prec[region_end]
    ok = np.flatnonzero(prec >= target)
    if not len(ok):
        return OosScore(grid, score, 1.01, 0.0)
    i = ok[np.argmin(score[ok])]  # the lowest score (most questions) still at the target
    return OosScore(grid, score, float(score[i]), float(prec[i]))
