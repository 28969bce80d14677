"""Test-wide isolation: MLflow's process-global tracking URI (and the MLFLOW_TRACKING_URI variable that
mlflow.set_tracking_uri exports) is put back after every test, so no test logs into another's store.

With LRSWEEP_NO_SKIPS=1 (set by .ci/run) a skipped test is reported as failed: CI has pyspark, Java and the
console script, so a skip there means a check silently did not run."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("LRSWEEP_NO_SKIPS") == "1" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, and LRSWEEP_NO_SKIPS=1 forbids skips: {reason}"
