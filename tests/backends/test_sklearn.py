"""The scikit-learn backend's logged model with hashed features: it loads where lrsweep is not installed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lrsweep.backends.sklearn import SklearnBackend
from lrsweep.config import Config, DatasetConfig
from lrsweep.data import open_data
from lrsweep.space import ModelParams
from lrsweep.tracking import log_model
from tests.backends.tiers import plan_tiers

LOAD_WITHOUT_LRSWEEP = """
import json, sys
sys.modules["lrsweep"] = None  # any import of lrsweep now fails
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
print(json.dumps([str(v) for v in model.predict(pd.read_json(sys.argv[2], orient="split"))]))
"""


@pytest.mark.slow
def test_hashed_model_loads_and_predicts_without_lrsweep(tmp_path: Path, sqlite_tracking: str) -> None:
    import mlflow

    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"x": rng.normal(size=n), "user": rng.choice([f"u{i}" for i in range(50)], n)})
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-(df["x"] + (df["user"] < "u2"))))).astype(int)
    df.to_csv(tmp_path / "d.csv", index=False)
    ds = DatasetConfig(name=None, path=str(tmp_path / "d.csv"), target="y", positive="1", hashed=["user"])
    cfg = Config(dataset=ds)
    backend = SklearnBackend(seed=cfg.seed)
    backend.prepare(open_data(cfg.dataset, cfg.split, cfg.cv, cfg.seed))
    refit = backend.refit(ModelParams(1.0, 0.0, "l2", "lbfgs", "none", 500, 1e-6), 0.4)
    with mlflow.start_run() as run:
        pass
    model_uri = log_model(sqlite_tracking, run.info.run_id, refit, backend.capabilities, 0.4)
    example = df.drop(columns="y").iloc[:20].assign(user=lambda d: d["user"].astype(str))
    example.to_json(tmp_path / "x.json", orient="split")
    out = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_LRSWEEP, model_uri, str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
        env={"MLFLOW_TRACKING_URI": sqlite_tracking, "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    expected = refit.model.predict(example).astype(str)  # the data's own labels ("0" / "1" here)
    np.testing.assert_array_equal(json.loads(out.stdout.strip().splitlines()[-1]), expected)


def _wide_table(path: Path, levels: int, rows: int) -> None:
    """A categorical with ``levels`` levels, each on rows / levels rows (not an id), and a numeric signal."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=rows)
    city = np.array([f"c{i}" for i in rng.permutation(rows) % levels], dtype=object)
    y = (rng.random(rows) < 1 / (1 + np.exp(-2 * x))).astype(int)
    pd.DataFrame({"x": x, "city": city, "y": y}).to_csv(path, index=False)


def test_a_one_hot_wider_than_the_limit_is_kept_sparse_and_leaves_out_dense_hessian_solvers(tmp_path: Path) -> None:
    """10^5 levels one-hot encoded dense was a 75 GiB array (a MemoryError traceback, issue 12's hostile tables):
    above WIDE_ONE_HOT columns the features stay sparse, and newton-cholesky (a dense n_features^2 Hessian) is left
    out of the search as on hashed features; at or below it, nothing changes."""
    import scipy.sparse as sp

    from lrsweep.space import WIDE_ONE_HOT
    from lrsweep.sweep import Sweep

    for levels, sparse in ((WIDE_ONE_HOT + 1, True), (WIDE_ONE_HOT // 10, False)):
        _wide_table(tmp_path / "d.csv", levels, rows=4 * (WIDE_ONE_HOT + 1))
        cfg = Config(dataset=DatasetConfig(name="wide", path=str(tmp_path / "d.csv"), target="y", positive="1"))
        cfg.tracking.enabled, cfg.progress, cfg.study.dir = False, False, str(tmp_path / "studies")
        sweep = Sweep(cfg)
        assert "newton-cholesky" in sweep.pool["l2"]  # before the data is read
        summary = sweep.prepare()
        assert summary.sparse is sparse
        assert all(sp.issparse(X) is sparse for X, _, Xv, _ in sweep.backend._parts for X in (X, Xv))
        assert ("newton-cholesky" in sweep.pool["l2"]) is not sparse
        ev = sweep.backend.evaluate(ModelParams(1.0, 0.0, "l2", "lbfgs", "none", 200, 1e-6))
        assert ev.log_loss < 0.6  # the numeric signal is learnt (0.69: none)
        sweep.backend.close()


def test_asking_for_a_dense_hessian_solver_on_a_wide_one_hot_is_one_line(tmp_path: Path) -> None:
    from lrsweep.errors import LrsweepError
    from lrsweep.space import WIDE_ONE_HOT
    from lrsweep.sweep import Sweep

    _wide_table(tmp_path / "d.csv", WIDE_ONE_HOT + 1, rows=2 * (WIDE_ONE_HOT + 1))
    cfg = Config(dataset=DatasetConfig(name="wide", path=str(tmp_path / "d.csv"), target="y", positive="1"))
    cfg.tracking.enabled, cfg.progress, cfg.study.dir = False, False, str(tmp_path / "studies")
    cfg.search.solvers, cfg.search.penalties = ["newton-cholesky", "lbfgs"], ["l2"]
    with pytest.raises(LrsweepError, match="newton-cholesky cannot fit sparse features .* one-hot wider than 1,000"):
        Sweep(cfg).prepare()


# -- a multi-class target (issue 14) ------------------------------------------------------------------------
def _tier_backend(tmp_path: Path) -> SklearnBackend:
    plan_tiers(tmp_path / "tiers.csv")
    cfg = DatasetConfig(name="tiers", path=str(tmp_path / "tiers.csv"), target="tier", positive=None)
    backend = SklearnBackend(seed=7)
    c = Config()
    backend.prepare(open_data(cfg, c.split, c.cv, 7))
    return backend


def _mc(mode: str, solver: str = "lbfgs", C: float = 10.0) -> ModelParams:
    return ModelParams(C, 0.0, "l2", solver, "none", 500, 1e-8, None, mode)


def test_multinomial_and_one_vs_rest_fits_are_sklearns_own(tmp_path: Path) -> None:
    """multinomial: LogisticRegression's own softmax loss; ovr: one binary LogisticRegression per class on "this class
    or not", their probabilities normalised (OneVsRestClassifier), as the course's one-vs-all."""
    from sklearn.linear_model import LogisticRegression

    backend = _tier_backend(tmp_path)
    assert backend.classes == ["basic", "plus", "pro"]
    Xa, ya, Xb, yb = backend._parts[0]
    soft = backend.evaluate(_mc("multinomial"))
    assert soft.curve is None and soft.scores is not None
    y, p = soft.scores
    assert p.shape == (len(yb), 3) and np.array_equal(y, yb)
    want = LogisticRegression(C=10.0, tol=1e-8, max_iter=500, random_state=7).fit(Xa, ya).predict_proba(Xb)
    assert np.allclose(p, want, atol=1e-6)
    ovr = backend.evaluate(_mc("ovr"))
    _, q = ovr.scores
    each = np.column_stack(
        [
            LogisticRegression(C=10.0, tol=1e-8, max_iter=500, random_state=7).fit(Xa, ya == k).predict_proba(Xb)[:, 1]
            for k in range(3)
        ]
    )
    assert np.allclose(q, each / each.sum(axis=1, keepdims=True), atol=1e-6)
    assert not np.allclose(p, q, atol=1e-3)  # two different models
    # both learn the softmax signal (log(3) = 1.10 is knowing nothing)
    assert soft.log_loss < 0.85 and ovr.log_loss < 0.9
    # liblinear fits one-vs-rest (binary models), which is what search.multiclass=ovr gives it
    assert backend.evaluate(_mc("ovr", "liblinear")).log_loss < 0.9


def test_a_multi_class_refit_predicts_labels_and_logs_a_column_per_class(tmp_path: Path) -> None:
    backend = _tier_backend(tmp_path)
    for mode in ("multinomial", "ovr"):
        refit = backend.refit(_mc(mode), float("nan"))
        assert refit.labels == ("basic", "plus", "pro")
        assert set(refit.example_predictions) <= {"basic", "plus", "pro"}
        proba = refit.model.predict_proba(refit.input_example)
        assert proba.shape == (len(refit.input_example), 3) and np.allclose(proba.sum(axis=1), 1)
        assert list(refit.model.predict(refit.input_example)) == [
            ["basic", "plus", "pro"][k] for k in proba.argmax(axis=1)
        ]
        cols = [c for c in refit.coefficients.columns if c.startswith("coefficient.")]
        assert cols == ["coefficient.basic", "coefficient.plus", "coefficient.pro"]
        x1 = refit.coefficients.set_index("feature").loc["x1"]
        assert x1["coefficient.plus"] > x1["coefficient.basic"] and x1["coefficient.pro"] < x1["coefficient.plus"]
        assert refit.test.scores is not None and refit.test.scores[1].shape[1] == 3
    # a threshold on one class: predicted whenever its probability reaches it
    refit = backend.refit(_mc("multinomial"), 0.1, of_class=2)
    proba = refit.model.predict_proba(refit.input_example)
    assert all((label == "pro") == (row[2] >= 0.1) for label, row in zip(refit.example_predictions, proba, strict=True))
