"""How many Spark passes does a fit make per iteration, and what does a pass cost, by optimiser and by table size?

Spark's LogisticRegression runs L-BFGS (L2 or no penalty) or OWL-QN (any L1 share); each function evaluation of
the optimiser's line search is one Spark job over the cached fitting rows. For each ``--rows`` size of the
generated CTR table (Spark local[2], hashed features fitted on the buckets the rows use, as a sweep prepares
them), every configuration is fitted once through the sweep's own backend (``SparkBackend.evaluate``) with the
regularisation of the same configuration on the 10^6-row table (C scaled by 10^6 / rows, as the planner's
calibration fits its samples), and its iterations, Spark jobs and fit seconds are printed, then a Markdown table
side by side. Asserts nothing (benchmarks are scripts).

Configurations (``--configs``): C,l1_ratio,class_weight as on the 10^6-row table; the default set holds the
configurations of bench_plan's CTR 10^6 sweep and a few strong-L1 ones.

Run: PYTHONPATH=src python benchmarks/bench_passes.py [--rows 100000 1000000] [--max-iter 30]
     [--configs 0.141,0.44,balanced 0.00054,1,none ...]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir

import lrsweep
from lrsweep.backends import make_backend
from lrsweep.cli import register_configs, to_config
from lrsweep.data.handle import open_data
from lrsweep.planning.calibrate import _measured
from lrsweep.space import ModelParams

CONF = str(Path(lrsweep.__file__).parent / "conf")
FULL = 1_000_000
CONFIGS = [
    "0.000863,0,none",
    "0.000863,0,balanced",
    "49.4,0,none",
    "0.141,0.44,balanced",
    "0.141,0.44,none",
    "5.14,0.23,balanced",
    "100,1,none",
    "0.03,1,none",
    "0.00054,0.5,none",
    "0.00054,1,none",
]


def params(spec: str, scale: float, max_iter: int) -> ModelParams:
    c, r, cw = spec.split(",")
    C, ratio = float(c), float(r)
    penalty = "l2" if ratio == 0 else "l1" if ratio == 1 else "elasticnet"
    return ModelParams(
        C=C * scale, l1_ratio=ratio, penalty=penalty, solver=None, class_weight=cw, max_iter=max_iter, tol=1e-6
    )


def measure(rows: int, specs: list[str], max_iter: int) -> dict[str, dict[str, Any]]:
    overrides = ["backend=spark", "cluster=local", "cluster.master='local[2]'", "dataset=ctr", f"dataset.rows={rows}"]
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        cfg = to_config(compose(config_name="config", overrides=[*overrides, "tracking=off"]))
    backend: Any = make_backend(cfg)
    try:
        backend.prepare(open_data(cfg.dataset, cfg.split, cfg.cv, cfg.seed))
        fold = backend._folds[0]
        width = fold.space.width if fold.space is not None else "all"
        print(f"# {rows:,} rows: {fold.n_fit:,} fitting rows, {width} features wide", flush=True)
        backend.evaluate(params(specs[0], FULL / rows, 3))  # the JVM's first fit (a cold start) is not reported
        out = {}
        for k, spec in enumerate(specs):  # timed, its Spark jobs counted, as the planner's calibration measures
            ev, jobs, wall = _measured(backend, params(spec, FULL / rows, max_iter), None, f"bench-passes-{k}")
            out[spec] = {"iterations": ev.fit.n_iter, "jobs": jobs, "fit": ev.fit.seconds, "evaluate": wall}
            print(f"{spec:24s} iterations {ev.fit.n_iter:3d}  jobs {jobs:3d}  fit {ev.fit.seconds:6.2f} s", flush=True)
        return out
    finally:
        backend.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, FULL])
    ap.add_argument("--max-iter", type=int, default=30)
    ap.add_argument("--configs", nargs="+", default=CONFIGS, help="C,l1_ratio,class_weight as on 10^6 rows")
    args = ap.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    register_configs()
    got = {rows: measure(rows, args.configs, args.max_iter) for rows in args.rows}
    print()
    sizes = " | ".join(f"{r:,} rows: iterations, jobs, s per job" for r in args.rows)
    print(f"| C, l1_ratio, class weight (as on 10^6 rows) | {sizes} |")
    print("|---|" + "---|" * len(args.rows))
    for spec in args.configs:
        cells = []
        for rows in args.rows:
            m = got[rows][spec]
            cells.append(f"{m['iterations']}, {m['jobs']}, {m['fit'] / max(m['jobs'], 1):.3f}")
        print(f"| {spec.replace(',', ', ')} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
