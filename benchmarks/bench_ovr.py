"""One-vs-rest on Spark: a trial's K per-class fits one after another or ``backend.ovr_parallelism`` at once.

For each table size in ``--rows``: the generated 4-class table (``dataset=softmax``), the backend prepared as a
sweep prepares it (local[2] unless ``--master`` says otherwise), then ``--rounds`` rounds of ``evaluate`` of one
one-vs-rest configuration (L2, C=0.01, no class weights) at each ``ovr_parallelism`` in ``--parallelism``; the first
round warms the JVM and is not reported. Printed per size and parallelism: the fit's wall time (``FitInfo.seconds``,
the K fits'), its median over the rounds, the speed-up against one fit after another, and whether the held-out
probabilities are the same to the bit as one after another. A JSON line per size, then a Markdown table. Asserts
nothing (a benchmark, not a test).

Run: PYTHONPATH=src python benchmarks/bench_ovr.py [--rows 30000 300000] [--parallelism 1 2 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose, initialize_config_dir

import lrsweep
from lrsweep.cli import register_configs, to_config
from lrsweep.data import open_data
from lrsweep.space import ModelParams

CONF = str(Path(lrsweep.__file__).parent / "conf")


def measure(rows: int, parallelism: list[int], rounds: int, master: str) -> dict[str, Any]:
    from lrsweep.backends.spark import SparkBackend

    overrides = ["backend=spark", "cluster=local", f"cluster.master='{master}'", "dataset=softmax",
                 f"dataset.rows={rows}", "tracking=off"]  # fmt: skip
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        cfg = to_config(compose(config_name="config", overrides=overrides))
    backend = SparkBackend(cfg.backend, cluster=cfg.cluster, seed=cfg.seed)
    try:
        backend.prepare(open_data(cfg.dataset, cfg.split, cfg.cv, cfg.seed))
        params = ModelParams(0.01, 0.0, "l2", None, "none", cfg.search.max_iter, cfg.search.tol, None, "ovr")
        base = backend.settings
        seconds: dict[int, list[float]] = {p: [] for p in parallelism}
        same: dict[int, bool] = {p: True for p in parallelism}
        reference = None
        for r in range(rounds + 1):
            for p in parallelism:
                backend.settings = dataclasses.replace(base, ovr_parallelism=p)
                ev = backend.evaluate(params)
                assert ev.scores is not None
                if reference is None:
                    reference = ev.scores[1]
                same[p] = same[p] and bool(np.array_equal(ev.scores[1], reference))
                if r > 0:  # the first round warms the JVM's code paths
                    seconds[p].append(ev.fit.seconds)
        backend.settings = base
        return {
            "rows": rows,
            "n_fit": backend._folds[0].n_fit,
            "classes": len(backend.classes),
            "master": master,
            "seconds": seconds,
            "median": {p: statistics.median(s) for p, s in seconds.items()},
            "same_as_first": same,
        }
    finally:
        backend.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[30_000, 300_000])
    ap.add_argument("--parallelism", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    register_configs()
    records = []
    for rows in args.rows:
        rec = measure(rows, args.parallelism, args.rounds, args.master)
        print(json.dumps(rec), flush=True)
        records.append(rec)
    print()
    print("| rows | fitting rows | classes | fits at once | K fits' wall, median s | speed-up | same probabilities |")
    print("|---|---|---|---|---|---|---|")
    for rec in records:
        alone = rec["median"][args.parallelism[0]]
        for p in args.parallelism:
            m = rec["median"][p]
            print(
                f"| {rec['rows']:,} | {rec['n_fit']:,} | {rec['classes']} | {p} | {m:.2f} | {alone / m:.2f}x "
                f"| {'yes' if rec['same_as_first'][p] else 'NO'} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
