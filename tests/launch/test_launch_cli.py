"""`lrsweep launch` as a user runs it: plan, budget check, then the launch (moto's S3 and EMR over HTTP).

Over budget, nothing is created: no S3 object, no cluster, no plan run. Within it, the plan run is logged to a
real MLflow server, the staged config carries the plan's run id and trial time (the sweep's budget guard starts
from them), and the cluster's request links the plan. No planted credential reaches any output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.data.servers import refused_port
from tests.e2e_helpers import cheap_calibration, run_cli
from tests.launch.fakes import BUCKET, S3_URI, leaks
from tests.mlflow_server import mlflow_server

pytestmark = [pytest.mark.slow, pytest.mark.spark]

LAUNCH = ["launch", "backend=spark", "cluster=emr", "cluster.core_nodes=2", f"cluster.s3_uri={S3_URI}"]


def _one_line(stderr: str) -> str:
    """The one error line a refused call ends with (before it: lrsweep's own log lines, e.g. the calibration's)."""
    lines = stderr.strip().splitlines()
    assert [ln for ln in lines if ln.startswith("lrsweep: error: ")] == lines[-1:], stderr
    assert all(ln.startswith("lrsweep: ") for ln in lines), stderr  # no library noise, no traceback
    return lines[-1]


def test_an_over_budget_launch_is_refused_and_creates_nothing(aws, tmp_path: Path, calibration_cache: Path):
    with refused_port() as port:
        unreachable = f"http://127.0.0.1:{port}"  # a plan run would fail here: none is attempted
        r = run_cli([*LAUNCH, "budget.max_usd=0.5", "search.n_trials=100000", f"tracking.uri={unreachable}",
                     *cheap_calibration(calibration_cache)], tmp_path)  # fmt: skip
    assert r.returncode == 2
    line = _one_line(r.stderr)
    assert line.startswith("lrsweep: error: not launched: 100000 trials on emr m5.xlarge x8 cores")
    assert "passes budget.max_usd=0.5" in line and "use search.n_trials=" in line
    assert aws.objects() == {}
    assert aws.client("emr").list_clusters()["Clusters"] == []
    assert aws.emr_calls("RunJobFlow") == []
    assert leaks(r.stdout, r.stderr) == []


def test_a_launch_within_budget_logs_its_plan_and_hands_it_to_the_cluster(aws, tmp_path: Path, calibration_cache):
    server = tmp_path / "server"
    server.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    with mlflow_server(server) as uri:
        r = run_cli([*LAUNCH, "budget.max_usd=20", "search.n_trials=10", f"tracking.uri={uri}",
                     *cheap_calibration(calibration_cache)], work)  # fmt: skip
        assert r.returncode == 0, r.stderr
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name("lrsweep-telco_churn")
        (plan,) = [x for x in client.search_runs([exp.experiment_id]) if x.data.tags["lrsweep.kind"] == "plan"]
        plan_json = Path(client.download_artifacts(plan.info.run_id, "plan.json", str(tmp_path)))
        predicted = json.loads(plan_json.read_text())
    (cluster,) = aws.client("emr").list_clusters()["Clusters"]
    assert cluster["Id"] in r.stdout and f"plan run {plan.info.run_id}" in r.stdout
    (request,) = aws.emr_calls("RunJobFlow")
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    assert tags["lrsweep:plan-run"] == plan.info.run_id
    objects = aws.objects()
    (config_key,) = [k for k in objects if k.endswith("/config.yaml")]
    staged = yaml.safe_load(objects[config_key])
    assert staged["plan"]["run_id"] == plan.info.run_id
    assert staged["budget"]["max_usd"] == 20 and staged["budget"]["trial_seconds"] > 0
    assert staged["budget"]["trial_seconds"] == pytest.approx(predicted["seconds"]["trial"]["mid"])
    written = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    assert leaks(r.stdout, r.stderr, *objects.values(), *written) == []
    assert BUCKET in r.stdout


def test_a_dry_run_plans_and_prints_the_request_but_sends_and_logs_nothing(aws, tmp_path: Path, calibration_cache):
    r = run_cli([*LAUNCH, "budget.max_usd=20", "search.n_trials=10", "tracking.uri=https://mlflow.example.com",
                 "--dry-run", *cheap_calibration(calibration_cache)], tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "lrsweep plan: 10 Spark trials" in r.stdout and '"ReleaseLabel"' in r.stdout
    assert aws.objects() == {} and aws.client("emr").list_clusters()["Clusters"] == []
    assert not (tmp_path / "mlflow.db").exists()
    assert leaks(r.stdout, r.stderr) == []
