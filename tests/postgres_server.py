"""A real PostgreSQL server (Debian's package) on 127.0.0.1 for one test module: initdb in a temporary folder,
pg_ctl start on a free port, one database, stopped and removed after.

PostgreSQL refuses to run as root: as root the server runs as the ``postgres`` system user (runuser).
Trust authentication on loopback only (a throwaway cluster that lives as long as the tests).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.mlflow_server import free_port

__all__ = ["postgres_server", "pg_bin"]


def pg_bin() -> Path | None:
    """The folder of Debian's PostgreSQL programs (initdb, pg_ctl are not on PATH there), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("pg_ctl")
    return Path(which).resolve().parent if which else None


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def postgres_server(database: str = "lrsweep") -> Iterator[str]:
    """Yield ``postgresql+psycopg://postgres@127.0.0.1:PORT/DATABASE`` of a fresh server."""
    bin_dir = pg_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    root = Path(tempfile.mkdtemp(prefix="lrsweep-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    log = root / "server.log"
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    try:
        subprocess.run(
            _as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]),
            **run,
        )  # type: ignore[call-overload]
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off -c max_connections=100"
        subprocess.run(
            _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]),
            **run,
        )  # type: ignore[call-overload]
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c", f"CREATE DATABASE {database}"],
            **run,
        )  # type: ignore[call-overload]
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                capture_output=True, timeout=60, check=False,
            )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
