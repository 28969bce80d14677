"""The no-skip rule (tests/skip_policy.py) on tiny inner suites run by pytest's ``pytester``: under
LRSWEEP_NO_SKIPS=1 a skip at collection or at run time, an xfail and an xpass each fail the run; without it the
same suites pass (so the failure comes from the rule, not from the inner tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import skip_policy

MODULE_SKIP = """
import pytest
pytest.skip("optional dependency missing", allow_module_level=True)

def test_never_runs():
    assert False
"""

MODULE_IMPORTORSKIP = """
import pytest
pytest.importorskip("lrsweep_no_such_module_for_the_skip_policy_test")

def test_never_runs():
    assert False
"""

RUN_TIME = """
import pytest

def test_passes():
    assert True

def test_skips():
    pytest.skip("not today")

@pytest.mark.skipif(True, reason="marked away")
def test_marked_skip():
    assert True

@pytest.mark.xfail(reason="known bug")
def test_xfails():
    assert False

@pytest.mark.xfail(reason="known bug, fixed since")
def test_xpasses():
    assert True
"""

PASSING = """
def test_passes():
    assert True
"""

ARGS = ("-p", "no:randomly", "-p", "no:cacheprovider", "-rA")


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(Path(skip_policy.__file__).read_text())  # the rule exactly as the real suite loads it
    return pytester


@pytest.mark.parametrize("module", [MODULE_SKIP, MODULE_IMPORTORSKIP], ids=["skip", "importorskip"])
def test_a_module_skipped_at_collection_fails_the_run(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    inner.makepyfile(test_skipped_module=module, test_fine=PASSING)
    monkeypatch.delenv(skip_policy.ENV, raising=False)
    allowed = inner.runpytest(*ARGS)
    assert allowed.ret == pytest.ExitCode.OK
    allowed.assert_outcomes(passed=1, skipped=1)

    monkeypatch.setenv(skip_policy.ENV, "1")
    enforced = inner.runpytest(*ARGS)
    assert enforced.ret != pytest.ExitCode.OK
    enforced.assert_outcomes(errors=1)  # a collection error: the session stops before any test runs
    enforced.stdout.fnmatch_lines(["*test_skipped_module.py*skipped at collection*LRSWEEP_NO_SKIPS=1 forbids*"])


def test_run_time_skips_xfail_and_xpass_fail_the_run(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    inner.makepyfile(test_run_time=RUN_TIME)
    monkeypatch.delenv(skip_policy.ENV, raising=False)
    allowed = inner.runpytest(*ARGS)
    assert allowed.ret == pytest.ExitCode.OK
    allowed.assert_outcomes(passed=1, skipped=2, xfailed=1, xpassed=1)

    monkeypatch.setenv(skip_policy.ENV, "1")
    enforced = inner.runpytest(*ARGS)
    assert enforced.ret == pytest.ExitCode.TESTS_FAILED
    enforced.assert_outcomes(passed=1, failed=3, errors=1)  # a skip mark acts at setup: an error
    for test, line in [
        ("test_skips", "skipped, and LRSWEEP_NO_SKIPS=1 forbids skips: *not today"),
        ("test_marked_skip", "skipped, and LRSWEEP_NO_SKIPS=1 forbids skips: *marked away"),
        ("test_xfails", "xfailed (known bug), and LRSWEEP_NO_SKIPS=1 forbids xfail marks"),
        ("test_xpasses", "xpassed (known bug, fixed since), and LRSWEEP_NO_SKIPS=1 forbids xfail marks"),
    ]:
        enforced.stdout.fnmatch_lines([f"*_ *{test} _*", line])


def test_the_real_suite_enforces_the_rule(pytestconfig: pytest.Config) -> None:
    """The rule is a plugin of this very run (tests/conftest.py), not only of the inner suites above."""
    assert pytestconfig.pluginmanager.has_plugin("tests.skip_policy")
