"""A local MLflow store that cannot be opened is one line before any work (issue 12: it took ~105 s of MLflow's
retry warnings). lrsweep.tracking.check_sqlite_store; the CLI end to end is in tests/test_cli.py's bad inputs."""

from __future__ import annotations

import pytest

from lrsweep.errors import LrsweepError
from lrsweep.stores import check_sqlite_store


def test_a_new_store_in_a_folder_that_can_be_made_passes_and_creates_nothing_but_the_folder(tmp_path):
    check_sqlite_store(f"sqlite:///{tmp_path / 'a' / 'b' / 'mlflow.db'}")
    assert (tmp_path / "a" / "b").is_dir() and not (tmp_path / "a" / "b" / "mlflow.db").exists()
    check_sqlite_store("postgresql://u:pw@h/db")  # not a local file: the server is asked later
    check_sqlite_store("sqlite:///:memory:")


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda p: p.mkdir(), "is a folder, not a database file"),
        (lambda p: p.write_text("not sqlite, " * 100), "file is not a database"),
        (lambda p: (p.parent / "file").write_text("x"), "cannot create the folder of the MLflow store"),
    ],
    ids=["folder", "not-a-database", "parent-is-a-file"],
)
def test_a_store_that_cannot_be_opened_is_one_clear_error(tmp_path, make, said):
    path = tmp_path / "mlflow.db"
    make(path)
    target = tmp_path / "file" / "mlflow.db" if said.startswith("cannot create") else path
    with pytest.raises(LrsweepError, match=said) as caught:
        check_sqlite_store(f"sqlite:///{target}")
    assert "tracking.uri" in caught.value.line()


def test_a_reading_command_on_a_file_that_is_not_a_database_says_so(tmp_path):
    from lrsweep.recorded import open_store

    (tmp_path / "mlflow.db").write_text("not sqlite, " * 100)
    with pytest.raises(LrsweepError, match="file is not a database"):
        open_store(f"sqlite:///{tmp_path / 'mlflow.db'}", hint="lrsweep compare")


@pytest.mark.parametrize(
    ("url", "module", "fix"),
    [
        ("mysql://u:Hunter2xyzDb@127.0.0.1/optuna", "MySQLdb", "pip install the MySQLdb package"),
        ("postgresql+pg8000://u:Hunter2xyzDb@127.0.0.1/x", "pg8000", "pip install the pg8000 package"),
    ],
)
def test_a_database_url_without_its_driver_names_the_driver_not_the_server(url, module, fix):
    from lrsweep.stores import check_database_driver

    with pytest.raises(LrsweepError) as caught:
        check_database_driver(url, "study.storage")
    line = caught.value.line()
    assert f"needs the Python driver {module!r}, which is not installed; {fix}" in line
    assert "Hunter2xyzDb" not in line and "server" not in line


def test_the_postgres_driver_is_offered_as_lrsweeps_extra(monkeypatch):
    import builtins

    from lrsweep.stores import check_database_driver

    real = builtins.__import__

    def no_psycopg(name, *args, **kw):
        if name.split(".")[0] == "psycopg":
            raise ModuleNotFoundError("No module named 'psycopg'", name="psycopg")
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_psycopg)
    with pytest.raises(LrsweepError, match=r"needs the Python driver 'psycopg'.*pip install 'lrsweep\[postgres\]'"):
        check_database_driver("postgresql://u:pw@127.0.0.1:5432/optuna", "tracking.uri")
    check_database_driver("sqlite:///mlflow.db", "tracking.uri")  # no driver to check
    check_database_driver("http://127.0.0.1:5000", "tracking.uri")


@pytest.fixture
def read_only_folder(tmp_path):
    """A read-only tmpfs under tmp_path."""
    from tests.mounts import tmpfs

    with tmpfs(tmp_path / "read-only", "size=1m,ro") as folder:
        yield folder


@pytest.mark.parametrize("mode", ["background", "inline"])
def test_an_unwritable_artifact_folder_is_one_line_before_a_parent_run_exists(read_only_folder, tmp_path, mode):
    """The store is writable but its artifacts would go to ./mlruns in a read-only working directory: one line
    naming the folder (it was an OSError after every trial, with the hint 'check that the server is up'), no
    parent run left in the store, and the study's trials kept for the next run."""
    from tests.e2e_helpers import cli_in_process, study_trials

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["search.n_trials=3", f"study.dir={tmp_path / 'studies'}", f"tracking.uri={store}", f"tracking.mode={mode}"]
    done = cli_in_process(args, read_only_folder)
    assert done.returncode == 2, done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if "error" in ln]
    assert f"the MLflow artifact folder {read_only_folder}/mlruns/" in line and "Read-only file system" in line
    assert "run lrsweep in a folder you can write" in line and "server is up" not in line
    from mlflow import MlflowClient

    runs = MlflowClient(tracking_uri=store).search_runs(["1"])
    assert runs == []  # no parent run: nothing that looks like a sweep
    (trials,) = study_trials(tmp_path, tmp_path / "studies").values()
    assert all(t.state.name in ("COMPLETE", "FAIL") for t in trials)  # the trials that ran are kept, none RUNNING
