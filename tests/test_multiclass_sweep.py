"""A sweep of a target with more than two classes, end to end (issue 14): the generated plan-tier table (a known
softmax model), scikit-learn, tracked in MLflow, read back as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.e2e_helpers import cli_in_process, mlflow_runs

CLASSES = ["basic", "plus", "pro", "team"]
ROWS = 20000
ARGS = ["dataset=softmax", f"dataset.rows={ROWS}", "search.multiclass=both", "search.n_trials=12", "progress=false"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("multiclass")
    done = cli_in_process(ARGS, folder, env_extra={"LRSWEEP_CACHE": str(folder / "cache")})
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, done


def test_the_summary_covers_every_class(swept):
    _, done = swept
    said = [line for line in done.stderr.splitlines() if "fitted as a multi-class problem" in line]
    assert len(said) == 1 and all(f"'{c}' " in said[0] for c in CLASSES)  # with each class's rows
    out = done.stdout
    assert "  target: 4 classes (basic, plus, pro, team), best model " in out
    assert "  (precision, recall, f1, specificity and the AUCs: macro averages over the classes)" in out
    assert "  decision: the most probable class (argmax" in out
    assert "f1_weighted" in out and "balanced_accuracy" in out
    table = out[out.index("test, class") :]
    assert all(f"\n    {c} " in table for c in CLASSES)
    confusion = out[out.index("test confusion (rows: true class, columns: predicted)") :].splitlines()[1:6]
    counts = [[int(v) for v in line.split()[1:]] for line in confusion[1:]]
    assert confusion[0].split() == CLASSES and len(counts) == 4 and all(len(r) == 4 for r in counts)
    assert sum(map(sum, counts)) == round(ROWS * 0.2)  # every test row, once


def test_trial_runs_record_the_mode_and_the_per_class_figures(swept):
    folder, _ = swept
    parents, children = mlflow_runs(folder, experiment="lrsweep-softmax")
    assert len(parents) == 1 and len(children) == 12
    modes = {c.data.params["multiclass"] for c in children}
    assert modes == {"multinomial", "ovr"}  # search.multiclass=both: the search tries each
    for c in children:
        m = c.data.metrics
        for key in ("val_roc_auc", "val_log_loss", "val_f1", "val_f1_weighted", "val_accuracy"):
            assert key in m
        for cls in CLASSES:
            assert 0.5 < m[f"val_roc_auc.{cls}"] <= 1.0
        assert m["val_roc_auc"] == pytest.approx(np.mean([m[f"val_roc_auc.{cls}"] for cls in CLASSES]))
        assert "threshold" not in m  # argmax: no threshold
    best = max(children, key=lambda c: c.data.metrics["val_roc_auc"])
    parent = parents[0]
    assert parent.data.tags["lrsweep.best_run_name"] == best.data.tags["mlflow.runName"]
    # no threshold on the parent either: the tag says argmax, the note says how the test rows were decided
    assert "threshold" not in parent.data.metrics and parent.data.tags["lrsweep.threshold"] == "argmax"
    assert "each row given its most probable class" in parent.data.tags["mlflow.note.content"]


def test_the_sweep_comes_close_to_the_true_model(swept):
    """The generated table's true softmax model scored on the same test rows: the best any model can do there."""
    folder, done = swept
    parents, _ = mlflow_runs(folder, experiment="lrsweep-softmax")
    m = parents[0].data.metrics
    assert "bayes_test_log_loss" in m and "test_log_loss" in m
    assert 0 <= m["test_log_loss_excess"] < 0.01  # 4,000 test rows of a model the family contains
    assert abs(m["test_roc_auc"] - m["bayes_test_roc_auc"]) < 0.01
    assert "Bayes-opt." in done.stdout


def test_artifacts_cover_k_classes_and_the_model_predicts_labels_and_probabilities(swept, tmp_path):
    folder, _ = swept
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    parents, _ = mlflow_runs(folder, experiment="lrsweep-softmax")
    run = parents[0]
    art = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path), tracking_uri=uri))
    for name in ("plots/roc_curve.png", "plots/pr_curve.png", "plots/confusion_matrix.png", "coefficients.csv"):
        assert (art / name).stat().st_size > 1000, name
    assert not (art / "plots/metric_vs_threshold.png").exists()  # argmax: no threshold to plot
    cm = json.loads((art / "tables/confusion_matrix.json").read_text())
    assert cm["columns"] == ["true class", *CLASSES] and [row[0] for row in cm["data"]] == CLASSES
    coef = pd.read_csv(art / "coefficients.csv")
    assert [c for c in coef.columns if c.startswith("odds_ratio.")] == [f"odds_ratio.{c}" for c in CLASSES]
    assert {"seats", "region"} <= set(coef["feature"])
    summary = json.loads((art / "summary.json").read_text())
    assert summary["classes"] == CLASSES and len(summary["test_confusion"]) == 4
    # the logged model, on raw rows: labels from pyfunc, per-class probabilities from the scikit-learn flavour
    models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert len(models) == 1
    model_uri = f"models:/{models[0].model_id}"
    table = next((folder / "cache" / "softmax").rglob("*.parquet"))
    raw = pd.read_parquet(table).drop(columns="plan").head(50)
    mlflow.set_tracking_uri(uri)
    labels = mlflow.pyfunc.load_model(model_uri).predict(raw)
    assert set(labels) <= set(CLASSES) and len(set(labels)) >= 2
    sk = mlflow.sklearn.load_model(model_uri)
    proba = sk.predict_proba(raw)
    assert proba.shape == (50, 4) and np.allclose(proba.sum(axis=1), 1)
    assert list(sk.classes_) == CLASSES
    assert list(labels) == [CLASSES[k] for k in proba.argmax(axis=1)]


def test_a_multi_class_sweep_reproduces_and_exports_a_bundle_that_verifies(swept, tmp_path):
    folder, _ = swept
    parents, _ = mlflow_runs(folder, experiment="lrsweep-softmax")
    run_id = parents[0].info.run_id
    env = {"LRSWEEP_CACHE": str(folder / "cache")}
    # the store by its absolute path: MLflow keeps one store per URI in a process, and other tests in this one
    # opened "sqlite:///mlflow.db" in other folders
    store = ["--tracking-uri", f"sqlite:///{folder / 'mlflow.db'}"]
    again = cli_in_process(["reproduce", run_id, *store], folder, env_extra=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "test_recall.team" in again.stdout and "reproduced: " in again.stdout and "differs" not in again.stdout
    # a one-vs-rest trial reproduces as one-vs-rest (its mode is read back from the run's params)
    _, children = mlflow_runs(folder, experiment="lrsweep-softmax")
    ovr = next(c for c in children if c.data.params["multiclass"] == "ovr")
    trial = cli_in_process(["reproduce", ovr.info.run_id, *store], folder, env_extra=env)
    assert trial.returncode == 0 and "ovr" in trial.stdout and "differs" not in trial.stdout, trial.stdout[-2000:]
    out = tmp_path / "bundle"
    done = cli_in_process(["export", run_id, "--out", str(out), "--no-pdf", *store], folder, env_extra=env)
    assert done.returncode == 0, done.stderr[-2000:]
    recorded = json.loads((out / "metrics.json").read_text())
    assert recorded["labels"] == CLASSES and recorded["of_class"] is None and len(recorded["test_confusion"]) == 4
    test_rows = pd.read_parquet(out / "data" / "test.parquet")
    assert set(test_rows["plan"]) == set(CLASSES) and len(test_rows) == round(ROWS * 0.2)
    verify = subprocess.run([sys.executable, "verify.py"], cwd=out, capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "confusion matrix     recorded 0" in verify.stdout and "all test metrics recomputed" in verify.stdout
    page = (out / "report.html").read_text()
    assert "best predicts plan (basic, plus, pro, team)?" in page and 'id="per-class"' in page
    assert "each row is predicted its most probable class" in page and "predicted team" in page
