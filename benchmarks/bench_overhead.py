"""What tracking costs end to end: the default 50-trial sweep, tracked vs `tracking=off`, whole process timed
from outside.

Each repetition runs `lrsweep` (the console script of this environment) in a fresh temporary directory, so
nothing is resumed: a tracked call pays MLflow's import, the sqlite store's creation, the writer process, 50
child runs, the artifacts and the model. Prints one line per call, then the medians and their ratio (the
issue's target: tracked within 1.25x of untracked). Asserts nothing (benchmarks are scripts, never tests).

Run: python benchmarks/bench_overhead.py [--repeats 3] [--trials 50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(args: list[str]) -> float:
    folder = Path(tempfile.mkdtemp(prefix="lrsweep-bench-"))
    try:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "lrsweep.cli", *args], cwd=folder, capture_output=True, text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"lrsweep {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
        return seconds
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--trials", type=int, default=50)
    a = ap.parse_args()
    base = [f"search.n_trials={a.trials}", "progress=false"]
    cases = {"tracking=off": [*base, "tracking=off"], "tracked": base}
    times: dict[str, list[float]] = {k: [] for k in cases}
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for r in range(a.repeats):
        for name, args in cases.items():  # interleaved, so a change of load hits both
            s = one(args)
            times[name].append(s)
            print(f"  run {r + 1} {name:<13} {s:6.1f} s", flush=True)
    off, on = (statistics.median(times[k]) for k in ("tracking=off", "tracked"))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"median wall: tracking=off {off:.1f} s, tracked {on:.1f} s, ratio {on / off:.2f}x (target <= 1.25x)")


if __name__ == "__main__":
    main()
