"""Issue 12: trials run as Spark tasks (MLflow's `MlflowSparkStudy`) against `lrsweep` worker processes, on a real
Spark standalone cluster on 127.0.0.1 (a master and two one-core worker JVMs, tests/spark_cluster.py) with a real
MLflow tracking server (tests/mlflow_server.py).

The same work on both sides: N trials of lrsweep's default search space on telco churn (scikit-learn), each
trial the fit and validation of one configuration by lrsweep's own code (`space.suggest` + `evaluate_params`), the
study's trials recorded in the same MLflow server.

- `MlflowSparkStudy`: the study kept in an MLflow experiment (`MlflowStorage`, the only storage it accepts), the
  driver a SparkSession on the standalone master, `optimize(n_trials=N, n_jobs=2)`: two Spark tasks, one per
  executor core, each loading the study and running its share of the trials. Each executor's Python worker loads
  and preprocesses the data once (a module-level cache), as an lrsweep worker does.
- `MlflowStorage` alone: the same trials one after the other in this process on the same storage, no Spark:
  what the storage costs by itself.
- `lrsweep` workers: two `lrsweep` processes on one study (the journal file), tracking to the same server, as
  the README's "Several workers on one study" runs them (each its own setup; they refit and log the best model
  as well, which the Spark study does not).

Printed per case: wall time (setup included), trials per minute over it and over the trial phase (first trial
start to last trial end, as the study's own timestamps say), the trials each side recorded, and the MLflow runs it
created. Asserts nothing (a benchmark, not a test).

Usage:  SPARK_LOCAL_IP=127.0.0.1 python benchmarks/bench_spark_study.py [--trials 40] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_CACHE: dict[str, Any] = {}  # per Python worker process: (config, backend, pool), built on its first trial


def _setup() -> tuple[Any, Any, Any]:
    """The default sweep's config and a prepared scikit-learn backend (what one lrsweep worker pays once)."""
    if "setup" not in _CACHE:
        from hydra import compose, initialize_config_dir

        import lrsweep
        from lrsweep.backends import capabilities_of, make_backend
        from lrsweep.cli import register_configs, to_config
        from lrsweep.config import validate
        from lrsweep.data.handle import open_data

        register_configs()
        with initialize_config_dir(version_base="1.3", config_dir=str(Path(lrsweep.__file__).parent / "conf")):
            cfg = to_config(compose("config", overrides=["tracking=off"]))
        pool = validate(cfg, capabilities_of(cfg.backend.name))
        backend = make_backend(cfg)
        backend.prepare(open_data(cfg.dataset, cfg.split, cfg.cv, cfg.seed))
        _CACHE["setup"] = (cfg, backend, pool)
    return _CACHE["setup"]


def objective(trial: Any) -> float:
    """One lrsweep trial: suggest a configuration from the default space, fit it, return the validation metric."""
    from lrsweep.space import suggest
    from lrsweep.sweep import evaluate_params

    cfg, backend, pool = _setup()
    params = suggest(trial, cfg.search, cfg.threshold, pool)
    return float(evaluate_params(backend, cfg, params, trial).metrics[cfg.objective.metric])


def _phase(trials: list[Any]) -> float:
    done = [t for t in trials if t.state.name == "COMPLETE"]
    return (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()


def _runs(uri: str, experiment: str) -> int:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    return len(client.search_runs([exp.experiment_id], max_results=50_000)) if exp else 0


def spark_study(master: str, uri: str, n: int, jobs: int) -> dict[str, Any]:
    import mlflow
    from mlflow.optuna.storage import MlflowStorage
    from mlflow.pyspark.optuna.study import MlflowSparkStudy
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the executors' Python: this venv, as lrsweep sets it
    t0 = time.perf_counter()
    spark = (
        SparkSession.builder.master(master).appName("bench MlflowSparkStudy")
        .config("spark.ui.enabled", "false").config("spark.executor.memory", "1g")
        .config("spark.executorEnv.PYTHONPATH", str(ROOT))
        .config("spark.executorEnv.PYTHONWARNINGS", "ignore").getOrCreate()
    )  # fmt: skip
    spark.sparkContext.setLogLevel("ERROR")
    session = time.perf_counter() - t0
    mlflow.set_tracking_uri(uri)
    experiment_id = mlflow.create_experiment("bench-spark-study")
    study = MlflowSparkStudy("telco", MlflowStorage(experiment_id=experiment_id), mlflow_tracking_uri=uri,
                             direction="maximize")  # fmt: skip
    study.optimize(objective, n_trials=n, n_jobs=jobs)
    wall = time.perf_counter() - t0
    trials = study.trials
    spark.stop()
    return {"wall": wall, "session": session, "trials": trials, "runs": _runs(uri, "bench-spark-study")}


def mlflow_storage_alone(uri: str, n: int) -> dict[str, Any]:
    """The same trials in this one process on `MlflowStorage` (no Spark): what the storage itself costs."""
    import mlflow
    import optuna
    from mlflow.optuna.storage import MlflowStorage

    t0 = time.perf_counter()
    mlflow.set_tracking_uri(uri)
    storage = MlflowStorage(experiment_id=mlflow.create_experiment("bench-mlflow-storage"))
    study = optuna.create_study(study_name="telco", storage=storage, direction="maximize")
    study.optimize(objective, n_trials=n)
    return {"wall": time.perf_counter() - t0, "session": 0.0, "trials": study.trials,
            "runs": _runs(uri, "bench-mlflow-storage")}  # fmt: skip


def lrsweep_workers(uri: str, n: int, jobs: int, work: Path) -> dict[str, Any]:
    from benchmarks.bench_workers import run_workers
    from tests.e2e_helpers import study_trials

    args = [f"search.n_trials={n}", "progress=false", f"tracking.uri={uri}", "tracking.experiment=bench-workers"]
    wall = run_workers(jobs, args, work)
    (trials,) = study_trials(work).values()
    return {"wall": wall, "session": 0.0, "trials": trials, "runs": _runs(uri, "bench-workers")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--jobs", type=int, default=2, help="Spark tasks / lrsweep worker processes")
    a = ap.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from tests.mlflow_server import mlflow_server
    from tests.spark_cluster import standalone_cluster

    print(f"{a.trials} trials, telco churn, default space; {a.jobs} Spark tasks or workers; {os.cpu_count()} cores")
    print(f"{'case':<22} {'wall s':>7} {'trials/min':>10} {'trial phase s':>13} {'trials/min':>10} "
          f"{'COMPLETE':>8} {'other':>5} {'MLflow runs':>11}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, standalone_cluster(workers=2, memory="1g") as cluster:
        work = Path(tmp)
        with mlflow_server(work) as uri:
            for name, run in (
                ("MlflowSparkStudy", lambda: spark_study(cluster.master, uri, a.trials, a.jobs)),
                ("MlflowStorage, 1 proc", lambda: mlflow_storage_alone(uri, a.trials)),
                ("lrsweep workers", lambda: lrsweep_workers(uri, a.trials, a.jobs, work)),
            ):
                r = run()
                done = sum(t.state.name == "COMPLETE" for t in r["trials"])
                phase = _phase(r["trials"])
                print(f"{name:<22} {r['wall']:>7.1f} {60 * done / r['wall']:>10.1f} {phase:>13.1f} "
                      f"{60 * done / phase:>10.1f} {done:>8} {len(r['trials']) - done:>5} {r['runs']:>11}",
                      flush=True)  # fmt: skip
                if r["session"]:
                    print(f"  (of which the SparkSession on the standalone master: {r['session']:.1f} s)")


if __name__ == "__main__":
    main()
