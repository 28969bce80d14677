"""``lrsweep export``: a real sweep of a preset exported, its bundle checked from the bundle alone (the MLflow
store deleted), its report looked at in Chromium, and nothing in it holding a planted credential."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lrsweep.errors import LrsweepError
from lrsweep.export.bundle import question_of
from tests.e2e_helpers import cli_in_process, mlflow_runs, run_cli
from tests.export.test_page import assert_renders, browser  # noqa: F401 -- the fixture

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Hunter2xyzExport"  # planted in the preset and on the command line; must appear in no byte written
PRESET = "churn_handin"
FAST = ["search.solvers=[lbfgs,liblinear]", "search.penalties=[l2,l1]"]


def test_a_presets_question_is_its_leading_comment():
    text = (
        "# @package _global_\n# Which model ranks\n# leavers best?\n#   lrsweep experiment=x\ndefaults: []\n# not this"
    )
    assert question_of(text) == "Which model ranks leavers best?"
    assert question_of(None) == "" and question_of("seed: 1\n") == ""


@dataclass
class Exported:
    cwd: Path
    bundle: Path
    parent: str
    trial: str
    test_metrics: dict[str, float]  # as MLflow recorded them, read before the store is deleted
    out: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    cwd = tmp_path_factory.mktemp("export")
    (cwd / "experiments").mkdir()
    course = (ROOT / "experiments" / "churn_course.yaml").read_text()
    preset = course.replace("churn_course", PRESET)
    preset += f"cluster:\n  spark_conf:\n    spark.hadoop.fs.s3a.secret.key: {SECRET}\n"
    (cwd / "experiments" / f"{PRESET}.yaml").write_text(preset)
    args = [f"experiment={PRESET}", "search.n_trials=4", *FAST, f"+cluster.spark_conf.s3_secret_key={SECRET}"]
    proc = cli_in_process(args, cwd)  # the sweep that is exported: the CLI's main() in this process
    assert proc.returncode == 0, proc.stderr[-3000:]
    parents, children = mlflow_runs(cwd, PRESET)
    (parent,) = parents
    test = {k[5:]: v for k, v in parent.data.metrics.items() if k.startswith("test_") and not k.endswith("_excess")}
    out = run_cli(["export", parent.info.run_id, "--out", "handin/bundle"], cwd)
    assert out.returncode == 0, out.stderr[-3000:]
    return Exported(cwd, cwd / "handin" / "bundle", parent.info.run_id, children[0].info.run_id, test, out)


@pytest.mark.slow
def test_the_bundle_holds_what_the_issue_lists(exported):
    b = exported.bundle
    for name in ("model/MLmodel", "config.yaml", "command.txt", "metrics.json", "versions.json", "requirements.txt"):
        assert (b / name).is_file(), name
    for name in ("data.json", "report.html", "report.pdf", "README.md", "data/test.parquet", "verify.py"):
        assert (b / name).is_file(), name
    assert (b / "report.pdf").read_bytes().startswith(b"%PDF")
    assert (b / "command.txt").read_text().startswith(f"lrsweep experiment={PRESET} search.n_trials=4")
    assert (b / "experiments" / f"{PRESET}.yaml").is_file()  # the preset the command names, beside it
    metrics = json.loads((b / "metrics.json").read_text())
    assert metrics["test"] == pytest.approx(exported.test_metrics, abs=0) and metrics["threshold_strategy"] == "f1"
    assert json.loads((b / "data.json").read_text())["fingerprint"]["rows"] == 7043
    assert "scikit-learn.version" in json.loads((b / "versions.json").read_text())
    assert any(line.startswith("scikit-learn==") for line in (b / "requirements.txt").read_text().splitlines())
    assert sorted(p.name for p in b.parent.iterdir()) == ["bundle"]  # no partial folder left beside it
    assert f"{exported.parent}" in exported.out.stdout and exported.out.stderr == ""


@pytest.mark.slow
def test_the_report_renders_in_chromium_offline_with_every_image(exported, browser, tmp_path):  # noqa: F811
    html = (exported.bundle / "report.html").read_text()
    assert "The course&#x27;s churn case: which regularised logistic regression" in html  # the preset's question
    assert "Of the rows predicted churn = Yes" in html  # precision in plain words, for this positive class
    assert_renders(browser, exported.bundle / "report.html", 6, tmp_path / "exported-report.png")


@pytest.mark.slow
def test_no_byte_of_the_bundle_holds_the_planted_secret(exported):
    leaks = [p for p in exported.bundle.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert not leaks
    assert "s3_secret_key=***" in (exported.bundle / "command.txt").read_text()
    assert "***" in (exported.bundle / "experiments" / f"{PRESET}.yaml").read_text()


@pytest.mark.slow
def test_export_refuses_a_trial_run_and_a_folder_that_is_not_empty(exported, monkeypatch):
    from lrsweep.export.bundle import main

    monkeypatch.chdir(exported.cwd)
    uri = ["--tracking-uri", f"sqlite:///{exported.cwd / 'mlflow.db'}"]
    with pytest.raises(LrsweepError, match=f"lrsweep export {exported.parent} --out DIR"):
        main([exported.trial, "--out", "other", *uri])
    assert not (exported.cwd / "other").exists()
    with pytest.raises(LrsweepError, match="exists and is not empty"):
        main([exported.parent, "--out", "handin/bundle", *uri])


@pytest.mark.slow
def test_a_failed_export_leaves_nothing_that_looks_finished(exported, monkeypatch):
    from lrsweep.export import bundle
    from lrsweep.recorded import load

    def broken(*_: Any, **__: Any) -> bool:
        raise LrsweepError("Chromium could not print report.pdf: boom", "fix")

    monkeypatch.setattr("lrsweep.export.page.write_pdf", broken)
    monkeypatch.chdir(exported.cwd)
    rec = load(exported.parent, f"sqlite:///{exported.cwd / 'mlflow.db'}")
    with pytest.raises(LrsweepError, match="boom"):
        bundle.export(rec, exported.cwd / "failed" / "bundle")
    assert list((exported.cwd / "failed").iterdir()) == []


@pytest.mark.slow
def test_the_bundle_alone_reproduces_the_test_metrics(exported, tmp_path):
    """Run last in this module: it deletes the MLflow store, then works from a copy of the bundle elsewhere."""
    (exported.cwd / "mlflow.db").unlink()
    shutil.rmtree(exported.cwd / "mlruns", ignore_errors=True)
    shutil.rmtree(exported.cwd / "lrsweep_studies")
    copy = tmp_path / "handed-in"
    shutil.copytree(exported.bundle, copy)
    probe = """
import json, mlflow, numpy as np, pandas as pd
from sklearn import metrics as m
meta = json.load(open("metrics.json"))
test = pd.read_parquet("data/test.parquet")
X, y = test.drop(columns=[meta["target"]]), (test[meta["target"]] == meta["labels"][1]).to_numpy().astype(int)
labels = np.asarray(mlflow.pyfunc.load_model("model").predict(X))
p = mlflow.sklearn.load_model("model").predict_proba(X)[:, 1]
yhat = (labels == meta["labels"][1]).astype(int)
print(json.dumps({"roc_auc": m.roc_auc_score(y, p), "log_loss": m.log_loss(y, p), "f1": m.f1_score(y, yhat),
                  "precision": m.precision_score(y, yhat), "recall": m.recall_score(y, yhat),
                  "tp": int(((yhat == 1) & (y == 1)).sum()), "labels": sorted(set(labels.tolist()))}))
"""
    probe += "\nimport runpy; runpy.run_path('verify.py', run_name='__main__')\n"  # then the bundle's own check
    env_free = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'nowhere' / 'x.db'}"}
    proc = subprocess.run([sys.executable, "-c", probe], cwd=copy, capture_output=True, text=True, env=_env(env_free))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[0])
    assert got.pop("labels") == ["No", "Yes"]  # the model answers in the data's labels
    want = exported.test_metrics
    assert got == pytest.approx({k: want[k] for k in got}, abs=1e-12)
    assert "all test metrics recomputed from the bundle" in proc.stdout  # verify.py agrees, exit status 0


def _env(extra: dict[str, str]) -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONWARNINGS": "ignore", **extra}
