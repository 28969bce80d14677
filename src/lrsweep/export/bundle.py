"""``lrsweep export RUN_ID --out DIR``: a sweep's result as a folder to hand in.

The bundle holds, from the sweep's parent run: the model (MLflow format, ``mlflow.pyfunc.load_model("model")``),
``config.yaml``, ``command.txt`` (the command that runs the sweep again; with ``experiments/<preset>.yaml`` when a
preset was used), ``metrics.json``, ``versions.json`` and the model's pinned ``requirements.txt``, ``data.json``
(the data fingerprint), the plots and coefficients, and the one-page report (``report.html``; ``report.pdf`` when a
headless Chromium is found). The test rows go in too (``data/test.parquet``: the features and the target as the
data labels it), with ``verify.py``, which recomputes the test metrics from the model and those rows alone.

The folder is written beside ``DIR`` under a temporary name and renamed when complete: an export that fails or
is interrupted leaves no ``DIR`` that looks finished. Everything in it comes from what the sweep logged (already
redacted) or is redacted here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lrsweep.errors import LrsweepError, OneLineParser
from lrsweep.recorded import Recorded

__all__ = ["export", "main", "question_of", "TEST_ROWS_MAX"]

log = logging.getLogger("lrsweep")
TEST_ROWS_MAX = 1_000_000  # larger test parts are left out of the bundle (a note in its README says so)
_IMAGES = (
    "roc_curve", "pr_curve", "confusion_matrix", "metric_vs_threshold", "optimization_history", "param_importances",
)  # fmt: skip

# the end of both verify scripts: every recomputed figure against the recorded one
_VERIFY_COMPARE = """bad = 0
for name, value in again.items():
    want = recorded["test"][name]
    ok = abs(float(value) - want) <= 1e-9
    bad += not ok
    print(f"{name:<20} recorded {want:<12.6g} recomputed {float(value):<12.6g} {'ok' if ok else 'DIFFERS'}")
print("all test metrics recomputed from the bundle" if not bad else f"{bad} metric(s) differ")
sys.exit(1 if bad else 0)
"""

VERIFY = (
    '''"""Recompute this bundle's test metrics from its model and test rows alone: python verify.py"""

import json
import sys

import mlflow
import numpy as np
import pandas as pd
from sklearn import metrics as m

recorded = json.load(open("metrics.json"))
test = pd.read_parquet("data/test.parquet")
target, (negative, positive) = recorded["target"], recorded["labels"]
X, y = test.drop(columns=[target]), (test[target].astype(str) == positive).to_numpy().astype(int)
predicted = np.asarray(mlflow.pyfunc.load_model("model").predict(X)).astype(str)  # the labels, at the threshold
yhat = (predicted == positive).astype(int)
tn, fp, fn, tp = m.confusion_matrix(y, yhat, labels=[0, 1]).ravel()
again = {"accuracy": m.accuracy_score(y, yhat), "precision": m.precision_score(y, yhat, zero_division=0),
         "recall": m.recall_score(y, yhat), "f1": m.f1_score(y, yhat), "specificity": tn / (tn + fp),
         "tp": tp, "fp": fp, "tn": tn, "fn": fn}
if recorded["flavour"] == "sklearn":  # the scores too: ranking metrics and log loss
    p = mlflow.sklearn.load_model("model").predict_proba(X)[:, 1]
    again |= {"roc_auc": m.roc_auc_score(y, p), "pr_auc": m.average_precision_score(y, p),
              "log_loss": m.log_loss(y, p, labels=[0, 1])}
'''
    + _VERIFY_COMPARE
)


VERIFY_CLASSES = (
    '''"""Recompute this bundle's test metrics from its model and test rows alone: python verify.py"""

import json
import sys

import mlflow
import numpy as np
import pandas as pd
from sklearn import metrics as m

recorded = json.load(open("metrics.json"))
test = pd.read_parquet("data/test.parquet")
target, classes = recorded["target"], recorded["labels"]  # a target of more than two classes
X, y = test.drop(columns=[target]), test[target].astype(str).to_numpy()
predicted = np.asarray(mlflow.pyfunc.load_model("model").predict(X)).astype(str)  # the labels the model gives
codes = {c: i for i, c in enumerate(classes)}
yc, pc = np.array([codes[v] for v in y]), np.array([codes[v] for v in predicted])
labels = list(range(len(classes)))
again = {"accuracy": m.accuracy_score(yc, pc), "balanced_accuracy": m.balanced_accuracy_score(yc, pc)}
for avg, suffix in (("macro", ""), ("weighted", "_weighted")):
    again |= {f"precision{suffix}": m.precision_score(yc, pc, labels=labels, average=avg, zero_division=0),
              f"recall{suffix}": m.recall_score(yc, pc, labels=labels, average=avg, zero_division=0),
              f"f1{suffix}": m.f1_score(yc, pc, labels=labels, average=avg, zero_division=0)}
if recorded["flavour"] == "sklearn":  # the probabilities too: ranking metrics and log loss
    p = mlflow.sklearn.load_model("model").predict_proba(X)
    again |= {"roc_auc": m.roc_auc_score(yc, p, multi_class="ovr", average="macro", labels=labels),
              "log_loss": m.log_loss(yc, p, labels=labels)}
confusion = m.confusion_matrix(yc, pc, labels=labels).tolist()
if recorded.get("test_confusion"):
    again["confusion matrix"] = 0.0 if confusion == recorded["test_confusion"] else 1.0
    recorded["test"]["confusion matrix"] = 0.0  # 0: the same counts in every cell
'''
    + _VERIFY_COMPARE
)


def question_of(preset_text: str | None) -> str:
    """A preset's question: its leading comment lines, without the package line and the example commands."""
    if not preset_text:
        return ""
    lines = []
    for line in preset_text.splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if text.startswith("@package") or text.startswith("lrsweep "):
            continue
        lines.append(text)
    return " ".join(t for t in lines if t)


def _download(client: Any, run_id: str, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, "", str(into)))


def _metrics(run: Any) -> tuple[dict[str, float], dict[str, float]]:
    val = {k[4:]: v for k, v in run.data.metrics.items() if k.startswith("val_")}
    test = {k[5:]: v for k, v in run.data.metrics.items() if k.startswith("test_") and not k.endswith("_excess")}
    return val, test


def _test_rows(rec: Recorded, cfg: Any, out: Path) -> str | None:
    """data/test.parquet (features and target labels), or the reason it is not in the bundle."""
    from lrsweep.data import open_data
    from lrsweep.recorded import data_changes

    recorded = rec.data.get("fingerprint") or {}
    if "sha256_of" in recorded:  # Spark read the Parquet input itself: its fingerprint is of the files' footers
        return "the sweep's Spark backend read the data itself (large data): export its test part with Spark"
    rows = rec.data.get("rows") or {}
    if int(rows.get("test", 0)) > TEST_ROWS_MAX:
        return f"the test part has {rows['test']} rows (more than {TEST_ROWS_MAX})"
    try:
        table, split = open_data(cfg.dataset, cfg.split, cfg.cv, cfg.seed).pandas()
    except LrsweepError as exc:
        return f"the data could not be read again ({exc.problem})"
    changes = data_changes(recorded, table.fingerprint)
    if changes:
        return f"the data changed since the sweep ({'; '.join(changes)})"
    test = table.X.iloc[split.test].reset_index(drop=True)
    labels = table.classes or [table.negative or "0", table.positive]  # the labels of y's codes
    test[table.target] = [labels[int(v)] for v in table.y[split.test]]
    (out / "data").mkdir(exist_ok=True)
    test.to_parquet(out / "data" / "test.parquet", index=False)
    return None


def _model_uri(rec: Recorded) -> str:
    """The sweep's logged model, or one line on why there is no bundle to make."""
    if not rec.is_sweep:
        raise LrsweepError(
            f"run {rec.run.info.run_id} is a trial of sweep {rec.parent.info.run_id}: a bundle holds a sweep's model",
            f"export the sweep: lrsweep export {rec.parent.info.run_id} --out DIR",
        )
    uri = rec.parent.data.tags.get("lrsweep.model_uri")
    if not uri:
        raise LrsweepError(
            f"sweep {rec.parent.info.run_id} logged no model (it ran with tracking.log_model=false, or did not finish)",
            "run the sweep again with tracking.log_model=true (the default), then export that run",
        )
    return str(uri)


def _copy_logged(rec: Recorded, model_uri: str, work: Path) -> tuple[Path, str | None]:
    """The model and what the sweep logged, into ``work``; returns the download folder and the preset's text."""
    import mlflow

    from lrsweep.redact import redact_yaml

    logged = _download(rec.client, rec.parent.info.run_id, work / ".logged")
    if model_uri.startswith("models:/m-"):  # a logged model: its artifacts' place, from the run's own store
        model_uri = rec.client.get_logged_model(model_uri.removeprefix("models:/")).artifact_location
    model = mlflow.artifacts.download_artifacts(
        artifact_uri=model_uri, dst_path=str(work / ".model"), tracking_uri=rec.tracking_uri
    )
    shutil.move(model, work / "model")
    if (work / "model" / "requirements.txt").is_file():
        shutil.copy(work / "model" / "requirements.txt", work / "requirements.txt")
    for name in ("config.yaml", "data.json", "coefficients.csv", "summary.json"):
        if (logged / name).is_file():
            shutil.copy(logged / name, work / name)
    if (logged / "plots").is_dir():
        shutil.copytree(logged / "plots", work / "plots")
    preset = logged / "experiments" / f"{rec.preset}.yaml"
    if not rec.preset or not preset.is_file():
        return logged, None
    text = redact_yaml(preset.read_text(encoding="utf-8"))
    (work / "experiments").mkdir()
    (work / "experiments" / preset.name).write_text(text, encoding="utf-8")
    return logged, text


def _page(rec: Recorded, cfg: Any, work: Path, metrics: dict[str, Any], question: str, command: str) -> Any:
    """The report's inputs, from the record and the files already in the bundle."""
    import pandas as pd

    from lrsweep.export.page import PageInputs
    from lrsweep.recorded import model_params_of

    fp = rec.data.get("fingerprint") or {}
    labels = list(metrics["labels"])
    classes = labels if len(labels) > 2 else []
    negative, positive = ("", "") if classes else labels
    coefficients = pd.read_csv(work / "coefficients.csv") if (work / "coefficients.csv").is_file() else None
    images = {n: (work / "plots" / f"{n}.png") for n in _IMAGES}
    objective = metrics["objective"]
    return PageInputs(
        title=rec.preset or rec.study, question=question, dataset=cfg.dataset.label, source=str(fp.get("source", "")),
        target=str(cfg.dataset.target), positive=positive, negative=negative, rows=dict(rec.data.get("rows") or {}),
        positive_rate=float(fp.get("positive_rate", math.nan)), features=dict(rec.data.get("features") or {}),
        backend=cfg.backend.name, objective=objective,
        best_value=float(metrics["validation"].get(objective, math.nan)), threshold=metrics["threshold"],
        threshold_strategy=cfg.threshold.strategy,
        threshold_settings={k: v for k, v in dataclasses.asdict(cfg.threshold).items() if k != "strategy"},
        val_metrics=metrics["validation"], test_metrics=metrics["test"],
        best_params=model_params_of(dict(rec.trial.data.params)), trials=dict(metrics["trials"]),
        coefficients=coefficients, images={n: p.read_bytes() for n, p in images.items() if p.is_file()},
        run_id=rec.parent.info.run_id,
        created=time.strftime("%Y-%m-%d %H:%M", time.localtime(rec.parent.info.start_time / 1000)),
        versions=dict(rec.environment), command=command, classes=classes,
        class_rows={str(k): int(v) for k, v in (fp.get("class_rows") or {}).items()},
        of_class=metrics.get("of_class"), confusion=[list(map(int, r)) for r in metrics.get("test_confusion") or []],
    )  # fmt: skip


def _metrics_record(rec: Recorded, cfg: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """metrics.json: what the sweep found, and what verify.py needs to check it (target, labels, flavour)."""
    parent = rec.parent
    val, test = _metrics(parent)
    labels = (rec.data.get("fingerprint") or {}).get("labels") or ["0", str(cfg.dataset.positive or "1")]
    decision = {}
    if len(labels) > 2:  # a multi-class target: the class a threshold is on (null: the most probable class)
        # (summary.json is an artifact: without artifacts, the config says which class a threshold is on)
        of_class = summary.get("of_class", cfg.threshold.of_class)
        decision = {"of_class": of_class, "test_confusion": summary.get("test_confusion") or []}
    return decision | {
        "objective": parent.data.params.get("objective.metric", cfg.objective.metric),
        "best_trial": rec.trial_number, "threshold": float(parent.data.metrics.get("threshold", math.nan)),
        "threshold_strategy": cfg.threshold.strategy, "target": str(cfg.dataset.target), "labels": list(labels),
        "flavour": cfg.backend.name, "validation": val, "test": test, "trials": summary.get("states", {}),
        "run_id": parent.info.run_id,
    }  # fmt: skip


def export(rec: Recorded, out: Path, *, pdf: bool = True, force: bool = False) -> list[str]:
    """Write the bundle of ``rec`` (a sweep's parent run) to ``out``; returns the lines to print."""
    from lrsweep.export.page import render, write_pdf
    from lrsweep.recorded import config_of

    model_uri = _model_uri(rec)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise LrsweepError(f"{out} exists and is not empty", "choose another --out, or add --force to replace it")
    cfg = config_of(rec.config)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        logged, preset_text = _copy_logged(rec, model_uri, work)
        summary = json.loads((logged / "summary.json").read_text()) if (logged / "summary.json").is_file() else {}
        shutil.rmtree(logged)
        command = rec.command() or (f"lrsweep experiment={rec.preset}" if rec.preset else "lrsweep")
        metrics = _metrics_record(rec, cfg, summary)
        _write(work / "command.txt", command + "\n")
        _write(work / "versions.json", json.dumps(rec.environment, indent=2) + "\n")
        _write(work / "metrics.json", json.dumps(metrics, indent=2, default=str) + "\n")
        missing_rows = _test_rows(rec, cfg, work)
        if missing_rows is None:
            _write(work / "verify.py", VERIFY if len(metrics["labels"]) == 2 else VERIFY_CLASSES)
        _write(work / "report.html", render(_page(rec, cfg, work, metrics, question_of(preset_text), command)))
        printed = pdf and write_pdf(work / "report.html", work / "report.pdf")
        _write(work / "README.md", _readme(rec, command, missing_rows, printed))
        shutil.rmtree(work / ".model", ignore_errors=True)
        _usual_modes(work)  # mkdtemp and mkstemp made them private
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    lines = [f"lrsweep export: sweep run {rec.parent.info.run_id} ({rec.study}) -> {out}/"]
    lines.append(f"  model/ (mlflow.pyfunc.load_model), report.html{', report.pdf' if printed else ''}, metrics.json")
    lines.append(f"  reproduce the sweep with: {command}")
    if missing_rows:
        lines.append(f"  no test rows in the bundle: {missing_rows}")
    elif pdf and not printed:
        lines.append("  no report.pdf: no headless Chromium found (install chromium, or set LRSWEEP_CHROMIUM)")
    return lines


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _usual_modes(folder: Path) -> None:
    """Folders and files with the modes the umask gives new ones."""
    mask = os.umask(0)
    os.umask(mask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def _readme(rec: Recorded, command: str, missing_rows: str | None, printed: bool) -> str:
    preset = f"experiments/{rec.preset}.yaml" if rec.preset else None
    rows = (
        "- `data/test.parquet`: the test rows (features and the target), and `verify.py`, which recomputes the test "
        "metrics from `model/` and those rows alone: `python verify.py`"
        if missing_rows is None
        else f"- no test rows: {missing_rows}"
    )
    where = f" (from a folder holding `{preset}`, included here)" if preset else ""
    return f"""# {rec.preset or rec.study}: an lrsweep result

Exported from MLflow run `{rec.parent.info.run_id}` (experiment `{rec.experiment}`).

- `report.html`{" (and `report.pdf`)" if printed else ""}: the one-page report
- `model/`: the best model in MLflow format: `mlflow.pyfunc.load_model("model").predict(rows)` answers in the
  data's labels at the chosen threshold; `requirements.txt`: the packages it needs, pinned
- `metrics.json`: validation and test metrics, the threshold and how it was chosen
- `config.yaml`: every setting of the sweep (credentials masked); `data.json`: the data's fingerprint
- `versions.json`: the versions it ran with; `plots/`, `coefficients.csv`: the figures and the coefficients
{rows}
- `command.txt`: the command that runs the sweep again{where}:

      {command}

  and `lrsweep reproduce {rec.parent.info.run_id}` checks it against the record (with the MLflow store at hand).
"""


# -- the command ----------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="lrsweep export",
        description="Write a self-contained bundle of a logged sweep: model, config, command, metrics, report.",
    )
    p.add_argument("run_id", metavar="RUN_ID", help="the sweep's parent run (see `lrsweep compare`)")
    p.add_argument("--out", metavar="DIR", required=True, help="the folder to write (must not exist, or be empty)")
    p.add_argument(
        "--tracking-uri", metavar="URI", help="the MLflow store (default: MLFLOW_TRACKING_URI, else ./mlflow.db)"
    )
    p.add_argument("--no-pdf", action="store_true", help="write report.html only (no headless Chromium)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    return p


def main(argv: Sequence[str]) -> int:
    from lrsweep.recorded import load

    args = _parser().parse_args(list(argv))
    rec = load(args.run_id, args.tracking_uri, hint="lrsweep export")
    for line in export(rec, Path(args.out), pdf=not args.no_pdf, force=args.force):
        print(line, flush=True)
    return 0
