"""The no-skip rule of CI, as a pytest plugin (registered by tests/conftest.py).

With LRSWEEP_NO_SKIPS=1 (set by .ci/run) every way a check can silently not run fails the run instead:
- a test skipped at run time (``pytest.skip``, a ``skip``/``skipif`` mark, ``importorskip`` in a fixture);
- a module skipped while it is collected (``pytest.importorskip`` or ``pytest.skip(allow_module_level=True)`` at
  module level): a collection error, which stops the session before any test runs;
- an expected failure, xfailed or xpassed: CI has everything installed, so nothing is expected to fail.

CI has pyspark, Java and the console script, so a skip there means a check silently did not run.
This file is also the inner conftest of tests/test_skip_policy.py, which proves each point.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

ENV = "LRSWEEP_NO_SKIPS"


def _enforced() -> bool:
    return os.environ.get(ENV) == "1"


def _reason(report: Any) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if _enforced() and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"{collector.nodeid}: skipped at collection, and {ENV}=1 forbids skips: {_reason(report)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not _enforced():
        return
    if hasattr(report, "wasxfail"):
        if report.skipped or report.passed:  # xfailed, or a non-strict xpass
            what = "xfailed" if report.skipped else "xpassed"
            reason = report.wasxfail
            del report.wasxfail  # else pytest counts the report as an expected failure, not a failure
            report.outcome = "failed"
            report.longrepr = f"{what} ({reason or 'no reason given'}), and {ENV}=1 forbids xfail marks"
    elif report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped, and {ENV}=1 forbids skips: {_reason(report)}"
