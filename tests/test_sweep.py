"""run_sweep called as a library: failing trials, CV with pruning, samplers, n_jobs, data on a 200-row table."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lrsweep.backends.sklearn import SklearnBackend
from lrsweep.config import Config
from lrsweep.errors import LrsweepError
from lrsweep.sweep import run_sweep
from lrsweep.thresholds import strategy_config
from lrsweep.tracking import pinned
from tests.e2e_helpers import study_trials


@pytest.fixture
def table_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n)})
    logit = 1.5 * df["a"] - df["b"] + (df["c"] == "x")
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    path = tmp_path / "small.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture
def cfg(table_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.chdir(tmp_path)
    c = Config()
    c.dataset.name, c.dataset.path, c.dataset.target, c.dataset.positive = None, str(table_csv), "y", None
    c.search.n_trials = 8
    c.search.solvers = ["lbfgs", "liblinear", "saga"]
    c.progress = False
    c.tracking.enabled = False
    return c


class FlakyBackend(SklearnBackend):
    """Raises a numerical error for every liblinear fit: such trials must be FAIL and the sweep go on."""

    def evaluate(self, params, fold=None):  # type: ignore[override]
        if params.solver == "liblinear":
            raise FloatingPointError("overflow in exp")
        return super().evaluate(params, fold)


def test_failing_trials_are_recorded_and_the_sweep_goes_on(cfg: Config, tmp_path: Path):
    cfg.search.n_trials = 12
    cfg.tracking.enabled, cfg.tracking.mode = True, "inline"
    cfg.tracking.artifacts = cfg.tracking.log_model = False
    result = run_sweep(cfg, backend=FlakyBackend(cfg.backend, seed=cfg.seed))
    assert result.states.get("FAIL", 0) >= 1 and result.states.get("COMPLETE", 0) >= 1
    assert result.n_finished == 12
    (trials,) = study_trials(tmp_path).values()
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert all(t.params.get("solver_l2", t.params.get("solver_l1")) == "liblinear" for t in failed)

    from tests.e2e_helpers import mlflow_runs

    _, children = mlflow_runs(tmp_path, experiment="lrsweep-small")
    bad = [c for c in children if c.data.tags["lrsweep.state"] == "FAIL"]
    assert len(bad) == len(failed)
    assert all(c.info.status == "FAILED" and "overflow in exp" in c.data.tags["lrsweep.failure"] for c in bad)


def test_every_trial_failing_is_one_clear_error(cfg: Config):
    cfg.search.solvers = ["liblinear"]
    cfg.search.penalties = ["l2", "l1"]
    with pytest.raises(LrsweepError, match="no trial completed.*overflow in exp"):
        run_sweep(cfg, backend=FlakyBackend(cfg.backend, seed=cfg.seed))


def test_cv_reports_each_fold_and_prunes(cfg: Config, tmp_path: Path):
    cfg.cv.folds = 4
    cfg.search.n_trials = 20
    cfg.search.n_startup_trials = 3
    result = run_sweep(cfg)
    (trials,) = study_trials(tmp_path).values()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert complete and all(len(t.intermediate_values) == 4 for t in complete)
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert all(len(t.intermediate_values) < 4 for t in pruned)
    assert result.states.get("PRUNED", 0) == len(pruned)
    # the objective of a complete trial is the pooled out-of-fold ROC AUC, between the folds' extremes
    t = complete[0]
    folds = list(t.intermediate_values.values())
    assert min(folds) - 0.05 <= t.value <= max(folds) + 0.05


def test_grid_sampler_covers_the_grid_once(cfg: Config, tmp_path: Path):
    cfg.search.sampler = "grid"
    cfg.search.penalties = ["l2"]
    cfg.search.solvers = ["lbfgs"]
    cfg.search.class_weight = ["none", "balanced"]
    cfg.search.grid_points = 3
    cfg.search.n_trials = 6
    run_sweep(cfg)
    (trials,) = study_trials(tmp_path).values()
    seen = {(round(t.params["C"], 12), t.params["class_weight"]) for t in trials}
    assert len(trials) == 6 and len(seen) == 6
    assert sorted({c for c, _ in seen}) == pytest.approx([1e-4, 1e-1, 1e2])


def test_parallel_trials_reach_the_target_exactly(cfg: Config, tmp_path: Path):
    cfg.search.n_jobs = 2
    cfg.search.n_trials = 10
    result = run_sweep(cfg)
    (trials,) = study_trials(tmp_path).values()
    assert len(trials) == 10 == result.n_finished
    assert len({t.number for t in trials}) == 10


def test_same_seed_same_trials(cfg: Config, tmp_path: Path):
    first = run_sweep(cfg)
    cfg.study.resume = False
    second = run_sweep(cfg)
    studies = study_trials(tmp_path)
    a, b = (studies[first.study_name], studies[second.study_name])
    assert [t.params for t in a] == [t.params for t in b]
    assert [t.value for t in a] == pytest.approx([t.value for t in b])


def test_searched_threshold_is_a_parameter(cfg: Config, tmp_path: Path):
    cfg.threshold = strategy_config("searched")
    result = run_sweep(cfg)
    (trials,) = study_trials(tmp_path).values()
    assert all(0.05 <= t.params["threshold"] <= 0.95 for t in trials)
    best = max(trials, key=lambda t: t.value)
    assert result.threshold == pytest.approx(best.params["threshold"])


def test_second_process_on_the_same_study_is_refused(cfg: Config, tmp_path: Path):
    import fcntl

    from lrsweep.config import study_name

    folder = tmp_path / "lrsweep_studies"
    folder.mkdir()
    with open(folder / f"{study_name(cfg)}.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(LrsweepError, match="being run by another lrsweep process"):
            run_sweep(cfg)
    assert os.path.exists(folder)


def test_model_requirements_are_the_backends_own_pinned(cfg: Config):
    from importlib.metadata import version

    reqs = pinned(SklearnBackend.capabilities.requirements)
    assert f"scikit-learn=={version('scikit-learn')}" in reqs and f"cloudpickle=={version('cloudpickle')}" in reqs
    assert not any(r.startswith("pyspark") for r in reqs)  # a scikit-learn model does not need Spark to serve


def test_a_ctr_sweep_is_hashed_and_reports_the_bayes_optimal_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from sklearn.metrics import log_loss, roc_auc_score

    from lrsweep.data import split_table
    from lrsweep.datasets.ctr import FEATURE_COLUMNS, ensure_ctr_table, true_probabilities
    from lrsweep.report import format_summary

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LRSWEEP_CACHE", str(tmp_path / "cache"))
    c = Config()
    cols = list(FEATURE_COLUMNS)
    c.dataset.name, c.dataset.rows, c.dataset.target, c.dataset.positive = "ctr", 3000, "click", "1"
    c.dataset.source, c.dataset.generator = "generated", "ctr"
    c.dataset.drop, c.dataset.categorical, c.dataset.hashed = ["hour"], cols, cols
    c.search.penalties, c.search.class_weight, c.search.n_trials, c.search.max_iter = ["l2"], ["none"], 4, 300
    c.progress, c.tracking.enabled = False, False
    result = run_sweep(c)

    # the true model on the same test rows, computed here from the raw Parquet file
    raw = pd.read_parquet(ensure_ctr_table(3000))
    y = raw["click"].to_numpy().astype(int)
    test = split_table(y, c.split, c.cv, c.seed).test
    p_true = true_probabilities(raw.iloc[test])
    assert result.bayes_metrics is not None
    assert result.bayes_metrics["log_loss"] == pytest.approx(log_loss(y[test], p_true), abs=1e-12)
    assert result.bayes_metrics["roc_auc"] == pytest.approx(roc_auc_score(y[test], p_true), abs=1e-12)
    assert "Bayes-opt." in format_summary(result)
    assert result.data["generated"]["params"]["rows"] == 3000
    trials = [t for ts in study_trials(tmp_path).values() for t in ts]
    solvers = {t.user_attrs["lrsweep_record"]["params"].get("solver") for t in trials}
    assert solvers and "newton-cholesky" not in solvers  # it cannot fit 2**20 hashed columns


def test_hashed_coefficients_are_listed_by_bucket(cfg: Config):
    from lrsweep.backends.base import HASHED_COEFFICIENT_ROWS
    from lrsweep.data import open_data
    from lrsweep.space import ModelParams

    cfg.dataset.hashed, cfg.dataset.hash_features = ["c"], 64
    backend = SklearnBackend(seed=cfg.seed)
    backend.prepare(open_data(cfg.dataset, cfg.split, cfg.cv, cfg.seed))
    refit = backend.refit(ModelParams(1.0, 0.0, "l2", "lbfgs", "none", 500, 1e-6), 0.5)
    coef = refit.coefficients
    hashed = coef[coef["feature"] == "(hashed)"]
    lr = refit.model.estimator_.named_steps["model"]
    assert list(coef["feature"][:3]) == ["(intercept)", "a", "b"] and 1 <= len(hashed) <= 3  # x, y, z: 3 tokens
    buckets = hashed["level"].str.removeprefix("bucket ").astype(int).to_numpy()
    np.testing.assert_allclose(hashed["coefficient"], lr.coef_[0][2 + buckets])
    assert len(hashed) <= HASHED_COEFFICIENT_ROWS and (np.diff(np.abs(hashed["coefficient"])) <= 0).all()
