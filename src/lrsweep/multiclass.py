"""Figures for a target of more than two classes, as pure functions of held-out labels and class probabilities.

A multi-class model scores each row with K class probabilities (columns in the order of the class codes 0..K-1).
The decision is the most probable class (argmax), or, where a threshold strategy names a class of interest
(``threshold.of_class``), that class whenever its probability reaches the threshold the strategy chose on its
one-vs-rest curve, else the most probable other class: a recall floor for one class works as it does for a
binary target, and that class's one-vs-rest figures at the threshold are exactly its curve's.

The plain metric names are macro averages (every class counts alike: the classic "macro F1"), ``*_weighted``
weigh each class by its rows, and per-class figures are named ``<metric>.<class>``. ROC AUC and PR AUC are
one-vs-rest per class (each from a :class:`~lrsweep.metrics.Curve`, the binary code), averaged over the classes.
Counts and averages come from sklearn.metrics; tests check every figure against sklearn computed from the raw
labels and probabilities.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from lrsweep.labelled import decide
from lrsweep.metrics import Curve, area_metrics, curve_from_scores, multiclass_log_loss

__all__ = [
    "Decision",
    "PER_CLASS_METRICS",
    "class_curves",
    "class_keys",
    "confusion",
    "multiclass_metrics",
    "predict_classes",
]

# the per-class figures each trial records, as "<metric>.<class key>"
PER_CLASS_METRICS = ("precision", "recall", "f1", "specificity", "roc_auc")


@dataclass(frozen=True)
class Decision:
    """How probabilities become a class: argmax (``of_class`` None), or ``of_class`` at ``threshold``."""

    of_class: int | None = None
    threshold: float = math.nan


def predict_classes(proba: np.ndarray, decision: Decision = Decision()) -> np.ndarray:
    """The class code of each row under ``decision`` (the logged model's own rule, :func:`lrsweep.labelled.decide`)."""
    return decide(proba, decision.of_class, decision.threshold)


def class_curves(y: np.ndarray, proba: np.ndarray) -> list[Curve]:
    """Each class's one-vs-rest threshold curve (its probability column against "is this class")."""
    return [curve_from_scores((y == k).astype(np.int8), proba[:, k]) for k in range(proba.shape[1])]


def class_keys(labels: list[str]) -> list[str]:
    """Each class's name in metric keys: its label with characters MLflow refuses in a metric name replaced
    (distinct even where two labels would clean alike)."""
    keys: list[str] = []
    for k, label in enumerate(labels):
        key = re.sub(r"[^A-Za-z0-9_.-]", "_", str(label)) or f"class{k}"
        keys.append(key if key not in keys else f"{key}_{k}")
    return keys


def confusion(y: np.ndarray, proba: np.ndarray, decision: Decision = Decision()) -> np.ndarray:
    """The K x K confusion matrix (rows: true class, columns: predicted class)."""
    k = proba.shape[1]
    return confusion_matrix(y, predict_classes(proba, decision), labels=list(range(k)))


def multiclass_metrics(
    y: np.ndarray,
    proba: np.ndarray,
    labels: list[str],
    decision: Decision = Decision(),
    curves: list[Curve] | None = None,
    log_loss: float | None = None,
) -> dict[str, float]:
    """Every figure of one part: log loss, accuracy, macro and weighted averages, and the per-class figures.
    ``curves`` and ``log_loss``: already computed for these rows (a backend's evaluation has its log loss)."""
    y = np.asarray(y)
    k = proba.shape[1]
    codes = list(range(k))
    pred = predict_classes(proba, decision)
    prec, rec, f1, support = precision_recall_fscore_support(y, pred, labels=codes, zero_division=0)
    cm = confusion_matrix(y, pred, labels=codes)
    fp = cm.sum(axis=0) - np.diag(cm)
    tn = len(y) - cm.sum(axis=0) - cm.sum(axis=1) + np.diag(cm)
    spec = np.divide(tn, tn + fp, out=np.zeros(k), where=(tn + fp) > 0)
    areas = [area_metrics(c) for c in (curves or class_curves(y, proba))]
    auc = np.array([a["roc_auc"] for a in areas])
    ap = np.array([a["pr_auc"] for a in areas])
    weights = support if support.sum() else None
    m: dict[str, float] = {
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": float(rec.mean()),  # sklearn's balanced_accuracy_score: the mean recall
        "precision": float(prec.mean()),
        "recall": float(rec.mean()),
        "f1": float(f1.mean()),
        "specificity": float(spec.mean()),
        "precision_weighted": float(np.average(prec, weights=weights)),
        "recall_weighted": float(np.average(rec, weights=weights)),
        "f1_weighted": float(np.average(f1, weights=weights)),
        "roc_auc": float(auc.mean()),  # NaN when a class is missing from the part (the split refuses that)
        "pr_auc": float(ap.mean()),
        "log_loss": multiclass_log_loss(y, proba) if log_loss is None else float(log_loss),
    }
    per = {"precision": prec, "recall": rec, "f1": f1, "specificity": spec, "roc_auc": auc}
    for name in PER_CLASS_METRICS:
        for key, value in zip(class_keys(labels), per[name], strict=True):
            m[f"{name}.{key}"] = float(value)
    return m
