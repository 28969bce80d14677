"""A real MLflow tracking server stopped in the middle of a sweep and started again (issue 12's faults): the
sweep goes on, the finished trials the server missed are kept by the writer and logged when it is back."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e_helpers import mlflow_runs
from tests.mlflow_server import SERVER_ENV, _wait_until_serving, free_port

pytestmark = pytest.mark.slow
HANG_GUARD = 300.0
WITH_TESTS = {
    "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])
}


@contextlib.contextmanager
def _server(folder: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``mlflow server`` on ``port`` storing in ``folder`` (the same store each time it is started)."""
    log = folder / f"server-{time.monotonic_ns()}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{folder}/server.db",
             "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ | SERVER_ENV,
        )  # fmt: skip
    try:
        _wait_until_serving(proc, f"http://127.0.0.1:{port}", log)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(60)


def _until(done, what: str, sweep: subprocess.Popen[str], err: Path) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not done():
        if sweep.poll() is not None:
            pytest.fail(f"the sweep exited ({sweep.returncode}) before {what}:\n{err.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"hang guard: no {what}")
        time.sleep(0.1)


def _trials_logged(db: Path) -> int:
    """Finished child runs on the server (the writer opened the parent, with its files, before any of them)."""
    query = (
        "SELECT count(*) FROM tags t JOIN runs r ON r.run_uuid = t.run_uuid "
        "WHERE t.key = 'lrsweep.kind' AND t.value = 'trial' AND r.status = 'FINISHED'"
    )
    with (
        contextlib.suppress(sqlite3.Error),
        contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as con,
    ):
        return int(con.execute(query).fetchone()[0])
    return 0


def test_a_tracking_server_restarted_mid_sweep_loses_no_trial(tmp_path: Path):
    from tests import blocking

    store = tmp_path / "server"
    store.mkdir()
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    n = 10
    err = tmp_path / "sweep.err"
    env = {
        **os.environ, "PYTHONWARNINGS": "ignore", blocking.BLOCK_AT: "4", blocking.MARKER: str(tmp_path / "blocked"),
        blocking.RELEASE: str(tmp_path / "release"), **WITH_TESTS,
    }  # fmt: skip
    args = [f"search.n_trials={n}", "search.penalties=[l2,l1]", "search.solvers=[lbfgs,liblinear]", "progress=false",
            f"tracking.uri={uri}", "tracking.artifacts=false", "tracking.log_model=false"]  # fmt: skip
    first = _server(store, port)
    first.__enter__()
    with open(err, "w") as e:
        sweep = subprocess.Popen(
            [sys.executable, "-m", "tests.blocking", "cli", *args], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=e, text=True, start_new_session=True,
        )  # fmt: skip
    try:
        _until((tmp_path / "blocked").exists, "the held trial", sweep, err)
        _until(lambda: _trials_logged(store / "server.db") == 3, "trials 0-2 on the server", sweep, err)
        first.__exit__(None, None, None)  # the server goes away while trial 3 runs
        (tmp_path / "release").touch()  # trials 3.. finish while nobody answers
        _until(lambda: "MLflow stopped answering" in err.read_text(), "the outage noticed", sweep, err)
        with _server(store, port):  # back, on the same port and store
            out, _ = sweep.communicate(timeout=HANG_GUARD)
            assert sweep.returncode == 0, err.read_text()[-3000:]
            parents, children = mlflow_runs(tmp_path, uri=uri)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sweep.pid, signal.SIGKILL)
    said = err.read_text()
    assert "MLflow answers again: every kept trial is logged" in said
    assert "Traceback" not in said
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(int(c.data.tags["lrsweep.trial_number"]) for c in children) == list(range(n))
    assert all(c.info.status == "FINISHED" for c in children)
    assert "test" in out.lower()  # the summary, after the outage
