"""One local[2] SparkSession for every Spark test: starting one costs 5-20 s (NOTES.md).

Backends reuse the active session (and do not stop a session they did not create), so the tests share
it. Without pyspark or Java the fixture skips, with the reason.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.driver.memory": "2g",  # hashed features: 2**20 coefficients per aggregation buffer
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}


def _java_missing() -> bool:
    home = os.environ.get("JAVA_HOME")
    return not (home and (Path(home) / "bin" / "java").exists()) and shutil.which("java") is None


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'lrsweep[spark]')")
    if _java_missing():
        pytest.skip("Java is not installed (Spark needs Java 17)")
    # NOTES.md: without it Spark binds a non-loopback address. The JVM inherits the variable at launch.
    old = os.environ.get("SPARK_LOCAL_IP")
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python workers: this venv, not PATH's python3
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[2]").appName("lrsweep-tests")
    for key, value in SPARK_CONF.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()
        if old is None:
            os.environ.pop("SPARK_LOCAL_IP", None)
        else:
            os.environ["SPARK_LOCAL_IP"] = old


@pytest.fixture
def sqlite_tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An MLflow sqlite store in tmp_path, as the global tracking URI and MLFLOW_TRACKING_URI (what log_model
    writes to); tests/conftest.py puts the previous URI back after the test. The working directory is tmp_path
    too: MLflow puts a sqlite store's artifacts under ./mlruns."""
    import mlflow

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return uri
