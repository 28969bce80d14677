"""A sweep that stops inside a trial on cue, so a test can kill or interrupt it at a known point.

The Nth call of the backend's ``evaluate`` (N = $LRSWEEP_TEST_BLOCK_AT) writes a marker file
($LRSWEEP_TEST_MARKER, JSON: the call number, the configuration, the pid) and then waits for a release file
($LRSWEEP_TEST_RELEASE) that the tests never create: the trial is running, and stays so until the test sends its
signal. Without $LRSWEEP_TEST_BLOCK_AT nothing blocks. $LRSWEEP_TEST_BLOCK_AT may name several calls ("3,4": two
concurrent trials held at once, search.n_jobs=2); each then writes its own marker, the marker's path + ".N".
The calls are counted across threads. Run as a process:

    python -m tests.blocking sweep WORKDIR N_TRIALS SAMPLER   # run_sweep with BlockingBackend (tests/test_cli.py)
    python -m tests.blocking cli OVERRIDES...                 # the lrsweep CLI, its backend's evaluate patched
                                                              # (scikit-learn's, or Spark's with backend=spark)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lrsweep.backends.sklearn import SklearnBackend
from lrsweep.config import Config

BLOCK_AT, MARKER, RELEASE = "LRSWEEP_TEST_BLOCK_AT", "LRSWEEP_TEST_MARKER", "LRSWEEP_TEST_RELEASE"
HANG_GUARD_SECONDS = 900.0  # a blocked process nobody signals gives up (the test fails on its own guard first)

# the fast corner of the space (no sag/saga): trials of ~20-50 ms on telco churn
FAST = {"penalties": ["l2", "l1"], "solvers": ["lbfgs", "liblinear", "newton-cholesky"]}
# a grid of exactly 8 configurations: l2 x 4 values of C x class_weight none/balanced
GRID = {"penalties": ["l2"], "solvers": ["lbfgs"], "class_weight": ["none", "balanced"], "grid_points": 4}
GRID_SIZE = 8


def blocked_calls() -> list[int]:
    """The evaluate() calls to hold ($LRSWEEP_TEST_BLOCK_AT: "N" or "N,M,...")."""
    return [int(v) for v in os.environ.get(BLOCK_AT, "").split(",") if v.strip() and int(v) > 0]


def marker_of(call: int, calls: list[int]) -> Path:
    """Where the held call ``call`` says so: the marker itself when one call is held, else marker + ".N"."""
    marker = Path(os.environ[MARKER])
    return marker if len(calls) == 1 else marker.with_name(f"{marker.name}.{call}")


def block_if_due(call: int, params: Any) -> None:
    calls = blocked_calls()
    if call not in calls:
        return
    marker, release = marker_of(call, calls), Path(os.environ[RELEASE])
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps({"call": call, "params": params.as_dict(), "pid": os.getpid()}, default=str))
    tmp.rename(marker)  # the test sees the whole file or none of it
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while not release.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"blocked in evaluate() call {call} and never signalled")
        time.sleep(0.05)


class BlockingBackend(SklearnBackend):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0

    def evaluate(self, params: Any, fold: int | None = None) -> Any:
        self.calls += 1
        block_if_due(self.calls, params)
        return super().evaluate(params, fold)


def sweep_config(work: Path, n_trials: int, sampler: str) -> Config:
    """The bundled telco churn data, tracked into sqlite:///mlflow.db and lrsweep_studies/ under ``work``."""
    cfg = Config()
    cfg.progress = False
    cfg.search.n_trials = n_trials
    cfg.search.sampler = sampler
    for key, value in (GRID if sampler == "grid" else FAST).items():
        setattr(cfg.search, key, value)
    cfg.study.dir = str(work / "lrsweep_studies")
    cfg.tracking.uri = f"sqlite:///{work / 'mlflow.db'}"
    cfg.tracking.artifacts = cfg.tracking.log_model = False
    return cfg


def _patch_backend(cls: Any) -> None:
    """Count ``cls.evaluate`` calls (across the threads of search.n_jobs) and hold the due ones."""
    original = cls.evaluate
    calls = [0]
    lock = threading.Lock()

    def evaluate(self: Any, params: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            calls[0] += 1
            call = calls[0]
        block_if_due(call, params)
        return original(self, params, *args, **kwargs)

    cls.evaluate = evaluate


def main(argv: list[str]) -> None:
    # Ctrl-C raises KeyboardInterrupt, as in a terminal, even when this process inherited SIGINT ignored (a test run
    # started in the background by a non-interactive shell: Python then leaves SIGINT ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if argv[0] == "sweep":
        from lrsweep.sweep import run_sweep

        work, n_trials, sampler = Path(argv[1]), int(argv[2]), argv[3]
        cfg = sweep_config(work, n_trials, sampler)
        result = run_sweep(cfg, backend=BlockingBackend(cfg.backend, seed=cfg.seed))
        print(json.dumps({"n_finished": result.n_finished, "n_new": result.n_new, "states": result.states}))
    elif argv[0] == "cli":
        if "backend=spark" in argv:
            from lrsweep.backends.spark import SparkBackend

            _patch_backend(SparkBackend)
        else:
            _patch_backend(SklearnBackend)
        from lrsweep.cli import main as cli_main

        sys.argv = ["lrsweep", *argv[1:]]
        cli_main()
    else:
        raise SystemExit(f"unknown command {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
