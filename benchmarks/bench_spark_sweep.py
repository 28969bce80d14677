"""Issue 13: a whole 15-trial `backend=spark` sweep against Spark's own TrainValidationSplit over 15 parameter maps,
side by side in one run (telco churn, local[2], tracking off), each case a fresh process timed from outside.

- `TrainValidationSplit`: what a Spark user writes by hand: a SparkSession, the table (lrsweep's bundled telco
  churn as pandas, converted), Imputer + StringIndexer + OneHotEncoder + VectorAssembler + StandardScaler fitted
  once on train + validation and cached (refitting them per map, inside the TVS, took ~100 s), a ParamGridBuilder
  of 15 maps over LogisticRegression (regParam 5 x elasticNetParam {0, 0.5, 1}, maxIter 100), trainRatio 0.75 (the
  same 60/20 row counts as lrsweep's split, its own random rows), parallelism 1 and 2; then the best model's test
  ROC AUC on the same test rows as lrsweep's.
- `lrsweep backend=spark search.n_trials=15 search.n_jobs=K tracking=off` for K = 1, 2.
- `TrainValidationSplit` over the very 15 configurations the n_jobs=1 sweep just fitted (its logged Spark
  parameters regParam, elasticNetParam, maxIter; its tol, standardization off, balanced weights as a weight column), so
  that both sides fit the same maps (the fixed grid above has weak-L1 maps that run all 100 iterations).

Printed: each case's wall (process start to exit), the ratio to TrainValidationSplit with the same parallelism
and to the faster one (the issue's target: a sweep with search.n_jobs=2 at most 0.7x), and ROC AUC: the best
configuration's validation figure (TrainValidationSplit's on its own random validation rows, so the test figure,
on the same rows for all, is the one to compare).
Asserts nothing (a benchmark, not a test).

Usage:  SPARK_LOCAL_IP=127.0.0.1 python benchmarks/bench_spark_sweep.py [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TVS = r"""
import json, sys, time
t0 = time.perf_counter()
from pyspark.sql import SparkSession
from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import Imputer, OneHotEncoder, StandardScaler, StringIndexer, VectorAssembler
from pyspark.ml.tuning import ParamGridBuilder, TrainValidationSplit

from lrsweep.config import CVConfig, DatasetConfig, SplitConfig
from lrsweep.data import load_table, split_table

parallelism = int(sys.argv[1])
spark = (SparkSession.builder.master("local[2]").appName("bench TVS").config("spark.ui.enabled", "false")
         .config("spark.sql.shuffle.partitions", "2").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
table = load_table(DatasetConfig())
split = split_table(table.y, SplitConfig(), CVConfig(), 42)
frame = table.X.copy()
frame["label"] = table.y.astype(float)
for c in table.categorical:
    frame[c] = frame[c].astype(object).where(frame[c].notna(), "(missing)")
sdf = spark.createDataFrame(frame.reset_index(drop=True).assign(_row=range(len(frame))))
trainval = sdf.where(sdf._row.isin([int(i) for i in split.trainval])).cache()
test = sdf.where(sdf._row.isin([int(i) for i in split.test])).cache()
num, cat = list(table.numeric), list(table.categorical)
stages = [Imputer(inputCols=num, outputCols=[f"{c}_i" for c in num], strategy="median"),
          StringIndexer(inputCols=cat, outputCols=[f"{c}_x" for c in cat], handleInvalid="keep"),
          OneHotEncoder(inputCols=[f"{c}_x" for c in cat], outputCols=[f"{c}_o" for c in cat]),
          VectorAssembler(inputCols=[f"{c}_i" for c in num] + [f"{c}_o" for c in cat], outputCol="raw"),
          StandardScaler(inputCol="raw", outputCol="features")]
features = Pipeline(stages=stages).fit(trainval)  # fitted once, as lrsweep does: the grid searches the model only
trainval, test = features.transform(trainval).cache(), features.transform(test).cache()
trainval.count(), test.count()
lr = LogisticRegression(maxIter=100)
maps = json.loads(sys.argv[2]) if len(sys.argv) > 2 else None
if maps is None:
    grid = (ParamGridBuilder().addGrid(lr.regParam, [1e-4, 1e-3, 1e-2, 1e-1, 1.0])
            .addGrid(lr.elasticNetParam, [0.0, 0.5, 1.0]).build())
else:  # lrsweep's own configurations, in Spark's names (balanced weights as a weight column)
    from pyspark.sql import functions as F
    pos = trainval.where("label = 1").count() / trainval.count()
    w = F.when(F.col("label") == 1, 0.5 / pos).otherwise(0.5 / (1 - pos))
    trainval = trainval.withColumn("w", w).cache()
    trainval.count()
    grid = [{getattr(lr, k): v for k, v in m.items()} for m in maps]
ev = BinaryClassificationEvaluator(metricName="areaUnderROC")
tvs = TrainValidationSplit(estimator=lr, estimatorParamMaps=grid, evaluator=ev,
                           trainRatio=0.75, parallelism=parallelism, seed=42)
t1 = time.perf_counter()
model = tvs.fit(trainval)
t2 = time.perf_counter()
print(f"setup {t1 - t0:.1f} s, TrainValidationSplit.fit {t2 - t1:.1f} s", file=sys.stderr)
print(json.dumps({"val": max(model.validationMetrics), "test": ev.evaluate(model.bestModel.transform(test))}))
spark.stop()
"""


def _run(cmd: list[str], cwd: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{done.stderr[-3000:]}")
    return wall, done.stdout


def tvs(parallelism: int, cwd: Path, maps: list[dict[str, object]] | None = None) -> tuple[float, tuple[float, float]]:
    wall, out = _run([sys.executable, "-c", TVS, str(parallelism), *([json.dumps(maps)] if maps else [])], cwd)
    got = json.loads(out.strip().splitlines()[-1])
    return wall, (got["val"], got["test"])


def sweep(jobs: int, cwd: Path) -> tuple[float, tuple[float, float]]:
    args = ["backend=spark", "search.n_trials=15", f"search.n_jobs={jobs}", "tracking=off", "progress=false",
            "study.resume=false", f"study.dir=studies-{jobs}"]  # fmt: skip
    wall, out = _run([sys.executable, "-m", "lrsweep.cli", *args], cwd)
    row = re.search(r"^\s*roc_auc\s+(\S+)\s+(\S+)", out, re.M)  # the summary: validation, test
    return wall, (float(row.group(1)), float(row.group(2)))


def swept_maps(cwd: Path) -> list[dict[str, object]]:
    """The 15 configurations the last search.n_jobs=1 sweep fitted, as Spark LogisticRegression parameters (its
    logged native names), for a TrainValidationSplit over exactly the same maps."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    (journal,) = (cwd / "studies-1").glob("*.journal")
    storage = JournalStorage(JournalFileBackend(str(journal)))
    (summary,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=summary.study_name, storage=storage).get_trials(deepcopy=False)
    maps = []
    for t in trials:
        logged = t.user_attrs["lrsweep_record"]["params"]
        m: dict[str, object] = {k: logged[f"spark.{k}"] for k in ("regParam", "elasticNetParam", "maxIter")}
        m |= {"tol": logged["tol"], "standardization": False}  # as lrsweep sets them (spark_params)
        m["weightCol"] = "w" if logged["class_weight"] == "balanced" else ""
        maps.append(m)
    return maps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    cases = {
        "TrainValidationSplit parallelism=1": lambda d: tvs(1, d),
        "TrainValidationSplit parallelism=2": lambda d: tvs(2, d),
        "lrsweep search.n_jobs=1": lambda d: sweep(1, d),
        "lrsweep search.n_jobs=2": lambda d: sweep(2, d),
        # the same 15 configurations on both sides: the maps the n_jobs=1 sweep just fitted
        "TVS over lrsweep's maps parallelism=1": lambda d: tvs(1, d, swept_maps(d)),
        "TVS over lrsweep's maps parallelism=2": lambda d: tvs(2, d, swept_maps(d)),
    }
    walls: dict[str, list[float]] = {k: [] for k in cases}
    aucs: dict[str, tuple[float, float]] = {}
    print(f"telco churn, local[2], 15 configurations; load average before {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.repeats):
            for name, run in cases.items():  # interleaved: a change of load hits every case
                wall, aucs[name] = run(Path(tmp))
                walls[name].append(wall)
                val, test = aucs[name]
                print(f"  run {r + 1} {name:<36} {wall:6.1f} s  ROC AUC val {val:.4f} test {test:.4f}", flush=True)
    med = {k: statistics.median(v) for k, v in walls.items()}
    best_tvs = min(med["TrainValidationSplit parallelism=1"], med["TrainValidationSplit parallelism=2"])
    print(f"load average after {os.getloadavg()[0]:.2f}; medians of {a.repeats}:")
    same_maps = min(med["TVS over lrsweep's maps parallelism=1"], med["TVS over lrsweep's maps parallelism=2"])
    for name, m in med.items():
        same = med[f"TrainValidationSplit parallelism={name[-1]}"]
        print(f"  {name:<38} {m:6.1f} s  {m / same:5.2f}x TVS same parallelism  {m / best_tvs:5.2f}x faster TVS  "
              f"{m / same_maps:5.2f}x faster TVS over the same maps  "
              f"ROC AUC val {aucs[name][0]:.4f} test {aucs[name][1]:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
