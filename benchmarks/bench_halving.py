"""Successive halving against full-data trials: is the best as good, for how much of the time?

For each seed: a full sweep of ``--full`` trials (every trial on all the training rows) and halving sweeps of
``--halving`` trials each (``search.fidelity=halving``, eta 3, rungs 1/9, 1/3, all unless
``--halving-overrides`` say otherwise), tracking off, each in a
fresh study folder, whole ``run_sweep`` calls timed (setup, trials, refit), after a one-trial warm-up sweep (so
the full sweep, run first, does not pay the JVM's start alone). Prints a JSON line per sweep, then a
Markdown table: the best validation objective (ROC AUC on telco, log loss on CTR) against the full sweep's, and
the wall time and trial time as a share of the full sweep's. Asserts nothing (benchmarks are scripts).

Cases (``--case``):
  telco   scikit-learn, telco churn (bundled), objective ROC AUC
  ctr1m   Spark local[2], generated CTR at 10^6 rows, max_iter 30, objective log loss

Run: PYTHONPATH=src python benchmarks/bench_halving.py [--case telco] [--seeds 1 2 3] [--full 20] [--halving 20 40]
     [--halving-overrides search.rung_resource=iterations ...] [--overrides backend.compact_hashed=false ...]
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
from typing import Any

from hydra import compose, initialize_config_dir

import lrsweep
from lrsweep.cli import register_configs, to_config
from lrsweep.sweep import run_sweep

CONF = str(Path(lrsweep.__file__).parent / "conf")
OVERRIDES: list[str] = []  # --overrides: for every sweep
CASES = {
    "telco": ["backend=sklearn", "dataset=telco_churn", "objective.metric=roc_auc"],
    "ctr1m": [
        "backend=spark",
        "cluster=local",
        "cluster.master='local[2]'",
        "dataset=ctr",
        "dataset.rows=1000000",
        "search.max_iter=30",
        "objective.metric=log_loss",
    ],
}


def sweep(case: str, seed: int, n: int, fidelity: str, extra: list[str] | None = None) -> dict[str, Any]:
    extra = [*OVERRIDES, *(extra or [])]
    with tempfile.TemporaryDirectory(prefix="bench-halving-") as tmp:
        overrides = [
            *CASES[case],
            *extra,
            f"seed={seed}",
            f"search.n_trials={n}",
            f"search.fidelity={fidelity}",
            "tracking=off",
            "progress=false",
            f"study.dir={tmp}",
        ]
        with initialize_config_dir(version_base="1.3", config_dir=CONF):
            cfg = to_config(compose(config_name="config", overrides=overrides))
        t0 = time.perf_counter()
        result = run_sweep(cfg, progress=False)
        wall = time.perf_counter() - t0
    return {
        "case": case,
        "seed": seed,
        "fidelity": fidelity,
        "n_trials": n,
        "best": result.best_value,
        "test": result.test_metrics.get(cfg.objective.metric),
        "wall": wall,
        "trials_seconds": sum(result.trial_seconds),
        "rungs": result.rungs,
        "states": result.states,
        "phases": result.phases,  # seconds: setup, trials, refit_and_test, ...
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=list(CASES), default="telco")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--full", type=int, default=20, help="trials of the full sweep")
    ap.add_argument("--halving", type=int, nargs="*", default=[20, 40], help="trials of each halving sweep")
    ap.add_argument(
        "--overrides", nargs="*", default=[], help="overrides for every sweep, e.g. backend.compact_hashed=false"
    )
    ap.add_argument(
        "--halving-overrides",
        nargs="*",
        default=[],
        help="more overrides for the halving sweeps, e.g. search.rung_resource=iterations search.promotion=asha",
    )
    args = ap.parse_args()
    OVERRIDES[:] = args.overrides
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    register_configs()
    rows: list[dict[str, Any]] = []
    # the first sweep of a process pays Spark's JVM start and warm-up (~20 s on CTR 10**6: a slower setup and first
    # trial), which would fall on the full sweep: a one-trial sweep first, not reported
    warm = sweep(args.case, 0, 1, "full")
    print(f"warm-up sweep: {warm['wall']:.1f} s (not compared)", file=sys.stderr, flush=True)
    for seed in args.seeds:
        full = sweep(args.case, seed, args.full, "full")
        print(json.dumps(full), flush=True)
        rows.append(full | {"of_full": None})
        for n in args.halving:
            h = sweep(args.case, seed, n, "halving", args.halving_overrides)
            print(json.dumps(h), flush=True)
            rows.append(h | {"of_full": full})
    maximise = args.case == "telco"
    print()
    shares = sorted({k for r in rows for k in r["rungs"]}, key=lambda k: 1.0 if k == "all" else 1 / int(k[2:]))
    print(
        "| seed | sweep | best validation | vs full | wall (s) | share of full wall | trials (s) "
        f"| share of full trials | last rung: {', '.join(shares) or '-'} |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    gaps: dict[int, list[float]] = {}
    walls: dict[int, list[float]] = {}
    for r in rows:
        f = r["of_full"]
        if f is None:
            print(
                f"| {r['seed']} | full, {r['n_trials']} trials | {r['best']:.4f} | | {r['wall']:.1f} | | "
                f"{r['trials_seconds']:.1f} | | |"
            )
            continue
        gap = (f["best"] - r["best"]) if maximise else (r["best"] - f["best"])  # > 0: halving is worse
        gaps.setdefault(r["n_trials"], []).append(gap)
        walls.setdefault(r["n_trials"], []).append(r["wall"] / f["wall"])
        counts = ", ".join(str(r["rungs"].get(k, 0)) for k in shares)
        print(
            f"| {r['seed']} | halving, {r['n_trials']} trials | {r['best']:.4f} | {-gap:+.4f} | {r['wall']:.1f} "
            f"| {r['wall'] / f['wall']:.0%} | {r['trials_seconds']:.1f} "
            f"| {r['trials_seconds'] / f['trials_seconds']:.0%} | {counts} |"
        )
    print()
    for n in gaps:
        print(
            f"halving {n} trials: worst shortfall {max(gaps[n]):+.4f}, mean wall share "
            f"{statistics.fmean(walls[n]):.0%} (worst {max(walls[n]):.0%})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
