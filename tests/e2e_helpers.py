"""Helpers for tests that run lrsweep as a user would: the CLI in a subprocess, results read back."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-m", "lrsweep.cli"]


def run_cli(
    args: list[str], cwd: Path, timeout: float = 600, env_extra: dict[str, str] | None = None, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """``lrsweep ARGS`` in ``cwd`` (``timeout`` only guards against a hang)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env_extra or {})}
    env.pop("HYDRA_FULL_ERROR", None)
    env.pop("LRSWEEP_DEBUG", None)
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, **kw)


def mlflow_runs(cwd: Path, experiment: str = "lrsweep-telco_churn", uri: str | None = None) -> tuple[list, list]:
    """(parent runs, child runs) of an experiment in the sqlite store under ``cwd``."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri or f"sqlite:///{cwd / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment!r}"
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    parents = [r for r in runs if r.data.tags.get("lrsweep.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("lrsweep.kind") == "trial"]
    return parents, children


def study_trials(cwd: Path, folder: Path | None = None) -> dict[str, list]:
    """Every study in the default journal folder under ``cwd`` (or in ``folder``): name -> trials."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    out: dict[str, list] = {}
    for journal in sorted((folder or cwd / "lrsweep_studies").glob("*.journal")):
        storage = JournalStorage(JournalFileBackend(str(journal)))
        for s in optuna.get_all_study_summaries(storage):
            out[s.study_name] = optuna.load_study(study_name=s.study_name, storage=storage).get_trials()
    return out


def cheap_calibration(cache: Path) -> list[str]:
    """Overrides for `lrsweep plan` / `lrsweep launch` in tests: the smallest calibration the model still fits
    (one sample size, few configurations), cached in ``cache`` so every test of a session after the first
    reads it instead of starting Spark."""
    return [
        f"plan.calibration.cache_dir={cache}",
        "plan.calibration.fractions=1",
        "plan.calibration.configs=3",
        "plan.calibration.small_configs=1",
        "plan.calibration.probes=0",  # the size term from the fits (probes and warm-up: tests/planning/test_calibrate)
        "plan.calibration.warmup=false",
        "plan.calibration.parallel=true",  # both children at once: the machinery, not good figures
    ]


RECORDED_CALIBRATION = Path(__file__).parent / "planning" / "data" / "telco_churn-calibration.json"
# the argument sets of the tests that plan telco churn (their calibration keys may differ with the backend's settings)
_PLANNED = (["backend=spark"], ["backend=spark", "cluster=emr"], ["backend=spark", "cluster=standalone"])


def seed_calibration(cache: Path) -> list[Path]:
    """File RECORDED_CALIBRATION (the cheap calibration of telco churn that `lrsweep plan` measured on this machine
    kind, 2026-12-01) in ``cache`` under this machine's key for each argument set of _PLANNED: the plan and launch
    tests then read it as a cache hit. Return the files written."""
    import json

    from hydra import compose, initialize_config_dir

    import lrsweep
    from lrsweep.cli import register_configs, to_config
    from lrsweep.planning.calibrate import _cache_path, cache_key, fingerprint, hardware

    recorded = json.loads(RECORDED_CALIBRATION.read_text())
    register_configs(cache)
    written = []
    with initialize_config_dir(version_base="1.3", config_dir=str(Path(lrsweep.__file__).parent / "conf")):
        for args in _PLANNED:
            cfg = to_config(compose("config", overrides=[*args, *cheap_calibration(cache)]))
            data, hw = fingerprint(cfg.dataset), hardware()
            key = cache_key(cfg, data, hw)
            path = _cache_path(cfg, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(recorded | {"fingerprint": data, "hardware": hw, "key": key}, indent=1))
            written.append(path)
    return written


def cli_in_process(
    args: list[str], cwd: Path, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``lrsweep ARGS`` in ``cwd`` through the CLI's own main() in this process, read back as run_cli's result
    (returncode, stdout, stderr): for tests where the process boundary is not what is checked, without a
    Python start and the imports every run_cli pays. As run_cli: no HYDRA_FULL_ERROR or LRSWEEP_DEBUG from the
    caller. Whatever the call changes in this process is put back after it: the working directory, sys.argv,
    the environment (main() sets HYDRA_FULL_ERROR, a multirun LRSWEEP_HYDRA_DIR), the CLI's per-call state,
    MLflow's tracking URI, and the logging set-up Hydra installs (handlers on the call's captured stderr).
    Warnings are ignored, as run_cli's PYTHONWARNINGS=ignore does."""
    import contextlib
    import copy
    import io
    import logging
    import warnings

    from lrsweep import cli

    out, err = io.StringIO(), io.StringIO()
    env, argv, here = dict(os.environ), list(sys.argv), os.getcwd()
    run_state = copy.deepcopy(cli._RUN)
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]
    kept = [(lg, lg.handlers[:], lg.level, lg.propagate, lg.disabled) for lg in loggers]
    captured_warnings = logging._warnings_showwarning is not None  # type: ignore[attr-defined]
    tracking = "mlflow.tracking._tracking_service.utils"  # MLflow is not imported here for this
    uri = getattr(sys.modules.get(tracking), "_tracking_uri", None)
    code = 0
    try:
        os.environ.pop("HYDRA_FULL_ERROR", None)
        os.environ.pop("LRSWEEP_DEBUG", None)
        os.environ.update(env_extra or {})
        os.chdir(cwd)
        sys.argv = ["lrsweep", *args]
        cli._RUN.update(command="sweep", dry_run=False, plans=[])  # as a fresh process starts
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cli.main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(here)
        sys.argv = argv
        os.environ.clear()
        os.environ.update(env)
        cli._RUN.clear()
        cli._RUN.update(run_state)
        for lg, handlers, level, propagate, disabled in kept:
            lg.handlers[:] = handlers
            lg.level, lg.propagate, lg.disabled = level, propagate, disabled
        logging.captureWarnings(captured_warnings)
        if tracking in sys.modules:
            sys.modules[tracking]._tracking_uri = uri  # type: ignore[attr-defined]
    return subprocess.CompletedProcess([*CLI, *args], code, out.getvalue(), err.getvalue())


def parent_opened(db: Path) -> bool:
    """Has a sweep's MLflow writer created its parent run in the sqlite store ``db``? (a read-only look: no file,
    no tables yet or a write in progress count as not yet)."""
    import sqlite3

    query = "SELECT count(*) FROM tags WHERE key = 'lrsweep.kind' AND value = 'sweep'"
    with (
        contextlib.suppress(sqlite3.Error),
        contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as con,
    ):
        return bool(con.execute(query).fetchone()[0])
    return False
