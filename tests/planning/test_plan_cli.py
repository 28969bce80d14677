"""`lrsweep plan` as a user runs it: a real (small, cached) calibration on the bundled data, the printed plan,
its MLflow run, a multirun's table, and a sweep that links to its plan and teaches the next one. The plans are
made by the CLI's main() in this process, but where the process boundary is what is checked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e_helpers import cheap_calibration, cli_in_process, mlflow_runs, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.spark]

EMR = ["plan", "backend=spark", "cluster=emr", "cluster.instance_type=m5.xlarge"]


def _plan_runs(cwd: Path, experiment: str = "lrsweep-telco_churn") -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    return [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("lrsweep.kind") == "plan"]


def test_a_plan_prints_time_cost_and_what_the_budget_affords_and_is_logged(tmp_path: Path, calibration_cache: Path):
    from mlflow import MlflowClient

    r = cli_in_process([*EMR, "cluster.core_nodes=4", "search.n_trials=30", "budget.max_usd=20",
                        *cheap_calibration(calibration_cache)], tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "lrsweep plan: 30 Spark trials on telco_churn (7,043 rows)" in out
    assert "1 primary m5.xlarge + 4 core m5.xlarge, 16 executor cores" in out
    m = re.search(r"cost +(\d+\.\d+) USD \((\d+\.\d+) - (\d+\.\d+) USD\) at 1\.200 USD/h", out)
    assert m, out
    low, mid, high = float(m[2]), float(m[1]), float(m[3])
    assert 0 < low <= mid <= high
    assert mid >= 10 / 60 * 1.2  # the 10 billed start-up minutes alone cost 0.20 USD
    affords = re.search(r"budget.max_usd=20 affords (\d+) trials \((\d+) if every step", out)
    assert affords and int(affords[1]) >= int(affords[2]) > 30
    assert "evidence      calibration:" in out and "ASSUMPTION" in out
    assert "Traceback" not in r.stderr
    (run,) = _plan_runs(tmp_path)
    assert f"plan run {run.info.run_id}" in out
    logged = Path(MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").download_artifacts(run.info.run_id, "plan.txt"))
    assert logged.read_text() in out  # what was printed, but for the line naming the run itself
    assert run.data.metrics["pred_usd"] == pytest.approx(mid, abs=0.006)


def test_a_multirun_over_cluster_sizes_prints_a_table_from_one_calibration(tmp_path: Path, calibration_cache: Path):
    args = ["plan", "-m", *EMR[1:], "cluster.core_nodes=1,4", "search.n_trials=20"]
    r = cli_in_process([*args, *cheap_calibration(calibration_cache)], tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("cluster ") and "affords" in line)
    rows = lines[head + 2 : head + 4]
    assert "1 core m5.xlarge, 4 executor cores" in rows[0] and "4 core m5.xlarge, 16 executor cores" in rows[1]
    # one calibration for both (measured by whichever plan of the session came first, read from the cache after)
    evidence = [line for line in lines if line.startswith("  evidence      calibration:")]
    assert len(evidence) == 2 and sum("measured now" in line for line in evidence) <= 1
    assert len(_plan_runs(tmp_path)) == 2


def test_a_sweep_links_to_its_plan_and_the_next_plan_learns_from_it(tmp_path: Path, calibration_cache: Path):
    local = ["backend=spark", "cluster.master='local[2]'", "search.n_trials=3"]  # the session's calibration
    # the plans by the CLI's main() in this process; the Spark sweep in its own (its own driver JVM, as a user's)
    first = cli_in_process(["plan", *local, *cheap_calibration(calibration_cache)], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "cost          not priced: time only on cluster=local" in first.stdout
    assert "history: no finished Spark sweep of this data on local" in first.stdout
    (plan,) = _plan_runs(tmp_path)
    # what the next plan learns from is the trials' times: no model or plots (a Spark model costs ~10 s to log)
    sweep = run_cli([*local, "progress=false", "tracking.log_model=false", "tracking.artifacts=false"], tmp_path)
    assert sweep.returncode == 0, sweep.stderr
    (parent,), children = mlflow_runs(tmp_path)
    assert parent.data.tags["lrsweep.plan_run_id"] == plan.info.run_id
    assert parent.data.tags["lrsweep.cluster_type"] == "local" and parent.data.tags["lrsweep.cores"] == "2"
    assert parent.data.metrics["setup_seconds"] > 0  # the sweep's setup, for the next plan
    second = cli_in_process(["plan", *local, *cheap_calibration(calibration_cache)], tmp_path)
    assert second.returncode == 0, second.stderr
    assert "history: 3 trial(s) of 1 finished sweep(s) on local: measured / predicted = " in second.stdout
    assert "per-core speed taken from history (3 measured trials on local)" in second.stdout
    assert "; setup of 1: measured / predicted = " in second.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["plan"], "lrsweep plan predicts Spark sweeps; backend=sklearn runs on this machine"),
        ([*EMR, "cluster.instance_type=m9.huge"], "unknown instance type 'm9.huge'"),
        ([*EMR, "cluster.region=eu-north-9"], "no prices for region 'eu-north-9'"),
        ([*EMR, "cluster.core_nodes=0"], "cluster.core_nodes=0 is impossible"),
        (["plan", "backend=spark", "cluster=standalone", "cluster.master=spark://h:7077"], "add cluster.cores=N"),
        (["plan", "--dry-run"], "--dry-run belongs to `lrsweep launch`"),
    ],
)
def test_what_cannot_be_planned_is_one_line(tmp_path: Path, args: list[str], needle: str):
    # the CLI's main() in this process (a process per case costs seconds), but for the first two cases: run in their
    # own process, where the exit code and the one stderr line cross the process boundary
    own_process = args in (["plan"], [*EMR, "cluster.instance_type=m9.huge"])
    r = (run_cli if own_process else cli_in_process)(args, tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert not (tmp_path / ".lrsweep" / "calibration").exists()  # refused before any calibration
