"""The CLI end to end, as a user runs it: real Hydra, Optuna journal, MLflow sqlite store, in a temp dir."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lrsweep import cli
from tests.e2e_helpers import CLI, cli_in_process, mlflow_runs, parent_opened, run_cli, study_trials

pytestmark = pytest.mark.slow
# `python -m tests.blocking` run from a temporary directory: the repository root (the tests package) on the path
WITH_TESTS = {
    "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])
}

EXPECTED_CHILD_METRICS = {
    "val_roc_auc", "val_pr_auc", "val_log_loss", "val_accuracy", "val_precision", "val_recall", "val_f1",
    "val_specificity", "val_tp", "val_fp", "val_tn", "val_fn", "threshold", "fit_seconds", "n_iter", "converged",
}  # fmt: skip


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One default sweep (shrunk to 6 trials) on the bundled data, shared by the read-back tests, which only read
    it (downloads go to each test's own tmp_path): any order of them, or any one alone, sees the same sweep.
    Run by the CLI's main() in this process: what these tests read is the sweep, not the process boundary."""
    cwd = tmp_path_factory.mktemp("sweep")
    proc = cli_in_process(["search.n_trials=6"], cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd, proc


def test_default_sweep_prints_summary_and_where_results_are(swept):
    from sklearn.metrics import roc_auc_score

    from lrsweep.config import Config
    from lrsweep.data import load_table, split_table
    from tests import reference as ref

    cwd, proc = swept
    out = proc.stdout
    assert "best parameters:" in out and "threshold (f1):" in out
    assert "mlflow ui" in out
    assert (cwd / "mlflow.db").exists()
    # the test ROC AUC printed and logged is the best configuration's, refitted independently on train+validation
    (parent,) = mlflow_runs(cwd)[0]
    best = ref.model_params({k[5:]: v for k, v in parent.data.tags.items() if k.startswith("best.")})
    cfg = Config()  # the defaults the CLI composed
    table = load_table(cfg.dataset)
    split = split_table(table.y, cfg.split, cfg.cv, cfg.seed)
    model = ref.fit(table.X, table.y, split.trainval, best, cfg.seed, table.numeric, table.categorical)
    expected = roc_auc_score(table.y[split.test], ref.scores(model, table.X, split.test))
    assert parent.data.metrics["test_roc_auc"] == pytest.approx(expected, abs=1e-9)
    printed = float(next(line for line in out.splitlines() if line.strip().startswith("roc_auc")).split()[-1])
    assert printed == pytest.approx(expected, abs=5e-5)  # printed to 4 decimals


def test_one_parent_and_a_child_per_trial_with_params_and_metrics(swept):
    cwd, _ = swept
    parents, children = mlflow_runs(cwd)
    assert len(parents) == 1 and len(children) == 6
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert sorted(int(c.data.tags["lrsweep.trial_number"]) for c in children) == list(range(6))
    assert parent.info.start_time <= min(c.info.start_time for c in children)  # the sweep's start, not the writer's
    for c in children:
        assert c.info.status == "FINISHED"
        assert c.data.tags["lrsweep.state"] == "COMPLETE"
        assert set(c.data.metrics) >= EXPECTED_CHILD_METRICS
        # the configuration, a chartable C, and what defines the sweep, under the parent's names
        shown = {"l1_ratio", "penalty", "class_weight", "max_iter", "tol", "seed", "search.name", "threshold.strategy"}
        assert shown | {"cv.folds"} <= set(c.data.params)
        if c.data.params["penalty"] == "none":  # C=inf: nothing to chart
            assert "C" not in c.data.params and "log10_C" not in c.data.params
        else:
            assert float(c.data.params["log10_C"]) == pytest.approx(math.log10(float(c.data.params["C"])), abs=1e-6)
        assert c.info.run_name.startswith("trial-")
        # the confusion matrix adds up to the validation part
        m = c.data.metrics
        assert m["val_tp"] + m["val_fp"] + m["val_tn"] + m["val_fn"] == pytest.approx(7043 * 0.2, abs=1)
    p = parent.data
    assert p.params["seed"] == "42" and json.loads(p.tags["lrsweep.invocation.001"])["n_trials"] == 6
    assert p.params["data.sha256"] == "863e369c3a03cea2bd20d696e572eb5fb064e04657744504deb7b6249b92f66e"
    assert p.tags["lrsweep.data_sha256"] == p.params["data.sha256"]
    assert "scikit-learn.version" in p.tags and "python.version" in p.tags
    # only settings that mean something for scikit-learn: no Spark cluster, no CLI plumbing, nothing unset
    assert not [k for k in p.params if k.split(".")[0] in ("cluster", "prices", "progress", "debug", "tracking")]
    assert "None" not in p.params.values()
    for k in ("test_roc_auc", "test_f1", "test_log_loss", "test_specificity", "threshold", "best_val_roc_auc"):
        assert k in p.metrics and not math.isnan(p.metrics[k])
    # the best trial's validation objective is the best among the children, under the children's name too
    best = max(c.data.metrics["val_roc_auc"] for c in children)
    assert p.metrics["best_val_roc_auc"] == pytest.approx(best) == p.metrics["val_roc_auc"]
    # ... and that child is marked best, and linked from the parent's note
    (marked,) = [c for c in children if c.data.tags.get("lrsweep.best") == "true"]
    assert marked.data.metrics["val_roc_auc"] == pytest.approx(best)
    assert f"runs/{marked.info.run_id})" in p.tags["mlflow.note.content"]
    # the name says dataset, backend, search, threshold strategy, seed and the study's short id
    study = p.tags["lrsweep.study"]
    assert parent.info.run_name == f"default f1 seed=42 #{study[-8:]} sklearn telco_churn"


def test_artifacts_and_model_load_and_predict_with_the_threshold(swept, tmp_path):
    import mlflow
    from mlflow import MlflowClient

    cwd, _ = swept
    parents, _ = mlflow_runs(cwd)
    run_id = parents[0].info.run_id
    client = MlflowClient(tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")
    names = {a.path for folder in ("", "plots", "tables") for a in client.list_artifacts(run_id, folder or None)}
    for expected in (
        "config.yaml",
        "data.json",
        "plots/roc_curve.png",
        "plots/pr_curve.png",
        "plots/confusion_matrix.png",
        "plots/metric_vs_threshold.png",
        "plots/optimization_history.png",
        "coefficients.csv",
        "tables/coefficients.json",
        "tables/invocations.json",
    ):
        assert expected in names, f"{expected} missing from {sorted(names)}"
    # the tables are MLflow tables (the UI lists them as such)
    logged = json.loads(parents[0].data.tags["mlflow.loggedArtifacts"])
    assert {"path": "tables/coefficients.json", "type": "table"} in logged
    mlflow.set_tracking_uri(f"sqlite:///{cwd / 'mlflow.db'}")  # load_table searches the global store
    table = client.load_table(parents[0].info.experiment_id, "tables/coefficients.json", run_ids=[run_id])
    assert {"feature", "level", "coefficient", "odds_ratio"} <= set(table.columns) and len(table) > 10
    coef = pd.read_csv(client.download_artifacts(run_id, "coefficients.csv", str(tmp_path)))
    assert {"feature", "level", "coefficient", "odds_ratio"} <= set(coef.columns)
    assert "contract" in set(coef["feature"]) and "(intercept)" in set(coef["feature"])
    assert np.allclose(coef["odds_ratio"], np.exp(coef["coefficient"]))

    mlflow.set_tracking_uri(f"sqlite:///{cwd / 'mlflow.db'}")
    model_uri = parents[0].data.tags["lrsweep.model_uri"]
    (logged,) = mlflow.search_logged_models(experiment_ids=[parents[0].info.experiment_id], output_format="list")
    assert (
        logged.name == parents[0].data.tags["lrsweep.study"] and model_uri == logged.model_uri
    )  # named after the study
    model = mlflow.pyfunc.load_model(model_uri)
    data = pd.read_csv(Path(__file__).parents[1] / "src/lrsweep/datasets/telco_churn.csv.gz").head(200)
    pred = np.asarray(model.predict(data.drop(columns=["churn"])))
    assert set(np.unique(pred)) == {"No", "Yes"} and pred.shape == (200,)  # the data's own labels
    # predict() applies the validation threshold, not 0.5; predict_proba's column 1 is churn=Yes
    sk = mlflow.sklearn.load_model(model_uri)
    assert list(sk.classes_) == ["No", "Yes"]
    threshold = parents[0].data.metrics["threshold"]
    proba = sk.predict_proba(data.drop(columns=["churn"]))[:, 1]
    assert np.array_equal(pred, np.where(proba >= threshold, "Yes", "No"))
    # integer columns as a CSV reader gives them, or read as floats: both accepted, same answers
    features = data.drop(columns=["churn"])
    ints = [c for c in features.columns if pd.api.types.is_integer_dtype(features[c])]
    assert ints  # (tenure, senior_citizen, ...): the case this checks
    as_floats = features.astype(dict.fromkeys(ints, "float64"))
    assert np.array_equal(np.asarray(model.predict(as_floats)), pred)


def test_second_invocation_tops_up_without_duplicates(tmp_path):
    quiet = ["tracking.artifacts=false", "tracking.log_model=false"]  # not what this test is about
    first = cli_in_process(["search.n_trials=4", *quiet], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    (before,) = study_trials(tmp_path).values()
    proc = cli_in_process(["search.n_trials=7", *quiet], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parents, children = mlflow_runs(tmp_path)
    (parent,) = parents  # one study, one parent run: the top-up continues it
    assert parent.info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    numbers = sorted(int(c.data.tags["lrsweep.trial_number"]) for c in children)
    assert numbers == list(range(7))  # 4 old + 3 new, none twice
    calls = [json.loads(parent.data.tags[f"lrsweep.invocation.00{i}"]) for i in (1, 2)]
    assert [(c["n_trials"], c["new_trials"], c["status"]) for c in calls] == [(4, 4, "FINISHED"), (7, 3, "FINISHED")]
    assert all(0 < c["wall_seconds"] < 600 for c in calls)  # each call's own time, for `lrsweep compare`
    assert parent.data.metrics["finished_trials"] == 7
    # the best-so-far series covers every trial of the study, once
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    series = client.get_metric_history(parent.info.run_id, "best_val_roc_auc")
    assert sorted(m.step for m in series) == list(range(7))
    values = [m.value for m in sorted(series, key=lambda m: m.step)]
    assert values == sorted(values) and values[-1] == pytest.approx(
        max(c.data.metrics["val_roc_auc"] for c in children)
    )
    # a third call with nothing to do says so in one line and writes nothing
    before_db = (tmp_path / "mlflow.db").stat().st_mtime_ns, (tmp_path / "mlflow.db").stat().st_size
    idle = cli_in_process(["search.n_trials=5", *quiet], tmp_path)
    assert idle.returncode == 0, idle.stderr[-3000:]
    line, *links = [ln for ln in idle.stdout.splitlines() if ln.strip()]
    assert [ln.split()[0] for ln in links] == ["experiment:"]  # where to look, nothing more
    assert line.startswith("nothing to do: study ") and "search.n_trials" in line and "study.resume=false" in line
    assert "interrupted" not in idle.stderr
    assert ((tmp_path / "mlflow.db").stat().st_mtime_ns, (tmp_path / "mlflow.db").stat().st_size) == before_db
    assert len(mlflow_runs(tmp_path)[1]) == 7
    (trials,) = study_trials(tmp_path).values()
    assert len(trials) == 7 and all(t.state.name == "COMPLETE" for t in trials)
    assert [t.params for t in trials[:4]] == [t.params for t in before]  # the first four kept as they were
    assert [t.value for t in trials[:4]] == [t.value for t in before]
    # the top-up draws on: not the first call's start-up draws again (a sampler seeded as before would)
    assert [t.params for t in trials[4:7]] != [t.params for t in trials[:3]]
    assert "(3 this run;" in proc.stdout


def test_fresh_study_when_resume_is_off(tmp_path):
    assert cli_in_process(["search.n_trials=2", "tracking=off"], tmp_path).returncode == 0
    assert cli_in_process(["search.n_trials=2", "tracking=off", "study.resume=false"], tmp_path).returncode == 0
    studies = study_trials(tmp_path)
    assert len(studies) == 2 and all(len(t) == 2 for t in studies.values())


HANG_GUARD = 600.0  # seconds: only so that a hung sweep fails the test with a message instead of hanging CI


@pytest.fixture
def start_blocked(
    tmp_path: Path,
) -> Iterator[Callable[[list[str], int | str], tuple[subprocess.Popen[str], Path]]]:
    """Start ``python -m tests.blocking ARGS`` in tmp_path, its ``block_at``-th evaluate() blocking (tests/blocking.py),
    in its own process group so the whole sweep (with its MLflow writer) can be signalled; at teardown whatever is
    left of that group (a hung sweep, an orphaned writer) is killed, by its group id."""
    from tests import blocking

    groups: list[int] = []

    def start(args: list[str], block_at: int | str) -> tuple[subprocess.Popen[str], Path]:
        marker = tmp_path / "blocked.json"
        env = {
            **os.environ,
            "PYTHONWARNINGS": "ignore",
            "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),  # a Spark sweep binds loopback
            blocking.BLOCK_AT: str(block_at),
            blocking.MARKER: str(marker),
            blocking.RELEASE: str(tmp_path / "never-released"),
            **WITH_TESTS,
        }
        env.pop("LRSWEEP_DEBUG", None)
        with open(tmp_path / "sweep.err", "w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.blocking", *args],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
                text=True,
                start_new_session=True,
            )
        groups.append(proc.pid)
        return proc, marker

    yield start
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def _wait_until(done: Callable[[], bool], proc: subprocess.Popen[str], marker: Path, what: str) -> None:
    """Poll ``done`` until it holds; fail loudly (with the sweep's stderr) if the sweep dies or hangs first."""
    deadline = time.monotonic() + HANG_GUARD
    while not done():
        if proc.poll() is not None:
            pytest.fail(f"the sweep exited (code {proc.returncode}) before {what}:\n{_tail(marker)}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"hang guard: no {what} after {HANG_GUARD:.0f} s; stderr:\n{_tail(marker)}")
        time.sleep(0.1)


def _wait_blocked(proc: subprocess.Popen[str], marker: Path) -> dict:
    """Wait for the marker (the sweep is inside the blocking trial)."""
    _wait_until(marker.exists, proc, marker, "the blocking trial")
    return json.loads(marker.read_text())


def _wait_for_parent_run(proc: subprocess.Popen[str], db: Path, marker: Path) -> None:
    """Wait until the sweep's MLflow writer has created the parent run (read-only look at the sqlite store)."""
    _wait_until(lambda: parent_opened(db), proc, marker, "MLflow parent run")


def _tail(marker: Path) -> str:
    return (marker.parent / "sweep.err").read_text()[-3000:]


def _exit_code(proc: subprocess.Popen[str]) -> int:
    try:
        return proc.wait(timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"hang guard: the sweep did not exit within {HANG_GUARD:.0f} s after the signal")


def _same_config(trial, params: dict) -> bool:
    return (
        trial.params["C"] == pytest.approx(params["C"], rel=1e-12)
        and trial.params.get("class_weight", "none") == params["class_weight"]
    )


@pytest.mark.parametrize(
    ("sampler", "kill"),
    [("tpe", "sweep-process"), ("grid", "process-group")],
    ids=["tpe-kill-sweep", "grid-kill-sweep-and-writer"],
)
def test_killed_sweep_resumes_without_losing_or_repeating_trials(tmp_path, start_blocked, sampler, kill):
    from tests.blocking import GRID_SIZE

    target, block_at = (GRID_SIZE, 4) if sampler == "grid" else (10, 6)
    args = ["sweep", str(tmp_path), str(target), sampler]
    proc, marker = start_blocked(args, block_at)
    blocked = _wait_blocked(proc, marker)
    # kill -9 while the trial runs, once the MLflow writer has created the parent run: the sweep alone (its writer
    # lives on, drains its pipe and exits) or the sweep with its writer (records still in the pipe are lost)
    _wait_for_parent_run(proc, tmp_path / "mlflow.db", marker)
    if kill == "sweep-process":
        os.kill(proc.pid, signal.SIGKILL)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
    assert _exit_code(proc) == -signal.SIGKILL

    (trials,) = study_trials(tmp_path).values()
    running = [t for t in trials if t.state.name == "RUNNING"]
    assert len(running) == 1, f"expected the blocked trial to be RUNNING, got {[t.state.name for t in trials]}"
    (cut,) = running
    assert cut.number == block_at - 1 and _same_config(cut, blocked["params"])
    before = {t.number: (t.state.name, t.params, t.value) for t in trials if t.state.is_finished()}
    assert sorted(before) == list(range(block_at - 1))  # every trial before the blocking one finished

    res = subprocess.run(
        [sys.executable, "-m", "tests.blocking", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **WITH_TESTS},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (trials,) = study_trials(tmp_path).values()
    after = {t.number: t for t in trials}
    # the interrupted trial: failed, marked, not counted, and its slot run again
    assert after[cut.number].state.name == "FAIL" and after[cut.number].user_attrs.get("lrsweep_interrupted") is True
    interrupted = [t for t in trials if t.user_attrs.get("lrsweep_interrupted")]
    assert [t.number for t in interrupted] == [cut.number]
    # counted: finished and not interrupted (a grid study may also hold WAITING points, not run and not counted)
    counted = [t for t in trials if t.state.is_finished() and not t.user_attrs.get("lrsweep_interrupted")]
    assert len(counted) == target and not [t for t in trials if t.state.name == "RUNNING"]
    assert json.loads(res.stdout.strip().splitlines()[-1])["n_new"] == target - len(before)
    for number, (state, params, value) in before.items():  # nothing finished is lost or changed
        assert (after[number].state.name, after[number].params, after[number].value) == (state, params, value)
    if sampler == "grid":  # the grid point that was cut is run again, and every point exactly once
        again = [t for t in counted if t.number > cut.number and _same_config(t, blocked["params"])]
        assert len(again) == 1 and again[0].state.name == "COMPLETE"
        keys = {(round(t.params["C"], 12), t.params["class_weight"]) for t in counted}
        assert len(keys) == GRID_SIZE

    parents, children = mlflow_runs(tmp_path)
    (parent,) = parents  # the killed call's parent run, continued by the call that resumed the study
    assert parent.info.status == "FINISHED" and "lrsweep.failure" not in parent.data.tags
    killed, resumed = (json.loads(parent.data.tags[f"lrsweep.invocation.00{i}"]) for i in (1, 2))
    assert (killed["status"], resumed["status"]) == ("KILLED", "FINISHED")
    assert resumed["new_trials"] == target - len(before)
    logged = sorted(int(c.data.tags["lrsweep.trial_number"]) for c in children)
    assert logged == sorted(t.number for t in counted)  # exactly one child per counted trial; none for the cut one
    assert all(c.info.status == "FINISHED" for c in children)
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}


def test_a_sweep_into_a_pipe_says_how_it_goes_on_stderr_and_leaves_no_hydra_folder(tmp_path):
    proc = run_cli(["search.n_trials=3", "tracking=off"], tmp_path)  # progress on (the default), stderr a pipe
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    # the last trial always gets its line; every stderr line is lrsweep's own
    assert lines and lines[-1].startswith("lrsweep: INFO: trials 3/3, best roc_auc=")
    assert all(ln.startswith("lrsweep: ") for ln in lines), lines
    assert proc.stdout.lstrip().startswith("lrsweep: lrsweep-telco_churn-sklearn-")  # the summary, alone
    assert "INFO" not in proc.stdout and "phases" not in proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lrsweep_studies"]  # no .lrsweep/hydra/<date>/<time>/


def test_a_failed_call_leaves_nothing(tmp_path):
    proc = run_cli(["search.C.low=0"], tmp_path)
    assert proc.returncode == 2 and list(tmp_path.iterdir()) == []


def test_help_describes_lrsweep_with_examples_and_the_config_groups(tmp_path):
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "churn_recall.yaml").write_text("# @package _global_\nseed: 3\n")
    proc = subprocess.run([*CLI, "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0
    out = proc.stdout
    assert out.startswith("lrsweep: ") and "powered by Hydra" not in out
    assert "lrsweep plan" in out and "lrsweep launch" in out and "Examples:" in out
    groups = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("  ") and len(ln.split()) > 1}
    assert "sklearn, spark" in groups["backend"] and "youden" in groups["threshold"]
    assert "churn_recall" in groups["experiment"]
    assert not any(g.startswith(("schema", "hydra")) for g in groups)
    assert len(out.splitlines()) < 40  # a page, not the whole config


def test_print_composed_config():
    proc = subprocess.run([*CLI, "--cfg", "job", "search=elasticnet", "seed=7"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "name: elasticnet" in proc.stdout and "seed: 7" in proc.stdout and "strategy: f1" in proc.stdout


def test_multirun_runs_one_sweep_per_combination(tmp_path):
    proc = cli_in_process(["-m", "search=l2,l1", "seed=1,2", "search.n_trials=2", "tracking=off"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    studies = study_trials(tmp_path)
    assert len(studies) == 4
    assert sorted(n.split("-")[-2] for n in studies) == ["l1", "l1", "l2", "l2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lrsweep_studies"]  # Hydra's multirun folder is gone
    assert proc.stdout.count("lrsweep: lrsweep-telco_churn-") == 4 and "Launching 4 jobs" in proc.stderr


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
        proc = cli_in_process(args, tmp_path)
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
    (["dataset=csv", "dataset.path=ok.csv", "dataset.target=lonely"], "class 'r' of target 'lonely' has 1 row(s)"),
    (["dataset=csv", "dataset.path=ok.csv", "dataset.target=y", "dataset.positive=maybe"], "'maybe' is not a value"),
    (["dataset.foo=1"], "unknown config key"),
    (["search=nope"], "unknown option 'nope'"),
    (["search.C.low=0"], "C must be > 0"),
    (["search=elasticnet", "search.l1_ratio.high=1.5"], "l1_ratio must lie in [0, 1]"),
    (["search=l1", "search.solvers=[lbfgs]"], "can fit the l1 penalty"),
    (["search.n_trials=0"], "n_trials=0"),
    (["dataset=csv", "dataset.path=rare.csv", "dataset.target=y"], "too few to split"),
    # issue 12: where a sweep writes is checked before any work (FileExistsError; ~105 s of MLflow retries)
    (["study.dir=ok.csv"], "study.dir ok.csv is a file, not a folder"),
    (["tracking.uri=sqlite:///ok.csv"], "cannot open the MLflow store sqlite:///ok.csv (file is not a database)"),
    (["study.storage=mysql://u:pw@127.0.0.1/optuna"], "needs the Python driver 'MySQLdb', which is not installed"),
    # issue 14: a multi-class target
    (["dataset=csv", "dataset.path=ok.csv", "dataset.target=five", "dataset.max_classes=4"], "more than dataset.max_"),
    (["dataset=csv", "dataset.path=rare3.csv", "dataset.target=y"], "class 'r' has no rows in the test part"),
    (["dataset=csv", "dataset.path=two.csv", "dataset.target=y", "objective.metric=f1_weighted"], "this one is binary"),
    (["dataset=csv", "dataset.path=three.csv", "dataset.target=y", "threshold.of_class=s"], "'s' is not a class"),
    (
        ["dataset=csv", "dataset.path=three.csv", "dataset.target=y", "search=l2", "search.solvers=[liblinear]"],
        "liblinear cannot fit a multinomial model",
    ),
    (["search.multiclass=softmax"], "search.multiclass='softmax' is not known"),
    (["dataset=csv", "dataset.path=three.csv", "dataset.target=y", "threshold=recall_at"], "needs the class the thr"),
]


def _bad_input_files(folder: Path) -> None:
    rng = np.random.default_rng(1)
    ok = pd.DataFrame(
        {
            "x": rng.normal(size=60), "y": ["a", "b"] * 30, "one": ["k"] * 60, "three": ["p", "q", "r"] * 20,
            "lonely": ["p", "q"] * 29 + ["p", "r"], "five": list("abcde") * 12,
        }
    )  # fmt: skip
    ok.to_csv(folder / "ok.csv", index=False)
    (folder / "empty.csv").write_text("")
    # 2 positives in 300 rows: a three-way split leaves a part without both classes
    pd.DataFrame({"x": rng.normal(size=300), "y": [1] * 2 + [0] * 298}).to_csv(folder / "rare.csv", index=False)
    # a third class of 3 rows in 60: stratified, the split leaves it out of test
    rare3 = ["p", "q"] * 28 + ["p"] + ["r"] * 3
    pd.DataFrame({"x": rng.normal(size=60), "y": rare3}).to_csv(folder / "rare3.csv", index=False)
    pd.DataFrame({"x": rng.normal(size=60), "y": [0, 1] * 30}).to_csv(folder / "two.csv", index=False)
    pd.DataFrame({"x": rng.normal(size=60), "y": ["p", "q", "r"] * 20}).to_csv(folder / "three.csv", index=False)


def _nothing_written(folder: Path) -> None:
    assert not (folder / "mlflow.db").exists()  # nothing half-written that looks complete
    studies = folder / "lrsweep_studies"
    assert not studies.exists() or not list(studies.glob("*.journal"))


@pytest.mark.parametrize(("args", "needle"), BAD_INPUTS, ids=[a[1] for a in BAD_INPUTS])
def test_bad_input_one_line_nonzero_exit_nothing_written(tmp_path, args, needle, monkeypatch, capsys):
    """The CLI's own main(), in this process (a process per case cost 10 s each; the process boundary is
    checked by the next test)."""
    _bad_input_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")  # what main() sets; restored after the test
    monkeypatch.delenv("LRSWEEP_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["lrsweep", "search.n_trials=2", *args])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("lrsweep: error: ") and needle in lines[0]
    _nothing_written(tmp_path)


@pytest.mark.parametrize(("args", "needle"), [BAD_INPUTS[0], BAD_INPUTS[8]], ids=["data", "config"])
def test_bad_input_in_its_own_process_is_one_line_and_exit_2(tmp_path, args, needle):
    _bad_input_files(tmp_path)
    proc = run_cli(["search.n_trials=2", *args], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("lrsweep: error: ") and needle in proc.stderr and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
    _nothing_written(tmp_path)


def test_a_multi_class_target_with_a_positive_class_sweeps_it_against_the_rest(tmp_path):
    """Issue 14, item 1: the summary says what was fitted, the terminal names the other classes once."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=300)
    tier = np.where(x > 0.4, "gold", np.where(x < -0.4, "bronze", "silver"))
    pd.DataFrame({"x": x, "z": rng.normal(size=300), "tier": tier}).to_csv(tmp_path / "t.csv", index=False)
    args = ["dataset=csv", "dataset.path=t.csv", "dataset.target=tier", "dataset.positive=gold"]
    done = cli_in_process([*args, "search.n_trials=3", "tracking=off", "progress=false"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "  target: 'gold' against the rest (the target has 3 classes)" in done.stdout
    assert done.stderr.count("against the rest") == 1 and "'silver'" in done.stderr and "'bronze'" in done.stderr


@pytest.mark.slow
def test_an_inline_tracked_sweep_prints_only_lrsweeps_lines_with_pythons_own_warning_filters(tmp_path):
    """No PYTHONWARNINGS (run_cli sets ignore), as a user runs it: an inline writer used to leave its copy of the
    worker's lease file open, and Python printed 'sys:1: ResourceWarning: unclosed file ...lock' at exit."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "HYDRA_FULL_ERROR", "LRSWEEP_DEBUG")}
    args = ["search.n_trials=2", "tracking.mode=inline", "progress=false"]
    done = subprocess.run([*CLI, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "best parameters:" in done.stdout
    assert [line for line in done.stderr.splitlines() if line and not line.startswith("lrsweep:")] == []


@pytest.mark.parametrize("args", [["--help"], ["--cfg", "job"]], ids=["help", "cfg"])
def test_a_reader_that_stops_early_ends_lrsweep_quietly(tmp_path, args):
    """`lrsweep --help | head`: the pipe closes before lrsweep writes; no BrokenPipeError traceback (issue 12)."""
    proc = subprocess.Popen([*CLI, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == cli.EXIT_BROKEN_PIPE, err
    assert err == ""


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


def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(tmp_path, start_blocked):
    fast = ["search.solvers=[lbfgs,liblinear,newton-cholesky]", "search.penalties=[l2,l1]", "progress=false"]
    proc, marker = start_blocked(["cli", "search.n_trials=8", *fast], 4)
    blocked = _wait_blocked(proc, marker)
    os.kill(proc.pid, signal.SIGINT)  # Ctrl-C, inside trial 3
    assert _exit_code(proc) == 130, _tail(marker)
    assert _tail(marker).strip().splitlines()[-1] == (
        "lrsweep: error: interrupted; run the same command again to resume where it stopped"
    )
    (trials,) = study_trials(tmp_path).values()
    (cut,) = [t for t in trials if t.number == 3]
    assert cut.state.name == "FAIL" and cut.user_attrs.get("lrsweep_interrupted") is True
    assert _same_config(cut, blocked["params"])
    done = {t.number: t.params for t in trials if t.state.name == "COMPLETE"}
    assert sorted(done) == [0, 1, 2]
    parents, children = mlflow_runs(tmp_path)
    assert [p.info.status for p in parents] == ["KILLED"]
    assert parents[0].data.tags["lrsweep.failure"] == "interrupted"
    assert sorted(int(c.data.tags["lrsweep.trial_number"]) for c in children) == [0, 1, 2]  # drained, not the cut

    res = run_cli(["search.n_trials=8", *fast], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    (trials,) = study_trials(tmp_path).values()
    counted = [t for t in trials if t.state.is_finished() and not t.user_attrs.get("lrsweep_interrupted")]
    assert len(counted) == 8 and len(trials) == 9
    assert {t.number: t.params for t in counted if t.number in done} == done
    parents, children = mlflow_runs(tmp_path)
    assert [p.info.status for p in parents] == ["FINISHED"]  # the same parent, continued
    calls = [json.loads(parents[0].data.tags[f"lrsweep.invocation.00{i}"])["status"] for i in (1, 2)]
    assert calls == ["KILLED", "FINISHED"]
    assert sorted(int(c.data.tags["lrsweep.trial_number"]) for c in children) == sorted(t.number for t in counted)


def _two_spark_trials_held(
    start_blocked: Callable[..., tuple[subprocess.Popen[str], Path]], tmp_path: Path, target: int
) -> tuple[list[str], subprocess.Popen[str], Path, list[Path]]:
    """A Spark sweep of ``target`` trials, two at once, started with evaluate calls 3 and 4 held; returned once
    both are held and the MLflow parent run exists: its arguments, process, marker and the two held calls' markers."""
    args = ["backend=spark", "cluster.master='local[2]'", f"search.n_trials={target}", "search.n_jobs=2"]
    args += ["search.max_iter=30", "progress=false", "tracking.log_model=false", "tracking.artifacts=false"]
    proc, marker = start_blocked(["cli", *args], "3,4")
    markers = [marker.with_name(f"{marker.name}.{call}") for call in (3, 4)]
    _wait_until(lambda: all(m.exists() for m in markers), proc, marker, "two trials held at once")
    _wait_for_parent_run(proc, tmp_path / "mlflow.db", marker)
    return args, proc, marker, markers


@pytest.mark.spark
def test_a_kill_during_concurrent_spark_trials_resumes_with_nothing_lost_or_repeated(tmp_path, start_blocked):
    """Issue 13: search.n_jobs=2 on one Spark session, kill -9 while two trials run at once (evaluate calls 3 and 4
    held, tests/blocking.py): both are found RUNNING, the next call marks both interrupted and runs their slots
    again, and the study ends with exactly n_trials counted trials, one MLflow child each, under the same parent."""
    target = 6
    args, proc, marker, markers = _two_spark_trials_held(start_blocked, tmp_path, target)
    held = [json.loads(m.read_text())["params"] for m in markers]
    os.kill(proc.pid, signal.SIGKILL)  # the sweep alone: its MLflow writer drains what it was sent and exits
    assert _exit_code(proc) == -signal.SIGKILL

    (trials,) = study_trials(tmp_path).values()
    running = [t for t in trials if t.state.name == "RUNNING"]
    assert len(running) == 2, [t.state.name for t in trials]
    assert all(any(_same_config(t, p) for t in running) for p in held)  # the two held configurations, both cut
    before = {t.number: (t.state.name, t.params, t.value) for t in trials if t.state.is_finished()}
    assert len(before) == 2 and all(state == "COMPLETE" for state, _, _ in before.values())

    res = run_cli(args, tmp_path, env_extra={"SPARK_LOCAL_IP": "127.0.0.1"})
    assert res.returncode == 0, res.stderr[-3000:]
    (trials,) = study_trials(tmp_path).values()
    after = {t.number: t for t in trials}
    interrupted = sorted(t.number for t in trials if t.user_attrs.get("lrsweep_interrupted"))
    assert interrupted == sorted(t.number for t in running)
    assert all(after[n].state.name == "FAIL" for n in interrupted)
    counted = [t for t in trials if t.state.is_finished() and not t.user_attrs.get("lrsweep_interrupted")]
    assert len(counted) == target and not [t for t in trials if t.state.name == "RUNNING"]
    for number, (state, params, value) in before.items():  # nothing finished is lost, changed or run again
        assert (after[number].state.name, after[number].params, after[number].value) == (state, params, value)
    assert len(trials) == target + 2  # the two cut trials and n_trials counted ones: no surplus trial ran

    parents, children = mlflow_runs(tmp_path)
    (parent,) = parents
    assert parent.info.status == "FINISHED"
    killed, resumed = (json.loads(parent.data.tags[f"lrsweep.invocation.00{i}"]) for i in (1, 2))
    assert (killed["status"], resumed["status"]) == ("KILLED", "FINISHED")
    assert resumed["new_trials"] == target - len(before)
    logged = sorted(int(c.data.tags["lrsweep.trial_number"]) for c in children)
    assert logged == sorted(t.number for t in counted)  # one child per counted trial, none for the cut ones
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}


@pytest.mark.spark
def test_a_driver_that_stops_mid_trial_ends_the_sweep_in_one_line_and_the_next_run_resumes(tmp_path, start_blocked):
    """The Spark driver JVM dies (killed here; out of memory it exits, tests/backends/test_spark_driver.py) while two
    trials run at once: the sweep stops with one line saying so (exit 1, no traceback), both trials are marked
    interrupted, not failed (no configuration is blamed, none after them is tried on a dead session), and the same
    command then finishes the study with nothing lost or repeated."""
    target = 5
    args, proc, marker, _ = _two_spark_trials_held(start_blocked, tmp_path, target)
    out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    (jvm,) = [int(p) for p in out if "java" in Path(f"/proc/{p}/cmdline").read_text()]
    os.kill(jvm, signal.SIGKILL)
    (tmp_path / "never-released").touch()  # the two held trials go on, into the dead session
    assert _exit_code(proc) == 1, _tail(marker)
    err = _tail(marker)
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("lrsweep: error: the Spark driver stopped: "), last
    assert "run the same command again: finished trials are kept" in last and "Spark's log: " in last

    (trials,) = study_trials(tmp_path).values()
    cut = sorted(t.number for t in trials if t.user_attrs.get("lrsweep_interrupted"))
    assert len(cut) == 2 and all(t.state.name == "FAIL" for t in trials if t.number in cut)
    assert not [t for t in trials if t.state.name == "FAIL" and t.number not in cut]  # nothing blamed
    before = {t.number: (t.params, t.value) for t in trials if t.state.name == "COMPLETE"}
    assert len(before) == 2 and not [t for t in trials if t.state.name == "RUNNING"]
    parents, _ = mlflow_runs(tmp_path)
    assert [p.info.status for p in parents] == ["FAILED"]
    assert parents[0].data.tags["lrsweep.failure"].startswith("the Spark driver stopped")

    res = run_cli(args, tmp_path, env_extra={"SPARK_LOCAL_IP": "127.0.0.1"})
    assert res.returncode == 0, res.stderr[-3000:]
    (trials,) = study_trials(tmp_path).values()
    counted = [t for t in trials if t.state.is_finished() and not t.user_attrs.get("lrsweep_interrupted")]
    assert len(counted) == target and len(trials) == target + 2
    assert {t.number: (t.params, t.value) for t in counted if t.number in before} == before
    parents, children = mlflow_runs(tmp_path)
    assert [p.info.status for p in parents] == ["FINISHED"]  # the same parent, continued
    assert sorted(int(c.data.tags["lrsweep.trial_number"]) for c in children) == sorted(t.number for t in counted)


def test_a_second_main_in_one_process_starts_from_a_clean_slate(tmp_path, monkeypatch, capsys):
    """main() called again in the same process (a notebook, a test) does not inherit the last call's command or
    plans: a `plan` call followed by a sweep call is a sweep (its bad value refused as a sweep's)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    monkeypatch.setitem(cli._RUN, "command", "plan")  # what `lrsweep plan ...` left behind
    monkeypatch.setitem(cli._RUN, "plans", ["an earlier plan"])
    monkeypatch.setattr(sys, "argv", ["lrsweep", "search.n_trials=0"])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 2
    assert cli._RUN["command"] == "sweep" and cli._RUN["plans"] == [] and cli._RUN["dry_run"] is False
    assert "search.n_trials" in capsys.readouterr().err
