"""What a config must satisfy to be launched, checked before anything is built, uploaded or requested.

The sweep runs elsewhere, from a copy of the config without credentials, so some configs that run here cannot
run there: data on this machine's disk, an MLflow store on the cluster's own disk (a transient cluster takes it
with it when it terminates: the money is spent and the results are gone, hence a refusal, not a warning), and
credentials written into config values other than the two the cluster can supply itself.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from lrsweep.clusters import EmrCluster, StandaloneCluster
from lrsweep.errors import LrsweepError
from lrsweep.redact import redact_mapping

if TYPE_CHECKING:
    from lrsweep.config import Config

__all__ = ["check_launch", "local_store"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+)://")
# masked values the cluster replaces with its own: the MLflow login (MLFLOW_TRACKING_USERNAME / _PASSWORD) and
# Spark settings (the nodes' instance profile and cluster configuration)
_SUPPLIED_BY_CLUSTER = ("tracking.uri", "cluster.spark_conf.")


def check_launch(cfg: Config) -> list[str]:
    """Refuse what cannot be launched (LrsweepError, one line); the warnings worth printing."""
    from lrsweep.config import validate
    from lrsweep.launch.staging import split_s3_uri

    cluster = cfg.cluster
    if not isinstance(cluster, EmrCluster | StandaloneCluster):
        raise LrsweepError(
            f"lrsweep launch cannot run on cluster={cluster.name}",
            "use cluster=emr (AWS), or cluster=standalone cluster.master=spark://HOST:PORT to rehearse; "
            "plain `lrsweep` runs a sweep here",
        )
    validate(cfg)
    cfg.launch.check()
    if not cluster.s3_uri:
        raise LrsweepError(
            f"cluster={cluster.name} needs cluster.s3_uri, where the launch stages the wheel and the config",
            "add cluster.s3_uri=s3://BUCKET/PREFIX",
        )
    split_s3_uri(str(cluster.s3_uri))
    warnings = _credentials(cfg)
    if isinstance(cluster, EmrCluster):
        warnings += _emr(cfg)
    return warnings


def local_store(uri: str | None) -> bool:
    """An MLflow store on the disk of the machine that runs the sweep (None is MLflow's sqlite default)."""
    if not uri:
        return True
    m = _SCHEME.match(uri)
    return m is None or m.group(1).lower() in ("sqlite", "file")


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out |= _flat(v, f"{prefix}{k}.")
    return out


def _credentials(cfg: Config) -> list[str]:
    plain = dataclasses.asdict(cfg)
    shown, given = _flat(redact_mapping(plain)), _flat(plain)
    masked = sorted(k for k in given if shown.get(k) != given[k])
    refused = [k for k in masked if not k.startswith(_SUPPLIED_BY_CLUSTER)]
    if refused:
        raise LrsweepError(
            f"{refused[0]} holds a credential, and lrsweep never stages one",
            f"give the cluster its own (an instance profile, environment variables) and remove it from {refused[0]}",
        )
    notes = []
    for key in masked:
        if key == "tracking.uri":
            notes.append(
                "tracking.uri's password is not staged: the step logs in with MLFLOW_TRACKING_USERNAME / "
                "MLFLOW_TRACKING_PASSWORD from the cluster's environment"
            )
        else:
            notes.append(f"{key} is a credential and is not staged: the cluster's own setting (or role) applies")
    return notes


def _emr(cfg: Config) -> list[str]:
    path = cfg.dataset.path
    if cfg.dataset.kind == "file" and path and (_SCHEME.match(path) is None or path.lower().startswith("file://")):
        raise LrsweepError(
            f"dataset.path={path} is a file on this machine, which the EMR cluster cannot read",
            f"upload it (aws s3 cp {path} s3://BUCKET/KEY) and give dataset.path=s3://BUCKET/KEY",
        )
    if cfg.tracking.enabled and local_store(cfg.tracking.uri):
        where = cfg.tracking.uri or "MLflow's default sqlite:///mlflow.db"
        raise LrsweepError(
            f"tracking.uri ({where}) would keep the results on the cluster's disk, lost when the cluster ends",
            "point tracking.uri at an MLflow server the cluster can reach (https://..., databricks), or tracking=off",
        )
    notes = []
    if not cfg.tracking.enabled:
        notes.append("tracking is off: the step's log under the cluster's LogUri holds the only summary")
    if cfg.backend.name != "spark":
        notes.append(f"backend={cfg.backend.name} runs the whole sweep on the primary node; the other nodes idle")
    if cfg.study.storage is None or "://" not in cfg.study.storage:
        notes.append("the Optuna study lives on the primary node's disk: a later launch starts a fresh study")
    return notes
