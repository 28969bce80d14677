"""The rehearsal end to end: what a launch sends to EMR, run on a real Spark standalone cluster (a master and two
worker JVMs on 127.0.0.1) from a fresh virtual environment that installed the wheel from (moto's) S3.

Planted credentials: fake AWS keys in the standard variables (the step needs them to read S3), a fake Spark secret
in cluster.spark_conf and a fake MLflow password in the environment. None may appear in the printed lines, the
S3 objects, any file the run wrote (the working directory with the MLflow store, its artifacts, the study, the
rehearsal's environment and logs) or the executors' folders the Spark workers wrote.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest

from lrsweep.launch import launch
from tests.launch.fakes import BUCKET, MLFLOW_PASSWORD, PLANTED, Moto, leaks

SPARK_SECRET = "LAUNCH-FAKE-SPARK-SECRET-31"


def _every_byte(root: Path) -> bytes:
    """Every file under ``root``, links not followed (the rehearsal links this environment's packages)."""
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink())


@pytest.mark.slow
@pytest.mark.spark
def test_the_rehearsal_installs_the_wheel_from_s3_and_runs_the_step_on_the_cluster(
    aws: Moto, compose, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from tests.spark_cluster import standalone_cluster

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", MLFLOW_PASSWORD)  # the cluster's own login (unused by sqlite)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    printed: list[str] = []
    with standalone_cluster(workers=2, work_dir=tmp_path.parent / f"{tmp_path.name}-spark-work") as spark:
        cfg = compose(
            "backend=spark", "cluster=standalone", f"cluster.master={spark.master}",
            f"cluster.s3_uri=s3://{BUCKET}/rehearsal", "search=l2", "search.n_trials=2", f"tracking.uri={store}",
            "tracking.log_model=false", f"+cluster.spark_conf={{spark.hadoop.fs.s3a.secret.key: {SPARK_SECRET}}}",
            "plan.run_id=plan-r1",
        )  # fmt: skip
        launched = launch(cfg, echo=printed.append)
        with urllib.request.urlopen(f"{spark.ui}/json/", timeout=5) as r:
            apps = json.loads(r.read())["completedapps"]

    # lrsweep came from the fresh environment, installed from the wheel in S3 by the install script
    venv = Path(launched.workdir) / "venv"
    m = re.search(r"step \| lrsweep 0\.1\.0 from (\S+)", "\n".join(printed))
    assert m, printed[-20:]
    step_lrsweep = Path(m.group(1))
    assert step_lrsweep.is_relative_to(venv) and step_lrsweep.is_file()
    assert any(f"install | lrsweep 0.1.0 installed in {venv}" in line for line in printed)
    assert not list((Path(launched.workdir) / "deps").glob("lrsweep*"))  # lrsweep is not among the linked packages
    install, step = launched.commands
    assert install[-3:] == [launched.staged["wheel"], str(venv / "bin" / "python"), "spark,s3"]
    assert step == [str(venv / "bin" / "python"), "-m", "lrsweep.launch.step", launched.staged["config"]]
    assert launched.request == {} and launched.cluster_id is None

    # the sweep ran on the standalone cluster, and its runs are in MLflow
    assert [a["name"] for a in apps] == ["lrsweep lrsweep-telco_churn"]
    from tests.e2e_helpers import mlflow_runs

    parents, children = mlflow_runs(tmp_path, uri=store)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert parents[0].data.params["cluster.master"] == spark.master
    assert not [k for k in parents[0].data.params if "secret" in k]  # the masked setting was dropped, not sent
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    assert any("watch MLflow experiment 'lrsweep-telco_churn'" in line and "plan-r1" in line for line in printed)

    # no planted credential anywhere the run wrote or printed
    executors = set(spark.work_dir.glob("app-*"))
    assert executors  # the workers' folders of this run (executors' stdout, stderr) are there to search
    written = _every_byte(tmp_path) + b"".join(_every_byte(d) for d in executors)
    objects = aws.objects()
    assert set(objects) == {k.removeprefix(f"s3://{BUCKET}/") for k in launched.staged.values()}
    found = [p for p in (*PLANTED, SPARK_SECRET) if p.encode() in written]
    assert found == [], f"{found} leaked into a file the rehearsal wrote"
    assert not leaks(*printed, *objects.values()) and SPARK_SECRET not in "\n".join(printed)


def test_a_dry_rehearsal_names_the_commands_and_does_nothing(aws: Moto, compose, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = compose("backend=spark", "cluster=standalone", "cluster.master=spark://127.0.0.1:7077",
                  f"cluster.s3_uri=s3://{BUCKET}/rehearsal")  # fmt: skip
    dry = launch(cfg, dry_run=True, echo=lambda _: None)
    assert aws.requests() == [] and not (tmp_path / ".lrsweep").exists()
    install, step = dry.commands
    assert " ".join(install) in "\n".join(dry.lines) and " ".join(step) in "\n".join(dry.lines)
    assert step[1:] == ["-m", "lrsweep.launch.step", dry.staged["config"]]
