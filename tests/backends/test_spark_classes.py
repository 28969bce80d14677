"""The driver JVM's class archive (lrsweep.backends.spark_classes): written once by a JVM that exited cleanly,
mapped by every later one, the same fits either way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lrsweep.backends import spark_classes
from lrsweep.backends.spark import QUICK_JIT
from lrsweep.backends.spark_classes import ClassArchive, archive_dir, class_archive


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\n")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    return tmp_path / "cache" / "lrsweep" / "jvm"


def test_the_first_jvm_writes_the_archive_and_later_ones_map_it(cache: Path) -> None:
    assert archive_dir() == cache
    first = class_archive("local[2]", {})
    assert first is not None and first.dump is not None and first.dump.parent == cache
    assert first.java_option == f"-XX:ArchiveClassesAtExit={first.dump}"
    assert not first.path.exists()  # nothing published before a JVM wrote it and exited cleanly
    first.path.write_bytes(b"archive")
    later = class_archive("local[2]", {})
    assert later == ClassArchive(first.path) and later.java_option == f"-XX:SharedArchiveFile={first.path}"
    assert class_archive("spark://127.0.0.1:7077", {}) == later  # a standalone cluster's driver runs here too


@pytest.mark.parametrize(
    ("master", "settings"),
    [
        ("yarn", {}),  # EMR: a driver on a cluster new each launch
        ("k8s://https://cluster:443", {}),
        ("local[2]", {"spark.driver.extraJavaOptions": "-Xshare:off"}),  # the user's own class-data options
        ("local[2]", {"spark.driver.defaultJavaOptions": "-XX:SharedArchiveFile=/opt/mine.jsa"}),
    ],
    ids=["yarn", "k8s", "xshare-off", "own-archive"],
)
def test_no_archive_where_it_cannot_pay_back_or_the_user_chose(cache: Path, master: str, settings: dict) -> None:
    assert class_archive(master, settings) is None
    assert not cache.exists() or not list(cache.iterdir())


def test_a_classpath_setting_or_another_java_is_another_archive(cache: Path, tmp_path: Path, monkeypatch) -> None:
    base = class_archive("local[2]", {})
    other = class_archive("local[2]", {"spark.driver.extraClassPath": "/opt/extra.jar"})
    assert base is not None and other is not None and base.path != other.path
    assert class_archive("local[2]", {"spark.app.name": "x"}).path == base.path  # not every setting matters
    java = tmp_path / "jdk2" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\n# another build\n")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk2"))
    assert class_archive("local[2]", {}).path != base.path


def _jvm(code: str) -> subprocess.Popen:
    """A process that waits for its stdin to close, as pyspark's driver JVM does, then runs ``code``."""
    script = f"import sys\nsys.stdin.read()\n{code}"
    return subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE)


def test_published_only_when_the_jvm_exited_cleanly(cache: Path) -> None:
    ok = class_archive("local[2]", {})
    assert ok is not None and ok.dump is not None
    proc = _jvm(f"open({str(ok.dump)!r}, 'wb').write(b'classes')")
    assert ok.finish(proc) is True
    assert ok.path.read_bytes() == b"classes" and not ok.dump.exists()

    ok.path.unlink()
    failed = class_archive("local[2]", {})
    assert failed is not None and failed.dump is not None
    proc = _jvm(f"open({str(failed.dump)!r}, 'wb').write(b'half'); sys.exit(1)")  # died while writing
    assert failed.finish(proc) is False
    assert not failed.path.exists() and not failed.dump.exists()
    assert list(cache.iterdir()) == []


def test_one_writer_at_a_time(cache: Path) -> None:
    first = class_archive("local[2]", {})
    assert first is not None and first.dump is not None
    first.dump.write_bytes(b"being written")  # by this (live) process
    assert class_archive("local[2]", {}) is None  # another JVM now loads its classes itself
    dead = first.dump.with_name(f".{first.path.name}.{2**22 + 12345}-1.tmp")  # a pid above Linux's maximum
    first.dump.rename(dead)
    again = class_archive("local[2]", {})
    assert again is not None and again.dump is not None  # a killed writer's leftover does not block


def test_a_stop_on_ctrl_c_ends_the_jvm_without_waiting_for_the_archive(cache: Path) -> None:
    archive = class_archive("local[2]", {})
    assert archive is not None and archive.dump is not None
    archive.dump.write_bytes(b"half")  # what a JVM may have begun
    proc = _jvm("import time; time.sleep(60)")  # would take a minute to write it
    t0 = time.monotonic()
    archive.abandon(proc)
    assert proc.returncode is not None and proc.returncode < 0 and time.monotonic() - t0 < 30  # killed
    assert list(cache.iterdir()) == []


def test_old_unused_archives_and_killed_jvms_dumps_are_removed(cache: Path) -> None:
    cache.mkdir(parents=True)
    old, recent = cache / "spark-0000000000000000.jsa", cache / "spark-1111111111111111.jsa"
    stale, running = cache / ".spark-2.jsa.1-1.tmp", cache / ".spark-2.jsa.2-2.tmp"
    for p in (old, recent, stale, running):
        p.write_bytes(b"x")
    month, hours = (spark_classes.KEEP_UNUSED_DAYS + 1) * 86400, 2 * spark_classes.STALE_DUMP_SECONDS
    os.utime(old, (time.time() - month,) * 2)
    os.utime(stale, (time.time() - hours,) * 2)
    archive = class_archive("local[2]", {})
    assert archive is not None and archive.dump is not None
    assert sorted(p.name for p in cache.iterdir()) == sorted([recent.name, running.name])


CHILD = textwrap.dedent(
    """
    import json, logging, sys
    logging.basicConfig(level=logging.INFO)  # lrsweep's INFO lines on stderr, as the command line shows them
    from pyspark import SparkContext
    from lrsweep.backends.spark import SparkBackend, SparkConfig
    from lrsweep.clusters import LocalCluster
    from lrsweep.config import CVConfig, DatasetConfig, SplitConfig
    from lrsweep.data import open_data
    from lrsweep.space import ModelParams

    for session in (1, 2):  # the second session, in the same process, starts a JVM of its own
        # the first JVM compiles with C1 then C2, the second (telco churn is small) with C1 alone
        settings = SparkConfig(quick_jit_rows=0 if session == 1 else 20_000)
        backend = SparkBackend(settings, cluster=LocalCluster(master="local[1]"))
        backend.prepare(open_data(DatasetConfig(), SplitConfig(), CVConfig(), 42))
        pid = SparkContext._gateway.proc.pid
        maps = open(f"/proc/{pid}/maps").read()
        cmdline = open(f"/proc/{pid}/cmdline").read().split(chr(0))
        ev = backend.evaluate(ModelParams(0.5, 0.0, "l2", None, "balanced", 50, 1e-6))
        backend.close()
        fit = {"log_loss": ev.log_loss, "n_iter": ev.fit.n_iter}
        print(json.dumps({"pid": pid, "maps": maps, "cmdline": cmdline, **fit}))
        print(f"session {session} closed", file=sys.stderr)
    """
)


@pytest.mark.slow
@pytest.mark.spark
def test_a_real_driver_jvm_writes_then_maps_the_archive_and_fits_the_same(tmp_path: Path) -> None:
    """Two sessions, one after the other in one process: the first one's JVM writes the archive as it is ended,
    the second one's maps it."""
    env = os.environ | {"XDG_CACHE_HOME": str(tmp_path / "cache"), "SPARK_LOCAL_IP": "127.0.0.1"}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    run = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    first, second = (json.loads(line) for line in run.stdout.strip().splitlines()[-2:])
    said = run.stderr.split("session 1 closed")

    folder = tmp_path / "cache" / "lrsweep" / "jvm"
    assert any(a.startswith("-XX:ArchiveClassesAtExit=") for a in first["cmdline"])
    assert "wrote an archive of the Spark driver's classes" in said[0]
    (archive,) = folder.glob("spark-*.jsa")
    assert archive.stat().st_size > 10_000_000 and not list(folder.glob(".*.tmp"))

    assert second["pid"] != first["pid"]
    assert f"-XX:SharedArchiveFile={archive}" in second["cmdline"]
    assert str(archive) in second["maps"]  # the JVM mapped it into its memory
    assert "wrote an archive" not in said[1]
    # the same classes, and the same fit to the bit whichever compilers ran it (Java's floating point is strict)
    assert (second["log_loss"], second["n_iter"]) == (first["log_loss"], first["n_iter"])
    assert QUICK_JIT not in first["cmdline"] and QUICK_JIT in " ".join(second["cmdline"])
