"""The step's entry point: the masked credentials replaced by the cluster's, the package shipped to executors,
and its one-line errors (the sweep itself is run by the rehearsal test)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from lrsweep.launch.staging import config_text
from lrsweep.launch.step import config_from_yaml, for_this_cluster, main, prepare_environment, ship_package
from tests.launch.fakes import BUCKET, MLFLOW_PASSWORD, Moto


def _unset(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Unset ``name`` so that monkeypatch restores it after the test, whatever the code under test sets."""
    monkeypatch.setenv(name, "")
    monkeypatch.delenv(name)


def test_the_cluster_supplies_what_the_staged_config_masks(compose, monkeypatch):
    _unset(monkeypatch, "MLFLOW_TRACKING_USERNAME")  # restored after the test: the step sets it
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "from-the-cluster")
    cfg = compose(
        "cluster=emr", f"tracking.uri=https://lead:{MLFLOW_PASSWORD}@mlflow.example.com:5443/base",
        "+cluster.spark_conf={spark.hadoop.fs.s3a.secret.key: S, spark.executor.memory: 4g}",
    )  # fmt: skip
    staged = config_from_yaml(config_text(cfg))
    assert staged.cluster.spark_conf == {"spark.hadoop.fs.s3a.secret.key": "***", "spark.executor.memory": "4g"}
    notes = for_this_cluster(staged)
    assert staged.cluster.spark_conf == {"spark.executor.memory": "4g"}
    assert staged.tracking.uri == "https://mlflow.example.com:5443/base"
    import os

    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "lead"
    assert len(notes) == 1 and "spark.hadoop.fs.s3a.secret.key" in notes[0]


def test_the_step_says_when_no_mlflow_password_is_set(compose, monkeypatch):
    _unset(monkeypatch, "MLFLOW_TRACKING_PASSWORD")
    _unset(monkeypatch, "MLFLOW_TRACKING_USERNAME")
    staged = config_from_yaml(config_text(compose("cluster=emr", "tracking.uri=https://u:pw@mlflow.example.com")))
    assert any("MLFLOW_TRACKING_PASSWORD is not set" in n for n in for_this_cluster(staged))


def test_spark_workers_run_the_steps_interpreter(compose, monkeypatch):
    import sys

    _unset(monkeypatch, "PYSPARK_PYTHON")
    prepare_environment(compose("cluster=emr"))
    import os

    assert os.environ["PYSPARK_PYTHON"] == sys.executable


def test_the_package_shipped_to_executors_is_the_installed_lrsweep(compose, tmp_path: Path):
    import lrsweep

    cfg = compose("cluster=emr", "+cluster.spark_conf={spark.submit.pyFiles: /opt/other.zip}")
    archive = ship_package(cfg, tmp_path)
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
    assert {"lrsweep/__init__.py", "lrsweep/launch/step.py", "lrsweep/conf/config.yaml"} <= names
    assert not [n for n in names if "__pycache__" in n]
    assert len(names) == len(
        [p for p in Path(lrsweep.__file__).parent.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    )
    assert cfg.cluster.spark_conf["spark.submit.pyFiles"] == f"/opt/other.zip,{archive}"


def test_a_missing_staged_config_is_one_line_and_exit_status_2(aws: Moto, capsys):
    assert main([f"s3://{BUCKET}/nowhere/config.yaml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"lrsweep: error: the staged config s3://{BUCKET}/nowhere/config.yaml does not exist; " \
        "launch again: it stages the config first"  # fmt: skip


def test_a_staged_config_for_an_unknown_backend_is_one_line(compose):
    from lrsweep.errors import LrsweepError

    text = config_text(compose()).replace("name: sklearn", "name: h2o", 1)
    with pytest.raises(LrsweepError, match=r"backend.name='h2o' is not known here; use one of: sklearn, spark"):
        config_from_yaml(text)
