"""The driver JVM's start: a whole `backend=spark` sweep with one setting of its JVM on and off, alternated, each a
fresh process timed from outside.

``--what archive`` (backend.class_archive): the JVM maps the archive of Spark's classes, or loads them itself.
``--what jit`` (backend.quick_jit_rows): the JVM compiles with C1 alone, as it does for a small table (telco churn,
7,043 rows), or with C1 then C2, the JVM's default (``backend.quick_jit_rows=0``); both map the archive.

First, in a cache folder of its own, one sweep writes the archive (its cost, once per machine, is printed: the
extra wall of that sweep). Then ``--repeats`` pairs, on and off. Printed per run: the session start and data +
preprocessing + cache as the sweep logs them, and the wall; then the medians. Asserts nothing (a benchmark, not a
test).

Usage:  SPARK_LOCAL_IP=127.0.0.1 python benchmarks/bench_jvm_start.py [--what archive|jit] [--repeats 3]
        [--overrides search.n_trials=15]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETUP = re.compile(r"spark setup: session ([0-9.]+) s, data \+ preprocessing \+ cache ([0-9.]+) s")


# --what: (the setting on, off; what the table calls each)
SETTINGS = {
    "archive": (["backend.class_archive=true"], ["backend.class_archive=false"], "maps the class archive",
                "loads its classes"),
    "jit": ([], ["backend.quick_jit_rows=0"], "compiles with C1 alone (quick_jit_rows)", "compiles with C1 then C2"),
}  # fmt: skip


def sweep(cache: Path, setting: list[str], overrides: list[str]) -> dict[str, float]:
    """One sweep in a fresh folder: its session and data seconds (as it logs them) and its wall."""
    with tempfile.TemporaryDirectory() as work:
        args = ["backend=spark", "cluster.master='local[2]'", "tracking=off", "progress=false"]
        args += [*setting, *overrides]
        env = os.environ | {"XDG_CACHE_HOME": str(cache), "SPARK_LOCAL_IP": "127.0.0.1"}
        lrsweep = Path(sys.executable).with_name("lrsweep")
        t0 = time.perf_counter()
        run = subprocess.run([str(lrsweep), *args], cwd=work, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"the sweep failed: {run.stderr[-2000:]}")
    m = SETUP.search(run.stderr)
    assert m, run.stderr[-2000:]
    return {"session": float(m.group(1)), "data": float(m.group(2)), "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--what", choices=sorted(SETTINGS), default="archive")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--overrides", nargs="*", default=["search.n_trials=15"])
    a = ap.parse_args()
    on_args, off_args, on_label, off_label = SETTINGS[a.what]
    with tempfile.TemporaryDirectory() as cache:
        folder = Path(cache)
        first = sweep(folder, on_args, a.overrides)
        (archive,) = (folder / "lrsweep" / "jvm").glob("spark-*.jsa")
        print(f"writing the archive ({archive.stat().st_size / 1e6:.0f} MB): session {first['session']:.1f} s, "
              f"data {first['data']:.1f} s, wall {first['wall']:.1f} s", flush=True)  # fmt: skip
        runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
        for i in range(a.repeats):
            for on in (True, False) if i % 2 == 0 else (False, True):
                r = sweep(folder, on_args if on else off_args, a.overrides)
                runs[on].append(r)
                print(f"{a.what} {'on ' if on else 'off'}: session {r['session']:.1f} s, data {r['data']:.1f} s, "
                      f"wall {r['wall']:.1f} s", flush=True)  # fmt: skip
    print(f"\nmedians of {a.repeats} ({' '.join(a.overrides)}):")
    print("| driver JVM | session s | data + preprocessing + cache s | setup s | wall s |")
    print("|---|---|---|---|---|")
    for on in (False, True):
        med = {k: statistics.median(r[k] for r in runs[on]) for k in ("session", "data", "wall")}
        setup = statistics.median(r["session"] + r["data"] for r in runs[on])
        label = on_label if on else off_label
        print(f"| {label} | {med['session']:.1f} | {med['data']:.1f} | {setup:.1f} | {med['wall']:.1f} |")
    print(f"writing the archive, once: that sweep's wall {first['wall']:.1f} s")


if __name__ == "__main__":
    main()
