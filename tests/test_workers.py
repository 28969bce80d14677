"""Several workers on one study (lrsweep.workers, Sweep.run_trials): who is alive, exact trial counts, one parent.

The unit tests use real Optuna storages in tmp_path; the end-to-end ones run real `lrsweep` processes side by side
on one study (journal file, or a SQLite database URL) with a real MLflow SQLite store, one of them held inside a
trial (tests/blocking.py) until the test lets it go, or kills it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lrsweep import workers
from lrsweep.workers import WORKER_ATTR, Worker, WorkerRecord, alive, lease_held
from tests.e2e_helpers import mlflow_runs, parent_opened

HANG_GUARD = 300.0  # seconds: only so a hung worker fails the test with its stderr instead of hanging CI
WITH_TESTS = {
    "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])
}


def _study(tmp_path: Path, name: str = "s"):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "s.journal")))
    return optuna.create_study(study_name=name, storage=storage, load_if_exists=True)


# -- lrsweep.workers on its own -------------------------------------------------------------------------
def test_two_workers_see_each_other_and_the_first_leads(tmp_path: Path):
    study = _study(tmp_path)
    a = Worker(study, tmp_path / "leases")
    b = Worker(_study(tmp_path), tmp_path / "leases")  # another handle on the same journal, as another process
    try:
        assert {w.id for w in a.live()} == {a.id, b.id}
        assert [w.id for w in a.others()] == [b.id] and [w.id for w in b.others()] == [a.id]
        assert a.is_leader() and not b.is_leader()
        assert lease_held(a.lease) and lease_held(b.lease)
    finally:
        a.close()
    assert not lease_held(a.lease)  # left: file gone, nobody's
    assert [w.id for w in b.live()] == [b.id] and b.is_leader()  # the next in line leads
    b.close()


def test_a_dead_workers_running_trial_is_found_and_a_live_ones_is_not(tmp_path: Path):
    study = _study(tmp_path)
    me = Worker(study, tmp_path / "leases")
    other = Worker(_study(tmp_path), tmp_path / "leases")
    mine, theirs = study.ask(), study.ask()
    mine.set_user_attr(WORKER_ATTR, me.id)
    theirs.set_user_attr(WORKER_ATTR, other.id)
    running = study.get_trials(deepcopy=False)
    assert me.dead_trials(running) == []
    other._lease.close()  # what kill -9 does to its lock: the OS drops it (its record still says running)
    dead = me.dead_trials(study.get_trials(deepcopy=False))
    assert [t.number for t in dead] == [theirs.number]
    me.close()


def test_a_trial_that_names_no_worker_is_dead_when_no_one_else_works_or_once_it_is_old(tmp_path: Path, monkeypatch):
    study = _study(tmp_path)
    me = Worker(study, tmp_path / "leases")
    study.ask()  # asked, then killed before it was marked
    assert len(me.dead_trials(study.get_trials(deepcopy=False))) == 1  # alone: nobody else could be running it
    other = Worker(_study(tmp_path), tmp_path / "leases")
    assert me.dead_trials(study.get_trials(deepcopy=False)) == []  # someone else might have just asked it
    monkeypatch.setattr(workers, "ORPHAN_SECONDS", -1.0)
    assert len(me.dead_trials(study.get_trials(deepcopy=False))) == 1
    other.close()
    me.close()


def test_a_worker_on_another_host_is_alive_while_its_heartbeat_is_fresh():
    now = time.time()
    remote = WorkerRecord("far-1-x", "another-host", 1, "/nowhere.lock", now - 500, now - 5)
    assert socket.gethostname() != "another-host"
    assert alive(remote, now)
    assert not alive(WorkerRecord(**{**remote.__dict__, "beat": now - workers.GRACE_SECONDS - 1}), now)
    assert not alive(WorkerRecord(**{**remote.__dict__, "ended": True}), now)
    local = WorkerRecord("near-1-x", socket.gethostname(), 1, "/nowhere.lock", now, now)
    assert not alive(local, now)  # on this host the lease decides, whatever the heartbeat says


def test_the_heartbeat_refreshes_the_record(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(workers, "HEARTBEAT_SECONDS", 0.05)
    study = _study(tmp_path)
    w = Worker(study, tmp_path / "leases")
    first = w.record.beat
    deadline = time.monotonic() + 30
    while w.workers()[0].beat == first and time.monotonic() < deadline:
        time.sleep(0.05)
    assert w.workers()[0].beat > first
    w.close()
    assert w.workers()[0].ended


# -- real lrsweep processes on one study --------------------------------------------------------------
@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start an `lrsweep` worker (its Nth evaluate() held until ``release`` exists, see tests/blocking.py) in its own
    process group; whatever is left of the groups is killed at teardown."""
    from tests import blocking

    groups: list[int] = []

    def run(name: str, overrides: list[str], block_at: int = 0) -> subprocess.Popen[str]:
        env = {
            **os.environ,
            "PYTHONWARNINGS": "ignore",
            blocking.BLOCK_AT: str(block_at),
            blocking.MARKER: str(tmp_path / f"{name}.blocked"),
            blocking.RELEASE: str(tmp_path / f"{name}.release"),
            **WITH_TESTS,
        }
        env.pop("LRSWEEP_DEBUG", None)
        with open(tmp_path / f"{name}.err", "w") as err, open(tmp_path / f"{name}.out", "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.blocking", "cli", *overrides],
                cwd=tmp_path, env=env, stdout=out, stderr=err, text=True, start_new_session=True,
            )  # fmt: skip
        groups.append(proc.pid)
        return proc

    yield run
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def _wait(done: Callable[[], bool], what: str, procs: dict[str, subprocess.Popen[str]], tmp_path: Path) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not done():
        for name, p in procs.items():
            if p.poll() is not None:
                pytest.fail(f"{name} exited ({p.returncode}) before {what}:\n{_err(tmp_path, name)}")
        if time.monotonic() > deadline:
            pytest.fail(f"hang guard: no {what} after {HANG_GUARD:.0f} s")
        time.sleep(0.1)


def _err(tmp_path: Path, name: str) -> str:
    return (tmp_path / f"{name}.err").read_text()[-3000:]


def _exit(proc: subprocess.Popen[str]) -> int:
    try:
        return proc.wait(timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("hang guard: a worker did not exit")


def _trials(tmp_path: Path, storage: str):
    """The trials of the one study in ``storage``: "journal" (the default journal under tmp_path) or a URL."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if storage == "journal":
        (journal,) = (tmp_path / "lrsweep_studies").glob("*.journal")
        store = JournalStorage(JournalFileBackend(str(journal)))
    else:  # one engine per database for the whole test: a new one per poll kept its connections until collected,
        # and PostgreSQL refused the 101st (max_connections=100) while the workers waited on it
        if storage not in _DATABASES:
            _DATABASES[storage] = optuna.storages.RDBStorage(storage)
        store = _DATABASES[storage]
    (summary,) = optuna.get_all_study_summaries(store)
    return optuna.load_study(study_name=summary.study_name, storage=store).get_trials()


_DATABASES: dict[str, Any] = {}  # database URL -> the tests' one RDBStorage on it (see _trials)


@pytest.fixture(autouse=True)
def _close_databases() -> Iterator[None]:
    """The tests' own connections to a study database are closed when the test ends."""
    yield
    while _DATABASES:
        _, store = _DATABASES.popitem()
        store.remove_session()
        store.engine.dispose()


def _counted(trials) -> list:
    return [t for t in trials if t.state.name != "RUNNING" and not t.user_attrs.get("lrsweep_interrupted")]


FAST = ["search.penalties=[l2,l1]", "search.solvers=[lbfgs,liblinear]", "tracking.artifacts=false", "progress=false"]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    from tests.postgres_server import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(params=["journal", "sqlite", "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the shared study lives: the default journal file, a SQLite database URL, a real PostgreSQL server."""
    if request.param == "journal":
        return "journal"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.mark.slow
def test_two_workers_share_one_study_exactly_n_trials_one_parent(tmp_path: Path, start, storage: str):
    """Worker a is held in its 3rd trial while b runs; when b has run some, a is let go. Together: exactly
    n_trials counted trials, no number twice, one MLflow parent with exactly one child per trial; the worker that ran
    the last trial reports the result, the other says so."""
    n = 16
    args = [f"search.n_trials={n}", *FAST, *([] if storage == "journal" else [f"study.storage={storage}"])]
    a = start("a", args, block_at=3)
    _wait((tmp_path / "a.blocked").exists, "worker a inside its 3rd trial", {"a": a}, tmp_path)
    b = start("b", args)
    # b joins the study a is working on (not refused) and runs trials beside it
    _wait(lambda: sum(t.user_attrs.get(WORKER_ATTR) != _owner(tmp_path, "a", storage) and t.state.name == "COMPLETE"
                      for t in _trials(tmp_path, storage)) >= 3,
          "3 trials by worker b", {"a": a, "b": b}, tmp_path)  # fmt: skip
    (tmp_path / "a.release").touch()
    assert _exit(a) == 0, _err(tmp_path, "a")
    assert _exit(b) == 0, _err(tmp_path, "b")

    trials = _trials(tmp_path, storage)
    counted = _counted(trials)
    assert len(counted) == n and all(t.state.name == "COMPLETE" for t in counted)
    assert len({t.number for t in trials}) == len(trials)
    owners = {t.user_attrs[WORKER_ATTR] for t in counted}
    assert len(owners) == 2  # both worked
    parents, children = mlflow_runs(tmp_path)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(int(c.data.tags["lrsweep.trial_number"]) for c in children) == sorted(t.number for t in counted)
    assert all(c.info.status == "FINISHED" for c in children)
    assert {c.data.tags["lrsweep.worker"] for c in children} == owners
    calls = [json.loads(v) for k, v in parents[0].data.tags.items() if k.startswith("lrsweep.invocation.")]
    assert len(calls) == 2 and {c["status"] for c in calls} == {"FINISHED"}
    assert "test_roc_auc" in parents[0].data.metrics  # the result was reported once, by the last trial's worker
    outs = {name: (tmp_path / f"{name}.out").read_text() for name in ("a", "b")}
    last = max(counted, key=lambda t: t.number).user_attrs[WORKER_ATTR]
    reporter = "a" if last == _owner(tmp_path, "a", storage) else "b"
    other = "b" if reporter == "a" else "a"
    assert "test" in outs[reporter].lower() and "refits, tests and logs the result" not in outs[reporter]
    assert "refits, tests and logs the result" in outs[other], outs[other]


def _owner(tmp_path: Path, name: str, storage: str) -> str | None:
    """The worker id of the process whose blocked trial wrote ``<name>.blocked`` (its pid is in the id)."""
    marker = tmp_path / f"{name}.blocked"
    if not marker.exists():
        return None
    pid = json.loads(marker.read_text())["pid"]
    ids = {t.user_attrs.get(WORKER_ATTR) for t in _trials(tmp_path, storage)}
    return next((i for i in ids if i and i.split("-")[-2] == str(pid)), None)


@pytest.mark.slow
def test_a_worker_killed_in_a_trial_is_detected_and_the_other_completes_the_study(tmp_path: Path, start):
    """kill -9 of worker a (its whole group: sweep and MLflow writer) inside a trial while b works: b finds a's
    trial dead (its lease is free), runs it again, reaches n_trials, and logs every trial once; a's call is
    recorded as killed, nothing is left RUNNING."""
    n = 10
    args = [f"search.n_trials={n}", *FAST]
    a = start("a", args, block_at=4)
    _wait((tmp_path / "a.blocked").exists, "worker a inside its 4th trial", {"a": a}, tmp_path)
    # a's writer has built the new MLflow store and opened the parent (killing it while MLflow builds its tables
    # would break the store itself: not what this test is about)
    _wait(lambda: parent_opened(tmp_path / "mlflow.db"), "worker a's parent run", {"a": a}, tmp_path)
    b = start("b", args)
    _wait(lambda: any(t.user_attrs.get(WORKER_ATTR) not in (None, _owner(tmp_path, "a", "journal"))
                      for t in _trials(tmp_path, "journal")),
          "worker b's first trial", {"a": a, "b": b}, tmp_path)  # fmt: skip
    killed = _owner(tmp_path, "a", "journal")
    os.killpg(a.pid, signal.SIGKILL)
    assert _exit(b) == 0, _err(tmp_path, "b")

    trials = _trials(tmp_path, "journal")
    counted = _counted(trials)
    assert len(counted) == n
    interrupted = [t for t in trials if t.user_attrs.get("lrsweep_interrupted")]
    assert [t.user_attrs[WORKER_ATTR] for t in interrupted] == [killed]  # a's held trial, failed and run again
    assert not [t for t in trials if t.state.name == "RUNNING"]
    parents, children = mlflow_runs(tmp_path)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(int(c.data.tags["lrsweep.trial_number"]) for c in children) == sorted(t.number for t in counted)
    assert not [r for r in (*parents, *children) if r.info.status == "RUNNING"]
    calls = {json.loads(v)["worker"]: json.loads(v) for k, v in parents[0].data.tags.items()
             if k.startswith("lrsweep.invocation.")}  # fmt: skip
    assert calls[killed]["status"] == "KILLED" and "stopped" in calls[killed]["reason"]
    assert [c["status"] for w, c in calls.items() if w != killed] == ["FINISHED"]
    assert "will be run again" in _err(tmp_path, "b")


@pytest.mark.slow
def test_sigterm_to_one_worker_marks_its_trial_and_the_other_completes_the_study(tmp_path: Path, start):
    """SIGTERM (a scheduler, `kill`) to worker a inside a trial: a says so in one line and exits 143, its trial is
    marked interrupted at once (not left for the lease check), its call is recorded KILLED and the parent run stays
    open for b, which completes the study; the same command afterwards has nothing to do."""
    n = 10
    args = [f"search.n_trials={n}", *FAST]
    a = start("a", args, block_at=3)
    _wait((tmp_path / "a.blocked").exists, "worker a inside its 3rd trial", {"a": a}, tmp_path)
    _wait(lambda: parent_opened(tmp_path / "mlflow.db"), "worker a's parent run", {"a": a}, tmp_path)
    b = start("b", args, block_at=2)  # b is held too, so a's stop happens while b works
    _wait((tmp_path / "b.blocked").exists, "worker b inside its 2nd trial", {"a": a, "b": b}, tmp_path)
    stopped = _owner(tmp_path, "a", "journal")
    os.kill(a.pid, signal.SIGTERM)  # the sweep process only, as `kill PID` does
    assert _exit(a) == 143, _err(tmp_path, "a")
    assert _err(tmp_path, "a").strip().splitlines()[-1] == (
        "lrsweep: error: terminated (SIGTERM); run the same command again to resume where it stopped"
    )
    cut = [t for t in _trials(tmp_path, "journal") if t.user_attrs.get(WORKER_ATTR) == stopped and t.number == 2]
    assert len(cut) == 1 and cut[0].state.name == "FAIL" and cut[0].user_attrs.get("lrsweep_interrupted") is True
    parents, _ = mlflow_runs(tmp_path)
    assert [p.info.status for p in parents] == ["RUNNING"]  # b still works on it
    (tmp_path / "b.release").touch()
    assert _exit(b) == 0, _err(tmp_path, "b")

    trials = _trials(tmp_path, "journal")
    assert len(_counted(trials)) == n and not [t for t in trials if t.state.name == "RUNNING"]
    parents, children = mlflow_runs(tmp_path)
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert sorted(int(c.data.tags["lrsweep.trial_number"]) for c in children) == sorted(
        t.number for t in _counted(trials)
    )
    calls = {json.loads(v)["worker"]: json.loads(v) for k, v in parents[0].data.tags.items()
             if k.startswith("lrsweep.invocation.")}  # fmt: skip
    assert calls[stopped]["status"] == "KILLED" and calls[stopped]["reason"] == "terminated (SIGTERM)"
    again = start("again", args)
    assert _exit(again) == 0, _err(tmp_path, "again")
    assert "nothing to do" in (tmp_path / "again.out").read_text()


@pytest.mark.slow
def test_workers_opening_a_new_database_together_both_get_the_study_storage(postgres_url: str):
    """Workers started together on an empty PostgreSQL database race to create Optuna's tables (seen in
    benchmarks/bench_workers.py: 'type studydirection already exists'); each opens the storage all the same."""
    import threading

    import sqlalchemy

    from lrsweep.sweep import _database

    fresh = postgres_url.rsplit("/", 1)[0] + "/together"
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(sqlalchemy.text("CREATE DATABASE together"))
    admin.dispose()
    barrier, opened, failed = threading.Barrier(4), [], []

    def open_it() -> None:
        barrier.wait()
        try:
            opened.append(_database(fresh))
        except Exception as exc:  # noqa: BLE001 -- what the test reports
            failed.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failed and len(opened) == 4
    opened[0].create_new_study([__import__("optuna").study.StudyDirection.MAXIMIZE], "s")
    assert [s.study_name for s in opened[3].get_all_studies()] == ["s"]  # one set of tables, shared


def test_an_unreachable_database_is_one_line_without_its_password():
    from lrsweep.errors import LrsweepError
    from lrsweep.sweep import _database
    from tests.data.servers import refused_port

    with refused_port() as port, pytest.raises(LrsweepError) as err:
        _database(f"postgresql+psycopg://lrsweep:Hunter2xyz@127.0.0.1:{port}/nowhere")
    line = err.value.line()
    assert "cannot open the study storage postgresql+psycopg://lrsweep:***@127.0.0.1" in line
    assert "Hunter2xyz" not in line and "\n" not in line


@pytest.mark.slow
def test_workers_started_together_on_a_new_mlflow_store_both_log_to_it(tmp_path: Path):
    """Two workers started at the same moment on a new SQLite MLflow store named by its full URI: MLflow's client
    builds the store's tables as it starts, and both did it at once ('table jobs already exists', 'duplicate
    column name: step'; seen in benchmarks/bench_spark_study.py, 4 runs in 4). One parent, a child per trial."""
    from tests.e2e_helpers import CLI

    store = tmp_path / "store" / "runs.db"
    args = ["search.n_trials=6", *FAST, f"tracking.uri=sqlite:///{store}", "tracking.experiment=together"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = [
        subprocess.Popen(
            [*CLI, *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )  # fmt: skip
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=HANG_GUARD) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-1500:] for _, err in outs]
    parents, children = mlflow_runs(tmp_path, experiment="together", uri=f"sqlite:///{store}")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(int(c.data.tags["lrsweep.trial_number"]) for c in children) == list(range(6))
