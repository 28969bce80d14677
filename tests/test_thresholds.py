"""lrsweep.thresholds.choose_threshold against a brute-force loop over every candidate threshold.

The product code reads whole curve columns at once; here every candidate "positive iff score >= t" is
scored with sklearn.metrics from the raw labels and scores, and the documented rule applied by hand:
the best criterion, ties to the named secondary criterion, then to the higher threshold.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np
import pytest
import sklearn
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, precision_score, recall_score

from lrsweep.metrics import curve_from_scores, metrics_at
from lrsweep.thresholds import ThresholdConfig, choose_threshold, strategy_config

SEED = 7
N = 90
TOL = 1e-9


CRAFTED = {
    # F1 = 2/3 at (tp, fp) = (2, 0) and at (3, 2): the tie goes to the higher recall
    "f1_tie": [1, 1, 0, 0, 1, 0, 0, 0, 1, 0],
    # Youden J = 1/6 at (tp, fp) = (1, 2) and (2, 5) with 2 positives, 6 negatives; in floating point
    # 1/2 - 2/6 and 2/2 - 5/6 differ in the last bit, which must not decide the tie
    "youden_tie": [0, 0, 1, 0, 0, 0, 1, 0],
}


@functools.cache
def _data(kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    if kind in CRAFTED:  # small hand-made rankings with exactly tied optima (scores descending)
        y = np.array(CRAFTED[kind])
        return y, np.linspace(0.9, 0.1, len(y)), None
    rng = np.random.default_rng(SEED)
    if kind == "balanced_ties":  # equal class sizes: many exactly tied Youden/F1 values
        y = np.repeat([0, 1], N // 2)
        rng.shuffle(y)
    else:
        y = (rng.random(N) < 0.3).astype(int)
    raw = 1 / (1 + np.exp(-(1.2 * y - 0.7 + rng.normal(size=N))))
    w = None
    if kind == "continuous":
        s = raw
    elif kind in ("ties", "balanced_ties"):
        s = np.round(raw, 1)
    elif kind == "constant":
        s = np.full(N, 0.42)
    elif kind == "weighted":
        s = np.round(raw, 2)
        w = rng.uniform(0.2, 2.0, N)
    elif kind in ("no_positives", "no_negatives"):
        y = np.full(N, int(kind == "no_negatives"))
        s = np.round(raw, 2)
    else:  # pragma: no cover
        raise ValueError(kind)
    return y, s, w


@dataclass(frozen=True)
class Row:
    t: float  # math.inf: nothing predicted positive
    tp: float
    fp: float
    fn: float
    tn: float
    precision: float
    recall: float
    f1: float
    fpr: float


@functools.cache
def _table(kind: str) -> list[Row]:
    """Every candidate threshold (each distinct score, and +inf), scored with sklearn.metrics."""
    y, s, w = _data(kind)
    rows = []
    # the arguments are known good: skipping sklearn's argument checks only saves time (~3x)
    with sklearn.config_context(skip_parameter_validation=True):
        for t in [math.inf, *sorted(set(s.tolist()), reverse=True)]:
            pred = (s >= t).astype(int)
            tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1], sample_weight=w).ravel()
            precision, recall, f1, _ = precision_recall_fscore_support(
                y, pred, average="binary", zero_division=0, sample_weight=w
            )
            rows.append(Row(t, tp, fp, fn, tn, precision, recall, f1, fp / (fp + tn) if fp + tn else 0.0))
    return rows


def _pick(rows: list[Row], primary, secondary) -> Row:
    """Max primary, ties (within TOL) to max secondary, then to the higher threshold (a plain loop)."""
    best = None
    for r in rows:  # rows are in descending threshold order: strict improvement only keeps the higher t
        key = (primary(r), secondary(r))
        if best is None:
            best, best_key = r, key
            continue
        if key[0] > best_key[0] + TOL or (abs(key[0] - best_key[0]) <= TOL and key[1] > best_key[1] + TOL):
            best, best_key = r, key
    assert best is not None
    return best


def brute_force(kind: str, cfg: ThresholdConfig) -> tuple[Row, bool]:
    rows = _table(kind)
    # "nothing positive" (+inf) is a candidate only for cost, or when it is the only one
    some = rows[1:] or rows
    st = cfg.strategy
    if st == "f1":
        return _pick(some, lambda r: r.f1, lambda r: r.recall), True
    if st == "youden":
        return _pick(some, lambda r: r.recall - r.fpr, lambda r: r.recall), True
    if st == "recall_at":
        ok = [r for r in some if r.recall >= cfg.min_recall - TOL]
        if not ok:
            return some[-1], False
        return _pick(ok, lambda r: r.precision, lambda r: r.recall), True
    if st == "precision_at":
        ok = [r for r in some if r.precision >= cfg.min_precision - TOL]
        if not ok:
            return _pick(some, lambda r: r.precision, lambda r: r.recall), False
        return _pick(ok, lambda r: r.recall, lambda r: r.precision), True
    if st == "cost":
        return _pick(rows, lambda r: -(cfg.cost_fp * r.fp + cfg.cost_fn * r.fn), lambda r: r.recall), True
    raise AssertionError(st)


CASES = [
    strategy_config("f1"),
    strategy_config("youden"),
    *(strategy_config("recall_at", min_recall=r) for r in (0.0, 0.5, 0.8, 0.95, 1.0)),
    *(strategy_config("precision_at", min_precision=p) for p in (0.0, 0.5, 0.8, 0.99, 1.0)),
    *(
        strategy_config("cost", cost_fp=a, cost_fn=b)
        for a, b in ((1.0, 5.0), (5.0, 1.0), (1.0, 1.0), (0.0, 1.0), (1.0, 0.0), (0.3, 2.7))
    ),
]
KINDS = ["continuous", "ties", "balanced_ties", "constant", "weighted", "no_positives", "no_negatives", *CRAFTED]


def _case_id(cfg: ThresholdConfig) -> str:
    knobs = [v for k, v in dataclasses.asdict(cfg).items() if k != "strategy"]
    return f"{cfg.strategy}-{knobs[0] if len(knobs) == 1 else tuple(knobs) if knobs else ''}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cfg", CASES, ids=_case_id)
def test_choice_equals_brute_force(kind, cfg):
    y, s, w = _data(kind)
    curve = curve_from_scores(y, s, w)
    want, feasible = brute_force(kind, cfg)
    got = choose_threshold(curve, cfg)
    assert got.feasible is feasible
    if math.isinf(want.t):
        assert got.value > s.max()  # a finite value that predicts nothing positive
    else:
        assert got.value == want.t
    assert got.index == curve.index_at(got.value)
    # the metrics reported at the choice are those of "score >= value" on the raw data
    m = metrics_at(curve, got.index)
    pred = s >= got.value
    assert m["tp"] == pytest.approx(want.tp) and m["fp"] == pytest.approx(want.fp)
    wt = np.ones(len(y)) if w is None else w
    assert m["tp"] == pytest.approx(wt[pred & (y == 1)].sum())
    assert m["fp"] == pytest.approx(wt[pred & (y == 0)].sum())


# -- properties stated without the brute force ------------------------------------------------------------
@pytest.mark.parametrize("min_recall", [0.3, 0.7, 0.9, 1.0])
def test_recall_at_meets_min_recall(min_recall):
    y, s, _ = _data("ties")
    c = curve_from_scores(y, s)
    got = choose_threshold(c, strategy_config("recall_at", min_recall=min_recall))
    pred = (s >= got.value).astype(int)
    assert got.feasible
    assert recall_score(y, pred) >= min_recall
    # and no higher threshold that still meets it has better precision
    for t in np.unique(s):
        p2 = (s >= t).astype(int)
        if recall_score(y, p2) >= min_recall:
            assert precision_score(y, p2, zero_division=0) <= precision_score(y, pred) + TOL


def test_recall_at_without_positives_is_infeasible():
    y, s, _ = _data("no_positives")
    got = choose_threshold(curve_from_scores(y, s), strategy_config("recall_at", min_recall=0.5))
    assert got.feasible is False
    assert math.isfinite(got.value)


def test_precision_at_impossible_is_infeasible_and_uses_best_precision():
    # the two top scores are negatives: no threshold reaches precision 0.95
    y = np.array([0, 0, 1, 0, 1, 1, 0, 1, 0, 0])
    s = np.array([0.99, 0.98, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    c = curve_from_scores(y, s)
    got = choose_threshold(c, strategy_config("precision_at", min_precision=0.95))
    assert got.feasible is False
    precisions = {t: precision_score(y, (s >= t).astype(int), zero_division=0) for t in s}
    best = max(precisions.values())
    assert best < 0.95
    assert precision_score(y, (s >= got.value).astype(int)) == pytest.approx(best)
    # best precision 1/2 at t=0.6 (3 of 6) and at t=0.4 (4 of 8): the tie goes to the higher recall
    assert got.value == 0.4


def test_precision_at_feasible_meets_min_precision():
    y, s, _ = _data("continuous")
    for mp in (0.4, 0.6, 0.75):
        got = choose_threshold(curve_from_scores(y, s), strategy_config("precision_at", min_precision=mp))
        assert got.feasible
        assert precision_score(y, (s >= got.value).astype(int)) >= mp


@pytest.mark.parametrize(("cost_fp", "cost_fn"), [(1.0, 5.0), (5.0, 1.0), (2.0, 2.0)])
def test_cost_picks_minimal_cost(cost_fp, cost_fn):
    y, s, _ = _data("ties")
    got = choose_threshold(curve_from_scores(y, s), strategy_config("cost", cost_fp=cost_fp, cost_fn=cost_fn))

    def cost(t):
        tn, fp, fn, tp = confusion_matrix(y, (s >= t).astype(int), labels=[0, 1]).ravel()
        return cost_fp * fp + cost_fn * fn

    all_costs = [cost(t) for t in [*np.unique(s), s.max() + 1]]
    assert cost(got.value) == pytest.approx(min(all_costs))


def test_cost_can_choose_to_predict_nothing():
    y = np.array([0, 0, 0, 0, 1, 0, 0, 0])
    s = np.linspace(0.1, 0.9, 8)
    got = choose_threshold(curve_from_scores(y, s), strategy_config("cost", cost_fp=10.0, cost_fn=1.0))
    assert got.index == 0 and got.value > s.max()
    assert not (s >= got.value).any()


@pytest.mark.parametrize("strategy", ["f1", "youden", "recall_at", "precision_at"])
def test_constant_scores_predict_everything(strategy):
    y, s, _ = _data("constant")
    got = choose_threshold(curve_from_scores(y, s), strategy_config(strategy))
    assert got.value == 0.42 and got.index == 1
    assert (s >= got.value).all()


def test_constant_scores_cost_compares_all_vs_nothing():
    y, s, _ = _data("constant")
    c = curve_from_scores(y, s)
    pos, neg = int(y.sum()), int((1 - y).sum())
    # everything positive costs cost_fp * neg, nothing positive costs cost_fn * pos
    cheap_all = strategy_config("cost", cost_fp=1.0, cost_fn=neg)
    assert (s >= choose_threshold(c, cheap_all).value).all()
    cheap_none = strategy_config("cost", cost_fp=pos + 1.0, cost_fn=1.0)
    assert not (s >= choose_threshold(c, cheap_none).value).any()


@pytest.mark.parametrize("value", [0.0, 0.25, 0.5, 0.63, 0.9, 1.0])
def test_fixed_uses_the_configured_value(value):
    y, s, _ = _data("ties")
    c = curve_from_scores(y, s)
    got = choose_threshold(c, strategy_config("fixed", value=value), searched=0.123)
    assert got.value == value and got.feasible
    m = metrics_at(c, got.index)
    pred = s >= value
    assert m["tp"] == int((pred & (y == 1)).sum())
    assert m["fp"] == int((pred & (y == 0)).sum())


def test_searched_uses_the_trial_value():
    y, s, _ = _data("continuous")
    c = curve_from_scores(y, s)
    cfg = strategy_config("searched")
    got = choose_threshold(c, cfg, searched=0.31)
    assert got.value == 0.31 and got.feasible
    assert got.index == c.index_at(0.31)
    assert metrics_at(c, got.index)["tp"] == int(((s >= 0.31) & (y == 1)).sum())
    with pytest.raises(ValueError, match="trial's threshold"):  # a searched threshold is always the trial's own
        choose_threshold(c, cfg)


def test_unknown_strategy_raises():
    y, s, _ = _data("continuous")
    with pytest.raises(ValueError, match="nope"):
        choose_threshold(curve_from_scores(y, s), ThresholdConfig(strategy="nope"))
