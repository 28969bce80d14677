"""Driver heap held by concurrent Spark fits of hashed features: what K fits at once cost the driver JVM.

A fit's L-BFGS state and its per-pass aggregation buffers are dense vectors of the model's coefficients
(2^20 + 1 on the CTR data), kept in the driver. For each K in ``--at-once``: the CTR table of ``--rows`` rows
prepared as a sweep prepares it (local[2]), then K fits of one L2 configuration (``--max-iter`` iterations) run at
once in threads (as ``search.n_jobs=K`` runs trials), while a sampler forces a garbage collection every
``--every`` seconds and reads the heap in use, i.e. the live heap. Printed: the wall time, the peak live heap and
that peak less the heap after setup, per fit. Asserts nothing (a benchmark, not a test). Four at once at 10^6
rows ran an 11 GiB driver out of memory on 2026-12-05 (see README, "When things go wrong").

Run: PYTHONPATH=src python benchmarks/bench_driver_memory.py [--rows 100000] [--at-once 1 2 4] [--max-iter 30]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hydra import compose, initialize_config_dir

import lrsweep
from lrsweep.backends import make_backend
from lrsweep.cli import register_configs, to_config
from lrsweep.data import open_data
from lrsweep.space import ModelParams

CONF = str(Path(lrsweep.__file__).parent / "conf")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--at-once", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--max-iter", type=int, default=30)
    ap.add_argument("--every", type=float, default=0.3)
    args = ap.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    register_configs()
    overrides = ["backend=spark", "cluster=local", "cluster.master='local[2]'", "dataset=ctr"]
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        cfg = to_config(compose(config_name="config", overrides=[*overrides, f"dataset.rows={args.rows}"]))
    from pyspark import inheritable_thread_target

    backend = make_backend(cfg)
    backend.prepare(open_data(cfg.dataset, cfg.split, cfg.cv, cfg.seed))
    params = ModelParams(
        C=1.0, l1_ratio=0.0, penalty="l2", solver=None, class_weight="none", max_iter=args.max_iter, tol=1e-4
    )
    jvm = backend.spark._jvm
    heap = jvm.java.lang.management.ManagementFactory.getMemoryMXBean()

    def live_mib() -> float:
        jvm.java.lang.System.gc()
        return float(heap.getHeapMemoryUsage().getUsed()) / 2**20

    base = live_mib()
    max_mib = float(jvm.java.lang.Runtime.getRuntime().maxMemory()) / 2**20
    print(f"CTR {args.rows:,} rows, local[2]: driver heap {max_mib:,.0f} MiB, live after setup {base:,.0f} MiB")
    part = backend._folds[0]
    rows = []
    try:
        for k in args.at_once:
            peak, stop = [base], threading.Event()

            def sample(peak: list[float] = peak, stop: threading.Event = stop) -> None:
                while not stop.is_set():
                    peak[0] = max(peak[0], live_mib())
                    time.sleep(args.every)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            t0 = time.perf_counter()

            def one(_: int) -> int:
                return backend._fit(params, part.fit, part.n_fit, part.class_rows)[1].n_iter

            with ThreadPoolExecutor(k) as pool:
                iters = list(pool.map(inheritable_thread_target(backend.spark)(one), range(k)))
            wall = time.perf_counter() - t0
            stop.set()
            sampler.join()
            row = {"at_once": k, "wall_s": round(wall, 1), "iterations": iters, "peak_live_mib": round(peak[0])}
            row["per_fit_mib"] = round((peak[0] - base) / k)
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        backend.close()
    print("\n| fits at once | wall (s) | peak live driver heap (MiB) | per fit (MiB) |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['at_once']} | {r['wall_s']} | {r['peak_live_mib']:,} | {r['per_fit_mib']:,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
