"""Spark backend on telco churn, local[2]: what a trial costs beyond a bare Spark fit, and the binning error.

Prints figures and asserts nothing (benchmarks are scripts, never tests).

- session start and backend setup (data read once, preprocessing fitted, frames cached and materialised);
- per configuration, medians over --repeats runs, in alternating order on the SAME cached frames:
    trial (exact):  SparkBackend.evaluate, held-out part collected (what telco gets: 1,409 rows <= exact_max_rows)
    trial (binned): SparkBackend.evaluate with exact_max_rows=0 (what a large held-out part gets)
    bare fit:       LogisticRegression(**spark_params(...)).fit(cached fit frame)
    bare fit+eval:  the same fit + BinaryClassificationEvaluator(areaUnderROC) on the cached held-out frame
  and the ratio trial / bare fit+eval (target: within 1.2x);
- binning error: ROC AUC, PR AUC and log loss of the binned curve against the exact curve of the same fit,
  the bound auc_binning_bound, and the exact Spark figures against the scikit-learn backend's.

Run: .venv/bin/python benchmarks/bench_spark.py [--repeats 5] [--master local[2]]
The machine may be shared: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from lrsweep.backends.sklearn import SklearnBackend
from lrsweep.backends.spark import FEATURES, LABEL, SparkBackend, SparkConfig, auc_binning_bound, spark_params
from lrsweep.clusters import LocalCluster
from lrsweep.config import CVConfig, DatasetConfig, SplitConfig
from lrsweep.data import open_data
from lrsweep.metrics import area_metrics
from lrsweep.space import ModelParams

TELCO = DatasetConfig(name="telco_churn", target="churn", positive="Yes")
# the sweep's defaults: max_iter 1000, tol 1e-4
CONFIGS = {
    "l2 C=1": ModelParams(1.0, 0.0, "l2", None, "none", 1000, 1e-4),
    "l1 C=0.05 balanced": ModelParams(0.05, 1.0, "l1", None, "balanced", 1000, 1e-4),
    "elasticnet C=0.5 r=0.5": ModelParams(0.5, 0.5, "elasticnet", None, "none", 1000, 1e-4),
    "none": ModelParams(float("inf"), 0.0, "none", None, "none", 1000, 1e-4),
}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    print(f"load average (1, 5, 15 min) before: {load()}")

    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.evaluation import BinaryClassificationEvaluator

    cluster = LocalCluster(master=args.master, spark_conf={"spark.ui.enabled": "false"})
    backend = SparkBackend(SparkConfig(), cluster=cluster)
    t0 = time.perf_counter()
    backend.prepare(open_data(TELCO, SplitConfig(), CVConfig(), 42))
    print(
        f"setup {time.perf_counter() - t0:.1f} s: session start {backend.timings['session']:.1f} s, "
        f"data + preprocessing + cache {backend.timings['data_and_preprocessing']:.1f} s"
    )
    fold = backend._folds[0]
    print(
        f"cached frames: fit {fold.n_fit} rows / {fold.fit.rdd.getNumPartitions()} partition(s), "
        f"held-out {fold.n_held} rows"
    )
    evaluator = BinaryClassificationEvaluator(rawPredictionCol="rawPrediction", labelCol=LABEL)

    def trial(p: ModelParams, binned: bool) -> tuple[float, object]:
        backend.settings.exact_max_rows = 0 if binned else SparkConfig.exact_max_rows
        t = time.perf_counter()
        ev = backend.evaluate(p)
        return time.perf_counter() - t, ev

    def bare(p: ModelParams, with_eval: bool) -> float:
        t = time.perf_counter()
        model = LogisticRegression(featuresCol=FEATURES, labelCol=LABEL, **spark_params(p, fold.n_fit)).fit(fold.fit)
        if with_eval:
            evaluator.evaluate(model.transform(fold.held))
        return time.perf_counter() - t

    reference = SklearnBackend()
    reference.prepare(open_data(TELCO, SplitConfig(), CVConfig(), 42))

    trial(CONFIGS["l2 C=1"], False)  # warm-up: JIT and code generation, not counted
    bare(CONFIGS["l2 C=1"], True)
    print(
        f"\n{'configuration':24} {'iters':>5} {'trial exact':>11} {'trial binned':>12} {'bare fit':>9} "
        f"{'bare fit+eval':>13} {'exact/bare':>10} {'binned/bare':>11}"
    )
    errors = []
    for name, p in CONFIGS.items():
        times: dict[str, list[float]] = {"exact": [], "binned": [], "fit": [], "fit+eval": []}
        evs = {}
        for r in range(args.repeats):
            order = ["exact", "binned", "fit", "fit+eval"]
            for kind in order[r % 4 :] + order[: r % 4]:  # rotate the order: load drifts over a run
                if kind in ("exact", "binned"):
                    dt, evs[kind] = trial(p, kind == "binned")
                else:
                    dt = bare(p, kind == "fit+eval")
                times[kind].append(dt)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(
            f"{name:24} {evs['exact'].fit.n_iter:>5} {med['exact']:>10.2f}s {med['binned']:>11.2f}s "
            f"{med['fit']:>8.2f}s {med['fit+eval']:>12.2f}s {med['exact'] / med['fit+eval']:>9.2f}x "
            f"{med['binned'] / med['fit+eval']:>10.2f}x"
        )
        solver = "lbfgs" if p.l1_ratio == 0 else "saga"
        sk = reference.evaluate(ModelParams(p.C, p.l1_ratio, p.penalty, solver, p.class_weight, 100_000, 1e-10))
        exact, binned, ref = (area_metrics(e.curve) for e in (evs["exact"], evs["binned"], sk))
        errors.append(
            (
                name,
                binned["roc_auc"] - exact["roc_auc"],
                auc_binning_bound(evs["binned"].curve),
                binned["pr_auc"] - exact["pr_auc"],
                evs["binned"].log_loss - evs["exact"].log_loss,
                len(evs["binned"].curve.thresholds) - 1,
                exact["roc_auc"] - ref["roc_auc"],
                evs["exact"].log_loss - sk.log_loss,
            )
        )
    backend.settings.exact_max_rows = SparkConfig.exact_max_rows

    print(f"\nbinning error on the validation part ({fold.n_held} rows, {backend.settings.bins} bins), same fit:")
    print(
        f"{'configuration':24} {'dROC AUC':>10} {'bound':>9} {'dPR AUC':>10} {'dlog loss':>10} {'bins used':>9}"
        f"   | Spark exact - sklearn (tol 1e-10): {'dROC AUC':>9} {'dlog loss':>10}"
    )
    for name, d_auc, bound, d_pr, d_ll, used, s_auc, s_ll in errors:
        print(
            f"{name:24} {d_auc:>10.2e} {bound:>9.2e} {d_pr:>10.2e} {d_ll:>10.2e} {used:>9}"
            f"   | {'':35} {s_auc:>9.2e} {s_ll:>10.2e}"
        )
    backend.close()
    reference.close()
    print(f"\nload average after: {load()}")


if __name__ == "__main__":
    main()
