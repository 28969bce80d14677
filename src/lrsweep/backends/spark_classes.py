"""A class-data archive for the driver JVM a sweep starts (Java's AppCDS): Spark's classes loaded once per machine.

A fresh driver JVM spends most of a small sweep's setup loading and verifying classes (Spark, Scala, Catalyst,
Hadoop: tens of thousands), the same ones every run. The first session started on this machine with a given Java
and pyspark writes the classes it loaded to an archive as it exits (``-XX:ArchiveClassesAtExit``); every later one
maps that archive (``-XX:SharedArchiveFile``) instead of loading them again (telco churn, local[2], 6 trials,
tracking off: session 4.6-7.1 s -> 2.7-2.9 s, data + preprocessing 8.0-10.8 s -> 6.6-7.0 s, whole run 26-32 s ->
21.5-23 s). Mapped classes are the same classes: nothing a fit computes changes.

The archive is written under a temporary name by the JVM as it exits, and published (renamed to its own name) only
when that JVM exited with status 0: a killed sweep leaves no archive that looks complete. Its name holds a digest
of what decides whether the JVM can use it (Java's binary, pyspark's version and classpath settings); the JVM
itself checks it again as it maps it and, on any mismatch, runs without it (a warning in Spark's log). About 200
MB, under ``$XDG_CACHE_HOME/lrsweep/jvm`` (default ``~/.cache/lrsweep/jvm``); archives unused for 30 days are
removed when a new one is published. ``backend.class_archive=false`` turns it off.

Only a driver JVM this process starts, for a master whose driver runs here again and again (``local[...]``, a
standalone cluster's ``spark://``): a YARN or Kubernetes driver (EMR's steps) runs on a cluster that is new each
launch, where writing the archive would cost without ever paying back.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrsweep.datasets.cache import machine_cache_dir

__all__ = ["ClassArchive", "archive_dir", "class_archive"]

log = logging.getLogger("lrsweep")

KEEP_UNUSED_DAYS = 30
STALE_DUMP_SECONDS = 3600.0  # a temporary archive this old is a killed JVM's, never to be published
# what the user's own options may already say about class-data sharing: then theirs alone apply
_OWN_CDS = ("-XX:SharedArchiveFile", "-XX:ArchiveClassesAtExit", "-Xshare", "-XX:-AutoCreateSharedArchive")
# what changes the classes a driver JVM loads from where: another archive (the JVM checks the rest as it maps it)
_CLASSPATH_SETTINGS = ("spark.driver.extraClassPath", "spark.driver.extraJavaOptions")


def archive_dir() -> Path:
    """``$XDG_CACHE_HOME/lrsweep/jvm`` (``~/.cache/lrsweep/jvm``)."""
    return machine_cache_dir("jvm")


def _java() -> Path | None:
    """The java binary spark-submit runs ($JAVA_HOME/bin/java, else the first on PATH), links resolved."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    return Path(found).resolve() if found and Path(found).is_file() else None


def _pyspark() -> tuple[str, str]:
    """pyspark's version and folder (its jars are the JVM's classpath), without importing it."""
    spec = importlib.util.find_spec("pyspark")
    try:
        version = importlib.metadata.version("pyspark")
    except importlib.metadata.PackageNotFoundError:
        version = ""
    return version, str(Path(spec.origin).parent) if spec and spec.origin else ""


def _digest(java: Path, settings: dict[str, str]) -> str:
    st = java.stat()
    parts = [*_pyspark(), str(java), str(st.st_size), str(st.st_mtime_ns)]
    parts += [os.environ.get("SPARK_HOME", ""), *(f"{k}={settings.get(k, '')}" for k in _CLASSPATH_SETTINGS)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@dataclass
class ClassArchive:
    """The archive for this session's driver JVM: mapped from ``path`` when ``dump`` is None, else written to
    ``dump`` as the JVM exits and published to ``path`` by :meth:`finish`."""

    path: Path
    dump: Path | None = None

    @property
    def java_option(self) -> str:
        if self.dump is not None:
            return f"-XX:ArchiveClassesAtExit={self.dump}"
        return f"-XX:SharedArchiveFile={self.path}"

    def finish(self, proc: Any, timeout: float = 120.0) -> bool:
        """After the session stopped: end its JVM (``proc``, spark-submit's process, the JVM itself) by closing its
        stdin, as pyspark's JVM does when Python exits, wait for it to write the archive, and publish the archive
        if it exited with status 0. True when published."""
        if self.dump is None or proc is None:
            return False
        t0 = time.perf_counter()
        log.info("writing an archive of the Spark driver's classes, once per machine: later sessions start faster")
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.close()
        try:
            status = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.debug("the driver JVM did not exit in %.0f s: no class archive", timeout)
            return False
        if status != 0 or not self.dump.is_file() or self.dump.stat().st_size == 0:
            log.debug("the driver JVM exited with status %s: no class archive", status)
            with contextlib.suppress(OSError):
                self.dump.unlink()
            return False
        os.replace(self.dump, self.path)
        mb = self.path.stat().st_size / 1e6
        log.info(
            "wrote an archive of the Spark driver's classes (%.0f MB, %.1f s): %s",
            mb,
            time.perf_counter() - t0,
            self.path,
        )
        _forget_unused(self.path.parent, keep=self.path)
        return True

    def abandon(self, proc: Any) -> None:
        """End the JVM (``proc``) before it writes the archive, and remove anything it started writing."""
        if self.dump is None or proc is None:
            return
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        with contextlib.suppress(OSError):
            self.dump.unlink()


def _forget_unused(folder: Path, keep: Path) -> None:
    now = time.time()
    for old in folder.glob("spark-*.jsa"):
        with contextlib.suppress(OSError):
            if old != keep and now - old.stat().st_mtime > KEEP_UNUSED_DAYS * 86400:
                old.unlink()
    for dump in folder.glob(".spark-*.jsa.*.tmp"):
        with contextlib.suppress(OSError):
            if now - dump.stat().st_mtime > STALE_DUMP_SECONDS:
                dump.unlink()


def archive_applies(master: str) -> bool:
    """Whether a driver JVM for ``master`` starts on this machine again and again (local, standalone): an archive
    pays back there, not for a cluster master whose driver starts on a new machine each launch (yarn on EMR, k8s)."""
    return master.startswith(("local", "spark://"))


def class_archive(master: str, settings: dict[str, str]) -> ClassArchive | None:
    """The archive a new driver JVM for ``master`` with these Spark ``settings`` maps or writes; None when none
    applies (a cluster master whose driver runs elsewhere, the user's own class-data options, no java found, a
    cache folder that cannot be written)."""
    if not archive_applies(master):
        return None
    options = " ".join(settings.get(f"spark.driver.{k}JavaOptions", "") for k in ("extra", "default"))
    if any(flag in options for flag in _OWN_CDS):
        return None
    java = _java()
    if java is None:
        return None
    folder = archive_dir()
    path = folder / f"spark-{_digest(java, settings)}.jsa"
    if path.is_file():
        with contextlib.suppress(OSError):
            os.utime(path)  # in use: not removed as unused
        return ClassArchive(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    _forget_unused(folder, keep=path)
    if _being_written(folder, path):
        return None  # one writer at a time: this JVM loads its classes itself, as without an archive
    return ClassArchive(path, dump=folder / f".{path.name}.{os.getpid()}-{time.monotonic_ns()}.tmp")


def _being_written(folder: Path, path: Path) -> bool:
    """Whether a live process (its pid in the temporary name) is writing ``path``'s archive now."""
    for dump in folder.glob(f".{path.name}.*.tmp"):
        pid = dump.name.removeprefix(f".{path.name}.").split("-")[0]
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    """``python -m lrsweep.backends.spark_classes``: write this machine's archive now (a local[2] session on the
    bundled telco churn: setup, one fit, its scoring), so that the first sweep does not; nothing when one exists."""
    import argparse

    argparse.ArgumentParser(description=main.__doc__).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="lrsweep: %(levelname)s: %(message)s")
    from lrsweep.backends.spark import SparkBackend, SparkConfig
    from lrsweep.clusters import LocalCluster
    from lrsweep.config import CVConfig, DatasetConfig, SplitConfig
    from lrsweep.data import open_data
    from lrsweep.space import ModelParams

    there = class_archive("local[2]", {})
    if there is None or there.dump is None:
        log.info("nothing to do: the Spark driver's class archive is there, being written, or cannot be used here")
        return 0
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="lrsweep-classes-") as work:
        os.chdir(work)  # the JVM's log (.lrsweep/spark/) goes with it
        backend = SparkBackend(SparkConfig(), cluster=LocalCluster(master="local[2]"))
        try:
            backend.prepare(open_data(DatasetConfig(), SplitConfig(), CVConfig(), 42))
            backend.evaluate(ModelParams(1.0, 0.5, "elasticnet", None, "balanced", 20, 1e-6))
        finally:
            backend.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
