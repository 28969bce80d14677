"""Hostile tables, generated (Hypothesis): every one ends in a correct run or one clean error line, never a
traceback, never an MLflow run left RUNNING (issue 12).

A table starts valid (60+ rows: two numeric features, a categorical, a yes/no target) and gets any mix of:
another delimiter, a BOM, Latin-1 bytes, stray text in a numeric column, NaN and inf, a categorical with one level
per row, a categorical with 10^5 levels (on 2 * 10^5 rows), a duplicated header, stray target values, a single
class, a handful of rows. The real `lrsweep` main()
runs on it in this process (a tracked 2-trial sweep into a SQLite store, inline writer).
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e_helpers import cli_in_process

pytestmark = pytest.mark.slow

CORRUPTIONS = (
    "semicolon", "tab", "bom", "latin1", "stray_text", "nan", "inf", "unique_levels", "levels_1e5",
    "duplicate_header", "stray_target", "one_class", "few_rows",
)  # fmt: skip


LEVELS = 10**5


def _table(corruptions: frozenset[str], rows: int, seed: int) -> tuple[bytes, str]:
    """The CSV's bytes and its encoding-free description (for the failure message)."""
    rng = np.random.default_rng(seed)
    n = 5 if "few_rows" in corruptions else 2 * LEVELS if "levels_1e5" in corruptions else rows
    x1 = rng.normal(size=n).round(4).astype(object)
    x2 = rng.normal(size=n).round(4).astype(object)
    city = rng.choice(["north", "south", "east"], n).astype(object)
    if "unique_levels" in corruptions:
        city = np.array([f"c{i}" for i in range(n)], dtype=object)
    elif "levels_1e5" in corruptions:  # each level on two rows: a real categorical, not an id
        city = np.char.add("c", (rng.permutation(n) % LEVELS).astype(str)).astype(object)
    p = 1 / (1 + np.exp(-(1.2 * x1.astype(float) - x2.astype(float))))
    y = np.where(rng.random(n) < p, "yes", "no").astype(object)
    if "one_class" in corruptions:
        y[:] = "yes"
    if "stray_target" in corruptions:
        y[: max(1, n // 20)] = "maybe"
    if "stray_text" in corruptions:
        x1[n // 2] = "n/a?"
    if "nan" in corruptions:
        x2[1 : max(2, n // 10)] = ""
    if "inf" in corruptions:
        x2[0] = "inf"
        x1[-1] = "-inf"
    if "latin1" in corruptions:
        city[0] = "Malmö"
    header = ["x1", "x2", "city", "y"]
    if "duplicate_header" in corruptions:
        header[1] = "x1"
    sep = ";" if "semicolon" in corruptions else "\t" if "tab" in corruptions else ","
    lines = [sep.join(header)] + [sep.join(str(v) for v in row) for row in zip(x1, x2, city, y, strict=True)]
    text = "\n".join(lines) + "\n"
    data = text.encode("latin-1" if "latin1" in corruptions else "utf-8")
    if "bom" in corruptions and "latin1" not in corruptions:
        data = b"\xef\xbb\xbf" + data
    return data, f"{sorted(corruptions)} rows={n}"


def _running_runs(db: Path) -> list[str]:
    import sqlite3

    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db)) as con:
        return [r[0] for r in con.execute("SELECT run_uuid FROM runs WHERE status = 'RUNNING'")]


STORE = Path(tempfile.mkdtemp(prefix="lrsweep-hostile-"))  # one MLflow store for all examples (built once)
EXAMPLES = itertools.count()  # an MLflow experiment per example: no example continues another's parent run


@pytest.fixture(scope="module", autouse=True)
def _remove_the_store():
    yield
    shutil.rmtree(STORE, ignore_errors=True)


@settings(max_examples=24, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(
    corruptions=st.frozensets(st.sampled_from(CORRUPTIONS), max_size=4),
    rows=st.integers(min_value=60, max_value=400),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_a_hostile_table_ends_in_a_run_or_one_clean_line(corruptions: frozenset[str], rows: int, seed: int):
    data, what = _table(corruptions, rows, seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "t.csv").write_bytes(data)
        argv = [
            "lrsweep", "dataset=csv", "dataset.path=t.csv", "dataset.target=y", "dataset.positive=yes",
            "search.n_trials=2", "search=l2", "tracking.mode=inline", "tracking.artifacts=false",
            f"tracking.uri=sqlite:///{STORE / 'mlflow.db'}", f"tracking.experiment=hostile-{next(EXAMPLES)}",
            "tracking.log_model=false", "progress=false",
        ]  # fmt: skip
        if "latin1" in corruptions:
            argv.append("dataset.encoding=latin-1")  # the fix lrsweep's own message names (tested apart)
        ran = cli_in_process(argv[1:], work)
        code = ran.returncode
        said = ran.stderr
        assert "Traceback" not in said, f"{what}:\n{said[-3000:]}"
        if code == 0:
            assert "best parameters" in ran.stdout, f"{what}: no summary\n{said[-2000:]}"
        else:
            assert code == 2, f"{what}: exit {code}\n{said[-2000:]}"
            errors = [line for line in said.splitlines() if line.startswith("lrsweep: error: ")]
            assert len(errors) == 1 and said.rstrip().endswith(errors[0]), f"{what}:\n{said[-2000:]}"
            assert "; " in errors[0], f"{what}: the line names no fix: {errors[0]}"  # problem; fix
        assert _running_runs(STORE / "mlflow.db") == [], f"{what}: an MLflow run left RUNNING"
