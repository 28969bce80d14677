"""A 10-trial sweep on generated CTR tables of growing size, per backend: time per trial against rows, and how
close the best model's test log loss comes to the table's Bayes-optimal one.

    python benchmarks/bench_ctr.py --backend spark --rows 100000 1000000 10000000
    python benchmarks/bench_ctr.py --backend sklearn --rows 100000 1000000

The config is composed exactly as the command line does it (Hydra), from these overrides:
``dataset=ctr dataset.rows=N search=l2 search.class_weight=[none] search.max_iter=100 search.n_trials=10
tracking=off`` (+ ``search.solvers=[lbfgs]`` on scikit-learn, ``cluster.master=local[2]
backend.spark_read_min_mb=0`` on Spark, so every size is read by Spark itself). Tables come from the cache
(generated on first use; ``$LRSWEEP_CACHE``). A fresh study per run, in a temporary folder.
Prints one JSON line per size, then a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from optuna.trial import TrialState

import lrsweep
from lrsweep.cli import register_configs, to_config
from lrsweep.datasets.ctr import ensure_ctr_table, read_meta
from lrsweep.sweep import run_sweep

CONF = str(Path(lrsweep.__file__).parent / "conf")


def finished_records(journal: str) -> list[dict]:
    """The lrsweep record of every COMPLETE trial in a study journal (start/end times, fit seconds, iterations)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(journal))
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    return [t.user_attrs["lrsweep_record"] for t in study.get_trials(deepcopy=False, states=[TrialState.COMPLETE])]


def run(backend: str, rows: int, trials: int, max_iter: int, study_dir: str) -> dict:
    overrides = [
        f"backend={backend}",
        "dataset=ctr",
        f"dataset.rows={rows}",
        "search=l2",
        "search.class_weight=[none]",
        f"search.max_iter={max_iter}",
        f"search.n_trials={trials}",
        "tracking=off",
        "progress=false",
        f"study.dir={study_dir}",
    ]
    if backend == "sklearn":
        overrides.append("search.solvers=[lbfgs]")
    else:
        overrides += ["cluster.master='local[2]'", "backend.spark_read_min_mb=0"]
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        cfg = to_config(compose(config_name="config", overrides=overrides))
    t0 = time.perf_counter()
    result = run_sweep(cfg, progress=False)
    wall = time.perf_counter() - t0
    records = finished_records(result.storage)  # every finished trial, also those of a resumed run
    per_trial = [(r["end_ms"] - r["start_ms"]) / 1000 for r in records]
    per_iter = [r["metrics"]["fit_seconds"] / r["metrics"]["n_iter"] for r in records if r["metrics"]["n_iter"]]
    bayes = result.bayes_metrics or {}
    meta = read_meta(ensure_ctr_table(rows))
    return {
        "backend": backend,
        "rows": rows,
        "trials": len(per_trial),  # finished in the study (a resumed run counts the earlier ones too)
        "setup_s": round(result.phases.get("setup", float("nan")), 1),
        "trial_median_s": round(statistics.median(per_trial), 2),
        "trial_mean_s": round(statistics.fmean(per_trial), 2),
        "trial_max_s": round(max(per_trial), 2),
        "iterations_median": statistics.median(r["metrics"]["n_iter"] for r in records),
        "fit_s_per_iteration_median": round(statistics.median(per_iter), 3),
        "refit_test_s": round(result.phases.get("refit_and_test", float("nan")), 1),
        "wall_s": round(wall, 1),
        "best": {k: result.best_params.get(k) for k in ("C", "penalty")},
        "test_log_loss": round(result.test_metrics["log_loss"], 5),
        "bayes_test_log_loss": round(bayes.get("log_loss", float("nan")), 5),
        "test_roc_auc": round(result.test_metrics["roc_auc"], 5),
        "bayes_test_roc_auc": round(bayes.get("roc_auc", float("nan")), 5),
        "table_bayes_log_loss": round(meta["bayes_log_loss"], 5),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("sklearn", "spark"), default="spark")
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument(
        "--study-dir",
        type=Path,
        help="keep each size's study (journal) in DIR/<backend>-<rows> instead of a temporary folder: a run cut "
        "short still has its finished trials' times, and running the same command again resumes it",
    )
    args = ap.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    register_configs()
    out = []
    for rows in args.rows:
        t0 = time.perf_counter()
        ensure_ctr_table(rows)
        gen = time.perf_counter() - t0
        if args.study_dir:
            kept = args.study_dir / f"{args.backend}-{rows}"
            kept.mkdir(parents=True, exist_ok=True)
            rec = run(args.backend, rows, args.trials, args.max_iter, str(kept))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                rec = run(args.backend, rows, args.trials, args.max_iter, tmp)
        rec["table_ready_s"] = round(gen, 1)
        print(json.dumps(rec), flush=True)
        out.append(rec)
    print()
    print(
        "| backend | rows | setup s | trial median s | trial mean s | test log loss | Bayes log loss | excess "
        "| test ROC AUC | Bayes ROC AUC | iterations | fit s / iteration |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in out:
        print(
            f"| {r['backend']} | {r['rows']:,} | {r['setup_s']} | {r['trial_median_s']} | {r['trial_mean_s']} "
            f"| {r['test_log_loss']:.4f} | {r['bayes_test_log_loss']:.4f} "
            f"| {r['test_log_loss'] - r['bayes_test_log_loss']:+.4f} | {r['test_roc_auc']:.4f} "
            f"| {r['bayes_test_roc_auc']:.4f} | {r['iterations_median']:g} | {r['fit_s_per_iteration_median']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
