"""The CLI end to end, as a user runs it: real Hydra, Optuna journal, MLflow sqlite store, in a temp dir."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.e2e_helpers import CLI, mlflow_runs, run_cli, study_trials

pytestmark = pytest.mark.slow

EXPECTED_CHILD_METRICS = {
    "val_roc_auc", "val_pr_auc", "val_log_loss", "val_accuracy", "val_precision", "val_recall", "val_f1",
    "val_specificity", "val_tp", "val_fp", "val_tn", "val_fn", "threshold", "fit_seconds", "n_iter", "converged",
}  # fmt: skip


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One default sweep (shrunk to 6 trials) on the bundled data, shared by the read-back tests."""
    cwd = tmp_path_factory.mktemp("sweep")
    proc = run_cli(["search.n_trials=6"], cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd, proc


def test_default_sweep_prints_summary_and_where_results_are(swept):
    cwd, proc = swept
    out = proc.stdout
    assert "best parameters:" in out and "threshold (f1):" in out
    assert "mlflow ui" in out
    test_auc = float(next(line for line in out.splitlines() if line.strip().startswith("roc_auc")).split()[-1])
    assert 0.75 < test_auc < 0.95  # telco churn with logistic regression: ~0.84 published
    assert (cwd / "mlflow.db").exists()


def test_one_parent_and_a_child_per_trial_with_params_and_metrics(swept):
    cwd, _ = swept
    parents, children = mlflow_runs(cwd)
    assert len(parents) == 1 and len(children) == 6
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert sorted(int(c.data.tags["lrsweep.trial_number"]) for c in children) == list(range(6))
    for c in children:
        assert c.info.status == "FINISHED"
        assert c.data.tags["lrsweep.state"] == "COMPLETE"
        assert set(c.data.metrics) >= EXPECTED_CHILD_METRICS
        assert {"C", "l1_ratio", "penalty", "class_weight", "max_iter", "tol", "threshold_strategy"} <= set(
            c.data.params
        )
        assert c.info.run_name.startswith("trial-")
        # the confusion matrix adds up to the validation part
        m = c.data.metrics
        assert m["val_tp"] + m["val_fp"] + m["val_tn"] + m["val_fn"] == pytest.approx(7043 * 0.2, abs=1)
    p = parent.data
    assert p.params["search.n_trials"] == "6" and p.params["seed"] == "42"
    assert p.params["data.sha256"] == "863e369c3a03cea2bd20d696e572eb5fb064e04657744504deb7b6249b92f66e"
    assert p.tags["lrsweep.data_sha256"] == p.params["data.sha256"]
    assert "scikit-learn.version" in p.tags and "python.version" in p.tags
    for k in ("test_roc_auc", "test_f1", "test_log_loss", "test_specificity", "threshold", "best_val_roc_auc"):
        assert k in p.metrics and not math.isnan(p.metrics[k])
    # the best trial's validation objective is the best among the children
    best = max(c.data.metrics["val_roc_auc"] for c in children)
    assert p.metrics["best_val_roc_auc"] == pytest.approx(best)


def test_artifacts_and_model_load_and_predict_with_the_threshold(swept):
    import mlflow
    from mlflow import MlflowClient

    cwd, _ = swept
    parents, _ = mlflow_runs(cwd)
    run_id = parents[0].info.run_id
    client = MlflowClient(tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")
    names = {a.path for a in client.list_artifacts(run_id)}
    for expected in (
        "config.yaml",
        "data.json",
        "roc_curve.png",
        "pr_curve.png",
        "confusion_matrix.png",
        "metric_vs_threshold.png",
        "optimization_history.png",
        "coefficients.csv",
    ):
        assert expected in names, f"{expected} missing from {sorted(names)}"
    coef = pd.read_csv(client.download_artifacts(run_id, "coefficients.csv", str(cwd)))
    assert {"feature", "level", "coefficient", "odds_ratio"} <= set(coef.columns)
    assert "contract" in set(coef["feature"]) and "(intercept)" in set(coef["feature"])
    assert np.allclose(coef["odds_ratio"], np.exp(coef["coefficient"]))

    mlflow.set_tracking_uri(f"sqlite:///{cwd / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    data = pd.read_csv(Path(__file__).parents[1] / "src/lrsweep/datasets/telco_churn.csv.gz").head(200)
    pred = np.asarray(model.predict(data.drop(columns=["churn"])))
    assert set(np.unique(pred)) <= {0, 1} and pred.shape == (200,)
    # predict() applies the validation threshold, not 0.5
    sk = mlflow.sklearn.load_model(f"runs:/{run_id}/model")
    threshold = parents[0].data.metrics["threshold"]
    proba = sk.predict_proba(data.drop(columns=["churn"]))[:, 1]
    assert np.array_equal(pred, (proba >= threshold).astype(int))


def test_second_invocation_tops_up_without_duplicates(swept, tmp_path):
    cwd, _ = swept
    (before,) = study_trials(cwd).values()
    proc = run_cli(["search.n_trials=9"], cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parents, children = mlflow_runs(cwd)
    assert len(parents) == 2
    numbers = sorted(int(c.data.tags["lrsweep.trial_number"]) for c in children)
    assert numbers == list(range(9))  # 6 old + 3 new, none twice
    (trials,) = study_trials(cwd).values()
    assert len(trials) == 9 and all(t.state.name == "COMPLETE" for t in trials)
    assert [t.params for t in trials[:6]] == [t.params for t in before]  # the first six kept as they were


def test_fresh_study_when_resume_is_off(tmp_path):
    assert run_cli(["search.n_trials=2", "tracking=off"], tmp_path).returncode == 0
    assert run_cli(["search.n_trials=2", "tracking=off", "study.resume=false"], tmp_path).returncode == 0
    studies = study_trials(tmp_path)
    assert len(studies) == 2 and all(len(t) == 2 for t in studies.values())


def _complete(cwd: Path) -> list:
    try:
        return [t for ts in study_trials(cwd).values() for t in ts if t.state.name == "COMPLETE"]
    except Exception:  # the journal is being created
        return []


def test_killed_sweep_resumes_without_losing_or_repeating_trials(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    fast = ["search.solvers=[lbfgs,liblinear,newton-cholesky]", "search.penalties=[l2,l1]"]
    proc = subprocess.Popen([*CLI, "search.n_trials=500", *fast], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 240
    while len(_complete(tmp_path)) < 8 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    before = {t.number: t.params for t in _complete(tmp_path)}
    assert len(before) >= 8, "the sweep did not get far enough before the kill"
    target = len(before) + 3
    res = run_cli([f"search.n_trials={target}", *fast], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (trials,) = study_trials(tmp_path).values()
    after = {t.number: t for t in trials}
    for number, params in before.items():  # nothing completed is lost or changed
        assert after[number].state.name == "COMPLETE" and after[number].params == params
    counted = [t for t in trials if t.state.name != "FAIL" or not t.user_attrs.get("lrsweep_interrupted")]
    assert len(counted) == target
    interrupted = [t for t in trials if t.user_attrs.get("lrsweep_interrupted")]
    assert all(t.state.name == "FAIL" for t in interrupted)

    parents, children = mlflow_runs(tmp_path)
    assert {p.info.status for p in parents} == {"KILLED", "FINISHED"}
    assert all(c.info.status != "RUNNING" for c in children)
    logged = [int(c.data.tags["lrsweep.trial_number"]) for c in children]
    assert sorted(logged) == sorted(t.number for t in counted)  # each finished trial once; no killed trial
    assert not set(logged) & {t.number for t in interrupted}


def test_print_composed_config():
    proc = subprocess.run([*CLI, "--cfg", "job", "search=elasticnet", "seed=7"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "name: elasticnet" in proc.stdout and "seed: 7" in proc.stdout and "strategy: f1" in proc.stdout


def test_multirun_runs_one_sweep_per_combination(tmp_path):
    proc = run_cli(["-m", "search=l2,l1", "seed=1,2", "search.n_trials=2", "tracking=off"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    studies = study_trials(tmp_path)
    assert len(studies) == 4
    assert sorted(n.split("-")[-2] for n in studies) == ["l1", "l1", "l2", "l2"]


def test_any_csv_and_parquet_with_overrides(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame(
        {
            "id": [f"row{i}" for i in range(n)],
            "age": rng.normal(40, 10, n),
            "plan": rng.choice(["basic", "plus", None], n),
            "visits": rng.poisson(3, n).astype(float),
        }
    )
    logit = 0.08 * (df["age"] - 40) + (df["plan"] == "plus") * 1.0 - 0.5
    df["Outcome"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    df.loc[::17, "visits"] = np.nan
    df.to_csv(tmp_path / "my.csv", index=False)
    df.to_parquet(tmp_path / "my.parquet")
    for name in ("my.csv", "my.parquet"):
        args = ["dataset=csv", f"dataset.path={name}", "dataset.target=Outcome", "dataset.positive=yes",
                "dataset.id_columns=[id]", "search=l2", "search.n_trials=3", "threshold=recall_at",
                "threshold.min_recall=0.8"]  # fmt: skip
        proc = run_cli(args, tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "threshold (recall_at)" in proc.stdout
    parents, children = mlflow_runs(tmp_path, experiment="lrsweep-my")
    assert len(children) == 6
    assert all(c.data.metrics["val_recall"] >= 0.8 - 1e-9 for c in children)


BAD_INPUTS = [
    (["dataset=csv", "dataset.path=missing.csv", "dataset.target=y"], "does not exist"),
    (["dataset=csv", "dataset.path=empty.csv", "dataset.target=y"], "empty"),
    (["dataset=csv", "dataset.path=ok.csv", "dataset.target=nope"], "target column 'nope'"),
    (["dataset=csv", "dataset.path=ok.csv", "dataset.target=one"], "single class"),
    (["dataset=csv", "dataset.path=ok.csv", "dataset.target=three"], "3 classes"),
    (["dataset=csv", "dataset.path=ok.csv", "dataset.target=y", "dataset.positive=maybe"], "'maybe' is not a value"),
    (["dataset.foo=1"], "unknown config key"),
    (["search=nope"], "unknown option 'nope'"),
    (["search.C.low=0"], "C must be > 0"),
    (["search=elasticnet", "search.l1_ratio.high=1.5"], "l1_ratio must lie in [0, 1]"),
    (["search=l1", "search.solvers=[lbfgs]"], "can fit the l1 penalty"),
    (["search.n_trials=0"], "n_trials=0"),
    (["dataset=csv", "dataset.path=rare.csv", "dataset.target=y"], "too few to split"),
]


@pytest.mark.parametrize(("args", "needle"), BAD_INPUTS, ids=[a[1] for a in BAD_INPUTS])
def test_bad_input_one_line_nonzero_exit_nothing_written(tmp_path, args, needle):
    rng = np.random.default_rng(1)
    ok = pd.DataFrame(
        {"x": rng.normal(size=60), "y": ["a", "b"] * 30, "one": ["k"] * 60, "three": ["p", "q", "r"] * 20}
    )
    ok.to_csv(tmp_path / "ok.csv", index=False)
    (tmp_path / "empty.csv").write_text("")
    # 2 positives in 300 rows: a three-way split leaves a part without both classes
    pd.DataFrame({"x": rng.normal(size=300), "y": [1] * 2 + [0] * 298}).to_csv(tmp_path / "rare.csv", index=False)
    proc = run_cli(["search.n_trials=2", *args], tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("lrsweep: error: ") and needle in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()  # nothing half-written that looks complete
    assert (
        not list((tmp_path / "lrsweep_studies").glob("*.journal")) if (tmp_path / "lrsweep_studies").exists() else True
    )


def test_debug_switch_shows_the_traceback(tmp_path):
    env = {**os.environ, "LRSWEEP_DEBUG": "1"}
    proc = subprocess.run([*CLI, "search.n_trials=0"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_import_needs_neither_pyspark_nor_mlflow():
    code = (
        "import sys, lrsweep, lrsweep.config, lrsweep.sweep; print('pyspark' in sys.modules, 'mlflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(tmp_path):
    fast = ["search.solvers=[lbfgs,liblinear,newton-cholesky]", "search.penalties=[l2,l1]", "progress=false"]
    proc = subprocess.Popen([*CLI, "search.n_trials=5000", *fast], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 240
    while len(_complete(tmp_path)) < 5 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == (
        "lrsweep: error: interrupted; run the same command again to resume where it stopped"
    )
    parents, children = mlflow_runs(tmp_path)
    assert [p.info.status for p in parents] == ["KILLED"]
    done = {t.number for t in _complete(tmp_path)}
    assert {int(c.data.tags["lrsweep.trial_number"]) for c in children} <= done
    res = run_cli([f"search.n_trials={len(done) + 2}", *fast], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    (trials,) = study_trials(tmp_path).values()
    assert done <= {t.number for t in trials if t.state.name == "COMPLETE"}
