"""The backend contract (``lrsweep.backends.base``) as one body of checks, run on every backend.

A new backend is done when it passes this file: add it to :data:`BACKENDS` (and its settings to
:func:`settings_of`). The cases run on the scikit-learn backend, the Spark backend (marked ``spark``; the shared
local[2] session of conftest.py) and ``fake.py``, a plain-numpy third implementation that keeps the checks honest
about what is contract and what is one library's habit.

Every backend is prepared the way a sweep prepares it, on one seeded synthetic table with signal, missing values
(also in the first training rows, the logged input example), an id-like and a constant column; each check
compares the backend's answer with what is computed here independently (the split from ``split_table``, metrics
from ``sklearn.metrics``, predictions from the model itself).

Behaviour that must match across backends is compared too: the fake's L2 fit equals scikit-learn's at
convergence. Spark's parity with scikit-learn has its own tests in test_spark.py and is not repeated here.
"""

from __future__ import annotations

import math
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

from lrsweep.backends import BACKENDS as REGISTRY
from lrsweep.backends import Backend, Capabilities, Evaluation, Refit, backend_class, capabilities_of
from lrsweep.backends.base import BackendConfig
from lrsweep.backends.sklearn import SklearnBackend
from lrsweep.clusters import LocalCluster
from lrsweep.config import (
    PENALTIES,
    Config,
    CVConfig,
    DatasetConfig,
    FloatRange,
    SearchConfig,
    SplitConfig,
    StudyConfig,
    TrackingConfig,
)
from lrsweep.data import DataSummary, load_table, open_data, split_table
from lrsweep.errors import LrsweepError
from lrsweep.metrics import area_metrics, curve_from_scores, metrics_at
from lrsweep.space import ModelParams, solver_pool
from lrsweep.thresholds import choose_threshold
from lrsweep.tracking import log_model, pinned

from .fake import FakeBackend

SEED = 42
K = 3  # CV folds
LOCAL2 = LocalCluster(master="local[2]")
# the flavours lrsweep.tracking.log_model can log, and the distribution each needs to load the model
FLAVOUR_NEEDS = {"sklearn": "cloudpickle", "spark": "pyspark"}

BACKENDS = [
    pytest.param("sklearn", id="sklearn"),
    pytest.param("spark", id="spark", marks=pytest.mark.spark),
    pytest.param("fake", id="fake"),
]


def settings_of(kind: str) -> BackendConfig:
    if kind == "spark":
        from lrsweep.backends.spark import SparkConfig

        return SparkConfig()
    return BackendConfig(name=kind)


def make(kind: str) -> Backend:
    """A backend made as ``lrsweep.backends.make_backend`` makes one: ``Cls(settings, cluster=, seed=, app_name=)``."""
    cls = FakeBackend if kind == "fake" else backend_class(kind)
    backend: Backend = cls(settings_of(kind), cluster=LOCAL2, seed=SEED, app_name="lrsweep conformance")
    return backend


def params_for(
    caps: Capabilities, C: float = 1.0, class_weight: str = "none", max_iter: int = 200, tol: float = 1e-6
) -> ModelParams:
    """L2 (or, with C=inf, no penalty) with the first solver the backend declares for it, as the search would."""
    penalty = "none" if math.isinf(C) else "l2"
    solver = None if caps.solvers is None else next(s for s, fits in caps.solvers.items() if penalty in fits)
    return ModelParams(C, 0.0, penalty, solver, class_weight, max_iter, tol)


def predict_raw(caps: Capabilities, model: Any, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(0/1 predictions, positive-class probabilities) of a refitted model on raw rows, through the interface of
    the flavour it declares: a scikit-learn-like estimator, or a Spark ML model on the active session."""
    if caps.flavour == "sklearn":  # predict answers in the data's labels: classes_[1] is the positive one
        positive = np.asarray(model.predict(frame)) == model.classes_[1]
        return positive.astype(int), np.asarray(model.predict_proba(frame))[:, 1]
    assert caps.flavour == "spark"
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    rows = frame.astype(object).where(frame.notna(), None)  # missing as null, as lrsweep.data.spark writes it
    p = vector_to_array("probability")[1].alias("p")
    scored = model.transform(spark.createDataFrame(rows)).select("prediction", p).toPandas()
    positive = model.stages[-1].getLabels()[1]  # the last stage maps 0/1 to the data's labels (IndexToString)
    return (scored["prediction"] == positive).to_numpy().astype(int), scored["p"].to_numpy(dtype=float)


def synthetic(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A known logistic model of three numerics and a colour; gaps in x2 and colour; an id and a constant."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(2.0, 3.0, size=n)
    x3 = rng.integers(0, 5, size=n).astype(float)
    color = rng.choice(np.array(["red", "green", "blue"], dtype=object), size=n, p=[0.5, 0.3, 0.2])
    logit = 1.5 * x1 - 0.5 * x2 + 0.4 * x3 + 1.2 * (color == "red") - 0.8  # Bayes ROC AUC 0.88
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    x2[(rng.random(n) < 0.05) | (np.arange(n) % 3 == 0) & (np.arange(n) < 12)] = np.nan
    color[(rng.random(n) < 0.04) | (np.arange(n) % 3 == 1) & (np.arange(n) < 12)] = np.nan
    ids = [f"row-{i:05d}" for i in range(n)]
    return pd.DataFrame({"id": ids, "x1": x1, "x2": x2, "x3": x3, "color": color, "source": "web", "y": y})


# -- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetConfig:
    path = tmp_path_factory.mktemp("conformance") / "synthetic.csv"
    synthetic().to_csv(path, index=False)
    return DatasetConfig(name="synthetic", path=str(path), target="y", positive=None)


@pytest.fixture(scope="module")
def expected(dataset: DatasetConfig) -> Any:
    """The table and its split, computed here (what every backend must have read)."""
    table = load_table(dataset)
    return table, split_table(table.y, SplitConfig(), CVConfig(), SEED)


@pytest.fixture(scope="module", params=BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "spark":
        request.getfixturevalue("spark")  # the shared session: the backend reuses it
    return str(request.param)


@pytest.fixture(scope="module")
def prepared(kind: str, dataset: DatasetConfig) -> Any:
    """A backend prepared as a sweep prepares it (default split, no CV), and its summary."""
    backend = make(kind)
    summary = backend.prepare(open_data(dataset, SplitConfig(), CVConfig(), SEED))
    yield backend, summary
    backend.close()


@pytest.fixture(scope="module")
def evaluated(prepared: Any) -> Evaluation:
    backend, _ = prepared
    return backend.evaluate(params_for(backend.capabilities))


THRESHOLD = 0.4


@pytest.fixture(scope="module")
def refitted(prepared: Any) -> Refit:
    backend, _ = prepared
    return backend.refit(params_for(backend.capabilities), THRESHOLD)


def _labels_match(ev: Evaluation, y: np.ndarray) -> None:
    assert ev.n == len(y)
    assert (ev.curve.pos, ev.curve.neg) == (int(y.sum()), int((1 - y).sum()))
    if ev.scores is not None:
        np.testing.assert_array_equal(np.sort(ev.scores[0]), np.sort(y))


def _scores(ev: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    assert ev.scores is not None, "a held-out part of a few hundred rows returns its scores"
    y, s = ev.scores
    assert len(y) == len(s) == ev.n
    return np.asarray(y), np.asarray(s, dtype=float)


# -- capabilities -------------------------------------------------------------------------------------
def test_capabilities_are_well_formed(kind: str) -> None:
    cls = FakeBackend if kind == "fake" else backend_class(kind)
    caps = cls.capabilities  # known before any backend (or Spark session) exists
    assert isinstance(caps, Capabilities) and isinstance(cls.name, str) and cls.name
    if kind in REGISTRY:  # the fake is not registered
        assert cls.name == kind and capabilities_of(kind) is caps
    assert caps.penalties and set(caps.penalties) <= set(PENALTIES)
    if caps.solvers is None:
        assert caps.dense_solvers == ()
        fitted = set(caps.penalties)
    else:
        assert caps.solvers and all(isinstance(s, str) for s in caps.solvers)
        for solver, fits in caps.solvers.items():
            assert isinstance(fits, tuple) and fits and set(fits) <= set(PENALTIES), solver
        assert set(caps.dense_solvers) <= set(caps.solvers)
        fitted = {p for fits in caps.solvers.values() for p in fits}
        assert fitted == set(caps.penalties)
    # the search over what it fits is accepted; a penalty it cannot fit is refused before any data is read
    pool = solver_pool(SearchConfig(penalties=sorted(fitted)), caps)
    assert pool is None or set(pool) == fitted
    for penalty in set(PENALTIES) - fitted:
        with pytest.raises(LrsweepError):
            solver_pool(SearchConfig(penalties=[penalty]), caps)
    if caps.solvers is not None and set(caps.dense_solvers) == set(caps.solvers):
        with pytest.raises(LrsweepError):  # no solver left for hashed features
            solver_pool(SearchConfig(penalties=sorted(fitted)), caps, sparse=True)
    # serving requirements are installed distributions (tracking pins them), including what the flavour loads with
    assert caps.flavour in FLAVOUR_NEEDS
    assert FLAVOUR_NEEDS[caps.flavour] in caps.requirements
    assert pinned(caps.requirements) == [f"{r}=={version(r)}" for r in caps.requirements]


def test_declared_solver_table_is_exact(prepared: Any) -> None:
    """Every declared (solver, penalty) fits; with a solver table, every undeclared pair is refused."""
    backend, _ = prepared
    caps: Capabilities = backend.capabilities
    setting = {"none": (math.inf, 0.0), "l2": (1.0, 0.0), "l1": (1.0, 1.0), "elasticnet": (1.0, 0.5)}
    solvers = caps.solvers if caps.solvers is not None else {None: caps.penalties}
    for solver, fits in solvers.items():
        for penalty in PENALTIES:
            C, ratio = setting[penalty]
            p = ModelParams(C, ratio, penalty, solver, "none", 10, 1e-4)  # a few steps: that it fits
            if penalty in fits:
                ev = backend.evaluate(p)
                assert np.isfinite(ev.log_loss) and ev.fit.n_iter >= 1, (solver, penalty)
            else:
                with pytest.raises(ValueError):
                    backend.evaluate(p)


# -- prepare ------------------------------------------------------------------------------------------
def test_prepare_summarises_the_split(prepared: Any, expected: Any) -> None:
    backend, summary = prepared
    table, split = expected
    assert isinstance(summary, DataSummary)
    assert summary.rows == split.rows == {"train": len(split.train), "val": len(split.val), "test": len(split.test)}
    assert summary.features == {"numeric": ["x1", "x2", "x3"], "categorical": ["color"]}
    assert summary.features == DataSummary.features_of(table.numeric, table.categorical, table.hashed)
    assert summary.dropped == table.dropped and set(summary.dropped) == {"id", "source"}
    assert summary.fingerprint == table.fingerprint
    example = summary.input_example
    assert example is not None and len(example) == 5 and list(example.columns) == table.features
    assert set(example.index) <= set(split.train), "the input example is raw training rows"
    pd.testing.assert_frame_equal(example, table.X.loc[example.index])
    assert example[["x2", "color"]].isna().any().all(), "the table puts gaps in the first training rows"
    assert backend.n_folds == 0


def test_cv_folds_cover_train_and_validation_once(kind: str, dataset: DatasetConfig, expected: Any) -> None:
    table, split = expected
    folds = split_table(table.y, SplitConfig(), CVConfig(folds=K), SEED).folds
    backend = make(kind)
    try:
        summary = backend.prepare(open_data(dataset, SplitConfig(), CVConfig(folds=K), SEED))
        assert summary.rows == split.rows  # CV splits train+validation; the parts keep their sizes
        assert backend.n_folds == K
        evals = [backend.evaluate(params_for(backend.capabilities, max_iter=30), k) for k in range(K)]
    finally:
        backend.close()
    backend.close()  # safe twice
    for ev, (_, held) in zip(evals, folds, strict=True):
        _labels_match(ev, table.y[held])
    assert sum(ev.n for ev in evals) == len(split.train) + len(split.val)
    # fold k is held out from its own fit: different held-out parts give different curves
    assert len({round(ev.log_loss, 12) for ev in evals}) == K
    if kind == "spark":
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        assert active is not None and active.sparkContext._jsc is not None, "it did not stop a session it reused"


def test_close_is_safe_before_prepare(kind: str) -> None:
    backend = make(kind)
    backend.close()  # a sweep whose data could not be read still closes its backend
    backend.close()
    assert backend.n_folds == 0


# -- evaluate -----------------------------------------------------------------------------------------
def test_evaluate_scores_the_validation_part(evaluated: Evaluation, expected: Any) -> None:
    table, split = expected
    yv = table.y[split.val]
    _labels_match(evaluated, yv)
    y, s = _scores(evaluated)
    assert np.all((s >= 0) & (s <= 1))
    # the curve and log loss are those of the returned scores, as sklearn.metrics computes them
    curve = curve_from_scores(y, s)
    np.testing.assert_array_equal(evaluated.curve.tp, curve.tp)
    np.testing.assert_array_equal(evaluated.curve.fp, curve.fp)
    assert evaluated.log_loss == pytest.approx(sk_log_loss(y, s, labels=[0, 1]), abs=1e-12)
    auc = area_metrics(evaluated.curve)["roc_auc"]
    assert auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    # the table has signal: far better than chance, and than predicting the training rate for every row
    rate = table.y[split.train].mean()
    assert auc > 0.75
    assert evaluated.log_loss < sk_log_loss(yv, np.full(len(yv), rate), labels=[0, 1]) - 0.1
    fit = evaluated.fit
    assert fit.seconds >= 0 and isinstance(fit.n_iter, int) and fit.n_iter >= 1 and fit.converged is True


def test_evaluate_is_deterministic(prepared: Any, evaluated: Evaluation) -> None:
    backend, _ = prepared
    again = backend.evaluate(params_for(backend.capabilities))
    assert again.n == evaluated.n and again.log_loss == pytest.approx(evaluated.log_loss, abs=1e-9)
    np.testing.assert_allclose(np.sort(_scores(again)[1]), np.sort(_scores(evaluated)[1]), rtol=0, atol=1e-9)


@pytest.mark.parametrize("class_weight", ["none", "balanced"])
def test_a_tiny_C_leaves_only_the_unpenalised_intercept(prepared: Any, expected: Any, class_weight: str) -> None:
    """C -> 0 shrinks every coefficient to 0 but not the intercept: each held-out score becomes the training
    part's (weighted) positive rate. A penalised intercept, an inverted C or ignored weights fail here."""
    backend, _ = prepared
    table, split = expected
    ev = backend.evaluate(params_for(backend.capabilities, C=1e-6, class_weight=class_weight))
    _, s = _scores(ev)
    rate = 0.5 if class_weight == "balanced" else table.y[split.train].mean()  # balanced: both classes weigh n/2
    np.testing.assert_allclose(s, rate, rtol=0, atol=1e-3)
    assert area_metrics(ev.curve)["roc_auc"] > 0.6  # what is left of the coefficients still ranks the rows


def test_fit_info_flags_a_fit_stopped_by_max_iter(prepared: Any) -> None:
    backend, _ = prepared
    ev = backend.evaluate(params_for(backend.capabilities, max_iter=1, tol=1e-12))
    assert ev.fit.n_iter <= 1 and ev.fit.converged is False
    assert np.isfinite(ev.log_loss)


def test_native_params_reflect_the_shared_ones(prepared: Any) -> None:
    backend, _ = prepared
    caps = backend.capabilities
    strong, weak = backend.native_params(params_for(caps, C=0.01)), backend.native_params(params_for(caps, C=10.0))
    assert isinstance(strong, dict) and strong and all(isinstance(k, str) and k for k in strong)
    assert all(v is None or isinstance(v, str | int | float | bool) for v in strong.values())  # loggable params
    assert strong != weak, "C is translated into the backend's own parameters"
    balanced = backend.native_params(params_for(caps, C=0.01, class_weight="balanced"))
    assert balanced != strong, "class_weight is translated too"


# -- refit --------------------------------------------------------------------------------------------
def test_refit_scores_the_test_part(refitted: Refit, expected: Any) -> None:
    table, split = expected
    _labels_match(refitted.test, table.y[split.test])
    y, s = _scores(refitted.test)
    assert refitted.test.log_loss == pytest.approx(sk_log_loss(y, s, labels=[0, 1]), abs=1e-12)
    assert area_metrics(refitted.test.curve)["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert roc_auc_score(y, s) > 0.75
    assert refitted.test.fit.converged and refitted.reference is None  # a file table has no true model


def test_refit_coefficient_table(refitted: Refit, expected: Any) -> None:
    table, split = expected
    coef = refitted.coefficients
    assert list(coef.columns) == ["feature", "level", "scale", "coefficient", "odds_ratio"]
    assert coef.iloc[0]["feature"] == "(intercept)" and (coef["feature"] == "(intercept)").sum() == 1
    np.testing.assert_allclose(coef["odds_ratio"], np.exp(coef["coefficient"]), rtol=1e-12)
    assert np.all(np.isfinite(coef["coefficient"]))
    body = coef.iloc[1:]
    for c in table.numeric:
        assert body.loc[body["feature"] == c, "scale"].tolist() == ["per 1 SD"], c
    levels = set(table.X["color"].iloc[split.trainval].dropna())  # fitted on train+validation
    onehot = body[body["feature"] == "color"]
    assert set(onehot["level"]) == levels and set(onehot["scale"]) == {"one-hot"} and len(onehot) == len(levels)
    assert len(body) == len(table.numeric) + len(levels)
    # the table's signal: x1 raises the odds, x2 lowers them, red beats blue
    by = {(f, lev): v for f, lev, v in zip(body["feature"], body["level"], body["coefficient"], strict=True)}
    assert by["x1", ""] > 0.5 and by["x2", ""] < -0.5 and by["color", "red"] > by["color", "blue"]


def test_refit_model_predicts_raw_rows_at_the_threshold(prepared: Any, refitted: Refit, expected: Any) -> None:
    backend, summary = prepared
    table, split = expected
    caps = backend.capabilities
    raw = table.X.iloc[split.test]
    predicted, p = predict_raw(caps, refitted.model, raw)
    assert set(np.unique(predicted)) == {0, 1}
    np.testing.assert_array_equal(predicted, (p >= THRESHOLD).astype(predicted.dtype))
    # the test evaluation is this model's scores of exactly these rows
    np.testing.assert_allclose(np.sort(p), np.sort(_scores(refitted.test)[1]), rtol=0, atol=1e-9)
    # the logged example: raw training rows and the model's own 0/1 predictions for them
    pd.testing.assert_frame_equal(refitted.input_example, summary.input_example, check_dtype=False)
    example = np.asarray(refitted.example_predictions)
    assert set(np.unique(example)) <= set(refitted.labels)  # in the data's labels, (negative, positive)
    example = (example == refitted.labels[1]).astype(int)
    assert example.shape == (5,) and set(np.unique(example)) <= {0, 1}
    np.testing.assert_array_equal(example, predict_raw(caps, refitted.model, refitted.input_example)[0])


def test_refit_threshold_is_inclusive(prepared: Any, refitted: Refit, expected: Any) -> None:
    """Positive iff p >= threshold, equality included: the sweep's thresholds are scores themselves (the curve's
    points), so the row a threshold was taken from must be predicted positive."""
    backend, _ = prepared
    table, split = expected
    caps = backend.capabilities
    scores = np.sort(_scores(refitted.test)[1])
    threshold = float(scores[len(scores) // 2])  # a score the model gives a test row
    refit = backend.refit(params_for(caps), threshold)
    predicted, p = predict_raw(caps, refit.model, table.X.iloc[split.test])
    assert np.any(p == threshold), "the same fit again gives the same scores"
    np.testing.assert_array_equal(predicted, (p >= threshold).astype(predicted.dtype))
    assert predicted.sum() == len(scores) - len(scores) // 2  # the upper half, the middle row included


def _set_threshold(caps: Capabilities, model: Any, t: float) -> None:
    """A refitted model's threshold set to ``t`` the way its backend's refit sets it."""
    if caps.flavour == "sklearn":  # Labelled(FixedThresholdClassifier(pipeline)), or Labelled(the fake's model)
        inner = model.model
        inner.set_params(threshold=t) if hasattr(inner, "set_params") else setattr(inner, "threshold", t)
    else:
        from lrsweep.backends.spark import set_inclusive_threshold

        set_inclusive_threshold(model.stages[-2], t)  # the LogisticRegressionModel before the label stage


def test_refit_threshold_is_inclusive_at_every_test_score(prepared: Any, refitted: Refit, expected: Any) -> None:
    """Every test score used as the threshold: the model predicts p >= t for each row (Spark compared the raw
    margin with log(t / (1 - t)) when it made a rawPrediction column, and missed 15 of 80)."""
    backend, _ = prepared
    table, split = expected
    caps = backend.capabilities
    wrong = []
    try:
        for t in np.unique(_scores(refitted.test)[1]):
            _set_threshold(caps, refitted.model, float(t))
            predicted, p = predict_raw(caps, refitted.model, table.X.iloc[split.test])
            wrong += [(float(t), float(q)) for q, hit in zip(p, predicted, strict=True) if hit != (q >= t)]
    finally:
        _set_threshold(caps, refitted.model, THRESHOLD)  # the shared fixture's threshold, for the tests after
    assert wrong == [], f"{len(wrong)} rows predicted against p >= t, e.g. {wrong[:3]}"


@pytest.mark.slow
def test_logged_model_loads_back_and_predicts_the_same(
    prepared: Any, refitted: Refit, expected: Any, sqlite_tracking: str
) -> None:
    import mlflow

    backend, _ = prepared
    table, split = expected
    caps = backend.capabilities
    with mlflow.start_run() as run:
        pass
    model_uri = log_model(sqlite_tracking, run.info.run_id, refitted, caps, THRESHOLD)
    loaded = mlflow.pyfunc.load_model(model_uri)
    assert loaded.metadata.metadata["threshold"] == THRESHOLD
    assert loaded.metadata.flavors.keys() >= {"python_function", caps.flavour}
    reqs = Path(mlflow.pyfunc.get_model_dependencies(model_uri)).read_text().split()
    assert set(pinned(caps.requirements)) <= set(reqs)
    rows = table.X.iloc[split.test[:20]]  # more raw rows, gaps included, through the logged signature
    got = np.asarray(loaded.predict(pd.concat([refitted.input_example, rows])), dtype=float)
    np.testing.assert_array_equal(got[:5], np.asarray(refitted.example_predictions, dtype=float))
    np.testing.assert_array_equal(got[5:], predict_raw(caps, refitted.model, rows)[0].astype(float))


# -- a sweep ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_short_sweep_reports_what_the_backend_scores(
    kind: str,
    prepared: Any,
    evaluated: Evaluation,
    refitted: Refit,
    dataset: DatasetConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fresh backend under ``run_sweep``: three trials of a one-point space (``params_for``'s configuration; the
    search itself is test_sweep.py's), so the sweep's validation metrics, F1 threshold and test metrics can be
    recomputed exactly from this backend's own ``evaluate`` and ``refit`` of that configuration."""
    from mlflow import MlflowClient

    from lrsweep.sweep import run_sweep

    backend, _ = prepared
    caps = backend.capabilities
    p = params_for(caps)
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    search = SearchConfig(
        n_trials=3, penalties=["l2"], C=FloatRange(p.C, p.C, True), class_weight=["none"], max_iter=p.max_iter,
        tol=p.tol, solvers=None if p.solver is None else [p.solver],
    )  # fmt: skip
    cfg = Config(
        backend=settings_of(kind),
        cluster=LOCAL2,
        dataset=dataset,
        search=search,
        tracking=TrackingConfig(uri=uri, mode="inline", log_model=False, artifacts=False),  # the model: the test above
        study=StudyConfig(dir=str(tmp_path / "studies")),
        seed=SEED,
        progress=False,
    )
    result = run_sweep(cfg, backend=make(kind))
    assert result.n_finished == 3 and result.states == {"COMPLETE": 3} and result.backend == backend.name
    best = result.best_params
    assert (best["C"], best["penalty"], best["class_weight"], best.get("solver")) == (p.C, "l2", "none", p.solver)
    # validation: the metrics and the F1 threshold of this configuration's evaluation
    choice = choose_threshold(evaluated.curve, cfg.threshold)
    assert result.threshold == pytest.approx(choice.value, abs=1e-9)
    val = metrics_at(evaluated.curve, choice.index) | area_metrics(evaluated.curve)
    for key in ("roc_auc", "pr_auc", "f1", "precision", "recall"):
        assert result.val_metrics[key] == pytest.approx(val[key], abs=1e-9), key
    assert result.val_metrics["log_loss"] == pytest.approx(evaluated.log_loss, abs=1e-9)
    # test: the refit of that configuration, read at the validation threshold
    curve = refitted.test.curve
    test = metrics_at(curve, curve.index_at(result.threshold)) | area_metrics(curve)
    for key in ("roc_auc", "pr_auc", "f1", "accuracy", "tp", "fp"):
        assert result.test_metrics[key] == pytest.approx(test[key], abs=1e-9), key
    assert result.test_metrics["log_loss"] == pytest.approx(refitted.test.log_loss, abs=1e-9)
    # MLflow: one parent run, three children, each with the backend's own parameter names beside the shared ones
    client = MlflowClient(tracking_uri=uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == cfg.experiment_name]
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("lrsweep.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("lrsweep.kind") == "trial"]
    assert len(parents) == 1 and len(children) == 3
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.tags["lrsweep.backend"] == backend.name
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)
    native = {f"{backend.name}.{k}" for k in backend.native_params(p) if k not in p.as_dict()}
    assert native and all(native <= set(r.data.params) for r in children)
    assert parent.data.metrics["test_roc_auc"] == pytest.approx(result.test_metrics["roc_auc"], abs=1e-12)


# -- across backends ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sklearn_and_fake(dataset: DatasetConfig) -> Any:
    pair = (SklearnBackend(seed=SEED), FakeBackend(seed=SEED))
    for b in pair:
        b.prepare(open_data(dataset, SplitConfig(), CVConfig(), SEED))
    yield pair
    for b in pair:
        b.close()


@pytest.mark.parametrize(("C", "class_weight"), [(0.5, "none"), (0.05, "balanced")])
def test_fake_fits_sklearns_model(sklearn_and_fake: Any, C: float, class_weight: str) -> None:
    """The same preprocessing (fitted on the fitting part) and the same penalised minimum as scikit-learn."""
    sk, fake = sklearn_and_fake
    sk_p = ModelParams(C, 0.0, "l2", "lbfgs", class_weight, 100_000, 1e-10)
    fake_p = ModelParams(C, 0.0, "l2", None, class_weight, 100, 1e-10)
    a, b = sk.evaluate(sk_p), fake.evaluate(fake_p)  # fitted on train, scored on validation
    np.testing.assert_allclose(_scores(b)[1], _scores(a)[1], rtol=0, atol=1e-6)
    assert b.log_loss == pytest.approx(a.log_loss, abs=1e-7) and b.fit.n_iter < 20  # Newton: a few steps
    ra, rb = sk.refit(sk_p, THRESHOLD), fake.refit(fake_p, THRESHOLD)  # fitted on train+validation
    names = ["feature", "level", "scale"]
    pd.testing.assert_frame_equal(rb.coefficients[names], ra.coefficients[names])
    np.testing.assert_allclose(rb.coefficients["coefficient"], ra.coefficients["coefficient"], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(rb.example_predictions, ra.example_predictions)
