"""Concurrent Spark trials: the speed-up of 1, 2 and 4 trials at once, on local[2] and on a standalone cluster.

For each cluster and each K in ``--jobs``: one ``backend=spark`` sweep of ``--trials`` trials on telco churn with
``search.n_jobs=K`` (tracking off, a fresh study folder, the same seed), run in this process. Printed per sweep:
the trial phase's wall time (``SweepResult.phases['trials']``), the speed-up against K=1 on the same cluster, the
per-trial times (each trial's own wall, which grows when trials share the cores), their median, the best
validation ROC AUC, and what the plan predicted for the trial phase with search.n_jobs=K (one calibration of
telco, measured first and cached; random sampling, so the plan knows every trial's configuration). A JSON line
per sweep, then a Markdown table. Asserts nothing (a benchmark, not a test).

Clusters (``--clusters``):
  local       local[2] (this machine's two cores)
  standalone  a Spark standalone master + 2 workers of 1 core each on 127.0.0.1 (tests/spark_cluster.py: run
              with the repository root on PYTHONPATH)

Run: SPARK_LOCAL_IP=127.0.0.1 PYTHONPATH=src:. python benchmarks/bench_concurrency.py [--jobs 1 2 4] [--trials 12]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir

import lrsweep
from lrsweep.cli import register_configs, to_config
from lrsweep.planning.calibrate import calibrate
from lrsweep.planning.predict import predict_sweep
from lrsweep.sweep import run_sweep

CONF = str(Path(lrsweep.__file__).parent / "conf")


@contextlib.contextmanager
def cluster(name: str) -> Iterator[list[str]]:
    if name == "local":
        yield ["cluster=local", "cluster.master='local[2]'"]
        return
    from tests.spark_cluster import standalone_cluster

    with standalone_cluster(workers=2, cores_per_worker=1) as c:
        yield ["cluster=standalone", f"cluster.master={c.master}"]


def sweep(cluster_overrides: list[str], jobs: int, trials: int, seed: int, cache: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-concurrency-") as tmp:
        overrides = [
            "backend=spark",
            *cluster_overrides,
            "dataset=telco_churn",
            f"seed={seed}",
            f"search.n_trials={trials}",
            f"search.n_jobs={jobs}",
            "search.sampler=random",  # every trial's configuration known to the plan in advance
            "tracking=off",
            "progress=false",
            f"study.dir={tmp}",
            f"plan.calibration.cache_dir={cache}",
        ]
        with initialize_config_dir(version_base="1.3", config_dir=CONF):
            cfg = to_config(compose(config_name="config", overrides=overrides))
        # what `lrsweep plan` predicts for the trials (the calibration measured once, on this machine's local[1]
        # and local[2], then read from the cache; the standalone cluster's cores count as this machine's)
        cal = calibrate(cfg)
        predicted = predict_sweep(cfg, cal, rows=cal.rows, cores=2).trials
        result = run_sweep(cfg, progress=False)
    per_trial = [round(s, 2) for s in result.trial_seconds]
    return {
        "jobs": jobs,
        "trials_wall": result.phases.get("trials"),
        "setup": result.phases.get("setup"),
        "per_trial": per_trial,
        "per_trial_median": round(statistics.median(per_trial), 2),
        "per_trial_sum": round(sum(per_trial), 1),
        "best": result.best_value,
        "predicted_trials": [round(predicted.low, 1), round(predicted.mid, 1), round(predicted.high, 1)],
        "overlap": cal.overlap,
    }


def in_own_process(cluster_overrides: list[str], jobs: int, trials: int, seed: int, cache: str) -> dict[str, Any]:
    """:func:`sweep` in a fresh process, as a user's sweep always is (a sweep after another in one process finds
    Spark's JVM warm: the first sweep alone would pay the cold start in its trials)."""
    job = json.dumps([cluster_overrides, jobs, trials, seed, cache])
    out = subprocess.run([sys.executable, __file__, "--one", job], check=True, capture_output=True, text=True)
    rec: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return rec


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":  # one sweep, run by in_own_process
        register_configs()
        print(json.dumps(sweep(*json.loads(sys.argv[2]))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clusters", nargs="+", choices=["local", "standalone"], default=["local", "standalone"])
    ap.add_argument("--jobs", nargs="+", type=int, default=[1, 2, 4])
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    register_configs()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-concurrency-cache-") as cache:
        for name in args.clusters:
            with cluster(name) as overrides:
                for k in args.jobs:
                    r = in_own_process(overrides, k, args.trials, args.seed, cache) | {"cluster": name}
                    print(json.dumps(r), flush=True)
                    rows.append(r)
    print()
    print(
        "| cluster | trials at once | trial phase s | speed-up | plan's trials s (range) | trial median s "
        "| sum of trial walls s | best val ROC AUC |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        base = next(b for b in rows if b["cluster"] == r["cluster"] and b["jobs"] == min(args.jobs))
        speed = base["trials_wall"] / r["trials_wall"] if r["trials_wall"] else float("nan")
        lo, mid, hi = r["predicted_trials"]
        print(
            f"| {r['cluster']} | {r['jobs']} | {r['trials_wall']:.1f} | {speed:.2f}x | {lo:.0f} - **{mid:.0f}** - "
            f"{hi:.0f} | {r['per_trial_median']:.2f} | {r['per_trial_sum']:.1f} | {r['best']:.4f} |"
        )
    overlap = rows[0]["overlap"] if rows else None
    print(f"\ncalibrated overlap of concurrent fits' fixed cost: {overlap if overlap is None else f'{overlap:.0%}'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
