"""Several lrsweep processes on one study: who is alive, whose trial a RUNNING trial is, who leads.

Every process that works on a study is a *worker*. It registers in the study's own storage (a study user
attribute ``lrsweep_worker:<id>``: host, pid, lease file, when it registered, a heartbeat) and, for its whole
life, holds a shared ``flock`` on its *lease* file (``<study.dir>/<study>.workers/<id>.lock``). Its MLflow writer
process holds the same lease, so a killed sweep whose writer is still draining counts as alive until the writer
is done. Each trial it asks for carries its id (trial user attribute ``lrsweep_worker``).

A worker is dead when

- it is on this host and nobody holds its lease (the OS drops a lock when its holder dies, even by kill -9:
  found at once), or
- it is on another host (a study in a shared database) and its heartbeat is older than ``GRACE_SECONDS``.

A RUNNING trial of a dead worker is *interrupted* (FAIL, marked, not counted, run again by whoever is alive).

The *leader* is the live worker that registered first (then the smaller id). It alone opens what must exist
once: the MLflow parent run of a study that has none, and the queued points of a grid search. Hosts sharing a
study should keep their clocks in sync (NTP): registration times order the workers.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("lrsweep")

WORKER_ATTR = "lrsweep_worker"  # trial user attribute: the id of the worker that asked for it
REGISTRY_PREFIX = "lrsweep_worker:"  # + id, study user attribute: the worker's record
HEARTBEAT_SECONDS = 10.0
GRACE_SECONDS = 60.0  # a worker on another host whose heartbeat is older than this is dead
ORPHAN_SECONDS = 60.0  # a RUNNING trial that names no worker (asked, then killed before it was marked)


@dataclass(frozen=True)
class WorkerRecord:
    id: str
    host: str
    pid: int
    lease: str
    registered: float
    beat: float
    ended: bool = False

    @classmethod
    def from_attr(cls, key: str, value: dict[str, Any]) -> WorkerRecord:
        return cls(
            id=key[len(REGISTRY_PREFIX) :],
            host=str(value.get("host", "")),
            pid=int(value.get("pid", 0)),
            lease=str(value.get("lease", "")),
            registered=float(value.get("registered", 0.0)),
            beat=float(value.get("beat", 0.0)),
            ended=bool(value.get("ended", False)),
        )

    def as_attr(self) -> dict[str, Any]:
        return {
            "host": self.host, "pid": self.pid, "lease": self.lease, "registered": self.registered,
            "beat": self.beat, "ended": self.ended,
        }  # fmt: skip

    def where(self) -> str:
        return f"pid {self.pid} on {self.host}"


def lease_held(path: str) -> bool:
    """Whether a live process holds the lease file (a missing file is nobody's)."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 -- closed below
    except OSError:
        return False
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        fh.close()  # (closing drops the probe's own lock)
    return False


def hold_lease(path: str) -> Any:
    """Take a shared lock on ``path`` and return its open file: the lock lasts as long as the file stays open."""
    fh = open(path, "a+")  # noqa: SIM115 -- held for the process's life
    fcntl.flock(fh, fcntl.LOCK_SH)
    return fh


def alive(record: WorkerRecord, now: float | None = None) -> bool:
    if record.ended:
        return False
    if record.host == socket.gethostname():
        return lease_held(record.lease)
    return (now or time.time()) - record.beat <= GRACE_SECONDS


class Worker:
    """This process's membership in a study: register, hold the lease, beat, find the dead, lead."""

    def __init__(self, study: Any, lease_dir: Path) -> None:
        self.study = study
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        lease_dir.mkdir(parents=True, exist_ok=True)
        self.lease = str((lease_dir / f"{self.id}.lock").resolve())
        self._lease = hold_lease(self.lease)
        now = time.time()
        self.record = WorkerRecord(self.id, socket.gethostname(), os.getpid(), self.lease, now, now)
        self._write()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._beating, name="lrsweep-heartbeat", daemon=True)
        self._beat.start()

    def _write(self) -> None:
        self.study.set_user_attr(REGISTRY_PREFIX + self.id, self.record.as_attr())

    def _beating(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self.record = WorkerRecord(**{**self.record.__dict__, "beat": time.time()})
            with contextlib.suppress(Exception):  # a storage hiccup: the next beat tries again
                self._write()

    # -- who is there --------------------------------------------------------------------------------
    def workers(self) -> list[WorkerRecord]:
        attrs = self.study.user_attrs
        return [WorkerRecord.from_attr(k, v) for k, v in attrs.items() if k.startswith(REGISTRY_PREFIX)]

    def live(self) -> list[WorkerRecord]:
        now = time.time()
        return [w for w in self.workers() if w.id == self.id or alive(w, now)]

    def others(self) -> list[WorkerRecord]:
        return [w for w in self.live() if w.id != self.id]

    def is_leader(self) -> bool:
        first = min(self.live(), key=lambda w: (w.registered, w.id))
        return first.id == self.id

    def dead_trials(self, running: list[Any]) -> list[Any]:
        """The RUNNING trials (of ``running``) whose worker is gone."""
        if not running:
            return []
        live = {w.id for w in self.live()}
        now = time.time()
        out = []
        for t in running:
            owner = t.user_attrs.get(WORKER_ATTR)
            if owner is None:  # asked, then killed before it was marked (or an earlier lrsweep's trial)
                started = t.datetime_start.timestamp() if t.datetime_start else 0.0
                if now - started > ORPHAN_SECONDS or not self.others():
                    out.append(t)
            elif owner not in live:
                out.append(t)
        return out

    def owner_alive(self, trial: Any) -> bool:
        owner = trial.user_attrs.get(WORKER_ATTR)
        return owner == self.id or owner in {w.id for w in self.live()}

    def close(self) -> None:
        """Leave the study: marked ended (others need not wait for a heartbeat to go stale), lease dropped."""
        self._stop.set()
        self.record = WorkerRecord(**{**self.record.__dict__, "ended": True, "beat": time.time()})
        with contextlib.suppress(Exception):
            self._write()
        with contextlib.suppress(OSError):
            self._lease.close()
        with contextlib.suppress(OSError):
            os.unlink(self.lease)
