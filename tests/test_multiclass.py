"""K-class figures (lrsweep.multiclass) against sklearn.metrics computed from the raw labels and probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.preprocessing import label_binarize

from lrsweep.backends.base import coefficient_frame
from lrsweep.labelled import ClassThreshold, Labelled, decide
from lrsweep.multiclass import Decision, class_curves, class_keys, confusion, multiclass_metrics, predict_classes

LABELS = ["basic", "plus", "pro", "team"]


def _data(seed: int = 0, n: int = 600, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from noisy probabilities (informative, not perfect), with ties in the scores."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    p = np.round(p, 2)  # ties, as a coarse model gives
    p = np.clip(p, 1e-3, None)
    return y, p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_figure_equals_sklearn_under_argmax(seed):
    y, p = _data(seed)
    m = multiclass_metrics(y, p, LABELS)
    pred = p.argmax(axis=1)
    codes = list(range(4))
    want = {
        "accuracy": accuracy_score(y, pred),
        "balanced_accuracy": balanced_accuracy_score(y, pred),
        "precision": precision_score(y, pred, labels=codes, average="macro", zero_division=0),
        "recall": recall_score(y, pred, labels=codes, average="macro", zero_division=0),
        "f1": f1_score(y, pred, labels=codes, average="macro", zero_division=0),
        "precision_weighted": precision_score(y, pred, labels=codes, average="weighted", zero_division=0),
        "recall_weighted": recall_score(y, pred, labels=codes, average="weighted", zero_division=0),
        "f1_weighted": f1_score(y, pred, labels=codes, average="weighted", zero_division=0),
        "roc_auc": roc_auc_score(y, p, multi_class="ovr", average="macro"),
        "pr_auc": average_precision_score(label_binarize(y, classes=codes), p, average="macro"),
        "log_loss": log_loss(y, p, labels=codes),
    }
    for key, value in want.items():
        assert m[key] == pytest.approx(value, abs=1e-12), key
    cm = confusion_matrix(y, pred, labels=codes)
    for k, label in enumerate(LABELS):
        negatives = y != k
        assert m[f"specificity.{label}"] == pytest.approx(np.mean(pred[negatives] != k), abs=1e-12)
        assert m[f"recall.{label}"] == pytest.approx(cm[k, k] / cm[k].sum(), abs=1e-12)
        assert m[f"precision.{label}"] == pytest.approx(cm[k, k] / cm[:, k].sum(), abs=1e-12)
        assert m[f"roc_auc.{label}"] == pytest.approx(roc_auc_score(y == k, p[:, k]), abs=1e-12)
    assert m["specificity"] == pytest.approx(np.mean([m[f"specificity.{c}"] for c in LABELS]))


def test_a_class_never_predicted_scores_zero_precision_not_nan():
    y = np.array([0, 1, 2, 0, 1, 2])
    p = np.array([[0.6, 0.3, 0.1]] * 3 + [[0.2, 0.7, 0.1]] * 3)  # class 2 never wins
    m = multiclass_metrics(y, p, ["a", "b", "c"])
    assert m["precision.c"] == 0.0 and m["recall.c"] == 0.0 and not math.isnan(m["precision"])


def test_a_threshold_on_one_class_decides_it_as_its_curve_says():
    y, p = _data(3)
    c = 2
    curve = class_curves(y, p)[c]
    for threshold in (0.05, 0.2, 0.5, 0.8):
        pred = predict_classes(p, Decision(c, threshold))
        # that class exactly where its probability reaches the threshold, else the most probable other class
        assert np.array_equal(pred == c, p[:, c] >= threshold)
        others = p.copy()
        others[:, c] = -1
        assert np.array_equal(pred[pred != c], others.argmax(axis=1)[pred != c])
        i = curve.index_at(threshold)
        m = multiclass_metrics(y, p, LABELS, Decision(c, threshold))
        assert m[f"recall.{LABELS[c]}"] == pytest.approx(curve.tpr[i])
        assert m[f"precision.{LABELS[c]}"] == pytest.approx(curve.precision[i])
    # a low threshold on a class buys its recall with the others' precision
    low, argmax = multiclass_metrics(y, p, LABELS, Decision(c, 0.05)), multiclass_metrics(y, p, LABELS)
    assert low[f"recall.{LABELS[c]}"] > argmax[f"recall.{LABELS[c]}"]
    assert np.array_equal(confusion(y, p), confusion_matrix(y, p.argmax(axis=1)))


def test_class_keys_are_mlflow_safe_and_distinct():
    assert class_keys(["a b", "a/b", "ok", ""]) == ["a_b", "a_b_1", "ok", "class3"]


def test_the_logged_models_decisions_use_the_same_rule():
    y, p = _data(4)

    class Fixed:
        classes_ = np.arange(4)

        def predict_proba(self, X):  # noqa: N803
            return p[X]

    rows = np.arange(len(y))
    assert np.array_equal(decide(p, None, math.nan), p.argmax(axis=1))
    model = Labelled(ClassThreshold(Fixed(), 1, 0.3), tuple(LABELS))
    want = np.asarray(LABELS, dtype=object)[predict_classes(p, Decision(1, 0.3))]
    assert list(model.predict(rows)) == list(want)
    assert model.predict_proba(rows).shape == (len(y), 4)
    assert list(model.classes_) == LABELS


def test_coefficient_frame_has_a_column_per_class_with_odds_ratios():
    rows = [("(intercept)", "", ""), ("x", "", "per 1 SD")]
    coef = np.array([[0.1, 1.0], [0.2, -1.0], [0.3, 0.0]])
    hashed = np.array([[0.0, 2.0, 0.0], [0.0, -3.0, 0.5], [0.0, 0.0, 0.0]])
    table = coefficient_frame(rows, coef, hashed, ["a", "b", "c"])
    assert list(table.columns[3:]) == [
        "coefficient.a", "coefficient.b", "coefficient.c", "odds_ratio.a", "odds_ratio.b", "odds_ratio.c",
    ]  # fmt: skip
    # buckets that are zero for every class are left out; the largest |coefficient| over the classes comes first
    assert list(table["level"]) == ["", "", "bucket 1", "bucket 2"]
    assert table["coefficient.b"].tolist() == [0.2, -1.0, -3.0, 0.5]
    assert np.allclose(table["odds_ratio.a"], np.exp(table["coefficient.a"]))
