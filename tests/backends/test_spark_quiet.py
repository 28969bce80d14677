"""A Spark sweep's terminal: the summary on stdout, lrsweep's own log lines on stderr, the JVM's output in its log.

Each test runs the CLI in a subprocess (its own driver JVM, started by lrsweep), as a user would.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.e2e_helpers import run_cli

pytestmark = pytest.mark.spark

# What a Spark start and sweep printed on the terminal before lrsweep kept the JVM's output to itself
NOISE = (
    "Using incubator modules",  # the java launcher (Spark always adds --add-modules=jdk.incubator.vector)
    "log4j",  # "Using Spark's default log4j profile: ..."
    "Setting default log level",
    "setLogLevel",  # "To adjust logging level use sc.setLogLevel(newLevel) ..."
    "NativeCodeLoader",
    "netlib",  # "netlib-blas: JNI_OnLoad: dlopen(libblas.so.3) failed", from C
    "InstanceBuilder",
    "JNIBLAS",
    "resolves to a loopback address",
    "[Stage ",  # console progress bars
    "TaskSetManager",
)
LOG_LINE = re.compile(r"lrsweep: (DEBUG|INFO|WARNING|ERROR|CRITICAL): \S")
JVM_LOG = re.compile(r"Spark's log: (\.lrsweep/spark/driver-[0-9-]+\.log)")


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 2))
    y = (rng.random(300) < 1 / (1 + np.exp(-(1.5 * x[:, 0] - x[:, 1])))).astype(int)
    path = tmp_path / "small.csv"
    table = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "color": rng.choice(["red", "blue"], 300), "y": y})
    table.to_csv(path, index=False)
    return path


def test_spark_sweep_shows_the_summary_and_lrsweeps_lines_only(tmp_path: Path, small_csv: Path) -> None:
    """The JVM's start-up chatter, Spark's warnings and native loaders' messages go to the log named on stderr, at
    the log level the user set in cluster.spark_conf (WARN here; lrsweep's default is ERROR)."""
    run = run_cli(
        ["backend=spark", "cluster.master='local[2]'", "dataset=csv", f"dataset.path={small_csv}", "dataset.target=y"]
        + ["search.n_trials=2", "search.max_iter=50", "+cluster.spark_conf={spark.log.level: WARN}"],
        tmp_path,
        env_extra={"SPARK_LOCAL_IP": "127.0.0.1"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    for noise in NOISE:
        assert noise not in run.stderr and noise not in run.stdout, noise
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert lines and all(LOG_LINE.match(ln) for ln in lines), lines
    # stdout is the summary: its title line, then its indented lines
    title, *rest = [ln for ln in run.stdout.splitlines() if ln.strip()]
    assert re.fullmatch(r"lrsweep: \S+  \(spark, small\)", title), title
    assert rest and all(ln.startswith("  ") for ln in rest), rest
    assert any(ln.startswith("  trials: 2 finished") for ln in rest) and any("test confusion:" in ln for ln in rest)
    # the hidden output is in the log stderr names: the JVM's raw stderr, and Spark's at the user's level
    (name,) = {m.group(1) for m in JVM_LOG.finditer(run.stderr)}
    jvm_log = (tmp_path / name).read_text()
    assert "WARNING: Using incubator modules" in jvm_log and "NativeCodeLoader" in jvm_log, jvm_log[:3000]
    assert 'Setting Spark log level to "WARN".' in jvm_log, jvm_log[:3000]


def test_a_failed_spark_start_says_what_the_jvm_said(tmp_path: Path) -> None:
    """The JVM's own complaint, now in its log, reaches the one-line error, with the log's name."""
    run = run_cli(
        ["backend=spark", "cluster.master='local[1]'", "tracking=off", "+cluster.spark_conf={spark.driver.memory: 1q}"],
        tmp_path,
        env_extra={"SPARK_LOCAL_IP": "127.0.0.1"},
    )
    assert run.returncode == 2, run.stderr[-3000:]
    (line,) = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert line.startswith("lrsweep: error: cannot start Spark (cluster.master=local[1]): "), line
    assert "Invalid maximum heap size: -Xmx1q" in line, line
    (name,) = JVM_LOG.findall(line)
    assert "Invalid maximum heap size" in (tmp_path / name).read_text()
    assert run.stdout.strip() == ""
