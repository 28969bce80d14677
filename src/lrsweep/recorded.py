"""What MLflow recorded of a sweep, read back: the run, its parent, its config, data and environment.

``lrsweep reproduce`` and ``lrsweep export`` start here. :func:`open_store` opens a tracking store read-only
(a local store that does not exist is an error, not a new empty store); :func:`load` reads one run (a sweep's
parent or one trial's child) with everything its sweep logged at start (``config.yaml``, ``data.json``,
``environment.json``) and the configuration it tried; :func:`best_sweep` picks an experiment's best sweep.
:func:`config_of` turns the recorded config back into the typed :class:`~lrsweep.config.Config` (values the
sweep redacted before logging must be given again), and :func:`data_changes` names what differs between two
data fingerprints. Everything but ``open_store``, ``load`` and ``best_sweep`` is a pure function.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lrsweep.config import METRIC_DIRECTIONS
from lrsweep.errors import LrsweepError
from lrsweep.redact import REDACTED, redact_uri
from lrsweep.tracking import KIND_TAG, STUDY_TAG, TRIAL_TAG, _calls

__all__ = ["Recorded", "open_store", "load", "best_sweep", "config_of", "model_params_of", "data_changes"]

PARENT_TAG = "mlflow.parentRunId"
# sections of the config that say where a sweep logged and stored its study: a reproduction uses neither
_NOT_REPRODUCED = ("tracking", "study", "budget", "plan", "launch", "progress", "debug")


@dataclass
class Recorded:
    """One run as MLflow holds it, with its sweep's parent run and what that parent logged at start."""

    uri: str  # the store, redacted
    run: Any  # the run asked for (mlflow.entities.Run)
    parent: Any  # its sweep's parent run (the run itself for a parent)
    trial: Any  # the trial's child run: the run itself, or the parent's best trial
    experiment: str
    config: dict[str, Any]  # config.yaml, as logged (credentials redacted)
    data: dict[str, Any]  # data.json: fingerprint, rows per part, features, dropped
    environment: dict[str, str]  # environment.json: versions
    client: Any = None  # the MlflowClient it was read with
    tracking_uri: str = ""  # the store as given (credentials included: never print it; ``uri`` is for that)

    @property
    def is_sweep(self) -> bool:
        return self.run.info.run_id == self.parent.info.run_id

    @property
    def study(self) -> str:
        return str(self.parent.data.tags.get(STUDY_TAG, ""))

    @property
    def trial_number(self) -> int:
        return int(self.trial.data.tags[TRIAL_TAG])

    @property
    def preset(self) -> str | None:
        return self.parent.data.tags.get("lrsweep.preset")

    def command(self) -> str | None:
        """The command line of the parent's last call (recorded since lrsweep records it), else None."""
        calls = _calls(self.parent.data.tags)
        for key in sorted(calls, reverse=True):
            if calls[key].get("command"):
                return str(calls[key]["command"])
        return None


def open_store(uri: str | None, *, hint: str) -> tuple[Any, str]:
    """An MlflowClient on ``uri`` (default: the store a sweep logs to) and the store's redacted name.

    ``hint``: the command to name in the error when a local store is missing (e.g. "lrsweep compare")."""
    from lrsweep.sweep import DEFAULT_TRACKING_URI, _effective_uri
    from lrsweep.tracking import _client

    uri = _effective_uri(uri)
    shown = redact_uri(uri)
    path = local_path(uri)
    if path is not None and not os.path.exists(path):  # MLflow would create an empty store there
        raise LrsweepError(
            f"no MLflow store at {os.path.abspath(path)} ({shown})",
            f"sweeps write {DEFAULT_TRACKING_URI} in the directory they run in: run `{hint}` there, or "
            "pass --tracking-uri URI (or set MLFLOW_TRACKING_URI)",
        )
    from lrsweep.stores import check_sqlite_store

    check_sqlite_store(uri, create=False)  # not a database: one line, not MLflow's retries
    # a read-only command: one short attempt per request (the sweep's writer allows 2 retries of 20 s)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per downloaded file, on stderr
    return _client(uri), shown


def local_path(uri: str) -> str | None:
    """The file or folder a local store lives in (sqlite file, file store), or None for a server."""
    from urllib.parse import urlparse

    if uri.startswith("sqlite:///"):
        return uri[len("sqlite:///") :]
    if uri.startswith("file:"):
        return urlparse(uri).path
    if "://" not in uri:
        return uri
    return None


def store_error(exc: BaseException, shown: str) -> LrsweepError:
    """One line for a store that cannot be read (MLflow's message holds the whole urllib3 chain)."""
    import re

    text = " ".join(str(exc).split()) or type(exc).__name__
    if "timed out" in text.lower():
        reason = f"no answer within {os.environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT', '?')} s"
    else:
        errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
        reason = errno.group(1).strip() if errno else redact_uri(text)[:200]
    return LrsweepError(
        f"cannot read the MLflow store {shown} ({reason})",
        "check --tracking-uri (or MLFLOW_TRACKING_URI) and that the server is up",
    )


def _text(client: Any, run_id: str, name: str) -> str | None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, name, tmp)
        except Exception:  # not logged (an old sweep, or artifacts of another kind)
            return None
        with open(path, encoding="utf-8") as f:
            return f.read()


def load(run_id: str, uri: str | None = None, *, hint: str = "lrsweep reproduce") -> Recorded:
    """The run ``run_id`` (a sweep's parent or one of its trials) and its sweep's record."""
    import yaml

    client, shown = open_store(uri, hint=hint)
    try:
        run = _get_run(client, run_id, shown)
        kind = run.data.tags.get(KIND_TAG)
        if kind == "trial":
            parent = _get_run(client, run.data.tags[PARENT_TAG], shown)
            trial = run
        elif kind == "sweep":
            parent = run
            trial = _best_child(client, run, shown)
        else:
            what = f"an lrsweep {kind} run" if kind else "not an lrsweep sweep or trial"
            raise LrsweepError(
                f"run {run_id} is {what}", "give a sweep's parent run or one of its trials (see `lrsweep compare`)"
            )
        experiment = client.get_experiment(parent.info.experiment_id).name
        pid = parent.info.run_id
        texts = {name: _text(client, pid, name) for name in ("config.yaml", "data.json", "environment.json")}
    except LrsweepError:
        raise
    except Exception as exc:
        raise store_error(exc, shown) from exc
    if texts["config.yaml"] is None:
        raise LrsweepError(
            f"run {pid} holds no config.yaml (it was not logged by an lrsweep sweep, or its artifacts are gone)",
            "give a run logged by `lrsweep`",
        )
    return Recorded(
        uri=shown,
        run=run,
        parent=parent,
        trial=trial,
        experiment=experiment,
        config=yaml.safe_load(texts["config.yaml"]) or {},
        data=json.loads(texts["data.json"] or "{}"),
        environment=json.loads(texts["environment.json"] or "{}"),
        client=client,
        tracking_uri=_effective(uri),
    )


def _effective(uri: str | None) -> str:
    from lrsweep.sweep import _effective_uri

    return _effective_uri(uri)


def _get_run(client: Any, run_id: str, shown: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "not found" in str(exc).lower():
            raise LrsweepError(
                f"no run {run_id} in {shown}",
                "copy a run id from `lrsweep compare` or the MLflow UI, and pass --tracking-uri for another store",
            ) from exc
        raise


def _best_child(client: Any, parent: Any, shown: str) -> Any:
    """The child run of the trial the parent's result rests on (its ``best_trial`` metric)."""
    from lrsweep.tracking import _search_all

    number = parent.data.metrics.get("best_trial")
    if number is None:
        raise LrsweepError(
            f"sweep {parent.info.run_id} has no result (status {parent.info.status}): it stopped before its refit",
            "run its command again to finish it, or reproduce one of its trials by its run id",
        )
    study = parent.data.tags.get(STUDY_TAG, "")
    found = _search_all(
        client,
        parent.info.experiment_id,
        f"tags.`{STUDY_TAG}` = '{study}' and tags.`{TRIAL_TAG}` = '{int(number)}' and tags.`{KIND_TAG}` = 'trial'",
    )
    finished = [r for r in found if r.info.status == "FINISHED"]
    if not finished:
        raise LrsweepError(
            f"the best trial ({int(number)}) of sweep {parent.info.run_id} is not in {shown}",
            "give one of the sweep's trial runs instead",
        )
    return finished[0]


def best_sweep(experiment: str, uri: str | None = None, metric: str | None = None) -> str:
    """The run id of the best finished sweep of ``experiment`` by its best validation ``metric`` (default: the
    objective its sweeps share)."""
    from lrsweep.tracking import _search_all

    client, shown = open_store(uri, hint="lrsweep reproduce")
    try:
        found = client.get_experiment_by_name(experiment)
        runs = _search_all(client, found.experiment_id, f"tags.`{KIND_TAG}` = 'sweep'") if found else []
    except Exception as exc:
        raise store_error(exc, shown) from exc
    if found is None or not runs:
        raise LrsweepError(
            f"no lrsweep sweep in experiment {experiment!r} of {shown}",
            "see the experiments that hold sweeps with `lrsweep compare`",
        )
    objectives = sorted({str(r.data.params.get("objective.metric")) for r in runs})
    if metric is None:
        if len(objectives) > 1:
            raise LrsweepError(
                f"the sweeps of {experiment!r} optimise different metrics ({', '.join(objectives)})",
                "say which one ranks them with --metric NAME",
            )
        metric = objectives[0]
    if metric not in METRIC_DIRECTIONS:
        raise LrsweepError(f"unknown metric {metric!r}", f"use one of: {', '.join(METRIC_DIRECTIONS)}")
    sign = 1.0 if METRIC_DIRECTIONS[metric] == "maximize" else -1.0
    scored = [(sign * r.data.metrics[f"val_{metric}"], r) for r in runs if f"val_{metric}" in r.data.metrics]
    scored = [(s, r) for s, r in scored if not math.isnan(s)]
    if not scored:
        raise LrsweepError(
            f"no sweep of {experiment!r} has a result with val_{metric}", "finish a sweep first (run its command)"
        )
    return max(scored, key=lambda sr: (sr[0], sr[1].info.start_time))[1].info.run_id


# -- pure functions of the record ----------------------------------------------------------------------------
def config_of(recorded: dict[str, Any], overrides: Sequence[str] = ()) -> Any:
    """The typed Config of a recorded ``config.yaml`` with ``overrides`` (``KEY=VALUE``) on top.

    Where and how the sweep logged (tracking, study, budget, plan) is not reproduced: those sections keep their
    defaults. A value redacted before logging (a credential) must come back through ``overrides``; a redacted
    entry of a free-form mapping (``cluster.spark_conf``) is left out, the credential then coming from the
    environment as it should."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from lrsweep.backends import schemas
    from lrsweep.clusters import CLUSTERS
    from lrsweep.config import Config
    from lrsweep.thresholds import STRATEGIES

    given = {o.split("=", 1)[0].lstrip("+") for o in overrides if "=" in o}
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise LrsweepError(f"cannot read the override {bad[0]!r}", "write overrides as KEY=VALUE")
    kept = {k: v for k, v in recorded.items() if k not in _NOT_REPRODUCED}
    kept = _drop_redacted(kept, given)
    try:
        backend = schemas()[kept.get("backend", {}).get("name", "sklearn")]
        cluster = CLUSTERS[kept.get("cluster", {}).get("name", "local")]
        strategy = STRATEGIES[kept.get("threshold", {}).get("strategy", "f1")]
    except KeyError as exc:
        raise LrsweepError(
            f"the recorded config names {exc.args[0]!r}, which this lrsweep does not know",
            "reproduce it with the lrsweep version that ran it (environment.json names it)",
        ) from exc
    schema = OmegaConf.structured(Config(backend=backend(), cluster=cluster(), threshold=strategy()))
    try:
        merged = OmegaConf.merge(schema, OmegaConf.create(kept), OmegaConf.from_dotlist(list(overrides)))
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", "") or "?"
        first = str(exc).strip().splitlines()[0]
        raise LrsweepError(
            f"cannot rebuild the recorded config at {key!r} ({first})",
            "check the overrides (KEY=VALUE of `lrsweep --cfg job`), or use the lrsweep version that ran it",
        ) from exc
    assert isinstance(cfg, Config)
    return cfg


def _drop_redacted(node: Any, given: set[str], prefix: str = "") -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            key = f"{prefix}{k}"
            if key in given:
                continue
            if isinstance(v, str) and REDACTED in v:
                if prefix.endswith("spark_conf.") or prefix.endswith("env."):
                    continue  # a credential in a free-form mapping: the environment provides it
                raise LrsweepError(
                    f"{key} was redacted when the sweep logged it (it holds a credential)",
                    f"give it again: add {key}=VALUE to the command",
                )
            out[k] = _drop_redacted(v, given, f"{key}.")
        return out
    return node


def model_params_of(params: dict[str, str]) -> dict[str, Any]:
    """The configuration a trial tried (the ``ModelParams`` fields) from its logged params (strings; a trial
    without a penalty logs no C, and one of a backend without solvers no solver)."""

    def number(key: str, default: float | None = None) -> float | None:
        return float(params[key]) if key in params else default

    missing = [k for k in ("penalty", "class_weight", "max_iter", "tol", "l1_ratio") if k not in params]
    if missing:
        raise LrsweepError(
            f"the trial's run lacks the param {missing[0]!r}: it was not logged by this lrsweep's sweep",
            "reproduce it with the lrsweep version that ran it (environment.json names it)",
        )
    return {
        "C": number("C", math.inf),
        "l1_ratio": number("l1_ratio"),
        "penalty": params["penalty"],
        "solver": params.get("solver"),
        "class_weight": params["class_weight"],
        "max_iter": int(params["max_iter"]),
        "tol": number("tol"),
        "threshold": number("threshold"),
        "multiclass": params.get("multiclass"),  # a multi-class target's mode (multinomial | ovr)
    }


def data_changes(recorded: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between a recorded data fingerprint and today's, in words; [] when they agree."""
    if recorded.get("sha256") == now.get("sha256") and recorded.get("rows") == now.get("rows"):
        return []
    out: list[str] = []
    if recorded.get("rows") != now.get("rows"):
        out.append(f"rows: {recorded.get('rows')} recorded, {now.get('rows')} now")
    old, new = recorded.get("schema"), now.get("schema")
    if isinstance(old, list) and isinstance(new, list) and old != new:
        names_old = [s.rsplit(":", 1)[0] for s in old]
        names_new = [s.rsplit(":", 1)[0] for s in new]
        gone = [n for n in names_old if n not in names_new]
        added = [n for n in names_new if n not in names_old]
        if gone or added:
            part = []
            if gone:
                part.append(f"{', '.join(map(repr, gone))} recorded, now gone")
            if added:
                part.append(f"{', '.join(map(repr, added))} new")
            out.append("columns: " + "; ".join(part))
        else:
            retyped = [f"{a} -> {b.rsplit(':', 1)[1]}" for a, b in zip(old, new, strict=False) if a != b]
            out.append("column types: " + ", ".join(retyped[:4]))
    elif recorded.get("schema_sha256") != now.get("schema_sha256") or recorded.get("columns") != now.get("columns"):
        out.append(f"columns: {recorded.get('columns')} recorded, {now.get('columns')} now (names or types differ)")
    if not out:
        old_cols, new_cols = recorded.get("column_sha256") or {}, now.get("column_sha256") or {}
        changed = [c for c in old_cols if c in new_cols and old_cols[c] != new_cols[c]]
        if changed:
            out.append(f"values changed in column{'s' * (len(changed) > 1)} {', '.join(map(repr, changed[:5]))}")
        else:
            out.append("values changed (same rows and columns)")
    return out
