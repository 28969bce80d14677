"""What tracking costs per trial: 50 trials on telco churn, the same seed (so the same configurations).

Variants, each in a fresh temporary directory and a fresh study:
  off        tracking=off
  lrsweep    the default: MLflow child runs written by the background writer process
  inline     the same writer code run in the sweep's own thread (tracking.mode=inline)
  per-value  one MLflow call per value in the sweep's thread, as optuna-integration's MLflowCallback
             logs (start_run, log_param per param, log_metric per metric, end_run)

Prints the per-trial median (and p90) of the trial loop's wall time, the difference to `off`, the ratio,
and the whole sweep's wall time. ``--softmax-rows N``: the generated 4-class table of N rows instead
(search.multiclass=both: each trial logs its macro, weighted and per-class figures, 64 metrics).
Usage:  python benchmarks/bench_tracking.py [--trials 50] [--repeat 1] [--softmax-rows 20000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any

from lrsweep.config import Config, DatasetConfig
from lrsweep.records import TrialRecord
from lrsweep.sweep import run_sweep
from lrsweep.tracking import MlflowTracker


class PerValueTracker(MlflowTracker):
    """One MLflow call per value, in the sweep's thread (the MLflowCallback way), for comparison."""

    def trial(self, record: TrialRecord) -> None:
        import mlflow

        w = self._inline
        assert w is not None
        mlflow.set_experiment(experiment_id=w.experiment_id)
        with mlflow.start_run(run_name=record.run_name, nested=False, tags={"mlflow.parentRunId": w.parent_id}):
            for k, v in record.params.items():
                mlflow.log_param(k, v)
            for k, v in record.metrics.items():
                mlflow.log_metric(k, v)
            mlflow.set_tag("state", record.state)


def one(variant: str, trials: int, seed: int, softmax_rows: int | None = None) -> dict[str, Any]:
    cfg = Config()
    if softmax_rows:
        cfg.dataset = DatasetConfig(
            name="softmax", source="generated", generator="softmax", rows=softmax_rows, target="plan",
            positive=None, categorical=["region", "signup_channel"],
        )  # fmt: skip
        cfg.search.multiclass = "both"
    cfg.seed = seed
    cfg.search.n_trials = trials
    cfg.progress = False
    cfg.tracking.enabled = variant != "off"
    cfg.tracking.mode = "inline" if variant in ("inline", "per-value") else "background"
    cfg.tracking.artifacts = cfg.tracking.log_model = variant != "off"
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            tracker = PerValueTracker(cfg.tracking, cfg.experiment_name) if variant == "per-value" else None
            t0 = time.perf_counter()
            result = run_sweep(cfg, tracker=tracker)
            wall = time.perf_counter() - t0
        finally:
            os.chdir(here)
    secs = sorted(result.trial_seconds)
    return {
        "median_ms": 1000 * statistics.median(secs),
        "p90_ms": 1000 * secs[int(0.9 * (len(secs) - 1))],
        "wall_s": wall,
        "phases": result.phases,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--variants", default="off,lrsweep,inline,per-value")
    ap.add_argument("--softmax-rows", type=int, default=None, help="the generated 4-class table of this many rows")
    args = ap.parse_args()
    rows: dict[str, list[dict[str, Any]]] = {}
    for _ in range(args.repeat):
        for v in args.variants.split(","):
            rows.setdefault(v, []).append(one(v, args.trials, args.seed, args.softmax_rows))
    base = statistics.median(r["median_ms"] for r in rows.get("off", [{"median_ms": float("nan")}]))
    data = f"softmax 4-class, {args.softmax_rows:,} rows" if args.softmax_rows else "telco churn"
    print(f"{data}, {args.trials} trials, seed {args.seed}, {args.repeat} repeat(s); per-trial wall of the loop")
    print(f"{'variant':<10} {'median ms':>10} {'p90 ms':>8} {'+ms vs off':>11} {'x off':>6} {'sweep wall s':>13}")
    for v, rs in rows.items():
        med = statistics.median(r["median_ms"] for r in rs)
        p90 = statistics.median(r["p90_ms"] for r in rs)
        wall = statistics.median(r["wall_s"] for r in rs)
        print(f"{v:<10} {med:>10.1f} {p90:>8.1f} {med - base:>11.1f} {med / base:>6.2f} {wall:>13.1f}")
    for v, rs in rows.items():
        print(f"phases {v}: {rs[-1]['phases']}")


if __name__ == "__main__":  # the writer process is spawned: this guard is required
    main()
