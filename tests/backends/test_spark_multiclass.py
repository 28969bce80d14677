"""Spark backend, a target of more than two classes (issue 14): parity with scikit-learn for the multinomial model
and for one-vs-rest, the logged model's probabilities and decisions, and the direct Parquet path's checks.

Marked ``spark``; the shared local[2] session (conftest.py); a 3,000-row three-class table (tests/backends/tiers.py).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lrsweep.backends.sklearn import SklearnBackend
from lrsweep.backends.spark import SparkBackend, SparkConfig, decision_sql
from lrsweep.clusters import LocalCluster
from lrsweep.config import CVConfig, DatasetConfig, SplitConfig
from lrsweep.data import open_data
from lrsweep.errors import LrsweepError
from lrsweep.labelled import decide
from lrsweep.space import ModelParams
from tests.backends.tiers import CLASSES, plan_tiers

pytestmark = pytest.mark.spark
LOCAL2 = LocalCluster(master="local[2]")


def _dataset(path: Path) -> DatasetConfig:
    return DatasetConfig(name="tiers", path=str(path), target="tier", positive=None)


def _params(mode: str | None, class_weight: str = "none", C: float = 10.0, solver: str | None = None) -> ModelParams:
    return ModelParams(C, 0.0, "l2", solver, class_weight, 100_000, 1e-10, None, mode)


@pytest.fixture(scope="module")
def tiers(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = plan_tiers(tmp_path_factory.mktemp("tiers") / "tiers.csv")
    backend = SparkBackend(SparkConfig(), cluster=LOCAL2, seed=42)
    reference = SklearnBackend(seed=42)
    for b in (backend, reference):
        b.prepare(open_data(_dataset(path), SplitConfig(), CVConfig(), 42))
    yield backend, reference
    backend.close()
    reference.close()


@pytest.mark.parametrize("mode", ["multinomial", "ovr"])
@pytest.mark.parametrize("class_weight", ["none", "balanced"])
def test_evaluate_gives_sklearns_probabilities(tiers: Any, mode: str, class_weight: str) -> None:
    """The same validation rows, the same class codes, the same per-class probabilities: multinomial (one softmax
    model) and one-vs-rest (a binomial model per class, with that binary problem's balanced weights, normalised)."""
    backend, reference = tiers
    assert backend.classes == reference.classes == CLASSES
    ev = backend.evaluate(_params(mode, class_weight))
    want = reference.evaluate(_params(mode, class_weight, solver="lbfgs"))
    assert ev.curve is None and ev.scores is not None and want.scores is not None
    y, proba = ev.scores
    assert np.array_equal(y, want.scores[0]) and proba.shape == (len(y), 3)
    np.testing.assert_allclose(proba, want.scores[1], atol=2e-5)
    assert ev.log_loss == pytest.approx(want.log_loss, abs=1e-5)
    assert ev.fit.converged


def test_the_two_modes_are_different_models_and_no_mode_is_the_default_one(tiers: Any) -> None:
    """A configuration drawn without the data at hand (the planner's calibration) has no mode: on a multi-class
    target it is fitted as search.multiclass's default, multinomial (as the scikit-learn backend does)."""
    backend, reference = tiers
    soft, ovr, unset = (backend.evaluate(_params(m)).scores[1] for m in ("multinomial", "ovr", None))
    assert np.abs(soft - ovr).max() > 1e-3
    np.testing.assert_array_equal(unset, soft)
    sk_unset = reference.evaluate(_params(None, solver="lbfgs")).scores[1]
    np.testing.assert_array_equal(sk_unset, reference.evaluate(_params("multinomial", solver="lbfgs")).scores[1])


def test_one_vs_rest_fits_its_classes_at_once_and_the_models_are_the_same_to_the_bit(
    tiers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """backend.ovr_parallelism=K: the per-class fits run at once on the session (two of them meet inside a fit,
    which one after another they never could), under the caller's Spark job group, and give the same
    probabilities, to the bit, as one after another (ovr_parallelism=1); 0 is refused in one line."""
    import dataclasses
    import threading

    backend, _ = tiers
    fit_lr = SparkBackend._fit_lr
    met = threading.Barrier(2, timeout=120)  # the first two fits wait here for each other
    calls: list[str] = []

    def meeting(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(threading.current_thread().name)
        if len(calls) <= 2:
            met.wait()  # one after another, the first fit would wait alone and break the barrier: the test fails
        return fit_lr(self, *args, **kwargs)

    saved = backend.settings
    sc = backend.spark.sparkContext
    try:
        backend.settings = dataclasses.replace(saved, ovr_parallelism=3)
        monkeypatch.setattr(SparkBackend, "_fit_lr", meeting)
        sc.setJobGroup("ovr-at-once", "test")
        together = backend.evaluate(_params("ovr", "balanced"))
        monkeypatch.setattr(SparkBackend, "_fit_lr", fit_lr)
        assert len(calls) == 3 and all(name.startswith("lrsweep-ovr") for name in calls)
        backend.settings = dataclasses.replace(saved, ovr_parallelism=1)
        sc.setJobGroup("ovr-one-by-one", "test")
        alone = backend.evaluate(_params("ovr", "balanced"))
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        backend.settings = saved
    # the fits' jobs ran under the caller's job group (what the planner's calibration counts), the same jobs
    jobs = {g: len(sc.statusTracker().getJobIdsForGroup(g)) for g in ("ovr-at-once", "ovr-one-by-one")}
    assert jobs["ovr-at-once"] == jobs["ovr-one-by-one"] > 3 * together.fit.n_iter
    np.testing.assert_array_equal(together.scores[1], alone.scores[1])
    assert together.fit.n_iter == alone.fit.n_iter and together.log_loss == alone.log_loss
    with pytest.raises(LrsweepError, match="ovr_parallelism=0"):
        SparkConfig(ovr_parallelism=0).check()


def test_a_rungs_balanced_weights_and_one_vs_rest_class_counts_are_its_own(tiers: Any) -> None:
    """On a halving rung of a multi-class target, class_weight=balanced weighs the rung's rows as scikit-learn
    would (compute_class_weight on the rung's labels), and one-vs-rest's per-class problems count the rung's rows
    of each class, not the whole fitting part's."""
    from sklearn.utils.class_weight import compute_class_weight

    from lrsweep.backends.spark import LABEL, WEIGHT

    backend, _ = tiers
    rows, n = backend.fraction_rows(1 / 3)
    got = rows.select(LABEL, WEIGHT).toPandas()
    y = got[LABEL].to_numpy().astype(int)
    expected = compute_class_weight("balanced", classes=np.arange(len(CLASSES)), y=y)[y]
    assert len(y) == n and np.allclose(got[WEIGHT].to_numpy(), expected, rtol=1e-12, atol=0)
    assert backend._rungs[(0, 1 / 3)][2] == np.bincount(y, minlength=len(CLASSES)).tolist()
    assert backend._rungs[(0, 1 / 3)][2] != backend._folds[0].class_rows  # not the part's counts
    rung = backend.evaluate(_params("ovr", "balanced"), fraction=1 / 3)
    assert rung.n == backend._folds[0].n_held and math.isfinite(rung.log_loss)


@pytest.mark.parametrize("mode", ["multinomial", "ovr"])
def test_refit_coefficients_and_the_logged_models_decisions(tiers: Any, mode: str) -> None:
    """Coefficients agree with scikit-learn's at convergence (a column per class); the logged PipelineModel writes
    the per-class probabilities and predicts the class labels by argmax, or by the threshold on one class."""
    from pyspark.ml.functions import vector_to_array

    backend, reference = tiers
    refit = backend.refit(_params(mode), math.nan)
    sk = reference.refit(_params(mode, solver="lbfgs"), math.nan)
    cols = [f"coefficient.{c}" for c in CLASSES]
    assert list(refit.coefficients.columns[3:6]) == cols
    pd.testing.assert_frame_equal(refit.coefficients.iloc[:, :3], sk.coefficients.iloc[:, :3])
    np.testing.assert_allclose(refit.coefficients[cols], sk.coefficients[cols], atol=2e-4)
    assert refit.labels == tuple(CLASSES)
    np.testing.assert_allclose(refit.test.scores[1], sk.test.scores[1], atol=2e-5)

    raw = reference.table.X.iloc[reference.split.test[:200]].copy()
    for of_class, threshold in ((None, math.nan), (2, 0.2)):
        model = refit.model if of_class is None else backend.refit(_params(mode), threshold, of_class).model
        out = model.transform(backend.spark.createDataFrame(raw))
        got = out.select(vector_to_array("probability").alias("p"), "prediction").toPandas()
        proba = np.vstack(got["p"].to_numpy())
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
        np.testing.assert_allclose(proba, sk.model.predict_proba(raw), atol=2e-5)
        want = np.asarray(CLASSES, dtype=object)[decide(proba, of_class, threshold)]
        assert list(got["prediction"]) == list(want)
        if of_class is not None:  # the threshold moved some rows to class 2 that argmax would not give it
            assert (want == CLASSES[2]).sum() > (proba.argmax(axis=1) == 2).sum()


def test_decision_sql_reads_sparse_probability_vectors_too(spark: Any) -> None:
    """A VectorAssembler may store a vector sparse (zeros): the decision reads it densely."""
    from pyspark.ml.feature import SQLTransformer
    from pyspark.ml.linalg import Vectors

    frame = spark.createDataFrame(
        [(Vectors.dense([0.2, 0.5, 0.3]),), (Vectors.sparse(3, [2], [1.0]),), (Vectors.dense([0.4, 0.4, 0.2]),)],
        ["probability"],
    )
    argmax = SQLTransformer(statement=decision_sql(None, math.nan)).transform(frame)
    assert [r[-1] for r in argmax.collect()] == [1.0, 2.0, 0.0]  # ties: the first, as numpy
    on_two = SQLTransformer(statement=decision_sql(2, 0.25)).transform(frame)
    assert [r[-1] for r in on_two.collect()] == [2.0, 2.0, 0.0]


def test_a_parquet_read_by_spark_gives_class_codes_and_refuses_a_class_missing_from_a_part(
    spark: Any, tmp_path: Path
) -> None:
    path = plan_tiers(tmp_path / "tiers.parquet", rows=600)
    backend = SparkBackend(SparkConfig(spark_read_min_mb=0.0), cluster=LOCAL2)
    try:
        summary = backend.prepare(open_data(_dataset(path), SplitConfig(), CVConfig(), 42))
        frame = pd.read_parquet(path)
        assert summary.classes == CLASSES and summary.fingerprint["labels"] == CLASSES
        assert summary.fingerprint["class_rows"] == frame["tier"].value_counts().to_dict()
        assert sum(summary.rows.values()) == len(frame)
        ev = backend.evaluate(_params("multinomial"))
        assert ev.scores is not None and ev.scores[1].shape[1] == 3 and ev.log_loss < 0.9
    finally:
        backend.close()
    frame.loc[:2, "tier"] = "rare"  # three rows: the row-hash split (not stratified) leaves a part without one
    frame.to_parquet(path)
    backend = SparkBackend(SparkConfig(spark_read_min_mb=0.0), cluster=LOCAL2)
    try:
        with pytest.raises(LrsweepError, match=r"class 'rare' has no rows in the (train|validation|test) part"):
            backend.prepare(open_data(_dataset(path), SplitConfig(), CVConfig(), 42))
    finally:
        backend.close()


def test_a_spark_sweep_of_the_generated_table_logs_a_model_answering_class_labels(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end on Spark: the generated 4-class table, both modes searched, tracked; the trial runs carry the
    per-class figures, the parent the true model's, and the logged Spark model answers class labels on raw rows."""
    import mlflow
    from mlflow import MlflowClient

    from lrsweep.config import Config, SearchConfig, StudyConfig, TrackingConfig
    from lrsweep.datasets import generate
    from lrsweep.sweep import run_sweep

    monkeypatch.setenv("LRSWEEP_CACHE", str(tmp_path / "cache"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = Config(
        backend=SparkConfig(),
        cluster=LOCAL2,
        dataset=DatasetConfig(name="softmax", source="generated", generator="softmax", rows=2000, target="plan",
                              positive=None, categorical=["region", "signup_channel"]),
        search=SearchConfig(n_trials=3, n_startup_trials=3, multiclass="both", penalties=["l2"]),
        tracking=TrackingConfig(uri=uri, mode="inline"),
        study=StudyConfig(dir=str(tmp_path / "studies")),
        progress=False,
    )  # fmt: skip
    result = run_sweep(cfg)
    assert result.n_finished == 3 and result.classes == ["basic", "plus", "pro", "team"]
    # every test row once (the table is read through pandas: a stratified split, 20% test)
    assert len(result.test_confusion) == 4 and sum(map(sum, result.test_confusion)) == 400
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name(cfg.experiment_name).experiment_id])
    trials = [r for r in runs if r.data.tags["lrsweep.kind"] == "trial"]
    parent = next(r for r in runs if r.data.tags["lrsweep.kind"] == "sweep")
    assert {r.data.params["multiclass"] for r in trials} <= {"ovr", "multinomial"}
    assert all("val_roc_auc.team" in r.data.metrics and "val_f1_weighted" in r.data.metrics for r in trials)
    assert {"spark.family"} <= set(trials[0].data.params)
    m = parent.data.metrics
    assert 0 <= m["test_log_loss_excess"] < 0.15 and "bayes_test_roc_auc" in m
    raw = pd.read_parquet(generate("softmax", 2000, 0)).drop(columns="plan").head(20)
    mlflow.set_tracking_uri(uri)
    labels = mlflow.pyfunc.load_model(parent.data.tags["lrsweep.model_uri"]).predict(raw)
    assert set(np.asarray(labels)) <= set(result.classes)


def test_a_cv_fold_whose_held_out_rows_miss_a_class_is_one_clear_error(spark: Any, tmp_path: Path) -> None:
    """Spark's row-hash folds are not stratified: a fold whose held-out rows hold no row of a class could not be
    scored (its macro ROC AUC would be NaN). Folds made to miss one here: the setup says which, once."""
    path = plan_tiers(tmp_path / "tiers.csv", rows=300)
    data = open_data(_dataset(path), SplitConfig(), CVConfig(folds=3), 42)
    table, split = data.pandas()
    trainval = split.trainval
    pro = trainval[table.y[trainval] == 2]
    held0 = np.setdiff1d(trainval[: len(trainval) // 3], pro)  # fold 0 holds out no "pro" row
    split.folds = [(np.setdiff1d(trainval, held0), held0), *split.folds[1:]]
    backend = SparkBackend(SparkConfig(), cluster=LOCAL2)
    try:
        with pytest.raises(LrsweepError, match="class 'pro' has no rows in the held-out rows of CV fold 0"):
            backend.prepare(data)
    finally:
        backend.close()
