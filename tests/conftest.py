"""Test-wide isolation: MLflow's process-global tracking URI (and the MLFLOW_TRACKING_URI variable that
mlflow.set_tracking_uri exports) is put back after every test, so no test logs into another's store.

With LRSWEEP_NO_SKIPS=1 (set by .ci/run) a skip (at run time or at collection) or an xfail/xpass fails the run:
tests/skip_policy.py, proved by tests/test_skip_policy.py (which needs pytest's ``pytester`` fixture)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

pytest_plugins = ["pytester", "tests.skip_policy"]

# pytest-xdist's workers (make test runs two) execute under execnet, whose __main__ has neither __spec__ nor __file__:
# pyspark.sql.connect, which mlflow.spark imports, then takes the process for a doctest run and calls sys.exit(0)
# unless the process looks interactive (sys.ps1). __main__ itself is left alone: multiprocessing's spawn (the MLflow
# writer process) re-runs __main__'s file in the child.
if os.environ.get("PYTEST_XDIST_WORKER") and not hasattr(sys, "ps1"):
    sys.ps1 = ""


@pytest.fixture(scope="session")
def calibration_cache(tmp_path_factory: pytest.TempPathFactory):
    """One calibration cache for the session's `lrsweep plan` / `launch` runs (tests.e2e_helpers.cheap_calibration),
    seeded with a calibration measured on this machine kind (tests.e2e_helpers.seed_calibration): those tests check
    planning and launching, and measuring costs 1.5-3 min of Spark. tests/planning/test_calibrate.py measures."""
    from tests.e2e_helpers import seed_calibration

    cache = tmp_path_factory.mktemp("calibration-cache")
    seed_calibration(cache)
    return cache


@pytest.fixture(autouse=True)
def _isolated_mlflow_uri() -> Iterator[None]:
    before_env = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        from mlflow.tracking._tracking_service import utils as tracking_utils
    except ImportError:  # pragma: no cover
        yield
        return
    before = tracking_utils._tracking_uri
    yield
    tracking_utils._tracking_uri = before
    if before_env is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before_env
