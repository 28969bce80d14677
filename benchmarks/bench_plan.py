"""How honest are the plans? Calibrate on small samples, predict full-size sweeps, run them, compare.

For each case: the runtime model is calibrated (``lrsweep.planning.calibrate``: samples of at most 10% of the
rows, local[1] and local[2], in child processes), the sweep is predicted (``lrsweep.planning.predict``), then the
same sweep runs for real (``lrsweep.sweep.run_sweep``, tracking off, a fresh study in a temporary folder) and the
prediction is set against what it took: per trial (the mean over the sweep's trials) and per sweep (setup +
trials + refit, the sweep's wall time). Prints a JSON line per case (with every trial's predicted and measured
seconds and iterations), then a Markdown table, the mean absolute error per sweep and whether each case fell
inside its predicted range. Asserts nothing (benchmarks are scripts, never tests).

Cases (``--cases``; the config is composed exactly as the command line composes it, from these overrides):
  telco       dataset=telco_churn search=default, cluster local[2]
  ctr1m       dataset=ctr dataset.rows=1000000 search=default search.max_iter=30, local[2]
  ctr3m       dataset=ctr dataset.rows=3000000 search=default search.max_iter=30, local[2] (fewer trials)
  standalone  telco on a Spark standalone cluster on this machine (a master + 2 workers of 1 core each,
              tests/spark_cluster.py: run with the repository root on PYTHONPATH); its calibration is telco's,
              from the cache (a calibration belongs to the machine that measured it, not to the cluster), and
              the cluster's own overheads are measured by the plan's cluster probe (lrsweep.planning.probe)
  softmax_ovr dataset=softmax dataset.rows=300000 search=default search.multiclass=ovr, local[2]: a 4-class
              target fitted one-vs-rest (four binomial fits per trial); not in the default --cases

Run: PYTHONPATH=src:. python benchmarks/bench_plan.py [--cases telco ctr1m ctr3m standalone] [--trials N]
     [--overrides K=V ...]
The machine may be shared: the load average is printed before and after every case. Each case runs in a process
of its own (a sweep after another in one process would find Spark's JVM warm).
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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir

import lrsweep
from lrsweep.cli import register_configs, to_config
from lrsweep.config import Config
from lrsweep.planning.calibrate import calibrate, full_rows
from lrsweep.planning.plan import make_plan
from lrsweep.planning.predict import draw_configs, predict_sweep
from lrsweep.sweep import run_sweep

CONF = str(Path(lrsweep.__file__).parent / "conf")
CTR = ["dataset=ctr", "search=default", "search.max_iter=30"]
CASES: dict[str, tuple[list[str], int]] = {  # overrides, trials
    "telco": (["dataset=telco_churn", "search=default"], 8),
    "ctr1m": ([*CTR, "dataset.rows=1000000"], 6),
    "ctr3m": ([*CTR, "dataset.rows=3000000"], 4),
    "standalone": (["dataset=telco_churn", "search=default"], 8),
    # a 4-class target fitted one-vs-rest: K binomial fits per trial
    "softmax_ovr": (["dataset=softmax", "dataset.rows=300000", "search=default", "search.multiclass=ovr"], 6),
}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def compose_cfg(overrides: list[str]) -> Config:
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        return to_config(compose(config_name="config", overrides=overrides))


@contextlib.contextmanager
def where(case: str) -> Iterator[tuple[list[str], int]]:
    """The cluster overrides of a case and its executor cores (a standalone cluster is started for it)."""
    if case != "standalone":
        yield ["cluster=local", "cluster.master='local[2]'"], 2
        return
    from tests.spark_cluster import standalone_cluster

    with standalone_cluster(workers=2, cores_per_worker=1) as cluster:
        yield (
            ["cluster=standalone", f"cluster.master={cluster.master}", f"cluster.cores={cluster.cores}"],
            cluster.cores,
        )


EXTRA: list[str] = []  # --overrides: for every case


def run_case(case: str, trials: int | None, cache_dir: str) -> dict[str, Any]:
    base, n_default = CASES[case]
    n = trials or n_default
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp, where(case) as (cluster, cores):
        overrides = [
            "backend=spark",
            *base,
            *EXTRA,
            *cluster,
            f"search.n_trials={n}",
            "tracking=off",
            "progress=false",
            f"study.dir={tmp}",
            f"plan.calibration.cache_dir={cache_dir}",
        ]
        cfg = compose_cfg(overrides)
        rows = full_rows(cfg)
        t0 = time.perf_counter()
        cal = calibrate(cfg)
        cal_s = time.perf_counter() - t0
        plan = make_plan(cfg, calibration=cal)  # as `lrsweep plan` predicts it (no history: nothing is tracked)
        est, probe = plan.sweep, plan.probe
        ratio = probe["trial_ratio"] if probe else 1.0  # the cluster probe's correction of the trials
        configs = draw_configs(cfg, n, multiclass=cal.classes > 2)
        predicted = [cal.trial(p, rows=rows, cores=cores).scaled(ratio) for p in configs]
        n_fit = cal._parts(rows).n_fit
        its = [cal.iterations.iterations(p, n_fit) for p in configs] if cal.iterations else []
        if cfg.dataset.kind == "generated":  # the table is generated before the sweep: not part of its time
            from lrsweep.data import resolve_source

            resolve_source(cfg.dataset)
        before = load()
        t1 = time.perf_counter()
        result = run_sweep(cfg, progress=False)
        wall = time.perf_counter() - t1
        records = _records(result.storage) if Path(result.storage).exists() else []
    measured_trials = list(result.trial_seconds)
    return {
        "case": case,
        "rows": rows,
        "cores": cores,
        "trials": n,
        "calibration_s": round(cal_s, 1),
        "calibration_cached": cal.cache_hit,
        "predicted": est.to_dict(),
        "measured": {
            "setup": result.phases.get("setup"),
            "trials": sum(measured_trials),
            "trial_mean": statistics.fmean(measured_trials),
            "refit": result.phases.get("refit_and_test"),
            "wall": wall,
        },
        "per_trial": [
            {
                "config": p.label(),
                "predicted": round(e.mid, 2),
                "low": round(e.low, 2),
                "high": round(e.high, 2),
                "iterations_predicted": round(it, 1),
                "measured": round(m, 2),
                "iterations": rec.get("n_iter") if rec else None,
            }
            for p, e, it, m, rec in zip(configs, predicted, its, measured_trials, records + [None] * n, strict=False)
        ],
        "evidence": plan.evidence,
        "probe": probe,
        "load_before_sweep": before,
        "load_after": load(),
    }


def predict_case(case: str, n: int, cores: int, cache_dir: str, cluster: list[str] | None = None) -> dict[str, Any]:
    """Calibrate (or read the cache) and predict one case's sweep; the prediction part of a record."""
    base, _ = CASES[case]
    overrides = [
        "backend=spark",
        *base,
        *EXTRA,
        *(cluster or []),
        f"search.n_trials={n}",
        "tracking=off",
        "progress=false",
    ]
    cfg = compose_cfg([*overrides, f"plan.calibration.cache_dir={cache_dir}"])
    rows = full_rows(cfg)
    t0 = time.perf_counter()
    cal = calibrate(cfg)
    cal_s = time.perf_counter() - t0
    configs = draw_configs(cfg, n, multiclass=cal.classes > 2)
    n_fit = cal._parts(rows).n_fit
    return {
        "cfg": cfg,
        "rows": rows,
        "calibration_s": round(cal_s, 1),
        "calibration_cached": cal.cache_hit,
        "predicted": predict_sweep(cfg, cal, rows=rows, cores=cores).to_dict(),
        "trial_predictions": [
            (
                p.label(),
                cal.trial(p, rows=rows, cores=cores),
                cal.iterations.iterations(p, n_fit) if cal.iterations else 0,
            )
            for p in configs
        ],
        "evidence": cal.evidence(),
    }


def repredict(measured: Path, cache_dir: str) -> list[dict[str, Any]]:
    """The records of an earlier run with their predictions made anew (calibrated again with this code, unless
    the cache has it): what the model says now about sweeps measured then."""
    out = []
    for line in measured.read_text().splitlines():
        rec = json.loads(line)
        print(f"# {rec['case']}: recalibrating, load average {load()}", flush=True)
        new = predict_case(rec["case"], rec["trials"], rec["cores"], cache_dir)
        rec |= {k: new[k] for k in ("calibration_s", "calibration_cached", "predicted", "evidence")}
        for t, (label, e, it) in zip(rec["per_trial"], new["trial_predictions"], strict=True):
            assert t["config"] == label
            t |= {"predicted": round(e.mid, 2), "low": round(e.low, 2), "high": round(e.high, 2)}
            t["iterations_predicted"] = round(it, 1)
        rec["predicted_at_load"] = load()
        out.append(rec)
        print(json.dumps(rec), flush=True)
    return out


def _records(journal: str) -> list[dict[str, Any]]:
    """Each trial's fit metrics (iterations), in trial order, from the study journal."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(journal))
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    return [t.user_attrs.get("lrsweep_record", {}).get("metrics", {}) for t in study.get_trials(deepcopy=False)]


def fmt(e: dict[str, float], k: float = 1.0) -> str:
    return f"{e['low'] / k:.1f} - **{e['mid'] / k:.1f}** - {e['high'] / k:.1f}"


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| case | rows | calibration (s) | predicted per trial (s) | measured per trial (s) | predicted sweep (s) "
        "| measured sweep (s) | error % | inside range |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p, m, n = r["predicted"], r["measured"], r["trials"]
        err = 100 * (p["total"]["mid"] - m["wall"]) / m["wall"]
        inside = p["total"]["low"] <= m["wall"] <= p["total"]["high"]
        cal = "cached" if r["calibration_cached"] else f"{r['calibration_s']:.0f}"
        out.append(
            f"| {r['case']} ({n} trials, {r['cores']} cores) | {r['rows']:,} | {cal} | {fmt(p['trials'], n)} "
            f"| {m['trial_mean']:.1f} | {fmt(p['total'])} | {m['wall']:.0f} | {err:+.0f} "
            f"| {'yes' if inside else 'NO'} |"
        )
    errs = [abs(r["predicted"]["total"]["mid"] - r["measured"]["wall"]) / r["measured"]["wall"] for r in rows]
    ins = sum(r["predicted"]["total"]["low"] <= r["measured"]["wall"] <= r["predicted"]["total"]["high"] for r in rows)
    out.append("")
    out.append(
        f"mean absolute error per sweep: {100 * statistics.fmean(errs):.1f}%; inside the range: {ins}/{len(rows)}"
    )
    return "\n".join(out)


def in_own_process(case: str, trials: int | None, cache: str, out: Path) -> dict[str, Any]:
    """One case run by this script in a fresh process, as a user's sweep always is: a sweep run after another in
    the same process would find Spark's JVM started and its code compiled, and take a cold sweep's setup for free."""
    cmd = [sys.executable, __file__, "--cases", case, "--cache-dir", cache, "--out", str(out)]
    subprocess.run([*cmd, *(["--trials", str(trials)] if trials else [])], check=True, stdout=subprocess.DEVNULL)
    rec: dict[str, Any] = json.loads(out.read_text().splitlines()[-1])
    return rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", choices=list(CASES), default=[c for c in CASES if c != "softmax_ovr"])
    ap.add_argument("--trials", type=int, help="trials per sweep (default: per case, 4-8)")
    ap.add_argument("--cache-dir", help="calibration cache (default: a fresh temporary folder: measured anew)")
    ap.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    ap.add_argument("--overrides", nargs="*", default=[], help="for every case, e.g. backend.compact_hashed=false")
    ap.add_argument(
        "--measured",
        type=Path,
        help="JSON lines of an earlier run: keep its measured sweeps, calibrate and predict again (no sweep runs)",
    )
    args = ap.parse_args()
    EXTRA[:] = args.overrides
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    register_configs()
    if args.measured:
        with tempfile.TemporaryDirectory(prefix="bench-plan-cache-") as tmp:
            rows = repredict(args.measured, args.cache_dir or tmp)
        if args.out:
            args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
        print()
        print(table(rows))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-plan-cache-") as tmp:
        cache = args.cache_dir or tmp
        for case in args.cases:
            print(f"# {case}: load average before {load()}", flush=True)
            if len(args.cases) == 1:
                rec = run_case(case, args.trials, cache)
            else:
                rec = in_own_process(case, args.trials, cache, Path(tmp) / f"{case}.json")
            line = json.dumps(rec)
            print(line, flush=True)
            if args.out:
                with args.out.open("a") as fh:
                    fh.write(line + "\n")
            rows.append(rec)
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
