"""A Spark driver that stops (out of memory, killed) ends the sweep in one line instead of hanging or failing every
trial after it (the sweep's side, resuming, is in tests/test_cli.py). Each test runs in its own process: it kills
that process's driver JVM, never the session the other Spark tests share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.spark

SCRIPT = textwrap.dedent(
    """
    import json, os
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from lrsweep.backends.spark import SparkBackend
    from lrsweep.clusters import LocalCluster
    from lrsweep.config import Config
    from lrsweep.data import open_data
    from lrsweep.errors import BackendLost
    from lrsweep.space import ModelParams

    cfg = Config()  # the bundled telco churn data
    own = {"spark.driver.memory": "512m", "spark.driver.extraJavaOptions": "-Dlrsweep.test.own=1"}  # a user's
    backend = SparkBackend(cluster=LocalCluster(master="local[1]", spark_conf=own))
    backend.prepare(open_data(cfg.dataset, cfg.split, cfg.cv, cfg.seed))
    jvm, proc = backend.spark._jvm, backend.spark.sparkContext._gateway.proc
    cmdline = open(f"/proc/{proc.pid}/cmdline").read().split("\\0")
    out = {"flag": "-XX:+ExitOnOutOfMemoryError" in cmdline, "own": "-Dlrsweep.test.own=1" in cmdline}
    try:  # 1.6 GB asked of a 512 MB heap, in the driver, as concurrent fits of 2**20 coefficients can
        jvm.java.lang.reflect.Array.newInstance(jvm.java.lang.Double.TYPE, 200_000_000)
        out["allocation"] = "allocated"
    except Exception as exc:
        out["allocation"] = type(exc).__name__
    out["jvm_exit"] = proc.wait(timeout=60)
    params = ModelParams(C=1.0, l1_ratio=0.0, penalty="l2", solver=None, class_weight="none", max_iter=20, tol=1e-4)
    for call in ("evaluate", "evaluate again"):
        try:
            backend.evaluate(params)
            out[call] = "ran"
        except BackendLost as exc:
            out[call] = exc.line()
    backend.close()
    from pyspark.sql import SparkSession
    out["forgotten"] = backend.spark is None and SparkSession.getActiveSession() is None
    print(json.dumps(out))
    """
)


def test_a_driver_out_of_memory_exits_and_the_next_call_says_so_in_one_line(tmp_path: Path) -> None:
    """Without -XX:+ExitOnOutOfMemoryError the driver survives an OutOfMemoryError with dead scheduler threads and a
    sweep waits forever (concurrent fits of hashed features did, 2026-12-05); with it the JVM exits, and every call
    after says why and what to do, as one BackendLost line."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["flag"] is True and out["own"] is True  # the user's own driver options keep the flag
    assert out["allocation"] != "allocated" and out["jvm_exit"] != 0  # the JVM exited instead of going on
    expected = (
        "the Spark driver ran out of memory (512m heap) and stopped; run fewer fits at once (search.n_jobs, "
        "backend.ovr_parallelism) or give the driver more memory (e.g. '+cluster.spark_conf={spark.driver.memory: "
        "16g}'), then run the same command again: finished trials are kept"
    )
    assert out["evaluate"] == expected and out["evaluate again"] == expected
    assert out["forgotten"] is True  # a new session could start in this process
    assert "Traceback" not in run.stderr and "Exception while sending command" not in run.stderr
