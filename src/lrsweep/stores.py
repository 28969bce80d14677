"""The places a sweep writes, checked before any work: each problem is one line naming the key to change.

``writable_folder`` (the study folder), ``creating`` (one worker at a time builds a new SQLite store),
``check_sqlite_store`` (a local MLflow store: MLflow itself retries an
unopenable one for ~100 s) and ``check_database_driver`` (a database URL whose Python driver is missing: MLflow
and Optuna report it as a failed connection or a raw ImportError).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lrsweep.errors import LrsweepError
from lrsweep.redact import redact_uri

__all__ = ["writable_folder", "sqlite_file", "creating", "check_sqlite_store", "check_database_driver", "DRIVER_EXTRAS"]

# driver module -> the pip extra of lrsweep that installs it
DRIVER_EXTRAS = {"psycopg": "postgres"}


def writable_folder(path: Path, key: str) -> None:
    """Raise LrsweepError unless ``path`` is a folder this process can write, or can be made into one."""
    if path.exists() and not path.is_dir():
        raise LrsweepError(f"{key} {path} is a file, not a folder", f"point {key} at a folder, or move the file")
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise LrsweepError(f"{key} {path} cannot be made: {probe} is a file", f"point {key} at another folder")
    try:
        with tempfile.TemporaryFile(dir=probe):  # a real write: permissions, a read-only or full disk
            pass
    except OSError as exc:
        raise LrsweepError(
            f"{key} {path} cannot be written ({exc.strerror} in {probe.resolve()})",
            f"point {key} at a folder you can write, or run lrsweep in one",
        ) from exc


def sqlite_file(uri: str | None) -> Path | None:
    """The file of a local SQLite store URI (``sqlite:///PATH``), or None (another store, or in memory)."""
    if not uri or not uri.startswith("sqlite:///") or uri.split("?")[0].endswith(":memory:"):
        return None
    return Path(uri[len("sqlite:///") :].split("?")[0])


@contextlib.contextmanager
def creating(uri: str | None) -> Iterator[None]:
    """Held while a local SQLite store may be created: MLflow builds its tables in steps (Alembic migrations), and
    two workers starting on a new store at once would both build them ('table ... already exists')."""
    path = sqlite_file(uri)
    if path is None:
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path.with_name(f".{path.name}.lrsweep-lock"), "a+")  # noqa: SIM115 -- closed below
    except OSError:  # a folder this process cannot write: no store can be created there (a reader goes on)
        yield
        return
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def check_sqlite_store(uri: str, *, create: bool = True) -> None:
    """A local SQLite store that cannot be opened is one line now, not after MLflow's ~100 s of retries.

    ``create``: the file may be missing (a sweep creates it; a reading command has checked it exists)."""
    import sqlite3

    path = sqlite_file(uri)
    if path is None:
        return
    shown = redact_uri(uri)
    fix = "set tracking.uri to a SQLite file you can write (e.g. sqlite:///mlflow.db), or run with tracking=off"
    if path.is_dir():
        raise LrsweepError(f"the MLflow store {shown} is a folder, not a database file", fix)
    if not path.exists():
        if not create:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)  # as MLflow would
        except OSError as exc:
            raise LrsweepError(f"cannot create the folder of the MLflow store {shown} ({exc.strerror})", fix) from exc
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise LrsweepError(f"cannot create the MLflow store {shown} (its folder is not writable)", fix)
        return
    if create and not os.access(path, os.R_OK | os.W_OK):
        raise LrsweepError(f"the MLflow store {shown} is not writable (permission denied)", fix)
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)) as db:
            db.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as exc:
        raise LrsweepError(f"cannot open the MLflow store {shown} ({exc})", fix) from exc


def check_database_driver(url: str, key: str) -> None:
    """A SQLAlchemy database URL (postgresql://, mysql://, ...) whose driver is not installed: one line naming
    the driver and how to install it."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if not scheme or scheme.startswith(("sqlite", "http", "https", "file", "databricks")):
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        dialect = make_url(url).get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        problem = f"{key}={redact_uri(url)} is not a database URL SQLAlchemy knows ({redact_uri(str(exc))})"
        raise LrsweepError(problem, "e.g. postgresql://USER:PASSWORD@HOST:5432/DB") from exc
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        module = getattr(exc, "name", None) or str(exc)
        extra = DRIVER_EXTRAS.get(module)
        fix = f"pip install 'lrsweep[{extra}]'" if extra else f"pip install the {module} package"
        raise LrsweepError(
            f"{key}={redact_uri(url)} needs the Python driver {module!r}, which is not installed", fix
        ) from exc
