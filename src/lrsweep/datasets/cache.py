"""The generators' common ground: the table cache, the sidecar, atomic writes, and their command line.

A generator (``ctr``, ``softmax``) writes one Parquet table and its sidecar ``<table>.meta.json`` under temporary
names and renames them (data first, sidecar last), so a table with its sidecar is complete. The cache keeps one
table per generation parameters under ``$LRSWEEP_CACHE/<generator>`` (default ``~/.cache/lrsweep/<generator>``),
generated on first use under a lock (two processes asking at once generate it once).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lrsweep.errors import LrsweepError

__all__ = [
    "LineParser", "cache_dir", "cached_table", "machine_cache_dir", "meta_path", "publish", "read_meta", "run_cli",
    "sha256_file",
    "temp_name",
]  # fmt: skip


def meta_path(path: str | os.PathLike[str]) -> Path:
    """``<table>.meta.json``: the sidecar written next to a generated table."""
    p = Path(path)
    return p.with_name(p.name + ".meta.json")


def read_meta(path: str | os.PathLike[str], generator: str) -> dict[str, Any]:
    """The sidecar of a table written by ``generator`` (its module name)."""
    mp = meta_path(path)
    try:
        return json.loads(mp.read_text())
    except FileNotFoundError as exc:
        raise LrsweepError(f"{str(mp)!r} does not exist", f"generate the table with python -m {generator}") from exc


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def temp_name(final: Path, suffix: str = "tmp") -> Path:
    """A hidden name beside ``final``, unique to this process and call (never taken for a table)."""
    return final.with_name(f".{final.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.{suffix}")


def publish(tmp: Path, final: Path, meta: dict[str, Any]) -> None:
    """Make the table written at ``tmp`` the one at ``final`` with ``meta`` as its sidecar: the sidecar written
    under a temporary name, any old sidecar removed first (it must not describe the new data), the data renamed
    into place, then the sidecar (a table with its sidecar is complete)."""
    tmp_meta = temp_name(meta_path(final))
    try:
        tmp_meta.write_text(json.dumps(meta, indent=2) + "\n")
        meta_path(final).unlink(missing_ok=True)
        os.replace(tmp, final)
        os.replace(tmp_meta, meta_path(final))
    finally:
        tmp_meta.unlink(missing_ok=True)


def machine_cache_dir(name: str) -> Path:
    """``$XDG_CACHE_HOME/lrsweep/<name>`` (``~/.cache/lrsweep/<name>``): what this machine built once (wheels, the
    Spark driver's class archive), whatever $LRSWEEP_CACHE says."""
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "lrsweep" / name


def cache_dir(name: str) -> Path:
    """``$LRSWEEP_CACHE/<name>`` if set, else :func:`machine_cache_dir` (``~/.cache/lrsweep/<name>``)."""
    if os.environ.get("LRSWEEP_CACHE"):
        return Path(os.environ["LRSWEEP_CACHE"]).expanduser() / name
    return machine_cache_dir(name)


def _is_complete(path: Path, params: dict[str, Any]) -> bool:
    try:
        meta = json.loads(meta_path(path).read_text())
        return meta.get("params") == params and path.stat().st_size == meta.get("bytes")
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: concurrent generations just race to the same (identical) result
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cached_table(
    name: str, params: dict[str, Any], folder: str | os.PathLike[str] | None, write: Callable[[Path], Any]
) -> Path:
    """The cached table of generator ``name`` for ``params`` (which carry ``rows`` and ``seed``), written by
    ``write(path)`` on first use; returns the Parquet path.

    The file name carries a digest of ``params``, so a change of generator invalidates it. A table counts as present
    only with its sidecar and the size recorded there (temporary files are never looked at).
    """
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    where = Path(folder).expanduser() if folder is not None else cache_dir(name)
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{name}-r{params['rows']}-s{params['seed']}-{digest}.parquet"
    if _is_complete(path, params):
        return path
    with _lock(where / f".{path.name}.lock"):
        if not _is_complete(path, params):  # another process may have finished it while we waited
            write(path)
    return path


class LineParser(argparse.ArgumentParser):
    """A generator's command line: a usage error is one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def run_cli(
    parser: argparse.ArgumentParser, args: argparse.Namespace, write: Callable[[Path], Any],
    cached: Callable[[], Path], read: Callable[[Path], dict[str, Any]], summary: Callable[[dict[str, Any]], str],
) -> int:  # fmt: skip
    """A generator's command after its own argument checks: ``write`` the table to ``--out``, or ``cached()`` the
    cache's; print its path, ``summary(meta)`` and (``--json``) the whole sidecar. An error is one line, status 1."""
    if args.out is not None and args.out.is_dir():
        parser.error(f"--out {str(args.out)!r} is a directory; give a file name such as table.parquet")
    try:
        if args.out is not None:
            write(args.out)
            path = args.out
        else:
            path = cached()
        meta = read(path)
    except (LrsweepError, OSError) as exc:
        print(f"{parser.prog}: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    print(path)
    print(summary(meta))
    if args.json:
        print(json.dumps(meta, indent=2))
    return 0
