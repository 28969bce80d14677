"""No leakage, test once: preprocessing fitted on the training part only, the best configuration refitted on
train+validation, the test rows scored exactly once, and the reported test figures equal scikit-learn's.

Every expected value is computed here, independently: the split with ``lrsweep.data.split_table`` and the seed,
then scikit-learn pipelines and ``sklearn.metrics`` on exactly the rows each step may see (tests/reference.py).
Rows are recognised by their value of column "a" (distinct on every row), whatever index pandas gives them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.compose import ColumnTransformer
from sklearn.metrics import f1_score, recall_score

from lrsweep.backends.sklearn import SklearnBackend
from lrsweep.config import Config, CVConfig
from lrsweep.data import open_data, split_table
from lrsweep.records import SweepResult
from lrsweep.space import ModelParams
from lrsweep.sweep import run_sweep
from tests import reference as ref
from tests.e2e_helpers import mlflow_runs

SEED = 42


def make_cfg(csv: Path, work: Path, folds: int = 1) -> Config:
    c = Config()
    c.dataset.name, c.dataset.path, c.dataset.target, c.dataset.positive = None, str(csv), "y", None
    c.cv = CVConfig(folds=folds, prune=False)
    c.seed = SEED
    c.progress = False
    c.study.dir = str(work / "studies")
    c.tracking.uri = f"sqlite:///{work / 'mlflow.db'}"
    c.tracking.mode = "inline"
    return c


class RowSpy:
    """Records the rows every ColumnTransformer is fitted on and every one it transforms (scores), process-wide."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.position = {float(v): i for i, v in enumerate(df["a"])}
        self.fits: list[tuple[np.ndarray, ColumnTransformer]] = []
        self.scored: list[np.ndarray] = []

    def rows(self, X: Any) -> np.ndarray:
        keys = np.asarray(X["a"], dtype=float)
        return np.sort([self.position[k] for k in keys if k in self.position])

    @contextlib.contextmanager
    def watching(self) -> Iterator[RowSpy]:
        fit_transform, transform = ColumnTransformer.fit_transform, ColumnTransformer.transform
        spy = self

        def spied_fit_transform(self: ColumnTransformer, X: Any, y: Any = None, **kw: Any) -> Any:
            out = fit_transform(self, X, y, **kw)
            spy.fits.append((spy.rows(X), self))
            return out

        def spied_transform(self: ColumnTransformer, X: Any, **kw: Any) -> Any:
            spy.scored.append(spy.rows(X))
            return transform(self, X, **kw)

        with pytest.MonkeyPatch.context() as mp:  # ColumnTransformer.fit calls fit_transform: one hook for both
            mp.setattr(ColumnTransformer, "fit_transform", spied_fit_transform)
            mp.setattr(ColumnTransformer, "transform", spied_transform)
            yield self


class CountingBackend(SklearnBackend):
    """The scikit-learn backend, counting the protocol calls that touch the test part."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refits = 0

    def refit(self, params: ModelParams, threshold: float, of_class: int | None = None) -> Any:
        self.refits += 1
        return super().refit(params, threshold, of_class)


def _find(ct: ColumnTransformer, columns: list[str]) -> Any:
    (found,) = [t for _, t, cols in ct.transformers_ if list(cols) == columns]
    return found


# -- preprocessing, at the backend level --------------------------------------------------------------
@pytest.mark.parametrize("folds", [1, 3], ids=["train-validation", "3-fold-cv"])
def test_preprocessing_is_fitted_on_the_training_rows_only(tmp_path: Path, folds: int) -> None:
    df = ref.write_table(tmp_path / "t.csv")
    cfg = make_cfg(tmp_path / "t.csv", tmp_path, folds)
    y = df["y"].to_numpy()
    split = split_table(y, cfg.split, cfg.cv, cfg.seed)
    parts = split.folds if folds > 1 else [(split.train, split.val)]
    backend = SklearnBackend(cfg.backend, seed=cfg.seed)
    spy = RowSpy(df)
    try:
        with spy.watching():
            backend.prepare(open_data(cfg.dataset, cfg.split, cfg.cv, cfg.seed))
        # one preprocessing per fitting part, fitted on exactly its rows
        assert sorted(map(tuple, (r for r, _ in spy.fits))) == sorted(tuple(np.sort(f)) for f, _ in parts)
        fitted = {tuple(r): ct for r, ct in spy.fits}
        for k, (fit_rows, held_rows) in enumerate(parts):
            ct = fitted[tuple(np.sort(fit_rows))]
            part = df.iloc[fit_rows]
            num, cat = _find(ct, ref.NUMERIC), _find(ct, ref.CATEGORICAL)
            medians = part[ref.NUMERIC].median().to_numpy()
            assert not np.allclose(medians, df[ref.NUMERIC].median().to_numpy())  # else the check below is blind
            np.testing.assert_allclose(num[0].statistics_, medians, rtol=0, atol=1e-12)
            imputed = part[ref.NUMERIC].fillna(dict(zip(ref.NUMERIC, medians, strict=True)))
            np.testing.assert_allclose(num[-1].mean_, imputed.mean().to_numpy(), rtol=1e-12)
            np.testing.assert_allclose(num[-1].scale_, imputed.std(ddof=0).to_numpy(), rtol=1e-12)
            counts = part["c"].value_counts()
            mode = sorted(counts.index[counts == counts.max()])[0]  # ties: the smallest level
            assert cat[0].statistics_[0] == mode
            assert list(cat[-1].categories_[0]) == sorted(part["c"].dropna().unique())
            # and the scores of the held-out rows are those of a pipeline fitted on the fitting rows alone
            p = ModelParams(0.7, 0.0, "l2", "lbfgs", "none", 1000, 1e-8)
            ev = backend.evaluate(p, k if folds > 1 else None)
            assert ev.scores is not None
            model = ref.fit(df, y, fit_rows, p.as_dict(), cfg.seed)
            np.testing.assert_array_equal(ev.scores[0], y[held_rows])
            np.testing.assert_allclose(ev.scores[1], ref.scores(model, df, held_rows), rtol=0, atol=1e-9)
    finally:
        backend.close()


# -- a whole sweep: refit, test once, reported figures ------------------------------------------------
@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One sweep of 6 trials over the default space on a 300-row table, tracked (artifacts and the model), with
    every preprocessing fit and every scoring of raw rows recorded."""
    work = tmp_path_factory.mktemp("leakage")
    df = ref.write_table(work / "t.csv")
    cfg = make_cfg(work / "t.csv", work)
    cfg.search.n_trials = 6
    backend = CountingBackend(cfg.backend, seed=cfg.seed)
    spy = RowSpy(df)
    with spy.watching():
        result = run_sweep(cfg, backend=backend)
    y = df["y"].to_numpy()
    split = split_table(y, cfg.split, cfg.cv, cfg.seed)
    best = ref.model_params(result.best_params)
    return {
        "work": work,
        "cfg": cfg,
        "df": df,
        "y": y,
        "split": split,
        "result": result,
        "spy": spy,
        "backend": backend,
        "best": best,
        "trainval_model": ref.fit(df, y, split.trainval, best, cfg.seed),
        "train_model": ref.fit(df, y, split.train, best, cfg.seed),
    }


def _parent(s: dict[str, Any]) -> Any:
    parents, _ = mlflow_runs(s["work"], experiment=s["cfg"].experiment_name, uri=s["cfg"].tracking.uri)
    (parent,) = parents
    assert parent.info.run_id == s["result"].parent_run_id and parent.info.status == "FINISHED"
    return parent


def test_the_sweep_fits_preprocessing_on_train_and_refits_on_train_plus_validation(sweep: dict[str, Any]) -> None:
    split, spy = sweep["split"], sweep["spy"]
    fitted = {tuple(r) for r, _ in spy.fits}
    assert fitted == {tuple(np.sort(split.train)), tuple(np.sort(split.trainval))}
    assert tuple(spy.fits[-1][0]) == tuple(np.sort(split.trainval))  # the refit, after every trial


def test_the_test_rows_are_scored_exactly_once(sweep: dict[str, Any]) -> None:
    test = set(sweep["split"].test.tolist())
    touching = [rows for rows in sweep["spy"].scored if test & set(rows.tolist())]
    assert len(touching) == 1, f"the test rows were scored {len(touching)} times"
    assert set(touching[0].tolist()) == test  # all of them, at once
    assert not any(test & set(rows.tolist()) for rows, _ in sweep["spy"].fits)  # and never fitted on
    assert sweep["backend"].refits == 1


def test_the_best_configuration_is_refitted_on_train_plus_validation(sweep: dict[str, Any], tmp_path: Path) -> None:
    import mlflow

    s = sweep
    parent = _parent(s)
    client = MlflowClient(tracking_uri=s["cfg"].tracking.uri)
    logged = pd.read_csv(client.download_artifacts(parent.info.run_id, "coefficients.csv", str(tmp_path)))
    expected = ref.coefficients(s["trainval_model"])
    np.testing.assert_allclose(logged["coefficient"].to_numpy(), expected, rtol=0, atol=1e-8)
    # not the train-only fit: the two differ, so the comparison above can tell them apart
    assert np.abs(ref.coefficients(s["train_model"]) - expected).max() > 1e-4
    # the logged model scores the test rows as the independent train+validation fit does
    mlflow.set_tracking_uri(s["cfg"].tracking.uri)  # put back after the test (tests/conftest.py)
    model = mlflow.sklearn.load_model(s["result"].model_uri)
    test = s["split"].test
    np.testing.assert_allclose(
        model.predict_proba(s["df"].drop(columns="y").iloc[test])[:, 1],
        ref.scores(s["trainval_model"], s["df"], test),
        rtol=0,
        atol=1e-9,
    )


def test_test_metrics_equal_sklearn_metrics_on_the_test_rows(sweep: dict[str, Any]) -> None:
    s = sweep
    result: SweepResult = s["result"]
    test = s["split"].test
    expected = ref.metrics(s["y"][test], ref.scores(s["trainval_model"], s["df"], test), result.threshold)
    parent = _parent(s).data.metrics
    for key, value in expected.items():
        assert result.test_metrics[key] == pytest.approx(value, abs=1e-9), key
        assert parent[f"test_{key}"] == pytest.approx(value, abs=1e-9), key
    assert expected["tp"] + expected["fp"] + expected["tn"] + expected["fn"] == len(test)


def test_the_threshold_and_validation_figures_come_from_the_validation_rows(sweep: dict[str, Any]) -> None:
    s = sweep
    result: SweepResult = s["result"]
    val = s["split"].val
    y_val, p_val = s["y"][val], ref.scores(s["train_model"], s["df"], val)

    # threshold=f1: the validation score with the largest F1 (sklearn's, at every candidate); ties: higher recall
    def f1_recall(t: float) -> tuple[float, float, float]:
        pred = (p_val >= t).astype(int)
        return f1_score(y_val, pred), recall_score(y_val, pred), t

    assert result.threshold == pytest.approx(max(np.unique(p_val), key=f1_recall), abs=1e-9)
    expected = ref.metrics(y_val, p_val, result.threshold)
    for key in ("roc_auc", "pr_auc", "log_loss", "f1", "precision", "recall", "accuracy", "specificity"):
        assert result.val_metrics[key] == pytest.approx(expected[key], abs=1e-9), key
    # the best trial is the study's best by validation ROC AUC, and MLflow records the same
    values = [t.value for t in _trials(s) if t.state.name == "COMPLETE"]
    assert result.best_value == max(values) == pytest.approx(expected["roc_auc"], abs=1e-9)
    assert _parent(s).data.metrics["best_val_roc_auc"] == pytest.approx(expected["roc_auc"], abs=1e-9)


def _trials(s: dict[str, Any]) -> list[Any]:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    (journal,) = Path(s["cfg"].study.dir).glob("*.journal")
    storage = JournalStorage(JournalFileBackend(str(journal)))
    return optuna.load_study(study_name=s["result"].study_name, storage=storage).get_trials()
