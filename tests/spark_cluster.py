"""A real Spark standalone cluster on 127.0.0.1: one master and N workers, each its own JVM, stopped by PID.

Used by the launch rehearsal test and by ``benchmarks/bench_plan.py`` (run with the repository root on
PYTHONPATH). The pip package has no sbin scripts, so the daemons are started with ``bin/spark-class``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.data.servers import free_port

__all__ = ["Standalone", "standalone_cluster"]

HOST = "127.0.0.1"
_START_DEADLINE_S = 120  # a bound on waiting for the daemons, not a performance expectation


@dataclass(frozen=True)
class Standalone:
    master: str  # spark://127.0.0.1:PORT
    ui: str  # http://127.0.0.1:PORT (the master's web UI, /json/ lists the workers)
    workers: int
    cores: int  # in all
    work_dir: Path  # the workers' folder: one app-* folder per application (executors' stdout and stderr)


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def _state(ui: str) -> dict:
    with urllib.request.urlopen(f"{ui}/json/", timeout=2) as r:
        return json.loads(r.read())


def _master_ui(log: Path, asked: str) -> str:
    """The master's web UI as its log says it bound it: the port asked for may have been taken between choosing it
    and the master binding it (another cluster's daemon, in a parallel test), and Spark then takes the next one."""
    try:
        found = re.search(r"MasterWebUI.*started at https?://[^:/\s]+:(\d+)", log.read_text(errors="replace"))
    except OSError:
        return asked
    return f"http://{HOST}:{found.group(1)}" if found else asked


@contextmanager
def standalone_cluster(
    workers: int = 2, cores_per_worker: int = 1, memory: str = "2g", work_dir: Path | None = None
) -> Iterator[Standalone]:
    """Start a master and ``workers`` workers; yield when every worker is ALIVE; stop them all at the end.

    ``work_dir``: where the workers keep their applications' folders (None: a temporary folder, removed at the
    end); never Spark's default, the pyspark package's own folder."""
    home = _spark_home()
    spark_class = str(home / "bin" / "spark-class")
    port, ui_port = free_port(), free_port()
    master, ui = f"spark://{HOST}:{port}", f"http://{HOST}:{ui_port}"
    env = os.environ | {"SPARK_HOME": str(home), "SPARK_LOCAL_IP": HOST, "SPARK_NO_DAEMONIZE": "1"}
    with ExitStack() as stack:
        logdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lrsweep-standalone-")))
        work = work_dir or logdir / "work"
        procs: list[subprocess.Popen[bytes]] = []

        def start(name: str, args: list[str]) -> None:
            log = open(logdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the stack
            stack.callback(log.close)
            procs.append(subprocess.Popen([spark_class, *args], stdout=log, stderr=subprocess.STDOUT, env=env))

        def stop() -> None:
            for p in reversed(procs):
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

        stack.callback(stop)
        start("master", ["org.apache.spark.deploy.master.Master", "--host", HOST, "--port", str(port),
                         "--webui-port", str(ui_port)])  # fmt: skip
        for i in range(workers):
            start(f"worker{i}", ["org.apache.spark.deploy.worker.Worker", "--host", HOST, "--cores",
                                 str(cores_per_worker), "--memory", memory, "--webui-port", "0",
                                 "--work-dir", str(work), master])  # fmt: skip
        deadline = time.monotonic() + _START_DEADLINE_S
        while True:
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                logs = "\n".join(f.read_text(errors="replace")[-2000:] for f in sorted(logdir.glob("*.log")))
                raise RuntimeError(f"a Spark daemon exited with {dead[0].returncode}:\n{logs}")
            ui = _master_ui(logdir / "master.log", ui)
            try:
                state = _state(ui)
                alive = [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]
                if state.get("url") == master and len(alive) == workers:  # our master's page, all workers up
                    break
            except (OSError, ValueError):  # not up yet, or another daemon's page (HTML, not JSON)
                pass
            if time.monotonic() > deadline:
                logs = "\n".join(f.read_text(errors="replace")[-2000:] for f in sorted(logdir.glob("*.log")))
                raise RuntimeError(f"the standalone cluster did not come up on {master}:\n{logs}")
            time.sleep(0.5)
        yield Standalone(master=master, ui=ui, workers=workers, cores=workers * cores_per_worker, work_dir=work)
