"""Spark backend: the vocabulary translation, parity with scikit-learn, evaluation, refit + MLflow, a sweep.

Every test is marked ``spark``; they share one local[2] session (conftest.py). Data is small (a seeded
synthetic table of a few hundred rows, or the bundled telco churn table) and fits are few, so the Spark
tests stay within a few minutes on 2 cores.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import urllib.request
from collections import Counter
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.utils.class_weight import compute_class_weight

from lrsweep.backends import Evaluation, make_backend
from lrsweep.backends.sklearn import SklearnBackend, make_preprocessor
from lrsweep.backends.spark import (
    FEATURES,
    LABEL,
    QUICK_JIT,
    WEIGHT,
    SparkBackend,
    SparkConfig,
    auc_binning_bound,
    balanced_weights,
    binned_curve,
    fit_preprocessing,
    quick_jit,
    release,
    spark_params,
    with_dense_coefficients,
)
from lrsweep.clusters import LocalCluster
from lrsweep.config import (
    BackendConfig,
    Config,
    CVConfig,
    DatasetConfig,
    SearchConfig,
    SplitConfig,
    StudyConfig,
    TrackingConfig,
)
from lrsweep.data import open_data, split_table
from lrsweep.datasets.ctr import FEATURE_COLUMNS as CTR_FEATURES
from lrsweep.errors import BackendLost, LrsweepError
from lrsweep.metrics import area_metrics, curve_from_scores, merge_curves, metrics_at
from lrsweep.space import ModelParams
from lrsweep.sweep import run_sweep
from lrsweep.thresholds import F1Threshold, choose_threshold
from lrsweep.tracking import log_model, pinned
from tests import reference

pytestmark = pytest.mark.spark

TELCO = DatasetConfig(name="telco_churn", target="churn", positive="Yes")
VENV_BIN = Path(sys.executable).parent
LOCAL2 = LocalCluster(master="local[2]")


def prepared(backend: Any, dataset: DatasetConfig, cv: CVConfig | None = None) -> Any:
    """``backend`` prepared on ``dataset`` (default split, seed 42), as a sweep prepares it; its data summary."""
    return backend.prepare(open_data(dataset, SplitConfig(), cv or CVConfig(), 42))


def params(C: float, l1_ratio: float = 0.0, class_weight: str = "none", max_iter: int = 1000, tol: float = 1e-6):
    penalty = "none" if math.isinf(C) else {0.0: "l2", 1.0: "l1"}.get(l1_ratio, "elasticnet")
    return ModelParams(C, l1_ratio, penalty, None, class_weight, max_iter, tol)


def synthetic(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Numerics with gaps, a categorical with gaps, a 0/1 target from a known logistic model."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(2.0, 3.0, size=n)
    x3 = rng.integers(0, 5, size=n).astype(float)
    color = rng.choice(np.array(["red", "green", "blue"], dtype=object), size=n, p=[0.5, 0.3, 0.2])
    logit = 0.9 * x1 - 0.3 * x2 + 0.25 * x3 + 0.8 * (color == "red") - 0.4
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    x2[rng.random(n) < 0.05] = np.nan
    color[rng.random(n) < 0.04] = np.nan
    return pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "color": color, "y": y})


def to_spark(spark: Any, df: pd.DataFrame, label: str = "y") -> Any:
    """A pandas table as Spark sees it from lrsweep: missing text as null, the label as LABEL."""
    out = df.drop(columns=[label]).astype(object).where(df.drop(columns=[label]).notna(), None)
    out[LABEL] = df[label].astype(float)
    for c in out.columns:
        if c != LABEL and pd.api.types.is_numeric_dtype(df[c]):
            out[c] = df[c].astype(float)
    return spark.createDataFrame(out)


def vectors(df: Any) -> np.ndarray:
    return np.array([r[FEATURES].toArray() for r in df.select(FEATURES).collect()])


# -- 1. the translation -----------------------------------------------------------------------------
def test_spark_params_translate_the_shared_vocabulary() -> None:
    p = spark_params(params(2.0, 0.0, max_iter=300, tol=1e-5), n_train=1000)
    assert p["regParam"] == pytest.approx(1 / 2000)
    assert p["elasticNetParam"] == 0.0
    assert (p["maxIter"], p["tol"], p["standardization"], p["aggregationDepth"]) == (300, 1e-5, False, 2)
    assert "weightCol" not in p

    p = spark_params(params(0.1, 1.0, "balanced"), n_train=50, aggregation_depth=3)
    assert p["regParam"] == pytest.approx(0.2)
    assert p["elasticNetParam"] == 1.0
    assert p["weightCol"] == WEIGHT
    assert p["aggregationDepth"] == 3

    assert spark_params(params(0.5, 0.3), n_train=400)["elasticNetParam"] == pytest.approx(0.3)
    assert spark_params(params(math.inf), n_train=400)["regParam"] == 0.0
    with pytest.raises(ValueError):
        spark_params(params(1.0), n_train=0)


def test_balanced_weights_are_sklearns_and_sum_to_n() -> None:
    y = np.r_[np.zeros(75, dtype=int), np.ones(25, dtype=int)]
    w_neg, w_pos = balanced_weights(75, 25)
    np.testing.assert_allclose([w_neg, w_pos], compute_class_weight("balanced", classes=np.array([0, 1]), y=y))
    assert 75 * w_neg + 25 * w_pos == pytest.approx(100)  # so regParam = 1/(C n) still holds


def test_binned_curve_is_exact_at_bin_edges_and_its_auc_error_is_bounded() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(3000) < 0.3).astype(int)
    s = np.clip(rng.normal(0.3 + 0.25 * y, 0.15), 0, 1)
    bins = 50
    b = np.minimum(np.floor(s * bins), bins - 1).astype(int)
    idx = np.unique(b)
    pos = np.array([y[b == i].sum() for i in idx])
    neg = np.array([(b == i).sum() for i in idx]) - pos
    curve = binned_curve(idx, pos, neg, bins)
    assert np.isinf(curve.thresholds[0]) and np.all(np.diff(curve.thresholds[1:]) < 0)
    exact = curve_from_scores(y, s)
    for k in range(1, len(curve.thresholds)):  # every point is the exact count of score >= edge
        t = curve.thresholds[k]
        assert curve.tp[k] == (y[s >= t] == 1).sum() and curve.fp[k] == (y[s >= t] == 0).sum()
    err = abs(area_metrics(curve)["roc_auc"] - area_metrics(exact)["roc_auc"])
    assert 0 < err <= auc_binning_bound(curve)
    # two parts binned on the same edges merge into the union's binned curve
    half = len(y) // 2
    parts = []
    for sl in (slice(0, half), slice(half, None)):
        bb, yy = b[sl], y[sl]
        ii = np.unique(bb)
        pp = np.array([yy[bb == i].sum() for i in ii])
        parts.append(binned_curve(ii, pp, np.array([(bb == i).sum() for i in ii]) - pp, bins))
    merged = merge_curves(parts)
    np.testing.assert_array_equal(merged.thresholds, curve.thresholds)
    np.testing.assert_array_equal(merged.tp, curve.tp)
    np.testing.assert_array_equal(merged.fp, curve.fp)


# -- 2. parity on the same preprocessed data ----------------------------------------------------------
def test_preprocessing_computes_sklearns_features(spark: Any) -> None:
    df = synthetic(300, seed=3)
    train, held = df.iloc[:200].copy(), df.iloc[200:].copy()
    held.loc[held.index[:3], "color"] = "purple"  # unseen level: all zeros, as handle_unknown="ignore"
    held.loc[held.index[3:6], "x2"] = np.nan
    numeric, categorical = ["x1", "x2", "x3"], ["color"]
    sk = make_preprocessor(numeric, categorical)
    expected_fit = sk.fit_transform(train[numeric + categorical])
    expected_held = sk.transform(held[numeric + categorical])
    pre, stats = fit_preprocessing(to_spark(spark, train), numeric, categorical)
    np.testing.assert_allclose(vectors(pre.transform(to_spark(spark, train))), expected_fit, rtol=0, atol=1e-12)
    np.testing.assert_allclose(vectors(pre.transform(to_spark(spark, held))), expected_held, rtol=0, atol=1e-12)
    assert stats.n == 200 and stats.n_pos == int(train["y"].sum())


def test_most_frequent_ties_go_to_the_smallest_level(spark: Any) -> None:
    df = pd.DataFrame({"c": ["b", "c", "c", "b", "a", np.nan], "x": [1.0, 2, 3, 4, 5, 6], "y": [0, 1, 0, 1, 0, 1]})
    sk = make_preprocessor(["x"], ["c"]).fit(df[["x", "c"]])
    pre, stats = fit_preprocessing(to_spark(spark, df), ["x"], ["c"])
    assert stats.modes["c"] == sk.named_transformers_["cat"][0].statistics_[0] == "b"


@pytest.fixture(scope="module")
def same_features(spark: Any) -> dict[str, Any]:
    """A synthetic table preprocessed once by scikit-learn, as numpy and as Spark vector frames."""
    from pyspark.ml.linalg import Vectors

    df = synthetic(500, seed=7)
    train, held = df.iloc[:380], df.iloc[380:]
    cols = ["x1", "x2", "x3", "color"]
    pre = make_preprocessor(["x1", "x2", "x3"], ["color"])
    Xa, Xb = pre.fit_transform(train[cols]), pre.transform(held[cols])
    ya, yb = train["y"].to_numpy(), held["y"].to_numpy()
    w_neg, w_pos = balanced_weights(int((ya == 0).sum()), int((ya == 1).sum()))

    def frame(X: np.ndarray, y: np.ndarray) -> Any:
        rows = [(Vectors.dense(x), float(v), w_pos if v == 1 else w_neg) for x, v in zip(X, y, strict=True)]
        return spark.createDataFrame(rows, [FEATURES, LABEL, WEIGHT]).cache()

    return {"Xa": Xa, "ya": ya, "Xb": Xb, "yb": yb, "fit": frame(Xa, ya), "held": frame(Xb, yb)}


@pytest.mark.parametrize(
    ("C", "l1_ratio", "class_weight"),
    [(0.5, 0.0, "none"), (0.05, 1.0, "none"), (0.2, 0.5, "none"), (0.5, 0.0, "balanced")],
    ids=["l2", "l1", "elasticnet", "l2-balanced"],
)
def test_spark_fits_sklearns_model_for_the_same_C(
    same_features: dict[str, Any], C: float, l1_ratio: float, class_weight: str
) -> None:
    from pyspark.ml.classification import LogisticRegression as SparkLR
    from pyspark.ml.functions import vector_to_array

    f = same_features
    sk = LogisticRegression(
        C=C,
        l1_ratio=l1_ratio,
        solver="lbfgs" if l1_ratio == 0 else "saga",
        class_weight=None if class_weight == "none" else "balanced",
        tol=1e-10,
        max_iter=100_000,
    ).fit(f["Xa"], f["ya"])
    p = params(C, l1_ratio, class_weight, max_iter=1000, tol=1e-12)
    model = SparkLR(featuresCol=FEATURES, labelCol=LABEL, **spark_params(p, len(f["ya"]))).fit(f["fit"])
    # measured: at most 1.4e-7 apart (elastic net), 3e-10 for L1
    np.testing.assert_allclose(model.coefficients.toArray(), sk.coef_[0], rtol=0, atol=1e-6)
    assert model.intercept == pytest.approx(sk.intercept_[0], abs=1e-6)
    if l1_ratio == 1.0:  # the L1 penalty zeroes the same coefficients
        np.testing.assert_array_equal(model.coefficients.toArray() == 0, sk.coef_[0] == 0)
    scored = model.transform(f["held"]).select(LABEL, vector_to_array("probability")[1].alias("p")).toPandas()
    auc_spark = roc_auc_score(scored[LABEL], scored["p"])
    auc_sk = roc_auc_score(f["yb"], sk.predict_proba(f["Xb"])[:, 1])
    assert abs(auc_spark - auc_sk) <= 1e-4


# -- 3. the backend's evaluation against the scikit-learn backend on telco -----------------------------
@pytest.fixture(scope="module")
def telco(spark: Any) -> Any:
    backend = SparkBackend(SparkConfig(), cluster=LOCAL2)
    prepared(backend, TELCO)
    reference = SklearnBackend()
    prepared(reference, TELCO)
    yield backend, reference
    backend.close()
    reference.close()
    assert spark.sparkContext._jsc is not None, "close() must not stop a session it did not create"


def test_setup_splits_like_sklearn_and_caches(telco: Any) -> None:
    backend, reference = telco
    assert backend.capabilities.solvers is None and backend.n_folds == 0
    assert [f.n_fit for f in backend._folds] == [len(reference.split.train)]
    assert [f.n_held for f in backend._folds] == [len(reference.split.val)]
    assert all(is_kept(f.fit) and is_kept(f.held) for f in backend._folds)
    assert backend._base.is_cached
    native = backend.native_params(params(2.0, 0.5))
    assert native["regParam"] == pytest.approx(1 / (2.0 * len(reference.split.train)))
    assert native["elasticNetParam"] == 0.5
    # cached frames: ceil(rows / rows_per_partition) partitions, at most partitions_per_core per core (local[2])
    assert [backend._partitions(n) for n in (1, 100_000, 100_001, 10**7)] == [1, 1, 2, 2]
    settings = backend.settings
    try:
        backend.settings = replace(settings, partitions_per_core=3)
        assert [backend._partitions(n) for n in (250_000, 10**7)] == [3, 6]
    finally:
        backend.settings = settings
    with pytest.raises(LrsweepError, match="partitions_per_core=0"):
        replace(settings, partitions_per_core=0).check()


def test_a_binary_target_is_one_binomial_model_whatever_the_mode(telco: Any) -> None:
    """The planner's calibration draws configurations without the data at hand, with a mode (multinomial or ovr):
    on a binary target they are fitted as the sweep fits them, one binomial model (a 2-class softmax would be
    another model, with twice the coefficients), and their refit works."""
    backend, _ = telco
    plain = params(0.7, max_iter=50)
    base = backend.evaluate(plain)
    for mode in ("multinomial", "ovr"):
        ev = backend.evaluate(replace(plain, multiclass=mode))
        assert ev.log_loss == base.log_loss and ev.fit.n_iter == base.fit.n_iter
        refit = backend.refit(replace(plain, multiclass=mode), 0.5)
        assert refit.model.stages[-2].numClasses == 2 and refit.model.stages[-2].coefficients.size > 0


def metrics_of(ev: Evaluation) -> dict[str, float]:
    """The sweep's validation metrics of one evaluation (as lrsweep.sweep.evaluate_params computes them)."""
    choice = choose_threshold(ev.curve, F1Threshold())
    return metrics_at(ev.curve, choice.index) | area_metrics(ev.curve) | {"log_loss": ev.log_loss}


def _rows_of(df: Any) -> Counter[tuple[Any, ...]]:
    """A cached part's rows as a multiset (features, label): parts have no row ids, telco has duplicate rows."""
    return Counter((tuple(r[FEATURES].toArray()), r[LABEL]) for r in df.select(FEATURES, LABEL).collect())


def test_halving_rungs_are_nested_seeded_cached_and_scored_on_all_of_validation(telco: Any) -> None:
    """search.fidelity=halving on Spark: each rung's rows lie inside the next one's, are drawn again the same, are
    cached once, and a rung's fit is scored on the whole validation part with regParam for its own rows."""
    backend, reference = telco
    n_fit = backend._folds[0].n_fit
    (ninth, n9), (third, n3) = backend.fraction_rows(1 / 9), backend.fraction_rows(1 / 3)
    assert abs(n9 - n_fit / 9) < 4 * math.sqrt(n_fit / 9) and abs(n3 - n_fit / 3) < 4 * math.sqrt(n_fit / 3)
    assert is_kept(ninth) and backend.fraction_rows(1 / 9)[0] is ninth  # made once per sweep
    rows9, rows3 = _rows_of(ninth), _rows_of(third)
    assert sum(rows9.values()) == n9 and not rows9 - rows3  # nested (as multisets)
    drawn = dict(backend._rungs)
    backend._rungs.clear()  # drawn again from the cached part: the same rows
    try:
        assert _rows_of(backend.fraction_rows(1 / 9)[0]) == rows9
        release(backend._rungs.pop((0, 1 / 9))[0])
    finally:
        backend._rungs.update(drawn)
    p = params(1.0, max_iter=50)
    rung, full = backend.evaluate(p, fraction=1 / 9), backend.evaluate(p)
    assert rung.n == full.n == len(reference.split.val)  # all of validation, both times
    assert rung.log_loss != full.log_loss
    from pyspark.ml.classification import LogisticRegression

    alone = LogisticRegression(featuresCol=FEATURES, labelCol=LABEL, **spark_params(p, n9)).fit(ninth)
    assert rung.fit.n_iter == alone.summary.totalIterations  # the rung fitted its own rows at 1 / (C n_rung)


def is_kept(df: Any) -> bool:
    """``df`` is a local checkpoint held in the block stores: its plan a checkpointed RDD, no lineage behind it."""
    plan = df._jdf.queryExecution().analyzed()
    if plan.getClass().getSimpleName() != "LogicalRDD":
        return False
    rdd = plan.rdd()
    return bool(rdd.isCheckpointed() and rdd.getStorageLevel().useMemory())


def _stored(spark: Any) -> set[int]:
    return {int(info.id()) for info in spark.sparkContext._jsc.sc().getRDDStorageInfo()}


def test_frames_kept_as_local_checkpoints_fit_as_cached_frames_do(telco: Any, spark: Any) -> None:
    """backend.local_checkpoint: a rung kept as a local checkpoint (lineage cut) or cached (false) holds the same
    rows in the same order: the same fit to the bit. ``release`` frees a checkpoint's blocks, and a fit over rows
    whose blocks are gone (as when the executor holding them stops) ends the sweep with one line saying what to do,
    instead of failing every trial after it."""
    backend, _ = telco
    p = params(0.3, l1_ratio=0.5, max_iter=40)
    settings, drawn = backend.settings, dict(backend._rungs)
    got: dict[bool, Evaluation] = {}
    try:
        for on in (True, False):
            backend.settings = replace(settings, local_checkpoint=on)
            backend._rungs.clear()
            rows, _ = backend.fraction_rows(1 / 9)
            assert is_kept(rows) == on and rows.is_cached == (not on)
            got[on] = backend.evaluate(p, fraction=1 / 9)
            release(rows)
        assert got[True].log_loss == got[False].log_loss and got[True].fit.n_iter == got[False].fit.n_iter
        assert got[True].scores is not None and got[False].scores is not None
        assert np.array_equal(got[True].scores[1], got[False].scores[1])

        backend.settings = settings
        backend._rungs.clear()
        rows, _ = backend.fraction_rows(1 / 27)
        before = _stored(spark)
        release(rows)  # as an executor's loss would: the rung's blocks gone
        assert len(_stored(spark)) == len(before) - 1
        with pytest.raises(BackendLost, match=r"lost rows the sweep kept.*backend\.local_checkpoint=false"):
            backend.evaluate(p, fraction=1 / 27)
        assert backend._lost is None and backend.evaluate(p, fraction=1 / 9).n > 0  # the session goes on
    finally:
        for rows, *_ in backend._rungs.values():
            release(rows)
        backend.settings = settings
        backend._rungs.clear()
        backend._rungs.update(drawn)


def test_a_rungs_balanced_weights_are_those_of_its_own_rows(telco: Any) -> None:
    """class_weight=balanced on a halving rung weighs the rung's rows as scikit-learn weighs the rows it is given
    (compute_class_weight on the rung's labels), not with the whole fitting part's class counts."""
    backend, _ = telco
    for fraction in (1 / 9, 1 / 3):
        rows, n = backend.fraction_rows(fraction)
        got = rows.select(LABEL, WEIGHT).toPandas()
        y = got[LABEL].to_numpy().astype(int)
        expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)[y]
        assert len(y) == n and np.allclose(got[WEIGHT].to_numpy(), expected, rtol=1e-12, atol=0)
        assert backend._rungs[(0, fraction)][2] is None  # binary: one-vs-rest needs no class counts


def test_concurrent_trials_in_one_session_give_each_configurations_metrics_alone(telco: Any) -> None:
    """Issue 13: search.n_jobs=K runs K trials at once on the backend's one session (threads sharing the cached
    frames): each gives exactly what its configuration gives alone, curve and fit included (L-BFGS and OWL-QN)."""
    import threading

    backend, _ = telco
    configs = [params(1.0, max_iter=30), params(0.05, 1.0, "balanced", max_iter=30)]  # exactness needs no convergence
    alone = [backend.evaluate(p) for p in configs]
    together: dict[int, Evaluation] = {}
    gate = threading.Barrier(len(configs))

    def run(i: int) -> None:
        gate.wait()  # every fit starts at once: their Spark jobs interleave on the two cores
        together[i] = backend.evaluate(configs[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(configs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert sorted(together) == list(range(len(configs)))
    for one, both in zip(alone, (together[i] for i in range(len(configs))), strict=True):
        assert both.log_loss == one.log_loss and both.fit.n_iter == one.fit.n_iter and both.n == one.n
        np.testing.assert_array_equal(both.curve.thresholds, one.curve.thresholds)
        np.testing.assert_array_equal(both.curve.tp, one.curve.tp)
        np.testing.assert_array_equal(both.curve.fp, one.curve.fp)


@pytest.mark.parametrize(
    ("p", "binned_too"),
    # elastic net at tol=1e-10: at 1e-6 OWL-QN stops early on telco's collinear one-hot columns (PR AUC 2e-4 off)
    [(params(1.0), True), (params(0.05, 1.0, "balanced"), False), (params(0.2, 0.5, tol=1e-10), False)],
    ids=["l2", "l1-balanced", "elasticnet"],
)
def test_evaluate_matches_the_sklearn_backend(telco: Any, p: ModelParams, binned_too: bool) -> None:
    backend, reference = telco
    solver = "lbfgs" if p.l1_ratio == 0 else "saga"
    tight = ModelParams(p.C, p.l1_ratio, p.penalty, solver, p.class_weight, 100_000, 1e-10)
    expected = metrics_of(reference.evaluate(tight))
    ev = backend.evaluate(p)
    assert ev.fit.converged and ev.scores is not None and ev.n == len(reference.split.val)
    exact = metrics_of(ev)
    # exact curves (the validation part is collected): the same metrics, up to Spark's fit tolerance (tol=1e-6)
    for key in ("roc_auc", "pr_auc", "log_loss"):
        assert exact[key] == pytest.approx(expected[key], abs=1e-4), key
    for key in ("f1", "precision", "recall", "accuracy"):  # at the chosen threshold: a row or two may differ
        assert exact[key] == pytest.approx(expected[key], abs=3e-3), key
    if not binned_too:
        return
    # binned curves (what a validation part above backend.exact_max_rows gets): the same fit, scored in Spark
    try:
        backend.settings.exact_max_rows = 0
        ev_binned = backend.evaluate(p)
    finally:
        backend.settings.exact_max_rows = SparkConfig.exact_max_rows
    binned = metrics_of(ev_binned)
    assert ev_binned.scores is None and len(ev_binned.curve.thresholds) <= backend.settings.bins + 1
    bound = auc_binning_bound(ev_binned.curve)  # half the share of (positive, negative) pairs sharing a bin
    assert bound < 1e-4
    assert abs(binned["roc_auc"] - exact["roc_auc"]) <= bound + 1e-9
    assert binned["log_loss"] == pytest.approx(exact["log_loss"], abs=1e-9)  # same probabilities, summed in Spark
    assert binned["pr_auc"] == pytest.approx(exact["pr_auc"], abs=1e-3)
    assert binned["f1"] == pytest.approx(exact["f1"], abs=3e-3)


# -- 4. refit, log the model, load it back ------------------------------------------------------------
def test_refit_log_model_and_load_it_back(telco: Any, tmp_path: Path, sqlite_tracking: str) -> None:
    import mlflow

    backend, reference = telco
    # tol=1e-10: Spark's tol bounds the relative change of the loss, a looser rule than scikit-learn's gradient
    # tolerance where telco's collinear one-hot columns ("No internet service" in seven of them) leave the
    # loss flat. Measured coefficient gaps to scikit-learn (tol 1e-10): 3.7e-3 at tol=1e-6, 6e-4 at 1e-8, 4e-5 at 1e-10.
    p, threshold = params(0.5, tol=1e-10), 0.35
    refit = backend.refit(p, threshold)
    assert refit.test.n == len(reference.split.test) and refit.test.scores is not None
    assert list(refit.coefficients.columns) == ["feature", "level", "scale", "coefficient", "odds_ratio"]
    sk_refit = reference.refit(ModelParams(0.5, 0.0, "l2", "lbfgs", "none", 100_000, 1e-10), threshold)
    expected = sk_refit.coefficients
    names = ["feature", "level", "scale"]
    pd.testing.assert_frame_equal(refit.coefficients[names], expected[names])  # same layout, same level order
    np.testing.assert_allclose(refit.coefficients["coefficient"], expected["coefficient"], atol=1e-4)
    auc, sk_auc = area_metrics(refit.test.curve)["roc_auc"], area_metrics(sk_refit.test.curve)["roc_auc"]
    assert auc == pytest.approx(sk_auc, abs=1e-4)

    requirements = pinned(backend.capabilities.requirements)
    with mlflow.start_run() as run:
        pass
    model_uri = log_model(sqlite_tracking, run.info.run_id, refit, backend.capabilities, threshold)
    loaded = mlflow.pyfunc.load_model(model_uri)
    assert loaded.metadata.metadata["threshold"] == threshold
    reqs = Path(mlflow.pyfunc.get_model_dependencies(model_uri)).read_text().split()
    # exactly the backend's pinned requirements (MLflow adds only itself): nothing inferred, which costs ~10 s
    assert {r for r in reqs if not r.startswith("mlflow")} == set(requirements)
    assert f"pyspark=={version('pyspark')}" in reqs and any(r.startswith("pyarrow==") for r in reqs)
    assert not any(r.startswith("scikit-learn") for r in reqs)  # a Spark model does not need scikit-learn to serve
    from pyspark.ml.functions import vector_to_array

    example = reference.table.X.iloc[reference.split.test[:8]].copy()
    predicted = np.asarray(loaded.predict(example))
    assert refit.labels == ("No", "Yes") and set(predicted) <= {"No", "Yes"}  # the data's labels, not 0/1
    scored = refit.model.transform(backend.spark.createDataFrame(example))
    p_spark = scored.select(vector_to_array("probability")[1].alias("p")).toPandas()["p"].to_numpy()
    np.testing.assert_array_equal(predicted == "Yes", p_spark >= threshold)  # at the validation threshold
    p_sk = sk_refit.model.predict_proba(example)[:, 1]
    np.testing.assert_allclose(p_spark, p_sk, atol=1e-5)


# -- 5. a sweep end to end; what a missing install says -----------------------------------------------
def test_sweep_runs_end_to_end_on_spark(spark: Any, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    csv = tmp_path / "synthetic.csv"
    synthetic(400, seed=11).to_csv(csv, index=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = Config(
        backend=SparkConfig(),
        cluster=LOCAL2,
        dataset=DatasetConfig(name="synthetic", path=str(csv), target="y", positive=None),
        # tight tolerance: Spark's fits reach the optimum scikit-learn's do, so the test figures can be compared
        search=SearchConfig(n_trials=3, n_startup_trials=3, max_iter=1000, tol=1e-10),
        tracking=TrackingConfig(uri=uri, mode="inline", log_model=False),
        study=StudyConfig(dir=str(tmp_path / "studies")),
        progress=False,
    )
    result = run_sweep(cfg)
    assert result.n_finished == 3 and result.states == {"COMPLETE": 3}
    assert not any(k.startswith("solver") for k in result.best_params)
    # the test figures are those of the best configuration refitted by scikit-learn on the same train+validation rows
    df = pd.read_csv(csv)
    y = df["y"].to_numpy()
    split = split_table(y, cfg.split, cfg.cv, cfg.seed)
    best = reference.model_params(result.best_params)
    best |= {"solver": "lbfgs" if best["l1_ratio"] == 0 else "saga", "max_iter": 100_000}
    model = reference.fit(df, y, split.trainval, best, cfg.seed, ["x1", "x2", "x3"], ["color"])
    p_test = reference.scores(model, df, split.test)
    assert result.test_metrics["roc_auc"] == pytest.approx(roc_auc_score(y[split.test], p_test), abs=1e-4)
    assert result.test_metrics["log_loss"] == pytest.approx(log_loss(y[split.test], p_test), abs=1e-4)
    # the same sweep on scikit-learn into the same store: one experiment, the same layout side by side
    sk_cfg = replace(cfg, backend=BackendConfig(name="sklearn"), cluster=LocalCluster())
    assert run_sweep(sk_cfg).n_finished == 3
    client = MlflowClient(tracking_uri=uri)
    (experiment,) = [e for e in client.search_experiments() if e.name != "Default"]  # both sweeps, one experiment
    assert experiment.name == cfg.experiment_name
    runs = client.search_runs([experiment.experiment_id])
    backend_of = {r.info.run_id: r.data.tags["lrsweep.backend"] for r in runs if r.data.tags["lrsweep.kind"] == "sweep"}
    by: dict[tuple[str, str], list[Any]] = {}
    for r in runs:
        backend = backend_of[r.data.tags.get("mlflow.parentRunId", r.info.run_id)]
        by.setdefault((backend, r.data.tags["lrsweep.kind"]), []).append(r)
    assert {k: len(v) for k, v in by.items()} == {
        ("spark", "trial"): 3,
        ("spark", "sweep"): 1,
        ("sklearn", "trial"): 3,
        ("sklearn", "sweep"): 1,
    }
    spark_child, sk_child = by["spark", "trial"][0].data, by["sklearn", "trial"][0].data
    assert all("spark.regParam" in r.data.params for r in by["spark", "trial"])
    assert all("C" in r.data.params or r.data.params["penalty"] == "none" for r in by["spark", "trial"])
    # same metric names; the same shared vocabulary (Spark has no solver); each library's own names under its prefix
    assert set(spark_child.metrics) == set(sk_child.metrics)

    def shared(params: dict[str, str]) -> set[str]:
        return {k for k in params if not k.startswith(("spark.", "sklearn."))}

    assert shared(sk_child.params) - {"solver"} == shared(spark_child.params)
    assert {"C", "l1_ratio", "penalty", "class_weight"} <= shared(spark_child.params)
    assert {"spark.regParam", "spark.elasticNetParam"} <= set(spark_child.params)
    assert not any(k.startswith("sklearn.") for k in spark_child.params)
    assert set(by["spark", "sweep"][0].data.metrics) == set(by["sklearn", "sweep"][0].data.metrics)


def test_missing_pyspark_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # "import pyspark" now raises ImportError
    with pytest.raises(LrsweepError) as exc:
        make_backend(Config(backend=SparkConfig(), dataset=TELCO))
    line = str(exc.value)
    assert "pip install 'lrsweep[spark]'" in line and "Java 17" in line and "\n" not in line


def test_missing_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyspark")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(LrsweepError, match="needs Java.*Java 17"):
        SparkBackend(SparkConfig())


def test_lrsweep_imports_without_pyspark() -> None:
    code = (
        "import sys, lrsweep, lrsweep.sweep, lrsweep.cli, lrsweep.backends.sklearn, lrsweep.backends.spark;"
        "print('pyspark' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


SESSION_PROBE = r"""
import json, os, sys
from pyspark import SparkContext
from lrsweep.backends.spark import SparkBackend, SparkConfig
from lrsweep.clusters import LocalCluster
from lrsweep.config import CVConfig, DatasetConfig, SplitConfig
from lrsweep.data import open_data

assert SparkContext._active_spark_context is None  # nothing to reuse: the backend builds its own session
csv = sys.argv[1]
dataset = DatasetConfig(name="probe", path=csv, target="y", positive=None)
backend = SparkBackend(SparkConfig(), cluster=LocalCluster(master="local[1]"))
backend.prepare(open_data(dataset, SplitConfig(), CVConfig(), 42))
sc = backend.spark.sparkContext


def where(batches):
    import sys
    import pandas as pd
    for _ in batches:
        yield pd.DataFrame({"executable": [sys.executable], "prefix": [sys.prefix]})


worker = backend.spark.range(1).mapInPandas(where, schema="executable string, prefix string").first()
jvm_pid = sc._gateway.proc.pid
bean = sc._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
sockets = set()
for fd in os.listdir(f"/proc/{jvm_pid}/fd"):
    try:
        target = os.readlink(f"/proc/{jvm_pid}/fd/{fd}")
    except OSError:
        continue
    if target.startswith("socket:["):
        sockets.add(target[len("socket:["):-1])
listening = []
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(table).read().splitlines()[1:]:
        f = line.split()
        if f[3] == "0A" and f[9] in sockets:  # LISTEN, owned by the driver JVM
            address, port = f[1].split(":")
            listening.append([address, int(port, 16)])
out = {
    "master": sc.master,
    "conf": dict(sc.getConf().getAll()),
    "jvm_args": list(bean.getInputArguments()),
    "ui": sc.uiWebUrl,
    "listening": listening,
    "worker": [worker.executable, worker.prefix],
    "driver": [sys.executable, sys.prefix],
}
backend.close()
out["stopped"] = SparkContext._active_spark_context is None
print("PROBE " + json.dumps(out))
"""
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1


def test_local_mode_session_setup_runs_for_real(tmp_path: Path) -> None:
    """SparkBackend's own local-mode session (every other Spark test reuses the shared one): driver memory half the
    machine, Python workers on lrsweep's interpreter, the driver bound to loopback; and close() stops it."""
    rng = np.random.default_rng(0)
    pd.DataFrame({"x": rng.normal(size=80), "y": [0, 1] * 40}).to_csv(tmp_path / "probe.csv", index=False)
    env = {
        k: v for k, v in os.environ.items() if k not in ("SPARK_LOCAL_IP", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")
    }
    # PATH without this venv: a worker started as PATH's python3 would not be lrsweep's interpreter
    env["PATH"] = os.pathsep.join(d for d in env.get("PATH", "").split(os.pathsep) if Path(d) != VENV_BIN)
    run = subprocess.run(
        [sys.executable, "-c", SESSION_PROBE, str(tmp_path / "probe.csv")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # hang guard only
    )
    assert run.returncode == 0, run.stderr[-4000:]
    out = json.loads(next(line for line in run.stdout.splitlines() if line.startswith("PROBE "))[6:])
    assert out["master"] == "local[1]"
    # half the machine's memory (MemTotal, whole GiB), at least 1 GiB; given to the JVM at launch
    mem_kib = int(
        next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")).split()[1]
    )
    gib = max(1, mem_kib // 2**20 // 2)
    assert out["conf"]["spark.driver.memory"] == f"{gib}g"
    assert f"-Xmx{gib}g" in out["jvm_args"]
    assert QUICK_JIT in out["jvm_args"]  # 80 rows: compiled with C1 alone (SparkConfig.quick_jit_rows)
    # Python workers run the driver's interpreter (this venv), not PATH's python3
    assert out["worker"] == out["driver"] and out["driver"][0] == sys.executable
    # no SPARK_LOCAL_IP: the driver binds and advertises loopback; its RPC port listens on loopback only
    assert out["conf"]["spark.driver.host"] == out["conf"]["spark.driver.bindAddress"] == "127.0.0.1"
    driver_port = int(out["conf"]["spark.driver.port"])
    ui_port = int(out["ui"].rsplit(":", 1)[1]) if out["ui"] else None
    assert [a for a, p in out["listening"] if p == driver_port] and out["listening"]
    assert ui_port is None or [a for a, p in out["listening"] if p == ui_port]  # the web UI was looked at too
    # every listener is on loopback: the driver RPC, the block manager, the Python gateway and the web UI
    wide = [(a, p) for a, p in out["listening"] if a not in LOOPBACK]
    assert not wide, f"listening beyond loopback: {wide}"
    assert out["stopped"]  # the backend stops a session it created
    # a quiet start: nothing on the terminal but the probe's line; the JVM's output in its log, Spark's level ERROR
    assert run.stderr == "" and [ln for ln in run.stdout.splitlines() if ln.strip()] == [f"PROBE {json.dumps(out)}"]
    assert out["conf"]["spark.log.level"] == "ERROR"
    (jvm_log,) = (tmp_path / ".lrsweep" / "spark").glob("driver-*.log")
    said = jvm_log.read_text()
    assert "WARNING: Using incubator modules" in said and 'Setting Spark log level to "ERROR".' in said, said


@pytest.mark.parametrize(
    ("master", "rows", "limit", "quick"),
    [
        ("local[2]", 7_043, 20_000, True),  # telco churn: Spark's per-job code is the work
        ("local[*]", 20_000, 20_000, True),
        ("local[2]", 20_001, 20_000, False),  # larger: the fitting loops need the optimising compiler
        ("local[2]", None, 20_000, False),  # a large Parquet input, read by Spark itself
        ("local[2]", 7_043, 0, False),  # turned off
        ("spark://127.0.0.1:7077", 7_043, 20_000, False),  # the executors do the work, in JVMs of their own
        ("yarn", 7_043, 20_000, False),
    ],
)
def test_a_local_driver_for_a_small_table_compiles_with_c1_alone(master: str, rows: Any, limit: int, quick: bool):
    assert quick_jit(master, rows, limit) is quick


def test_a_negative_quick_jit_rows_is_refused_with_the_fix() -> None:
    with pytest.raises(LrsweepError, match=r"backend.quick_jit_rows=-1 must be >= 0"):
        SparkConfig(quick_jit_rows=-1).check()


# -- reading a large Parquet input with Spark directly ------------------------------------------------
def test_parquet_read_by_spark_with_hash_split_and_folds(spark: Any, tmp_path: Path) -> None:
    df = synthetic(600, seed=5)
    df["customer"] = [f"c{i:05d}" for i in range(len(df))]  # id-like: dropped
    df["source"] = "web"  # constant: dropped
    path = tmp_path / "data.parquet"
    df.to_parquet(path)
    backend = SparkBackend(SparkConfig(spark_read_min_mb=0.0), cluster=LOCAL2)
    try:
        summary = prepared(backend, DatasetConfig(name="synthetic", path=str(path), target="y", positive=None),
                           CVConfig(folds=2))  # fmt: skip
        assert summary.features == {"numeric": ["x1", "x2", "x3"], "categorical": ["color"]}
        assert set(summary.dropped) == {"customer", "source"}
        assert sum(summary.rows.values()) == 600 and summary.rows["test"] > 60
        assert summary.fingerprint["rows"] == 600 and len(summary.input_example) == 5
        assert backend.n_folds == 2
        assert sum(f.n_held for f in backend._folds) == summary.rows["train"] + summary.rows["val"]
        ev = backend.evaluate(params(1.0, max_iter=1000, tol=1e-12), 1)
        fold = backend._folds[1]
        assert ev.n == fold.n_held
        # scikit-learn fitted on the fold's own (Spark-preprocessed) fitting rows scores its held-out rows alike
        fit = fold.fit.select(FEATURES, LABEL).toPandas()
        held = fold.held.select(FEATURES, LABEL).toPandas()
        Xa, Xb = (np.array([v.toArray() for v in f[FEATURES]]) for f in (fit, held))
        sk = LogisticRegression(C=1.0, tol=1e-10, max_iter=100_000).fit(Xa, fit[LABEL].to_numpy())
        expected = roc_auc_score(held[LABEL].to_numpy(), sk.predict_proba(Xb)[:, 1])
        assert area_metrics(ev.curve)["roc_auc"] == pytest.approx(expected, abs=1e-4)
        assert ev.n == len(held) and fold.n_fit == len(fit)
    finally:
        backend.close()


def test_a_table_read_through_pandas_is_cached_in_one_partition_per_core(spark: Any, tmp_path: Path) -> None:
    # pandas tables reach Spark in a partition per Arrow batch (10,000 rows: 100 partitions at 10**6 rows), and
    # every pass over the cached table (the refit's preprocessing, the test part, a generated table's reference)
    # paid a task per batch; the table is kept in one partition per core (local[2]: 2), the folds by their rows
    path = tmp_path / "data.parquet"
    synthetic(25_000, seed=8).to_parquet(path)
    backend = SparkBackend(SparkConfig(), cluster=LOCAL2)
    # as a large table does (Arrow data above 48 MB goes to the executors batch by batch, smaller data becomes a
    # local relation of a partition per core): every batch to the executors, in batches of 5,000 rows (5 of them)
    conf = {
        "spark.sql.execution.arrow.localRelationThreshold": "0",
        "spark.sql.execution.arrow.maxRecordsPerBatch": "5000",
    }
    before = {k: spark.conf.get(k) for k in conf}
    try:
        for k, v in conf.items():
            spark.conf.set(k, v)
        summary = prepared(backend, DatasetConfig(name="synthetic", path=str(path), target="y", positive=None))
        assert sum(summary.rows.values()) == 25_000
        assert backend._base.is_cached and backend._base.rdd.getNumPartitions() == 2
        assert [f.fit.rdd.getNumPartitions() for f in backend._folds] == [1]  # ceil(rows / 100,000)
    finally:
        for k, v in before.items():
            spark.conf.set(k, v)
        backend.close()


def test_infinite_values_in_a_parquet_read_by_spark_are_missing_values(spark: Any, tmp_path: Path) -> None:
    """inf / -inf in a numeric column are imputed like NaN (as the pandas path does), not a failed fit (issue 12)."""
    df = synthetic(400, seed=6)
    df.loc[df.index[:6], "x1"] = np.inf
    df.loc[df.index[6:9], "x1"] = -np.inf
    path = tmp_path / "data.parquet"
    df.to_parquet(path)
    backend = SparkBackend(SparkConfig(spark_read_min_mb=0.0), cluster=LOCAL2)
    try:
        prepared(backend, DatasetConfig(name="inf", path=str(path), target="y", positive=None), CVConfig(folds=1))
        ev = backend.evaluate(params(1.0, max_iter=200), 0)
        assert np.isfinite(ev.log_loss) and 0.5 < area_metrics(ev.curve)["roc_auc"] <= 1.0
        fit = backend._folds[0].fit.select(FEATURES).toPandas()
        assert np.isfinite(np.array([v.toArray() for v in fit[FEATURES]])).all()
    finally:
        backend.close()


def test_spark_reads_a_multi_class_target_as_one_class_against_the_rest(tmp_path: Path, caplog: Any) -> None:
    """Issue 14 on the direct Parquet path: dataset.positive on a 3-class target is that class against the rest,
    its label 'not LEVEL', one line naming the others with their counts, the summary told ("classes")."""
    import logging

    df = synthetic(400, seed=4)
    df["y"] = np.where(df["x1"] > 0.4, "gold", np.where(df["x1"] < -0.4, "bronze", "silver"))
    path = tmp_path / "data.parquet"
    df.to_parquet(path)
    caplog.set_level(logging.WARNING, logger="lrsweep")
    backend = SparkBackend(SparkConfig(spark_read_min_mb=0.0), cluster=LOCAL2)
    try:
        summary = prepared(backend, DatasetConfig(name="tiers", path=str(path), target="y", positive="gold"))
        assert summary.fingerprint["labels"] == ["not gold", "gold"] and summary.fingerprint["classes"] == 3
        n = df["y"].value_counts()
        assert summary.fingerprint["positive_rate"] == pytest.approx(n["gold"] / len(df))
        (line,) = [r.getMessage() for r in caplog.records if "against the rest" in r.getMessage()]
        assert f"fitting 'gold' ({n['gold']:,} rows) against the rest" in line and f"'silver' {n['silver']:,}" in line
    finally:
        backend.close()


# -- 6. a real standalone cluster ---------------------------------------------------------------------
@pytest.mark.slow
def test_sweep_on_a_standalone_cluster(tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    from tests.spark_cluster import standalone_cluster

    lrsweep_cli = VENV_BIN / "lrsweep"
    if not lrsweep_cli.exists():
        pytest.skip(f"no lrsweep console script at {lrsweep_cli}")
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONWARNINGS": "ignore"}
    with standalone_cluster(workers=1, memory="1g", work_dir=tmp_path / "work") as cluster:
        run = subprocess.run(
            [str(lrsweep_cli), "backend=spark", "cluster=standalone", f"cluster.master={cluster.master}"]
            + ["search.n_trials=2", "search.max_iter=20", "tracking=off", "progress=false"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        with urllib.request.urlopen(f"{cluster.ui}/json/", timeout=5) as r:
            apps = json.loads(r.read())
        names = [a.get("name", "") for a in apps.get("completedapps", []) + apps.get("activeapps", [])]
        assert any(n.startswith("lrsweep ") for n in names), names  # the sweep's session ran on the cluster
        assert "spark" in run.stdout


# -- 7. hashed features: Spark's FeatureHasher and lrsweep.hashing agree; the backends fit the same model --------
@pytest.mark.parametrize("n_features", [2**20, 1000])
def test_spark_feature_hasher_gives_lrsweep_hashing_buckets(spark: Any, n_features: int) -> None:
    from pyspark.ml.feature import FeatureHasher

    from lrsweep.hashing import hash_columns

    df = pd.DataFrame(
        {
            "site_id": ["1fbe01fe", "Zürich", None, "1fbe01fe", ""],
            "C1": ["1005", "1002", "1005", None, "-1"],
            "hour_of_day": ["0", "13", "23", "13", None],
        }
    )
    cols = list(df.columns)
    sdf = spark.createDataFrame(df.astype(object).where(df.notna(), None))
    hasher = FeatureHasher(inputCols=cols, categoricalCols=cols, numFeatures=n_features, outputCol="f")
    got = np.array([r["f"].toArray() for r in hasher.transform(sdf).select("f").collect()])
    np.testing.assert_array_equal(hash_columns(df, cols, n_features).toarray(), got)  # missing: no token, as Spark


def test_feature_hasher_on_a_generated_ctr_frame_gives_the_true_models_buckets(spark: Any) -> None:
    """The generator's true model hashes its own columns (integers as they come) as Spark does from the table."""
    from pyspark.ml.feature import FeatureHasher
    from pyspark.sql import functions as F

    from lrsweep.datasets import ctr

    df = ctr.generate_ctr_frame(300, seed=0)
    sdf = spark.createDataFrame(df).withColumn("hour_of_day", F.col("hour") % 100)
    cols = list(ctr.FEATURE_COLUMNS)
    hasher = FeatureHasher(numFeatures=2**ctr.HASH_BITS, inputCols=cols, categoricalCols=cols, outputCol="f")
    rows = hasher.transform(sdf).select("f").collect()
    X = ctr.hash_features(df)
    assert len(rows) == X.shape[0] == 300
    for i, row in enumerate(rows):
        v = row["f"]
        assert v.indices.tolist() == X[i].indices.tolist() and v.values.tolist() == X[i].data.tolist()


@pytest.mark.parametrize("compact_hashed", [False, True])
def test_hashed_ctr_sweep_part_matches_sklearn(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compact_hashed: bool
) -> None:
    """One-hot and hashed columns side by side, fitted on all the hasher's buckets or on those the rows use."""
    from lrsweep.backends.spark import fit_preprocessing

    monkeypatch.setenv("LRSWEEP_CACHE", str(tmp_path))
    one_hot = ["C1", "banner_pos", "device_type", "device_conn_type", "C15", "C16", "C18"]
    hashed = [c for c in (*CTR_FEATURES,) if c not in one_hot]
    ds = DatasetConfig(
        name="ctr", source="generated", generator="ctr", rows=3000, target="click", positive="1", drop=["hour"],
        categorical=one_hot + hashed, hashed=hashed, hash_features=2**14,
    )  # fmt: skip
    backend = SparkBackend(SparkConfig(compact_hashed=compact_hashed), cluster=LOCAL2)
    reference = SklearnBackend()
    prepared(backend, ds)
    prepared(reference, ds)
    try:
        fit = backend._folds[0].fit
        assert fit.schema[FEATURES].metadata == {"ml_attr": {"num_attrs": fit.first()[FEATURES].size}}  # compact
        space = backend._folds[0].space
        assert (space is not None) == compact_hashed
        if space is not None:  # the one-hot columns first as they were, then the buckets the fitting rows use
            assert 0 < space.head < space.width < space.size == space.head + 2**14
        p, threshold = params(0.5, tol=1e-10), 0.2
        kind = lambda m: m._java_obj.coefficientMatrix().getClass().getSimpleName()  # noqa: E731
        if space is None:
            # Spark stores these coefficients sparse (most buckets unseen): scored with them dense, to the bit
            from pyspark.ml.classification import LogisticRegression as SparkLR

            lr = SparkLR(featuresCol=FEATURES, labelCol=LABEL, **spark_params(p, backend._folds[0].n_fit))
            stored = lr.fit(fit)
            stored.setThreshold(0.3)
            dense = with_dense_coefficients(stored)
            assert (kind(stored), kind(dense)) == ("SparseMatrix", "DenseMatrix")
            assert (dense.uid, dense.getThreshold(), dense.getFeaturesCol()) == (stored.uid, 0.3, FEATURES)
            held = backend._folds[0].held
            scored = [m.transform(held).select("probability", "prediction").toPandas() for m in (stored, dense)]
            assert scored[0]["prediction"].tolist() == scored[1]["prediction"].tolist()
            assert [v.toArray().tolist() for v in scored[0]["probability"]] == [
                v.toArray().tolist() for v in scored[1]["probability"]
            ]
            assert with_dense_coefficients(dense) is dense  # dense already: the model as it is
        ev, sk_ev = backend.evaluate(p), reference.evaluate(p)
        assert area_metrics(ev.curve)["roc_auc"] == pytest.approx(area_metrics(sk_ev.curve)["roc_auc"], abs=1e-4)
        refit = backend.refit(p, threshold)
        assert kind(refit.model.stages[-2]) == "DenseMatrix"  # the logged model scores with dense coefficients
        sk = reference.refit(ModelParams(0.5, 0.0, "l2", "lbfgs", "none", 100_000, 1e-10), threshold)
        named = ["feature", "level", "scale"]
        spark_named = refit.coefficients[refit.coefficients["feature"] != "(hashed)"]
        sk_named = sk.coefficients[sk.coefficients["feature"] != "(hashed)"]
        pd.testing.assert_frame_equal(spark_named[named], sk_named[named])
        np.testing.assert_allclose(spark_named["coefficient"], sk_named["coefficient"], atol=1e-4)
        both = refit.coefficients.merge(sk.coefficients, on=named, suffixes=("_spark", "_sk"))
        assert (both["feature"] == "(hashed)").sum() > 100  # the same buckets, listed by both
        np.testing.assert_allclose(both["coefficient_spark"], both["coefficient_sk"], atol=1e-4)
        # the true model on the test rows: computed by Spark's Python workers, the same as scikit-learn's
        assert refit.reference is not None and sk.reference is not None
        assert refit.reference.log_loss == pytest.approx(sk.reference.log_loss, abs=1e-12)
        assert refit.reference.log_loss < refit.test.log_loss
    finally:
        backend.close()
        reference.close()
    # hashed columns only: the hasher writes the features itself (no VectorAssembler naming 2**20 buckets)
    only = spark.createDataFrame(pd.DataFrame({"a": ["x", "y"], LABEL: [0.0, 1.0]}))
    pre, _ = fit_preprocessing(only, [], [], hashed=["a"], n_features=2**20)
    assert [type(s).__name__ for s in pre.stages] == ["SQLTransformer", "FeatureHasher"]
