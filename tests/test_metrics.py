"""lrsweep.metrics against sklearn.metrics computed from the raw labels and scores."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.metrics import log_loss as sk_log_loss

from lrsweep.metrics import POINT_METRICS, Curve, area_metrics, curve_from_scores, log_loss, merge_curves, metrics_at

SEED = 20240611
N = 200


def _data(kind: str, seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(y, scores, weights) for one kind of synthetic validation part."""
    rng = np.random.default_rng(seed)
    y = (rng.random(N) < 0.3).astype(np.int8)
    raw = 1.0 / (1.0 + np.exp(-(1.5 * y - 0.8 + rng.normal(size=N))))
    w = None
    if kind == "continuous":
        s = raw
    elif kind == "ties":
        s = np.round(raw, 1)
    elif kind == "constant":
        s = np.full(N, 0.37)
    elif kind == "weighted":
        s = np.round(raw, 2)
        w = rng.uniform(0.1, 3.0, N)
    else:  # pragma: no cover
        raise ValueError(kind)
    return y, s, w


KINDS = ["continuous", "ties", "constant", "weighted"]


def _sk_point(y: np.ndarray, pred: np.ndarray, w: np.ndarray | None) -> dict[str, float]:
    # the arguments are known good: skipping sklearn's argument checks only saves time
    with sklearn.config_context(skip_parameter_validation=True):
        return _sk_point_checked(y, pred, w)


def _sk_point_checked(y: np.ndarray, pred: np.ndarray, w: np.ndarray | None) -> dict[str, float]:
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1], sample_weight=w).ravel()
    return {
        "accuracy": accuracy_score(y, pred, sample_weight=w),
        "precision": precision_score(y, pred, zero_division=0, sample_weight=w),
        "recall": recall_score(y, pred, zero_division=0, sample_weight=w),
        "f1": f1_score(y, pred, zero_division=0, sample_weight=w),
        "specificity": recall_score(y, pred, pos_label=0, zero_division=0, sample_weight=w),
        "balanced_accuracy": balanced_accuracy_score(y, pred, sample_weight=w),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


def _assert_same(got: dict[str, float], want: dict[str, float], keys=None) -> None:
    for k in keys or want:
        assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-9), k


def _probe_thresholds(s: np.ndarray) -> list[float]:
    """Thresholds at, between, below and above the scores (ties included)."""
    u = np.unique(s)
    out = [float(u.min()) - 0.5, float(u.max()) + 0.5, float(u.min()), float(u.max()), 0.5]
    out += [float(v) for v in np.quantile(s, [0.2, 0.5, 0.8], method="nearest")]  # exact scores
    if len(u) > 1:
        out += [float((u[i] + u[i + 1]) / 2) for i in range(0, len(u) - 1, max(1, len(u) // 3))]
    return out


# -- the curve itself -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_curve_matches_sklearn_roc_curve(kind):
    y, s, w = _data(kind)
    c = curve_from_scores(y, s, w)
    fpr, tpr, thr = roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    assert np.isinf(c.thresholds[0]) and np.isinf(thr[0])
    np.testing.assert_array_equal(c.thresholds[1:], thr[1:])
    np.testing.assert_allclose(c.tpr, tpr, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(c.fpr, fpr, rtol=1e-12, atol=1e-12)
    wt = np.ones(N) if w is None else w
    assert c.pos == pytest.approx(wt[y == 1].sum()) and c.neg == pytest.approx(wt[y == 0].sum())
    # descending thresholds, nothing predicted at +inf, everything at the lowest score
    assert np.all(np.diff(c.thresholds) < 0)
    assert c.tp[0] == 0 and c.fp[0] == 0
    assert c.tp[-1] == pytest.approx(c.pos) and c.fp[-1] == pytest.approx(c.neg)
    np.testing.assert_allclose(c.fn, c.pos - c.tp)
    np.testing.assert_allclose(c.tn, c.neg - c.fp)


def test_curve_has_one_position_per_distinct_score():
    y, s, _ = _data("ties")
    c = curve_from_scores(y, s)
    assert len(c.thresholds) == len(np.unique(s)) + 1
    # unweighted counts are integers
    assert np.issubdtype(np.asarray(c.tp).dtype, np.integer) and isinstance(c.pos, int)


def test_integer_weights_equal_repeated_rows():
    rng = np.random.default_rng(SEED + 1)
    y = rng.integers(0, 2, 60)
    s = np.round(rng.random(60), 1)
    reps = rng.integers(1, 4, 60)
    a = curve_from_scores(y, s, reps.astype(float))
    b = curve_from_scores(np.repeat(y, reps), np.repeat(s, reps))
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    np.testing.assert_allclose(a.tp, b.tp)
    np.testing.assert_allclose(a.fp, b.fp)
    assert (a.pos, a.neg) == (b.pos, b.neg)
    assert area_metrics(a) == pytest.approx(area_metrics(b))


# -- point metrics ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_metrics_at_index_at_equals_sklearn_for_predictions_p_ge_t(kind):
    y, s, w = _data(kind)
    c = curve_from_scores(y, s, w)
    for t in _probe_thresholds(s):
        m = metrics_at(c, c.index_at(t))
        _assert_same(m, _sk_point(y, (s >= t).astype(int), w))


def test_metrics_at_every_position_and_curve_columns():
    y, s, _ = _data("ties")
    c = curve_from_scores(y, s)
    for i in range(len(c.thresholds)):
        t = c.value_at(i)
        want = _sk_point(y, (s >= t).astype(int), None)
        m = metrics_at(c, i)
        _assert_same(m, want)
        assert c.precision[i] == pytest.approx(want["precision"])
        assert c.f1[i] == pytest.approx(want["f1"])
        assert c.tpr[i] == pytest.approx(want["recall"])
        assert c.fpr[i] == pytest.approx(1 - want["specificity"])
    assert set(POINT_METRICS) <= set(metrics_at(c, 1))


def test_index_at_and_value_at_round_trip():
    y, s, _ = _data("ties")
    c = curve_from_scores(y, s)
    for i in range(len(c.thresholds)):
        v = c.value_at(i)
        assert math.isfinite(v)
        assert c.index_at(v) == i
        # the predictions "score >= value_at(i)" are exactly those counted at position i
        assert int((s >= v).sum()) == c.tp[i] + c.fp[i]
    assert c.value_at(0) > s.max()
    assert c.index_at(math.inf) == 0
    assert c.index_at(s.max() + 1) == 0
    assert c.index_at(s.min() - 1) == len(c.thresholds) - 1
    # a threshold between two scores is the position of the next score above it
    u = np.unique(s)
    mid = (u[2] + u[3]) / 2
    assert c.thresholds[c.index_at(mid)] == u[3]


def test_constant_scores():
    y, s, _ = _data("constant")
    c = curve_from_scores(y, s)
    assert len(c.thresholds) == 2
    assert metrics_at(c, c.index_at(0.37))["recall"] == 1.0
    m0 = metrics_at(c, 0)
    _assert_same(m0, _sk_point(y, np.zeros(N, dtype=int), None))
    assert m0["precision"] == 0.0  # zero_division=0
    area = area_metrics(c)
    assert area["roc_auc"] == pytest.approx(roc_auc_score(y, s)) == pytest.approx(0.5)
    assert area["pr_auc"] == pytest.approx(average_precision_score(y, s))


# -- area metrics -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_area_metrics_match_sklearn(kind):
    y, s, w = _data(kind)
    a = area_metrics(curve_from_scores(y, s, w))
    assert a["roc_auc"] == pytest.approx(roc_auc_score(y, s, sample_weight=w), rel=1e-12)
    assert a["pr_auc"] == pytest.approx(average_precision_score(y, s, sample_weight=w), rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_area_metrics_match_sklearn_random_seeds(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    y = (rng.random(n) < rng.uniform(0.05, 0.6)).astype(int)
    y[:2] = [0, 1]
    s = np.round(rng.random(n) + 0.3 * y, int(rng.integers(1, 4)))
    a = area_metrics(curve_from_scores(y, s))
    assert a["roc_auc"] == pytest.approx(roc_auc_score(y, s), rel=1e-12)
    assert a["pr_auc"] == pytest.approx(average_precision_score(y, s), rel=1e-12)


def test_perfect_and_reversed_rankings():
    y = np.array([0] * 50 + [1] * 30)
    s = np.linspace(0, 1, 80)
    assert area_metrics(curve_from_scores(y, s)) == {"roc_auc": pytest.approx(1.0), "pr_auc": pytest.approx(1.0)}
    rev = area_metrics(curve_from_scores(y, 1 - s))
    assert rev["roc_auc"] == pytest.approx(0.0)
    assert rev["pr_auc"] == pytest.approx(average_precision_score(y, 1 - s))


@pytest.mark.parametrize("label", [0, 1])
def test_single_class_gives_nan_areas_and_no_crash(label):
    rng = np.random.default_rng(SEED)
    y = np.full(N, label)
    s = rng.random(N)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning (division by zero) either
        c = curve_from_scores(y, s)
        a = area_metrics(c)
        assert math.isnan(a["roc_auc"]) and math.isnan(a["pr_auc"])
        for t in (0.0, 0.5, 1.1):
            m = metrics_at(c, c.index_at(t))
            pred = (s >= t).astype(int)
            keys = ["accuracy", "precision", "recall", "f1", "tp", "fp", "tn", "fn"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # sklearn warns about the missing class
                _assert_same(m, _sk_point(y, pred, None), keys)
            assert all(math.isfinite(v) for v in m.values())
        assert np.all(np.isfinite(c.tpr)) and np.all(np.isfinite(c.fpr))


# -- log loss ---------------------------------------------------------------------------------------------
def test_log_loss_matches_formula_and_sklearn():
    rng = np.random.default_rng(SEED)
    y = rng.integers(0, 2, N)
    p = rng.uniform(0.01, 0.99, N)
    manual = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert log_loss(y, p) == pytest.approx(manual, rel=1e-12)
    assert log_loss(y, p) == pytest.approx(sk_log_loss(y, p), rel=1e-12)
    assert isinstance(log_loss(y, p), float)


@pytest.mark.parametrize("label", [0, 1])
def test_log_loss_single_class(label):
    rng = np.random.default_rng(SEED)
    y = np.full(50, label)
    p = rng.uniform(0.05, 0.95, 50)
    q = p if label == 1 else 1 - p
    assert log_loss(y, p) == pytest.approx(-np.mean(np.log(q)), rel=1e-12)


def test_log_loss_is_finite_at_hard_zero_and_one():
    y = np.array([0, 1, 0, 1])
    p = np.array([0.0, 1.0, 1.0, 0.0])  # two confident misses: clipped, not infinite
    v = log_loss(y, p)
    assert math.isfinite(v) and v > 10


# -- merging fold curves ----------------------------------------------------------------------------------
def _assert_same_curve(a: Curve, b: Curve) -> None:
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    np.testing.assert_allclose(a.tp, b.tp, rtol=1e-12)
    np.testing.assert_allclose(a.fp, b.fp, rtol=1e-12)
    assert a.pos == pytest.approx(b.pos) and a.neg == pytest.approx(b.neg)


@pytest.mark.parametrize("kind", ["continuous", "ties", "weighted", "constant"])
def test_merge_curves_equals_curve_of_concatenation(kind):
    y, s, w = _data(kind)
    rng = np.random.default_rng(SEED + 7)
    fold = rng.integers(0, 5, N)
    parts = [np.flatnonzero(fold == k) for k in range(5)]
    curves = [curve_from_scores(y[p], s[p], None if w is None else w[p]) for p in parts]
    merged = merge_curves(curves)
    order = np.concatenate(parts)
    whole = curve_from_scores(y[order], s[order], None if w is None else w[order])
    _assert_same_curve(merged, whole)
    assert area_metrics(merged) == pytest.approx(area_metrics(whole))
    for t in _probe_thresholds(s):
        _assert_same(metrics_at(merged, merged.index_at(t)), metrics_at(whole, whole.index_at(t)))


def test_merge_curves_with_a_single_class_fold_and_a_single_curve():
    rng = np.random.default_rng(SEED + 3)
    y = rng.integers(0, 2, 90)
    y[:15] = 0
    s = np.round(rng.random(90), 1)
    parts = [np.arange(0, 15), np.arange(15, 50), np.arange(50, 90)]  # the first fold is all negatives
    curves = [curve_from_scores(y[p], s[p]) for p in parts]
    _assert_same_curve(merge_curves(curves), curve_from_scores(y, s))
    one = curve_from_scores(y, s)
    _assert_same_curve(merge_curves([one]), one)
    a = area_metrics(merge_curves(curves))
    assert a["roc_auc"] == pytest.approx(roc_auc_score(y, s))
    assert a["pr_auc"] == pytest.approx(average_precision_score(y, s))
