"""Everything MLflow: the parent run of a sweep, one child run per trial, and the final model and artifacts.

The sweep talks to one :class:`Tracker` (``MlflowTracker``, or ``NullTracker`` for tracking=off) that owns
the tracking URI, the parent run, its finalisation and its failure. Writing one child run costs MLflow about
as much CPU as fitting a small model (the README's Speed section has the figures), so by default every
per-trial MLflow call runs in a separate writer *process* fed through a pipe: it works on another core
while the sweep fits the next trial. ``tracking.mode=inline`` runs the same writer code in the sweep's thread.

Consistency: the Optuna journal is the source of truth. A trial's record is sent only after Optuna
has been told the trial finished, and every record is also kept in the trial's user attributes, so:
- a killed sweep never leaves a child run for an unfinished trial;
- on the next run, any finished trial missing from MLflow (its record was still in the pipe) is
  backfilled, a child run left half-written is deleted and rewritten, and the dead parent run is
  marked KILLED.
The final metrics, artifacts and model are logged by the writer too: it logs the model (sent over the
pipe as soon as it is refitted) while the sweep draws the plots, so a tracked sklearn sweep never imports
MLflow in its own process. A Spark model is a handle on the sweep's JVM: the sweep's process logs it, after
the writer has drained (one writer at a time on a sqlite store).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import multiprocessing as mp
import os
import signal
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lrsweep.config import TrackingConfig
from lrsweep.errors import LrsweepError
from lrsweep.records import TrialRecord
from lrsweep.redact import redact_uri

if TYPE_CHECKING:
    from lrsweep.backends.base import Capabilities, Refit

__all__ = [
    "Tracker",
    "MlflowTracker",
    "NullTracker",
    "TrialWriter",
    "ParentSpec",
    "Final",
    "ModelToLog",
    "open_tracker",
    "PlanRecord",
    "PastSetup",
    "PastTrial",
    "SETUP_METRIC",
    "log_plan",
    "past_sweeps",
]

log = logging.getLogger("lrsweep")

# MLflow's usage telemetry posts to a remote endpoint from a background thread and flushes it at exit: on
# an offline machine that holds every sweep's exit for seconds. Off unless the user opts in.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# With an HTTP store MLflow prints two emoji "View run/experiment" lines for every run it ends (and fetches the
# run again to do so): the summary prints the links once.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

STUDY_TAG = "lrsweep.study"
KIND_TAG = "lrsweep.kind"
TRIAL_TAG = "lrsweep.trial_number"
PLAN_FOR_TAG = "lrsweep.plan_for_study"  # on a plan run: the study its sweep will be
PLAN_RUN_TAG = "lrsweep.plan_run_id"  # on a sweep's parent run: the plan it follows
INVOCATION_TAG = "lrsweep.invocation."  # + 3 digits, on a parent run: one JSON record per lrsweep call
FAILURE_TAG = "lrsweep.failure"
BEST_TAG = "lrsweep.best"  # "true" on the child run of the study's best trial
SERIES_TAG = "lrsweep.series_until"  # the last trial number whose best-so-far point is on the parent
SETUP_METRIC = "setup_seconds"  # on a parent run: its last call's setup (read back by the planner's history)
MODEL_URI_TAG = "lrsweep.model_uri"
MODEL_TRIAL_TAG = "lrsweep.model_trial"  # the trial whose refit the logged model is
WORKER_TAG = "lrsweep.worker"  # on a trial's child run: the worker (lrsweep.workers) that ran it
PARENT_WAIT_SECONDS = 120.0  # how long a joining worker waits for the leader to open the parent run
# A store that stops answering mid-sweep (a tracking server restarted): finished trials are kept and retried
# before the next one; at the end the writer waits this long for the store before it gives up (the journal still
# holds them: the next call backfills them)
OUTAGE_WAIT_SECONDS = 180.0
RETRY_SECONDS = 10.0  # during an outage, how often a new trial tries the store again
# Optuna state -> MLflow run status of its child run
RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
_MAX_PARAMS = 100  # MLflow's per-call limit for log_batch params


def _client(uri: str | None) -> Any:
    # Fail fast on an unreachable server instead of MLflow's default of 7 retries with backoff.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    # MLflow prints "View run NAME at: URL" on stdout for every run it ends on a server, the URL with any password
    # the tracking URI holds, after one more request per run: lrsweep prints its own links, redacted, once
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # table-creation chatter on a new sqlite store
    # urllib3's "Retrying (...) after connection broken" lines: an unreachable server is reported in one line
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    # An explicit client, never mlflow.set_tracking_uri: that also exports MLFLOW_TRACKING_URI, so a later
    # sweep of the same process (multirun) or any child process would silently log to this store.
    from lrsweep.stores import creating

    # the client builds a new local SQLite store's tables (Alembic migrations) as it starts: one worker at a time
    with creating(uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"):
        return MlflowClient(tracking_uri=uri)


@contextlib.contextmanager
def _active_uri(uri: str | None) -> Any:
    """mlflow's global tracking URI set to ``uri`` for a fluent call (log_model), then put back as it was."""
    if uri is None:
        yield
        return
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    previous, previous_env = tracking_utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        tracking_utils._tracking_uri = previous
        if previous_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous_env


def _search_all(client: Any, experiment_id: str, filter_string: str) -> list[Any]:
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=filter_string, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


# the experiment's kind: the MLflow UI opens such an experiment in its model-training view (runs, charts),
# not in its GenAI view (traces)
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


def _experiment(client: Any, name: str) -> str:
    """The id of experiment ``name``, created if new, marked as model training unless it has a kind."""
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return str(client.create_experiment(name, tags=dict([EXPERIMENT_KIND])))
        except MlflowException:  # another worker of the study created it in between (RESOURCE_ALREADY_EXISTS)
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    if EXPERIMENT_KIND[0] not in exp.tags:
        client.set_experiment_tag(exp.experiment_id, *EXPERIMENT_KIND)
    return str(exp.experiment_id)


def _check_artifact_folder(location: str) -> None:
    """A local artifact location (a SQLite store's default, ./mlruns where the experiment was created) that cannot
    be written is one line when the parent run opens, not an OSError when the model is logged after every trial."""
    from urllib.parse import unquote, urlparse

    from lrsweep.stores import writable_folder

    url = urlparse(location)
    if url.scheme not in ("", "file"):
        return  # a server's proxy (mlflow-artifacts:), S3, ...: the server answers for it
    folder = Path(unquote(url.path) if url.scheme else location)
    try:
        writable_folder(folder, "the MLflow artifact folder")
    except LrsweepError as exc:
        raise LrsweepError(
            exc.problem,
            "run lrsweep in a folder you can write (a SQLite store keeps artifacts in ./mlruns where the experiment "
            "was made), or use another tracking.experiment or tracking.uri, or run with tracking=off",
        ) from None


def _dataset_inputs(datasets: list[dict[str, str]]) -> list[Any]:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    return [
        DatasetInput(
            Dataset(
                name=d["name"], digest=d["digest"], source_type=d["source_type"], source=d["source"],
                schema=d.get("schema"), profile=d.get("profile"),
            ),
            tags=[InputTag("mlflow.data.context", d["context"])],
        )
        for d in datasets
    ]  # fmt: skip


def mark_stopped(client: Any, run: Any, status: str, reason: str, call: str = "", *, run_too: bool = True) -> None:
    """End a parent run as ``status`` (FAILED | KILLED) with the reason, on the run and on its call ``call`` (its
    last call if not given). ``run_too=False``: only the call (other workers still work on the study)."""
    from mlflow.entities import RunTag

    tags = run.data.tags
    calls = sorted(k for k in tags if k.startswith(INVOCATION_TAG))
    key = call or (calls[-1] if calls else "")
    batch = [RunTag(FAILURE_TAG, reason[:5000])] if run_too else []
    if key in tags:
        try:
            record = json.loads(tags[key])
        except ValueError:
            record = {}
        if record.get("status", "RUNNING") == "RUNNING":
            record |= {"status": status, "reason": reason[:500]}
            batch.append(RunTag(key, json.dumps(record, sort_keys=True)))
    if batch:
        client.log_batch(run.info.run_id, tags=batch)
    if run_too:
        client.set_terminated(run.info.run_id, status)


class TrialWriter:
    """Executes tracking commands in order; runs in the writer process (or inline)."""

    def __init__(self, uri: str | None) -> None:
        self.uri = uri
        self.client: Any = None
        self.experiment_id = ""
        self.parent_id = ""
        self.study = ""
        self.logged = 0
        self.invocation_key = ""
        self.invocation: dict[str, Any] = {}
        self.trial_inputs: list[Any] = []
        self.model_uri: str | None = None
        self.new_model = False  # logged by this call (so registered), not found from an earlier one
        self.lease: str | None = None  # this worker's lease file (lrsweep.workers), held while the writer works
        self._lease_fh: Any = None
        self.pending: list[TrialRecord] = []  # finished trials the store did not take (an outage): retried
        self._half: dict[int, str] = {}  # trial number -> a child run started but not finished (deleted on retry)
        self.notes: list[str] = []  # lines for the sweep to log (sent by the writer process)
        self._retry_at = 0.0  # during an outage, the store is tried again from this time (monotonic) on

    @classmethod
    def attached(cls, uri: str | None, parent_id: str, invocation_key: str, study: str) -> TrialWriter:
        """A writer for a parent run another writer opened (the final logging of a Spark sweep, whose model
        lives in the sweep's process)."""
        w = cls(uri)
        w.client = _client(uri)
        w.parent_id, w.invocation_key, w.study = parent_id, invocation_key, study
        w.experiment_id = str(w.client.get_run(parent_id).info.experiment_id)
        return w

    # -- commands ------------------------------------------------------------------------------------
    def open(self, spec: ParentSpec) -> tuple[str, str]:
        """Continue the study's parent run (one per study, whatever the number of calls), or start it; return
        its id and this call's invocation tag."""
        from mlflow.entities import Param, RunTag

        if spec.lease:  # a killed sweep's writer that still drains keeps its worker alive for the others
            from lrsweep.workers import hold_lease

            self.lease, self._lease_fh = spec.lease, hold_lease(spec.lease)
        from lrsweep.stores import creating

        self.client = client = _client(self.uri)
        self.study = spec.study
        with creating(self.uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"):
            self.experiment_id = _experiment(client, spec.experiment)  # (the first request builds a new store)
        _check_artifact_folder(client.get_experiment(self.experiment_id).artifact_location)
        done = self._reconcile(set(spec.live_workers))
        tags = {**spec.tags, STUDY_TAG: self.study, KIND_TAG: "sweep"}
        if PLAN_RUN_TAG not in tags:  # a sweep run after `lrsweep plan` of the same study links to that plan
            plans = client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`{PLAN_FOR_TAG}` = '{self.study}'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
            if plans:
                tags[PLAN_RUN_TAG] = plans[0].info.run_id
        parent = self._parent() or (None if spec.may_create else self._await_parent())
        invocation = dict(spec.invocation)
        if parent is None:
            run = client.create_run(self.experiment_id, run_name=spec.run_name, start_time=spec.start_ms or None)
            self.parent_id, logged, number = run.info.run_id, {}, 1
        else:
            self.parent_id, logged = parent.info.run_id, parent.data.params
            number = 1 + sum(k.startswith(INVOCATION_TAG) for k in parent.data.tags)
            client.update_run(self.parent_id, status="RUNNING", name=spec.run_name)
        # params are write-once in MLflow: a later call logs the keys it adds and records the values it changed
        values = {k: str(v)[:6000] for k, v in spec.params.items()}
        changed = {k: v for k, v in values.items() if k in logged and logged[k] != v}
        if changed:
            invocation["changed"] = changed
        invocation["status"] = "RUNNING"
        self.invocation_key = f"{INVOCATION_TAG}{number:03d}"
        self.invocation = invocation
        tags[self.invocation_key] = json.dumps(invocation, sort_keys=True)
        params = [Param(k, v) for k, v in values.items() if k not in logged]
        for i in range(0, max(len(params), 1), _MAX_PARAMS):
            client.log_batch(
                self.parent_id,
                params=params[i : i + _MAX_PARAMS],
                tags=[RunTag(k, v) for k, v in tags.items()] if i == 0 else [],
            )
        for name, text in spec.texts.items():
            client.log_text(self.parent_id, text, name)
        if spec.datasets:
            client.log_inputs(self.parent_id, datasets=_dataset_inputs(spec.datasets))
            self.trial_inputs = _dataset_inputs([d for d in spec.datasets if d["context"] != "test"])
        backfill = [r for r in spec.backfill if r.number not in done]
        for record in backfill:
            self.trial(record, tags=[RunTag("lrsweep.backfilled", "true")])
        if backfill:
            log.info("backfilled %d finished trial(s) missing from MLflow", len(backfill))
        return self.parent_id, self.invocation_key

    def _parent(self) -> Any:
        """The study's parent run (the latest, in a store written by versions that opened one per call)."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{STUDY_TAG}` = '{self.study}' and tags.`{KIND_TAG}` = 'sweep'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return runs[0] if runs else None

    def _await_parent(self, timeout: float = PARENT_WAIT_SECONDS) -> Any:
        """Wait for the study's leading worker to open the parent run; None (open it here) if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.5)
            parent = self._parent()
            if parent is not None:
                return parent
        log.warning("no parent run for study %s after %.0f s: this worker opens it", self.study, timeout)
        return None

    def _reconcile(self, live: set[str]) -> set[int]:
        """Close what a killed sweep of this study left open (not what live workers, ``live``, are writing);
        return the trial numbers already logged."""
        client = self.client
        stale = _search_all(
            client, self.experiment_id, f"tags.`{STUDY_TAG}` = '{self.study}' and attributes.status = 'RUNNING'"
        )
        for r in stale:
            if r.data.tags.get(KIND_TAG) == "trial":
                if r.data.tags.get(WORKER_TAG) not in live:
                    client.delete_run(r.info.run_id)  # half-written: rewritten from the journal below
            elif not live:  # a parent whose sweep died: its last call is recorded as killed
                mark_stopped(client, r, "KILLED", "killed: the sweep process stopped before it finished")
        return self._logged()

    def _logged(self) -> set[int]:
        logged = _search_all(
            self.client, self.experiment_id, f"tags.`{STUDY_TAG}` = '{self.study}' and tags.`{KIND_TAG}` = 'trial'"
        )
        return {int(r.data.tags[TRIAL_TAG]) for r in logged if r.info.status != "RUNNING"}

    def _others_alive(self) -> bool:
        """Whether another worker on this host holds a lease of this study (it goes on with the parent run)."""
        from lrsweep.workers import lease_held

        if not self.lease:
            return False
        mine = Path(self.lease)
        return any(lease_held(str(p)) for p in mine.parent.glob("*.lock") if p != mine)

    def kept(self, record: TrialRecord) -> None:
        """Log a finished trial, or keep it for later if the store does not answer (the sweep goes on)."""
        self.flush()
        if self.pending:
            self.pending.append(record)
            return
        try:
            self.trial(record)
        except Exception as exc:
            self.pending.append(record)
            self._retry_at = time.monotonic() + RETRY_SECONDS
            self.notes.append(
                f"MLflow stopped answering ({_first_line(exc)}): finished trials are kept and logged when it is back"
            )

    def flush(self, wait: float = 0.0) -> None:
        """Log the kept trials, in order; with ``wait``, try again for that long before raising the error."""
        deadline = time.monotonic() + wait
        if not wait and time.monotonic() < self._retry_at:
            return  # (each try of a store that is down costs MLflow's retries: not one per trial)
        while self.pending:
            try:
                self.trial(self.pending[0])
            except Exception:
                self._retry_at = time.monotonic() + RETRY_SECONDS
                if time.monotonic() >= deadline:
                    if wait:
                        raise
                    return
                time.sleep(2.0)
                continue
            self.pending.pop(0)
            if not self.pending:
                self.notes.append("MLflow answers again: every kept trial is logged")

    def trial(self, record: TrialRecord, tags: Iterable[Any] = ()) -> None:
        from mlflow.entities import Metric, Param

        client = self.client
        if record.number in self._half:  # a try that failed halfway: its run goes, the trial is logged anew
            client.delete_run(self._half.pop(record.number))
        run = client.create_run(
            self.experiment_id,
            start_time=record.start_ms,
            run_name=record.run_name,
            tags={
                "mlflow.parentRunId": self.parent_id,
                STUDY_TAG: self.study,
                KIND_TAG: "trial",
                TRIAL_TAG: str(record.number),
                "lrsweep.state": record.state,
                **record.tags,
            },
        )
        rid, ts = run.info.run_id, record.end_ms
        self._half[record.number] = rid
        metrics = [Metric(k, float(v), ts, 0) for k, v in record.metrics.items()]
        metrics += [Metric(k, float(v), ts, int(step)) for k, v, step in record.steps]
        client.log_batch(
            rid,
            metrics=metrics,
            params=[Param(k, str(v)) for k, v in record.params.items()],
            tags=list(tags),
        )
        if self.trial_inputs:
            client.log_inputs(rid, datasets=self.trial_inputs)
        client.set_terminated(rid, RUN_STATUS[record.state], end_time=record.end_ms)
        del self._half[record.number]
        self.logged += 1

    def parent_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        self.client.log_batch(self.parent_id, metrics=[Metric(k, float(v), ts, step) for k, v in metrics.items()])

    def warm(self, flavour: str | None) -> None:
        """Import what logging the model needs while the writer waits for trials (it is idle most of a sweep)."""
        if flavour == "sklearn":
            import mlflow.sklearn  # noqa: F401
            from mlflow.models import infer_signature  # noqa: F401

    def model(self, m: ModelToLog) -> None:
        """Log the best model on the parent run, unless this trial's model is there already (a resumed study
        whose best did not change); the URI goes on the parent with the final tags."""
        tags = self.client.get_run(self.parent_id).data.tags
        if tags.get(MODEL_TRIAL_TAG) == str(m.best_trial) and tags.get(MODEL_URI_TAG):
            self.model_uri = tags[MODEL_URI_TAG]
            return
        self.model_uri = log_model(self.uri, self.parent_id, m, m.capabilities, m.threshold, name=m.name)
        self.new_model = True

    def finish(self, final: Final) -> str | None:
        """Log the result on the parent run (metrics, tags, note, artifacts, model tags) and mark it FINISHED;
        return the model URI."""
        from mlflow.entities import Metric, RunTag

        self.flush(wait=OUTAGE_WAIT_SECONDS)
        client, parent_id = self.client, self.parent_id
        if final.backfill:  # trials of workers that stopped before their writer logged them
            logged = self._logged()
            for record in (r for r in final.backfill if r.number not in logged):
                self.trial(record, tags=[RunTag("lrsweep.backfilled", "true")])
        run = client.get_run(parent_id)
        before = run.data.tags
        ts = int(time.time() * 1000)
        metrics = [Metric(k, float(v), ts, 0) for k, v in final.metrics.items()]
        until = int(before.get(SERIES_TAG, "-1"))  # the best-so-far points an earlier call logged
        series = [(n, v) for n, v in final.series if n > until]
        metrics += [Metric(f"best_val_{final.objective}", float(v), ts, n) for n, v in series]
        tags = dict(final.tags)
        if series:
            tags[SERIES_TAG] = str(series[-1][0])
        best_run = self._mark_best(run, final.best_trial)
        link = f"[trial {final.best_trial}](#/experiments/{self.experiment_id}/runs/{best_run})" if best_run else ""
        calls = _calls(before)
        for key, call in calls.items():  # calls of workers that died with their writer: killed, not running
            stopped = "worker" in call and call["worker"] not in final.live_workers
            if key != self.invocation_key and call.get("status") == "RUNNING" and stopped:
                call.update(status="KILLED", reason="the worker stopped before it finished")
                tags[key] = json.dumps(call, sort_keys=True)
        calls[self.invocation_key] = {**calls.get(self.invocation_key, self.invocation), **final.invocation}
        note = final.note.replace("{best_run}", link or f"trial {final.best_trial}")
        tags["mlflow.note.content"] = note.replace("{calls}", str(len(calls)))
        calls[self.invocation_key]["status"] = "FINISHED"
        if self.invocation_key:
            tags[self.invocation_key] = json.dumps(calls[self.invocation_key], sort_keys=True)
        if self.model_uri:
            tags |= {MODEL_URI_TAG: self.model_uri, MODEL_TRIAL_TAG: str(final.best_trial)}
        if final.artifacts is not None:
            tables = _write_calls_table(final.artifacts, calls)
            tables += [p.relative_to(final.artifacts).as_posix() for p in sorted(final.artifacts.glob("tables/*.json"))]
            tags["mlflow.loggedArtifacts"] = json.dumps([{"path": p, "type": "table"} for p in sorted(set(tables))])
        for i in range(0, max(len(metrics), 1), 1000):  # MLflow's per-call limit for metrics
            client.log_batch(
                parent_id, metrics=metrics[i : i + 1000], tags=[RunTag(k, v) for k, v in tags.items()] if i == 0 else []
            )
        if FAILURE_TAG in before:  # an earlier call died; this one finished the study's sweep
            client.delete_tag(parent_id, FAILURE_TAG)
        if final.artifacts is not None:
            client.log_artifacts(parent_id, str(final.artifacts))
        if self.new_model and self.model_uri and final.register:
            register_model(self.uri, self.model_uri, final.register, self.study, final.best_trial)
        client.set_terminated(parent_id, "FINISHED")
        return self.model_uri

    def _mark_best(self, parent: Any, number: int) -> str | None:
        """Tag the best trial's child run (and untag an earlier best); return its run id."""
        client, pid = self.client, parent.info.run_id
        children = _search_all(
            client,
            parent.info.experiment_id,
            f"tags.`mlflow.parentRunId` = '{pid}' and tags.`{BEST_TAG}` = 'true'",
        )
        for c in children:
            if c.data.tags.get(TRIAL_TAG) != str(number):
                client.delete_tag(c.info.run_id, BEST_TAG)
        best = client.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.`mlflow.parentRunId` = '{pid}' and tags.`{TRIAL_TAG}` = '{number}'",
            max_results=1,
        )
        if not best:
            return None
        if best[0].data.tags.get(BEST_TAG) != "true":
            client.set_tag(best[0].info.run_id, BEST_TAG, "true")
        return str(best[0].info.run_id)

    def close(self, status: str | None) -> None:
        self.flush(wait=OUTAGE_WAIT_SECONDS if status != "KILLED" else 10.0)
        if status and self.parent_id:
            reason = "killed: the sweep process stopped before it finished" if status == "KILLED" else status.lower()
            run = self.client.get_run(self.parent_id)
            mark_stopped(self.client, run, status, reason, self.invocation_key, run_too=not self._others_alive())

    def leave(self, outcome: dict[str, Any]) -> None:
        """This worker is done and another reports the study's result: its call is FINISHED, the run goes on."""
        from mlflow.entities import RunTag

        if not self.parent_id or not self.invocation_key:
            return
        self.flush(wait=OUTAGE_WAIT_SECONDS)
        run = self.client.get_run(self.parent_id)
        calls = _calls(run.data.tags)
        record = {**calls.get(self.invocation_key, self.invocation), **outcome, "status": "FINISHED"}
        self.client.log_batch(self.parent_id, tags=[RunTag(self.invocation_key, json.dumps(record, sort_keys=True))])
        # this writer may have opened the run (setting it RUNNING) after the finisher had ended it: end it again
        if run.info.status == "RUNNING" and run.data.metrics.get("finished_trials") == outcome.get("finished_trials"):
            self.client.set_terminated(self.parent_id, "FINISHED")


def _writer_main(commands: Connection, results: Connection, uri: str | None) -> None:
    """Entry point of the writer process: run commands until 'close' or until the sweep's end of the pipe dies.

    Every way out ends with os._exit: everything is committed by then, and the interpreter's teardown can
    wait on threads MLflow started (unbounded in a killed sweep's orphaned writer).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the sweep's to handle; we drain and close
    writer = TrialWriter(uri)
    try:
        _serve(writer, commands, results)
    finally:
        with contextlib.suppress(Exception):
            results.close()
        os._exit(0)


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]


def _send_notes(writer: TrialWriter, results: Connection) -> None:
    while writer.notes:
        with contextlib.suppress(Exception):
            results.send(("note", redact_uri(writer.notes.pop(0))))


def _serve(writer: TrialWriter, commands: Connection, results: Connection) -> None:
    while True:
        _send_notes(writer, results)
        try:
            op, arg = commands.recv()
        except (EOFError, OSError):  # the sweep died (kill -9): mark its parent run KILLED and stop
            with contextlib.suppress(Exception):
                writer.close("KILLED")
            return
        try:
            if op == "open":
                results.send(("opened", *writer.open(arg)))
                writer.warm(arg.model_flavour)
            elif op == "trial":
                writer.kept(arg)
            elif op == "parent_metrics":
                with contextlib.suppress(Exception):  # a point of the spend curve is not worth stopping for
                    writer.parent_metrics(*arg)
            elif op == "model":
                writer.model(arg)
            elif op == "finish":
                model_uri = writer.finish(arg)
                _send_notes(writer, results)
                results.send(("finished", writer.parent_id, model_uri, writer.invocation_key, writer.experiment_id))
                return
            elif op == "leave":
                writer.leave(arg)
                _send_notes(writer, results)
                results.send(("closed", writer.parent_id, writer.logged, writer.invocation_key))
                return
            elif op == "close":
                writer.close(arg)
                _send_notes(writer, results)
                results.send(("closed", writer.parent_id, writer.logged, writer.invocation_key))
                return
        except Exception as exc:  # reported to the sweep, which stops with one line
            _send_notes(writer, results)
            with contextlib.suppress(Exception):
                if isinstance(exc, LrsweepError):  # lrsweep's own line, with its own fix
                    results.send(("error", redact_uri(exc.problem), exc.fix))
                else:
                    results.send(("error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
            if op in ("open", "close", "model", "finish"):  # the parent cannot be finished: the sweep marks it
                return


@dataclass
class ParentSpec:
    """What the parent run of a study's sweep starts with."""

    study: str
    run_name: str
    params: dict[str, Any]
    tags: dict[str, str]
    texts: dict[str, str]  # artifact name -> text (config.yaml, data.json, environment.json)
    backfill: list[TrialRecord]  # the study's finished trials, logged if MLflow lacks them
    lease: str | None = None  # this worker's lease file (lrsweep.workers): the writer holds it too
    live_workers: list[str] = dataclasses.field(default_factory=list)  # the study's other live workers
    may_create: bool = True  # the leading worker opens a missing parent run; the others wait for it
    experiment: str = ""  # the MLflow experiment: filled in by the tracker, which owns it
    invocation: dict[str, Any] = dataclasses.field(default_factory=dict)  # this call: when, what it asked
    start_ms: int = 0  # when the sweep started (the writer may open the run later); 0: now
    # MLflow dataset inputs (runinfo.dataset_inputs): all parts on the parent, train and validation on trials
    datasets: list[dict[str, str]] = dataclasses.field(default_factory=list)
    model_flavour: str | None = None  # the flavour the writer will log the best model in (imported ahead)


@dataclass
class ModelToLog:
    """The best configuration's refitted model, as the parent run logs it."""

    model: Any  # predicts on raw rows with the validation threshold
    input_example: Any  # a few raw rows (a DataFrame), and the model's predictions for them: the signature
    example_predictions: Any
    capabilities: Capabilities
    threshold: float
    best_trial: int
    name: str = "model"


@dataclass
class Final:
    """What the parent run receives when the sweep has its result."""

    metrics: dict[str, float]
    tags: dict[str, str]
    artifacts: Path | None  # a folder logged as the run's artifacts (tables/*.json are MLflow tables)
    threshold: float
    best_trial: int
    objective: str  # the objective's metric name ("roc_auc")
    series: list[tuple[int, float]]  # (trial number, best objective so far), every finished trial of the study
    note: str  # the parent's description (Markdown); "{best_run}" becomes a link to the best trial's run
    register: str | None = None  # a registered model name: the model becomes a version, alias "best"
    invocation: dict[str, Any] = dataclasses.field(default_factory=dict)  # this call's outcome
    backfill: list[TrialRecord] = dataclasses.field(default_factory=list)  # stopped workers' finished trials
    live_workers: list[str] = dataclasses.field(default_factory=list)  # the study's live workers (this one too)


class Tracker(Protocol):
    """The sweep's handle on tracking: one parent run per sweep, one child run per trial."""

    parent_id: str | None
    opened: bool

    def open(self, spec: ParentSpec) -> None:
        """Start the parent run (after reconciling what an earlier, killed sweep left)."""
        ...

    def trial(self, record: TrialRecord) -> None:
        """Log one finished trial as a child run."""
        ...

    def parent_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Log metrics on the parent run as the sweep goes (e.g. the spend so far), at ``step``."""
        ...

    def model(self, m: ModelToLog) -> None:
        """The best model, to log on the parent run (it may start now, while the sweep draws its plots)."""
        ...

    def finish(self, final: Final) -> str | None:
        """Log the result on the parent run and mark it FINISHED; return the logged model's URI."""
        ...

    def fail(self, status: str, reason: str, *, alone: bool = True) -> None:
        """End the parent run as FAILED or KILLED with the reason (nothing half-done looks complete); before
        ``open`` it only stops what the tracker started. ``alone=False``: other workers go on with the study, so
        only this call is marked."""
        ...

    def leave(self, outcome: dict[str, Any]) -> None:
        """Log every trial of this worker and record its call as FINISHED with ``outcome``; the parent run
        stays open for the worker that reports the study's result (several workers on one study)."""
        ...


class MlflowTracker:
    """Tracking in MLflow: commands go to a writer process (or run inline), the final logging and the model too
    (so a tracked sklearn sweep never imports MLflow in its own process); a Spark model is logged here."""

    def __init__(self, cfg: TrackingConfig, experiment: str) -> None:
        from lrsweep.stores import check_database_driver, check_sqlite_store

        uri = cfg.uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
        check_sqlite_store(uri)  # one line now, not ~100 s of MLflow's retries, nor "is the server up?"
        check_database_driver(uri, "tracking.uri")
        self.uri = cfg.uri
        self.experiment = experiment
        self.parent_id: str | None = None
        self.opened = False
        self.invocation_key = ""
        self.experiment_id: str | None = None
        self._inline: TrialWriter | None = None
        self._proc: Any = None
        self._model: ModelToLog | None = None  # a model this process logs itself (Spark; inline mode)
        self._study = ""
        self.timings: dict[str, float] = {}
        if cfg.mode == "inline":
            self._inline = TrialWriter(self.uri)
        else:
            ctx = mp.get_context("spawn")  # no fork of a process holding threads and sqlite handles
            cmd_r, self._cmd = ctx.Pipe(duplex=False)
            self._res, res_w = ctx.Pipe(duplex=False)
            self._proc = ctx.Process(target=_writer_main, args=(cmd_r, res_w, self.uri), name="lrsweep-mlflow-writer")
            self._proc.start()  # starts importing mlflow now, while the sweep loads and prepares data
            cmd_r.close()
            res_w.close()

    def _error(self, msg: str, fix: str | None = None) -> LrsweepError:
        if fix is not None:  # the writer's LrsweepError
            return LrsweepError(msg, fix)
        return LrsweepError(
            f"MLflow tracking failed ({redact_uri(str(self.uri or 'default sqlite:///mlflow.db'))}): {msg}",
            "check tracking.uri and that the server is up, or run with tracking=off",
        )

    def _check(self) -> None:
        while self._proc is not None and self._res.poll():
            msg = self._res.recv()
            if msg[0] == "note":
                log.warning("%s", msg[1])
            if msg[0] == "error":
                raise self._error(*msg[1:])
            if msg[0] == "opened":
                self.parent_id, self.invocation_key = msg[1], msg[2]

    def _wait(self, kind: str, timeout: float = 300.0) -> tuple[Any, ...]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._res.poll(0.2):
                msg = self._res.recv()
                if msg[0] == "note":
                    log.warning("%s", msg[1])
                if msg[0] == "error":
                    raise self._error(*msg[1:])
                if msg[0] == "opened":
                    self.parent_id, self.invocation_key = msg[1], msg[2]
                if msg[0] == kind:
                    return msg
            elif not self._proc.is_alive():
                raise self._error(f"the writer process exited (code {self._proc.exitcode})")
        raise self._error(f"no answer from the writer within {timeout:.0f} s")

    def open(self, spec: ParentSpec) -> None:
        """In the background mode this does not wait: the writer imports MLflow and opens the store while the
        first trials run; an error surfaces at the next trial."""
        self.opened = True
        self._study = spec.study
        spec = dataclasses.replace(spec, experiment=self.experiment)
        if self._inline is not None:
            try:  # the lease: this process's worker holds it already (a writer process holds its own copy)
                self.parent_id, self.invocation_key = self._inline.open(dataclasses.replace(spec, lease=None))
            except LrsweepError:
                raise
            except Exception as exc:
                raise self._error(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
        else:
            self._cmd.send(("open", spec))

    def trial(self, record: TrialRecord) -> None:
        if self._inline is not None:
            self._inline.kept(record)
            while self._inline.notes:
                log.warning("%s", redact_uri(self._inline.notes.pop(0)))
        else:
            try:
                self._cmd.send(("trial", record))
            except OSError:  # the writer stopped after reporting an error: raise that error
                self._check()
                raise self._error("the writer process stopped") from None
            self._check()

    def parent_metrics(self, metrics: dict[str, float], step: int) -> None:
        if self._inline is not None:
            self._inline.parent_metrics(metrics, step)
        else:
            with contextlib.suppress(OSError):  # a stopped writer reports its error at the next trial
                self._cmd.send(("parent_metrics", (metrics, step)))

    def _drain(self, status: str | None = None) -> str | None:
        """Let the writer finish every child run; with ``status``, it also ends the parent run."""
        if self._inline is not None:
            self._inline.close(status)
            self.parent_id = self._inline.parent_id or None
            return self.parent_id
        if self._proc is None:
            return self.parent_id
        try:
            with contextlib.suppress(OSError):  # a writer that already stopped is reported by _wait
                self._cmd.send(("close", status))
            closed = self._wait("closed")
            self.parent_id, self.invocation_key = closed[1] or None, closed[3] or self.invocation_key
            return self.parent_id
        finally:
            self._stop()

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.join(timeout=30)
            if self._proc.is_alive():
                self._proc.terminate()
            self._proc = None

    def _abandon(self) -> None:
        """Stop the writer before anything was logged (setup failed)."""
        if self._proc is not None:
            self._cmd.close()  # the writer sees EOF; with no parent it writes nothing
            self._stop()

    def model(self, m: ModelToLog) -> None:
        """Start logging the best model: in the writer process, while the sweep draws the plots; a Spark model
        (a handle on the sweep's JVM) is logged by the sweep's process itself, in ``finish``."""
        if self._inline is None and m.capabilities.flavour == "sklearn":
            with contextlib.suppress(OSError):  # a stopped writer reports its error at finish
                self._cmd.send(("model", m))
        else:
            self._model = m

    def finish(self, final: Final) -> str | None:
        t0 = time.perf_counter()
        try:
            if self._inline is not None:
                writer: TrialWriter | None = self._inline
            elif self._model is None:  # the writer logs everything; this process never imports MLflow
                with contextlib.suppress(OSError):
                    self._cmd.send(("finish", final))
                done = self._wait("finished")
                self.parent_id, self.invocation_key, self.experiment_id = done[1], done[3], done[4]
                self._stop()
                return done[2]
            else:  # the writer drains; this process logs the model it holds, then the rest
                writer = None
                if self._drain():
                    writer = TrialWriter.attached(self.uri, str(self.parent_id), self.invocation_key, self._study)
            if writer is None or not writer.parent_id:
                return None
            if self._model is not None:
                writer.model(self._model)
            model_uri = writer.finish(final)
            self.experiment_id = writer.experiment_id
            return model_uri
        finally:
            self.timings["final_logging_writer"] = round(time.perf_counter() - t0, 3)

    def leave(self, outcome: dict[str, Any]) -> None:
        if self._inline is not None:
            self._inline.leave(outcome)
            return
        if self._proc is None:
            return
        try:
            with contextlib.suppress(OSError):
                self._cmd.send(("leave", outcome))
            closed = self._wait("closed")
            self.parent_id = closed[1] or self.parent_id
        finally:
            self._stop()

    def fail(self, status: str, reason: str, *, alone: bool = True) -> None:
        if not self.opened:
            self._abandon()
            return
        parent_id = self.parent_id
        with contextlib.suppress(Exception):  # the original error matters more than the writer's
            parent_id = self._drain() or parent_id
        if not parent_id:
            return
        try:
            client = _client(self.uri)
            mark_stopped(client, client.get_run(parent_id), status, reason, self.invocation_key, run_too=alone)
        except Exception as exc:
            log.warning("could not mark MLflow run %s as %s: %s", parent_id, status, exc)


def _calls(tags: dict[str, str]) -> dict[str, dict[str, Any]]:
    """A parent run's call records (its lrsweep.invocation.NNN tags), oldest first."""
    out: dict[str, dict[str, Any]] = {}
    for k in sorted(tags):
        if k.startswith(INVOCATION_TAG):
            try:
                out[k] = json.loads(tags[k])
            except ValueError:
                out[k] = {}
    return out


def _write_calls_table(folder: Path, calls: dict[str, dict[str, Any]]) -> list[str]:
    """tables/invocations.json: one row per lrsweep call of the study (an MLflow table, split orient)."""
    columns = [
        "call", "started", "status", "n_trials", "new_trials", "finished_trials", "wall_seconds", "changed", "reason",
    ]  # fmt: skip
    rows = []
    for key, rec in calls.items():
        row = {"call": int(key.rsplit(".", 1)[-1]), **rec}
        if isinstance(row.get("changed"), dict):
            row["changed"] = ", ".join(f"{k}={v}" for k, v in row["changed"].items())
        rows.append([row.get(c) for c in columns])
    (folder / "tables").mkdir(parents=True, exist_ok=True)
    (folder / "tables" / "invocations.json").write_text(json.dumps({"columns": columns, "data": rows}, default=str))
    return ["tables/invocations.json"]


class NullTracker:
    """tracking=off."""

    parent_id: str | None = None
    opened = False

    def open(self, spec: ParentSpec) -> None:
        pass

    def trial(self, record: TrialRecord) -> None:
        pass

    def parent_metrics(self, metrics: dict[str, float], step: int) -> None:
        pass

    def model(self, m: ModelToLog) -> None:
        pass

    def finish(self, final: Final) -> str | None:
        return None

    def fail(self, status: str, reason: str, *, alone: bool = True) -> None:
        pass

    def leave(self, outcome: dict[str, Any]) -> None:
        pass


def open_tracker(cfg: TrackingConfig, experiment: str) -> Tracker:
    return MlflowTracker(cfg, experiment) if cfg.enabled else NullTracker()


# -- the model, in the backend's MLflow flavour -----------------------------------------------------------
def pinned(requirements: tuple[str, ...]) -> list[str]:
    """``name==installed version`` for each distribution (explicit: inferring them costs seconds per model)."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in requirements]


@contextlib.contextmanager
def _lrsweep_code_by_value() -> Iterator[None]:
    """Pickle lrsweep's own code a model uses (the hashing transformer) into it, so it loads where lrsweep is
    not installed."""
    import cloudpickle

    import lrsweep.hashing
    import lrsweep.labelled

    modules = (lrsweep.hashing, lrsweep.labelled)
    for module in modules:
        cloudpickle.register_pickle_by_value(module)
    try:
        yield
    finally:
        for module in modules:
            cloudpickle.unregister_pickle_by_value(module)


def _numbers_any_width(signature: Any) -> Any:
    """The signature with its numeric input columns typed Any: MLflow refuses int64 for a column declared
    double ("cannot safely convert") and floats for one declared long, yet a CSV reader gives either for the
    same column (integers, or floats once a value is missing); the model itself takes both."""
    from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

    numbers = (DataType.double, DataType.float, DataType.long, DataType.integer)
    if signature.inputs is None:
        return signature
    cols = [
        ColSpec(AnyType(), c.name, required=c.required) if c.type in numbers else c for c in signature.inputs.inputs
    ]
    signature.inputs = Schema(cols)
    return signature


def log_model(
    uri: str | None, run_id: str, refit: Refit | ModelToLog, caps: Capabilities, threshold: float, *,
    name: str = "model",
) -> str:  # fmt: skip
    """Log ``refit.model`` on run ``run_id`` as ``name`` with the flavour the backend declares; return the
    model URI."""
    import mlflow
    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column.*")
        signature = _numbers_any_width(infer_signature(refit.input_example, refit.example_predictions))
    common = {
        "signature": signature,
        "input_example": refit.input_example,
        "pip_requirements": pinned(caps.requirements),
        # (a multi-class target decided by the most probable class has no threshold)
        "metadata": {"threshold": threshold} if math.isfinite(threshold) else {"decision": "argmax"},
    }
    with _active_uri(uri), mlflow.start_run(run_id=run_id), warnings.catch_warnings():
        if caps.flavour == "sklearn":
            import mlflow.sklearn

            # cloudpickle (not skops): skops refuses FixedThresholdClassifier without a trusted-type list
            warnings.filterwarnings("ignore", message=".*pickle or cloudpickle format.*")
            logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)
            with _lrsweep_code_by_value():
                info = mlflow.sklearn.log_model(refit.model, name=name, serialization_format="cloudpickle", **common)
        elif caps.flavour == "spark":
            import mlflow.spark

            info = mlflow.spark.log_model(refit.model, name, **common)  # artifact path still positional
        else:
            raise ValueError(f"no MLflow flavour {caps.flavour!r}")
    return str(info.model_uri)


def register_model(uri: str | None, model_uri: str, name: str, study: str, trial: int) -> str:
    """Register ``model_uri`` as a new version of ``name`` and point the alias ``best`` at it; return the
    version."""
    import mlflow

    logging.getLogger("mlflow.tracking._model_registry").setLevel(logging.WARNING)  # "Created version ..." lines
    with _active_uri(uri):
        version = mlflow.register_model(model_uri, name, tags={STUDY_TAG: study, "lrsweep.trial": str(trial)})
    client = _client(uri)
    client.set_registered_model_alias(name, "best", version.version)
    return str(version.version)


# -- plans, and what they learn from --------------------------------------------------------------------
@dataclass
class PlanRecord:
    """A plan as its own MLflow run (tag lrsweep.kind=plan) in the sweep's experiment."""

    experiment: str
    study: str  # the study the planned sweep will be (its parent run links back)
    run_name: str
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    texts: dict[str, str]  # artifact name -> text (plan.txt, plan.json, calibration.json)


def log_plan(uri: str | None, plan: PlanRecord) -> str:
    """Log ``plan`` as a finished run; return its id."""
    from mlflow.entities import Metric, Param, RunTag

    client = _client(uri)
    experiment_id = _experiment(client, plan.experiment)
    tags = {**plan.tags, KIND_TAG: "plan", PLAN_FOR_TAG: plan.study}
    run = client.create_run(experiment_id, run_name=plan.run_name, tags=tags)
    rid, ts = run.info.run_id, int(time.time() * 1000)
    params = [Param(k, str(v)[:6000]) for k, v in plan.params.items()]
    for i in range(0, len(params), _MAX_PARAMS):
        client.log_batch(rid, params=params[i : i + _MAX_PARAMS])
    note = RunTag("mlflow.note.content", plan.texts.get("plan.txt", "")[:5000])
    client.log_batch(rid, metrics=[Metric(k, float(v), ts, 0) for k, v in plan.metrics.items()], tags=[note])
    for name, text in plan.texts.items():
        client.log_text(rid, text, name)
    client.set_terminated(rid, "FINISHED")
    return str(rid)


@dataclass
class PastTrial:
    """One trial a finished Spark sweep fitted, as MLflow recorded it."""

    params: dict[str, Any]  # the ModelParams fields
    seconds: float  # the child run's wall time
    rows: int  # the sweep's table rows
    cores: int
    core_speed: float
    sweep_run_id: str


@dataclass
class PastSetup:
    """The setup a finished Spark sweep's last call paid (session, data, preprocessing, caches), as MLflow
    recorded it on the parent run."""

    seconds: float
    rows: int  # the sweep's table rows
    cores: int
    sweep_run_id: str


def _finished_sweeps(client: Any, cluster_type: str, data_sha256: str, limit: int) -> list[Any]:
    """The last ``limit`` finished Spark sweeps on ``cluster_type`` over the same data, in every experiment of the
    store, that recorded their table's rows and their cores."""
    sweeps = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=(
            f"tags.`{KIND_TAG}` = 'sweep' and tags.`lrsweep.cluster_type` = '{cluster_type}' and "
            f"tags.`lrsweep.data_sha256` = '{data_sha256}' and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=limit,
    )
    return [s for s in sweeps if "lrsweep.cores" in s.data.tags and "lrsweep.table_rows" in s.data.tags]


def _ran_trials_at_once(tags: dict[str, str]) -> bool:
    """Whether a sweep's calls (its parent run's invocation records) ran trials concurrently: search.n_jobs > 1
    in any call, or two calls (workers) whose spans overlap."""
    import datetime as dt

    calls = []
    for key, value in tags.items():
        if key.startswith(INVOCATION_TAG):
            with contextlib.suppress(ValueError, TypeError):
                call = json.loads(value)
                if isinstance(call, dict):
                    calls.append(call)
    if any(int(c.get("n_jobs") or 1) > 1 for c in calls):
        return True
    spans = []
    for c in calls:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            start = dt.datetime.strptime(c["started"], "%Y-%m-%d %H:%M:%S").timestamp()
            spans.append((start, start + float(c["wall_seconds"])))
    spans.sort()
    # "started" is recorded to the second: a call that began within a second of the last one's end ran after it
    return any(later[0] + 1.0 < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


def past_sweeps(
    uri: str | None, *, cluster_type: str, data_sha256: str, limit: int = 20
) -> tuple[list[PastTrial], list[PastSetup]]:
    """The trials and the setups of the last ``limit`` finished Spark sweeps on ``cluster_type`` over the same
    data, in every experiment of the store, from one search of the parent runs. Trials: repeats of an earlier
    configuration (which fit nothing) left out, and so are the trials of sweeps that ran several at once (a
    trial's wall then measures the sharing, not the cluster). Setups: sweeps logged before lrsweep recorded
    their setup have none."""
    client = _client(uri)
    out: list[PastTrial] = []
    setups: list[PastSetup] = []
    for sweep in _finished_sweeps(client, cluster_type, data_sha256, limit):
        tags = sweep.data.tags
        seconds = sweep.data.metrics.get(SETUP_METRIC)
        if seconds:
            setups.append(PastSetup(float(seconds), int(tags["lrsweep.table_rows"]), int(tags["lrsweep.cores"]),
                                    sweep.info.run_id))  # fmt: skip
        if _ran_trials_at_once(tags):
            continue
        children = _search_all(
            client,
            sweep.info.experiment_id,
            f"tags.`mlflow.parentRunId` = '{sweep.info.run_id}' and tags.`{KIND_TAG}` = 'trial' "
            "and attributes.status = 'FINISHED'",
        )
        for run in children:
            if "lrsweep.repeat_of" in run.data.tags or "lrsweep.backfilled" in run.data.tags:
                continue
            p = run.data.params
            try:
                params = {
                    "C": float(p.get("C", "inf")),  # no C is logged without a penalty
                    "l1_ratio": float(p["l1_ratio"]),
                    "penalty": p["penalty"],
                    "solver": p.get("solver"),
                    "class_weight": p["class_weight"],
                    "max_iter": int(p["max_iter"]),
                    "tol": float(p["tol"]),
                }
            except (KeyError, ValueError):
                continue
            if run.info.end_time and run.info.start_time:
                out.append(
                    PastTrial(
                        params=params,
                        seconds=(run.info.end_time - run.info.start_time) / 1000.0,
                        rows=int(tags["lrsweep.table_rows"]),
                        cores=int(tags["lrsweep.cores"]),
                        core_speed=float(tags.get("lrsweep.core_speed", "1") or 1),
                        sweep_run_id=sweep.info.run_id,
                    )
                )
    return out, setups
