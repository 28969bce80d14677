"""Classification metrics as pure functions of a threshold curve (no I/O, no MLflow).

A :class:`Curve` holds, for every candidate threshold t (descending; "positive" means score >= t), the
cumulative true- and false-positive counts. It is built in one sort of the scores (exact; or from
histogram bins, for Spark), and every threshold strategy and every metric reads it: the whole ROC and
PR analysis of a trial costs one pass instead of a loop over candidate thresholds.
Area metrics use sklearn.metrics (``auc``, ``log_loss``) on the curve; tests check every figure
against sklearn.metrics computed from the raw labels and scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import auc
from sklearn.metrics import log_loss as _sk_log_loss

__all__ = [
    "Curve",
    "curve_from_scores",
    "merge_curves",
    "metrics_at",
    "area_metrics",
    "log_loss",
    "multiclass_log_loss",
    "POINT_METRICS",
]

POINT_METRICS = ("accuracy", "precision", "recall", "f1", "specificity", "balanced_accuracy")


@dataclass(frozen=True)
class Curve:
    """Cumulative counts at descending thresholds; index 0 is +inf (nothing predicted positive)."""

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    pos: float  # positives (a whole count unless the curve is weighted)
    neg: float

    @property
    def fn(self) -> np.ndarray:
        return self.pos - self.tp

    @property
    def tn(self) -> np.ndarray:
        return self.neg - self.fp

    @property
    def tpr(self) -> np.ndarray:
        return self.tp / self.pos if self.pos else np.zeros_like(self.tp, dtype=float)

    @property
    def fpr(self) -> np.ndarray:
        return self.fp / self.neg if self.neg else np.zeros_like(self.fp, dtype=float)

    @property
    def precision(self) -> np.ndarray:
        """tp / (tp + fp), 0 where nothing is predicted positive (sklearn's zero_division=0)."""
        pred = self.tp + self.fp
        return np.divide(self.tp, pred, out=np.zeros(len(pred), dtype=float), where=pred > 0)

    @property
    def f1(self) -> np.ndarray:
        denom = 2 * self.tp + self.fp + self.fn
        return np.divide(2 * self.tp, denom, out=np.zeros(len(denom), dtype=float), where=denom > 0)

    def index_at(self, threshold: float) -> int:
        """The curve position for "positive iff score >= threshold"."""
        # thresholds are descending: count how many are >= threshold, the last of them is the position
        k = int(np.searchsorted(-self.thresholds, -threshold, side="right")) - 1
        return max(k, 0)

    def value_at(self, i: int) -> float:
        """A finite threshold for position i (position 0, +inf, becomes just above the top score)."""
        t = float(self.thresholds[i])
        if np.isinf(t):
            top = float(self.thresholds[1]) if len(self.thresholds) > 1 else 1.0
            return float(np.nextafter(top, np.inf))
        return t


def curve_from_scores(y: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> Curve:
    """Exact curve: one sort, one cumulative sum (the same construction as sklearn's roc_curve)."""
    y = np.asarray(y)
    scores = np.asarray(scores, dtype=float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    order = np.argsort(scores, kind="mergesort")[::-1]
    s, yy, ww = scores[order], y[order], w[order]
    distinct = np.where(np.diff(s))[0]
    ends = np.r_[distinct, len(s) - 1]
    tps = np.cumsum(yy * ww)[ends]
    fps = np.cumsum((1 - yy) * ww)[ends]
    pos = float((y * w).sum())
    neg = float(((1 - y) * w).sum())
    if weights is None:
        tps, fps, pos, neg = tps.astype(np.int64), fps.astype(np.int64), int(pos), int(neg)
    return Curve(np.r_[np.inf, s[ends]], np.r_[0, tps], np.r_[0, fps], pos, neg)


def merge_curves(curves: list[Curve]) -> Curve:
    """The curve of the union of several parts (CV folds), from their curves alone.

    Exact for exact curves; for binned curves, exact when they share bin edges.
    """
    thresholds = np.unique(np.concatenate([c.thresholds for c in curves]))[::-1]
    tp = np.zeros(len(thresholds))
    fp = np.zeros(len(thresholds))
    for c in curves:
        # position in c of "score >= t" for every t: the count of c's thresholds >= t, minus one
        k = np.searchsorted(-c.thresholds, -thresholds, side="right") - 1
        tp += np.asarray(c.tp)[k]
        fp += np.asarray(c.fp)[k]
    pos = sum(c.pos for c in curves)
    neg = sum(c.neg for c in curves)
    return Curve(thresholds, tp, fp, pos, neg)


def metrics_at(curve: Curve, i: int) -> dict[str, float]:
    """Point metrics and the confusion matrix at curve position i."""
    tp, fp = float(curve.tp[i]), float(curve.fp[i])
    fn, tn = curve.pos - tp, curve.neg - fp
    n = curve.pos + curve.neg
    recall = tp / curve.pos if curve.pos else 0.0
    specificity = tn / curve.neg if curve.neg else 0.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0
    return {
        "accuracy": (tp + tn) / n if n else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "specificity": specificity,
        "balanced_accuracy": (recall + specificity) / 2,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


def area_metrics(curve: Curve) -> dict[str, float]:
    """ROC AUC (trapezoids, as roc_auc_score) and PR AUC (average precision, as average_precision_score).

    NaN when the part holds a single class: neither area is defined then.
    """
    if curve.pos == 0 or curve.neg == 0:
        return {"roc_auc": float("nan"), "pr_auc": float("nan")}
    roc_auc = float(auc(curve.fpr, curve.tpr))
    recall = curve.tpr
    pr_auc = float(np.sum(np.diff(recall) * curve.precision[1:]))
    return {"roc_auc": roc_auc, "pr_auc": pr_auc}


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(_sk_log_loss(y, p, labels=[0, 1]))


def multiclass_log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Log loss of class codes 0..K-1 under n x K class probabilities."""
    return float(_sk_log_loss(y, proba, labels=list(range(proba.shape[1]))))
