"""What a halving rung costs and how well it ranks: configurations fitted on each kind of small rung and in full.

Successive halving saves time only when a small rung costs a small share of a full trial *and* ranks
configurations as the full fit does. This draws ``--configs`` configurations from the case's search space (Optuna's
RandomSampler, seeded), evaluates each on every rung given by ``--rungs`` (``ROWS:ITERATIONS``: a share of the
training rows and a share of search.max_iter; ``1:1`` is the full trial, always added) through the backend a
sweep uses (setup once, then ``evaluate``), and prints per rung: the median seconds of an evaluation (fit and
validation scoring) and its share of a full trial's, the Spearman correlation of its validation objective with
the full trial's, and the full-trial objective of the configuration the rung ranks first against the best one.
Asserts nothing (benchmarks are scripts).

Run: PYTHONPATH=src python benchmarks/bench_rungs.py [--case ctr1m] [--configs 12] [--seed 1]
     [--rungs 1/27:1 1:1/9 1/27:1/9 1/9:1/3] [--overrides backend.local_checkpoint=false ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import optuna
from hydra import compose, initialize_config_dir
from scipy.stats import spearmanr

import lrsweep
from bench_halving import CASES  # the same cases as the halving benchmark
from lrsweep.backends import make_backend
from lrsweep.cli import register_configs, to_config
from lrsweep.config import METRIC_DIRECTIONS
from lrsweep.data import open_data
from lrsweep.space import solver_pool, suggest
from lrsweep.sweep import _metrics  # the sweep's own validation figures of an evaluation

CONF = str(Path(lrsweep.__file__).parent / "conf")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=list(CASES), default="ctr1m")
    ap.add_argument("--configs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rungs", nargs="+", default=["1/27:1", "1:1/9", "1/27:1/9", "1/9:1/3"])
    ap.add_argument("--overrides", nargs="*", default=[], help="config overrides, e.g. backend.local_checkpoint=false")
    args = ap.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    register_configs()
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        overrides = [*CASES[args.case], *args.overrides, f"seed={args.seed}"]
        cfg = to_config(compose(config_name="config", overrides=overrides))
    rungs = [tuple(Fraction(x) for x in r.split(":")) for r in args.rungs]
    rungs = [r for r in rungs if r != (1, 1)] + [(Fraction(1), Fraction(1))]
    backend = make_backend(cfg)
    t0 = time.perf_counter()
    backend.prepare(open_data(cfg.dataset, cfg.split, cfg.cv, cfg.seed))
    backend.prepare_rungs(sorted({float(rows) for rows, _ in rungs if rows < 1}))
    print(f"setup {time.perf_counter() - t0:.1f} s", flush=True)
    pool = solver_pool(cfg.search, backend.capabilities)
    sampler = optuna.samplers.RandomSampler(seed=args.seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=sampler)
    metric = cfg.objective.metric
    results: dict[tuple[Fraction, Fraction], list[tuple[float, float]]] = {r: [] for r in rungs}
    try:
        backend.evaluate(suggest(study.ask(), cfg.search, cfg.threshold, pool))  # warm-up, not counted
        for i in range(args.configs):
            params = suggest(study.ask(), cfg.search, cfg.threshold, pool)
            for rows, iters in rungs:
                p = dataclasses.replace(params, max_iter=max(1, round(params.max_iter * iters)))
                t = time.perf_counter()
                ev = backend.evaluate(p, fraction=float(rows))
                seconds = time.perf_counter() - t
                value = _metrics(ev, cfg, p, backend.classes)[0][metric]
                results[(rows, iters)].append((value, seconds))
                line = {"config": i, "params": params.label(), "rows": str(rows), "iterations": p.max_iter}
                print(json.dumps(line | {"value": results[(rows, iters)][-1][0], "seconds": seconds}), flush=True)
    finally:
        backend.close()
    sign = -1.0 if METRIC_DIRECTIONS[metric] == "maximize" else 1.0  # smaller is better after the sign
    full = np.array([v for v, _ in results[(1, 1)]])
    full_seconds = statistics.median(s for _, s in results[(1, 1)])
    best = float((sign * full).min() * sign)
    print()
    print(f"{args.configs} configurations, {args.case}, objective {metric} (full trial: all rows, max_iter "
          f"{cfg.search.max_iter}; best {best:.4f})")  # fmt: skip
    print(
        "| rung: rows, iterations | seconds (median) | share of a full trial | Spearman with full "
        "| its first pick, in full | vs best |"
    )
    print("|---|---|---|---|---|---|")
    for (rows, iters), got in results.items():
        values = np.array([v for v, _ in got])
        seconds = statistics.median(s for _, s in got)
        rho = float(spearmanr(values, full).statistic)
        pick = float(full[int(np.argmin(sign * values))])
        shown = f"{seconds:.2f}" if seconds >= 1 else f"{seconds:.3f}"
        print(
            f"| {rows}, {max(1, round(cfg.search.max_iter * iters))} | {shown} | {seconds / full_seconds:.0%} "
            f"| {rho:+.2f} | {pick:.4f} | {sign * (best - pick):+.4f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
