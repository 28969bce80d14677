"""A real MLflow tracking server on 127.0.0.1 (sqlite store, proxied artifacts), stopped at the end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.data.servers import free_port

__all__ = ["mlflow_server", "free_port", "SERVER_HANG_GUARD"]

# the server's job runner (GenAI scorers, trace archival: more processes importing MLflow) serves nothing lrsweep
# logs, slows every call that runs while it starts on two cores, and outlives a terminated server (an orphan)
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
SERVER_HANG_GUARD = 300.0  # seconds: a server that never answers fails the test with its log, instead of hanging


def _wait_until_serving(server: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Poll the server's readiness endpoint until it answers 200; fail with its log if it dies or never answers."""
    deadline = time.monotonic() + SERVER_HANG_GUARD
    while True:
        if server.poll() is not None:
            pytest.fail(f"the MLflow server exited with code {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):  # not listening yet
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"hang guard: the MLflow server never answered {url}/health:\n{log.read_text()[-4000:]}")
        time.sleep(0.3)


@contextmanager
def mlflow_server(folder: Path) -> Iterator[str]:
    """``mlflow server`` storing in ``folder/server.db`` and ``folder/artifacts``; yields its URL."""
    port = free_port()
    log = folder / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{folder}/server.db",
             "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT, env=os.environ | SERVER_ENV,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_serving(server, url, log)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(60)
