"""Trials per minute with 1, 2 and 4 `lrsweep` worker processes on one study (telco churn, one machine).

Each case starts K real `lrsweep` processes at once on a fresh study in a fresh temporary directory, with the
study in the default journal file or in a real PostgreSQL server (tests/postgres_server.py, Debian's package),
and times from the first start to the last exit. Printed per case: the wall time, trials per minute over the
whole wall time (setup included: every worker pays its own data load and preprocessing once) and over the
trial phase (from the first worker's first trial to the study's last), and how many trials each worker ran.

Usage:  python benchmarks/bench_workers.py [--trials 60] [--workers 1 2 4] [--storages journal postgres]
        [--tracking off|sqlite]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _study_trials(work: Path, storage: str) -> list[Any]:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if storage == "journal":
        (journal,) = (work / "lrsweep_studies").glob("*.journal")
        store: Any = JournalStorage(JournalFileBackend(str(journal)))
    else:
        store = optuna.storages.RDBStorage(storage)
    (summary,) = optuna.get_all_study_summaries(store)
    return optuna.load_study(study_name=summary.study_name, storage=store).get_trials()


def run_workers(k: int, args: list[str], cwd: Path) -> float:
    """Start ``k`` `lrsweep ARGS` processes at once in ``cwd``; the seconds until the last exits (exit if one
    fails, with its last words)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "lrsweep.cli", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(k)
    ]
    errors = [p.communicate()[1] for p in procs]
    wall = time.perf_counter() - t0
    bad = [(p.returncode, e[-500:]) for p, e in zip(procs, errors, strict=True) if p.returncode != 0]
    if bad:
        raise SystemExit(f"a worker failed: {bad}")
    return wall


def one(workers: int, trials: int, storage: str, tracking: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        args = [f"search.n_trials={trials}", "progress=false"]
        args += ["tracking=off"] if tracking == "off" else [f"tracking.uri=sqlite:///{work / 'mlflow.db'}"]
        if storage != "journal":
            args.append(f"study.storage={storage}")
        wall = run_workers(workers, args, work)
        done = [t for t in _study_trials(work, storage) if t.state.name == "COMPLETE"]
        assert len(done) == trials, (len(done), trials)
        first = min(t.datetime_start for t in done)
        last = max(t.datetime_complete for t in done)
        phase = (last - first).total_seconds()
        per = Counter(t.user_attrs.get("lrsweep_worker") for t in done)
        if storage != "journal":  # the next case gets an empty database
            import sqlalchemy

            engine = sqlalchemy.create_engine(storage)
            with engine.begin() as con:
                con.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            engine.dispose()
        return {
            "wall": wall, "per_min": 60 * trials / wall, "phase": phase, "phase_per_min": 60 * trials / phase,
            "split": sorted(per.values(), reverse=True),
        }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--storages", nargs="+", default=["journal", "postgres"], choices=["journal", "postgres"])
    ap.add_argument("--tracking", default="off", choices=["off", "sqlite"])
    a = ap.parse_args()
    print(f"{a.trials} trials on telco churn, default search space, tracking={a.tracking}, {os.cpu_count()} cores")
    print(f"{'storage':<10} {'workers':>7} {'wall s':>8} {'trials/min':>10} {'trial phase s':>13} "
          f"{'trials/min':>10}  trials per worker")  # fmt: skip
    with contextlib.ExitStack() as stack:
        for storage in a.storages:
            url = "journal"
            if storage == "postgres":
                from tests.postgres_server import postgres_server

                url = stack.enter_context(postgres_server())
            for k in a.workers:
                r = one(k, a.trials, url, a.tracking)
                print(f"{storage:<10} {k:>7} {r['wall']:>8.1f} {r['per_min']:>10.1f} {r['phase']:>13.1f} "
                      f"{r['phase_per_min']:>10.1f}  {r['split']}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
