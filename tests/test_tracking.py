"""MLflow layout details: backfill from the journal, redaction, a real tracking server, an unreachable one."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrsweep.config import Config
from lrsweep.errors import LrsweepError
from lrsweep.sweep import run_sweep
from tests.data.servers import refused_port
from tests.e2e_helpers import mlflow_runs
from tests.mlflow_server import mlflow_server

pytestmark = pytest.mark.slow


def _cfg(n: int) -> Config:
    c = Config()
    c.search.n_trials = n
    c.search.solvers = ["lbfgs", "liblinear"]
    c.search.penalties = ["l2", "l1"]
    c.progress = False
    c.tracking.artifacts = c.tracking.log_model = False
    return c


def test_trials_run_untracked_are_backfilled_into_mlflow(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    off = _cfg(3)
    off.tracking.enabled = False
    run_sweep(off)
    assert not (tmp_path / "mlflow.db").exists()
    run_sweep(_cfg(5))
    parents, children = mlflow_runs(tmp_path)
    assert len(parents) == 1 and len(children) == 5
    back = sorted(int(c.data.tags["lrsweep.trial_number"]) for c in children if "lrsweep.backfilled" in c.data.tags)
    assert back == [0, 1, 2]
    assert all("val_roc_auc" in c.data.metrics for c in children)


def test_credentials_never_reach_mlflow(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = _cfg(2)
    cfg.tracking.artifacts = True
    cfg.cluster.spark_conf = {"spark.hadoop.fs.s3a.secret.key": "S3CR3T-VALUE", "spark.app.name": "x"}
    run_sweep(cfg)
    parents, children = mlflow_runs(tmp_path)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    logged = str(parents[0].data.params) + str(parents[0].data.tags)
    logged += Path(client.download_artifacts(parents[0].info.run_id, "config.yaml", str(tmp_path))).read_text()
    assert "S3CR3T-VALUE" not in logged
    assert "***" in logged and "spark.app.name" in logged


def test_sweep_against_a_real_tracking_server(tmp_path, monkeypatch, capfd):
    with mlflow_server(tmp_path) as url:
        # a password in the URI (the server ignores it) must show nowhere: MLflow's own "View run ... at" lines
        # (one per run, printed by the writer process) used to print it in plain text (issue 12)
        uri = url.replace("http://", "http://lrsweep:Hunter2xyzServer@")
        work = tmp_path / "work"
        work.mkdir()
        monkeypatch.chdir(work)
        cfg = _cfg(3)
        cfg.tracking.uri = uri
        cfg.tracking.log_model = True
        result = run_sweep(cfg)
        parents, children = mlflow_runs(work, uri=uri)
        assert len(parents) == 1 and len(children) == 3
        assert parents[0].info.status == "FINISHED" and result.model_uri
        assert parents[0].info.run_id == result.parent_run_id
        assert sorted(int(c.data.tags["lrsweep.trial_number"]) for c in children) == [0, 1, 2]
        assert not (work / "mlflow.db").exists()  # everything went to the server
        assert list((tmp_path / "artifacts").rglob("MLmodel"))  # the model too, through the server's proxy
        # issue 11: a result on a remote server reproduces and exports over HTTP (artifacts through the proxy)
        from lrsweep.export.bundle import main as export
        from lrsweep.reproduce import main as reproduce

        assert reproduce([result.parent_run_id, "--tracking-uri", uri]) == 0
        assert export([result.parent_run_id, "--out", str(tmp_path / "bundle"), "--tracking-uri", uri, "--no-pdf"]) == 0
        assert (tmp_path / "bundle" / "model" / "MLmodel").is_file() and (tmp_path / "bundle" / "report.html").is_file()
        # two workers of a study opening it on a new server: the one that looked before the other created the
        # experiment gets the server's RESOURCE_ALREADY_EXISTS, and uses that experiment (it failed the sweep)
        from mlflow import MlflowClient

        from lrsweep.tracking import _experiment

        class LookedEarlier(MlflowClient):
            looks = 0

            def get_experiment_by_name(self, name: str):
                self.looks += 1
                return None if self.looks == 1 else super().get_experiment_by_name(name)

        theirs = MlflowClient(tracking_uri=url).create_experiment("created-by-the-other-worker")
        assert _experiment(LookedEarlier(tracking_uri=url), "created-by-the-other-worker") == theirs
    printed = capfd.readouterr()
    assert "Hunter2xyzServer" not in printed.out + printed.err and "View run" not in printed.out
    assert "lrsweep:***@127.0.0.1" in printed.out  # reproduce names the store, redacted


def test_unreachable_server_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    cfg = _cfg(50)
    with refused_port() as port, pytest.raises(LrsweepError, match="MLflow tracking failed"):
        cfg.tracking.uri = f"http://127.0.0.1:{port}"
        run_sweep(cfg)


def test_a_ctr_sweep_logs_the_bayes_optimal_figures_beside_its_own(tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd
    from sklearn.metrics import log_loss, roc_auc_score

    from lrsweep.data import split_table
    from lrsweep.datasets.ctr import FEATURE_COLUMNS, ensure_ctr_table, true_probabilities

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LRSWEEP_CACHE", str(tmp_path / "cache"))
    cfg = _cfg(2)
    cols = list(FEATURE_COLUMNS)
    cfg.dataset = type(cfg.dataset)(
        name="ctr", source="generated", generator="ctr", rows=2000, target="click", positive="1", drop=["hour"],
        categorical=cols, hashed=cols,
    )  # fmt: skip
    cfg.search.penalties, cfg.search.solvers = ["l2"], ["lbfgs"]
    result = run_sweep(cfg)
    parents, children = mlflow_runs(tmp_path, experiment="lrsweep-ctr")
    m = parents[0].data.metrics
    assert len(children) == 2
    # the true model recomputed here from the raw table: on the whole table, and on the sweep's test rows
    raw = pd.read_parquet(ensure_ctr_table(2000))
    y = raw["click"].to_numpy().astype(int)
    p = true_probabilities(raw)
    test = split_table(y, cfg.split, cfg.cv, cfg.seed).test
    assert m["table_bayes_log_loss"] == pytest.approx(log_loss(y, p), abs=1e-9)
    assert m["table_bayes_roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-4)  # binned over the whole table
    assert m["bayes_test_log_loss"] == pytest.approx(log_loss(y[test], p[test]), abs=1e-9)
    assert m["bayes_test_roc_auc"] == pytest.approx(roc_auc_score(y[test], p[test]), abs=1e-9)
    assert m["bayes_test_log_loss"] == pytest.approx(result.bayes_metrics["log_loss"])
    assert m["test_log_loss_excess"] == pytest.approx(m["test_log_loss"] - m["bayes_test_log_loss"])
    assert np.isfinite(m["test_log_loss"])


PROBE = """
import json, sys
from lrsweep.config import Config
from lrsweep.sweep import run_sweep
c = Config()
c.search.n_trials = 3
c.search.solvers, c.search.penalties = ["lbfgs"], ["l2"]
c.progress = False
c.tracking.mode = sys.argv[1]
r = run_sweep(c)
print(json.dumps({"mlflow_imported": "mlflow" in sys.modules, "model_uri": r.model_uri, "parent": r.parent_run_id}))
"""


@pytest.mark.parametrize("mode", ["background", "inline"])
def test_the_writer_logs_the_result_so_the_sweep_never_imports_mlflow(tmp_path, monkeypatch, mode):
    """In the background mode the writer process logs the children, the model (while the sweep draws the plots)
    and the result: the sweep's own process never pays MLflow's import. Inline, the same code runs in it."""
    import json
    import subprocess
    import sys

    from mlflow import MlflowClient

    proc = subprocess.run(
        [sys.executable, "-c", PROBE, mode], cwd=tmp_path, capture_output=True, text=True, timeout=600, check=True
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["mlflow_imported"] is (mode == "inline")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # for the models:/ URI below
    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(out["parent"])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["lrsweep.model_uri"] == out["model_uri"] and out["model_uri"].startswith("models:/")
    assert {"plots", "tables", "config.yaml"} <= {a.path for a in client.list_artifacts(out["parent"])}
    assert "val_roc_auc" in parent.data.metrics and "test_roc_auc" in parent.data.metrics
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(out["model_uri"])
    assert model.metadata.metadata["threshold"] == pytest.approx(parent.data.metrics["threshold"])
