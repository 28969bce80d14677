"""The EMR requests: a transient cluster that runs the sweep's step and terminates, or a step on a running one.

The requests are plain dicts, the keyword arguments of boto3's ``run_job_flow`` / ``add_job_flow_steps``, built by
pure functions from the config and the staging layout, so a dry run prints exactly what a launch sends.

A transient cluster (no ``cluster.cluster_id``): one primary, ``core_nodes`` core and ``task_nodes`` task nodes;
the bootstrap action installs the wheel on every node; one step runs ``python3.11 -m lrsweep.launch.step
s3://.../config.yaml`` on the primary node through ``command-runner.jar`` (the sweep's driver, client mode, with
``cluster.master=yarn``); ``KeepJobFlowAliveWhenNoSteps=False`` ends the cluster after that step, a failing step
terminates it too (``TERMINATE_CLUSTER``), and the auto-termination policy's idle timeout is the safety net.

An existing cluster: one step (``CONTINUE`` on failure: the cluster is not ours to end) that first installs the
wheel on the primary node, since no bootstrap action ran for it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from lrsweep import __version__
from lrsweep.errors import LrsweepError
from lrsweep.launch.aws import aws_error
from lrsweep.launch.staging import Staging, existing_cluster_step_args, install_args, step_args

if TYPE_CHECKING:
    from lrsweep.clusters import EmrCluster
    from lrsweep.config import Config

__all__ = ["cluster_request", "step_request", "describe_groups", "check_running", "submit", "LIVE_STATES"]

COMMAND_RUNNER = "command-runner.jar"
# states of a cluster that still takes steps
LIVE_STATES = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING")


def _log_uri(cluster: EmrCluster) -> str:
    return cluster.log_uri or f"{str(cluster.s3_uri).rstrip('/')}/logs"


def _tag(text: str, limit: int) -> str:
    """A tag key or value EMR accepts: letters, digits, spaces and _ . : / = + - @."""
    return re.sub(r"[^\w .:/=+\-@]", "-", text)[:limit]


def _tags(cfg: Config, staging: Staging, study: str) -> list[dict[str, str]]:
    tags = {"lrsweep:version": __version__, "lrsweep:study": study, "lrsweep:launch": staging.id}
    if cfg.plan.run_id:
        tags["lrsweep:plan-run"] = cfg.plan.run_id
    return [{"Key": _tag(k, 128), "Value": _tag(v, 256)} for k, v in tags.items()]


def _groups(cluster: EmrCluster) -> list[dict[str, Any]]:
    groups = [
        ("primary", "MASTER", cluster.primary_instance_type or cluster.instance_type, 1),
        ("core", "CORE", cluster.instance_type, cluster.core_nodes),
        ("task", "TASK", cluster.task_instance_type or cluster.instance_type, cluster.task_nodes),
    ]
    return [
        {"Name": name, "InstanceRole": role, "Market": "ON_DEMAND", "InstanceType": kind, "InstanceCount": count}
        for name, role, kind, count in groups
        if count > 0
    ]


def describe_groups(cluster: EmrCluster) -> str:
    """``1 x m5.xlarge primary, 2 x m5.xlarge core``."""
    return ", ".join(f"{g['InstanceCount']} x {g['InstanceType']} {g['Name']}" for g in _groups(cluster))


def _step(name: str, args: list[str], on_failure: str) -> dict[str, Any]:
    return {"Name": name, "ActionOnFailure": on_failure, "HadoopJarStep": {"Jar": COMMAND_RUNNER, "Args": args}}


def cluster_request(cfg: Config, staging: Staging, study: str) -> dict[str, Any]:
    """``run_job_flow`` keyword arguments for a transient cluster that runs the sweep and terminates."""
    cluster: EmrCluster = cfg.cluster  # type: ignore[assignment]
    python, extras = cfg.launch.python, cfg.launch.extras
    return {
        "Name": study[:256],
        "ReleaseLabel": cluster.release_label,
        "Applications": [{"Name": "Spark"}],
        "LogUri": _log_uri(cluster),
        "Instances": {
            "InstanceGroups": _groups(cluster),
            "KeepJobFlowAliveWhenNoSteps": False,  # the cluster ends when its step has
            "TerminationProtected": False,
        },
        "BootstrapActions": [
            {
                "Name": "install lrsweep",
                "ScriptBootstrapAction": {
                    "Path": staging.uris["bootstrap"],
                    "Args": install_args(staging, python, extras),
                },
            }
        ],
        "Steps": [_step(f"sweep {study}"[:256], step_args(python, staging.uris["config"]), "TERMINATE_CLUSTER")],
        # the safety net: a cluster left idle (a step that never came, a stuck state) ends itself
        "AutoTerminationPolicy": {"IdleTimeout": max(60, cluster.idle_timeout_minutes * 60)},
        "JobFlowRole": cluster.instance_profile,
        "ServiceRole": cluster.service_role,
        "VisibleToAllUsers": True,
        "Tags": _tags(cfg, staging, study),
    }


def step_request(cfg: Config, staging: Staging, study: str) -> dict[str, Any]:
    """``add_job_flow_steps`` keyword arguments: one step on ``cluster.cluster_id``, installing the wheel first."""
    cluster: EmrCluster = cfg.cluster  # type: ignore[assignment]
    args = existing_cluster_step_args(staging, cfg.launch.python, cfg.launch.extras)
    return {"JobFlowId": cluster.cluster_id, "Steps": [_step(f"sweep {study}"[:256], args, "CONTINUE")]}


def check_running(emr: Any, cluster_id: str, region: str) -> tuple[str, str | None]:
    """The state and LogUri of an existing cluster that can take a step; one line when it does not exist or has
    ended."""
    missing = LrsweepError(
        f"EMR cluster {cluster_id} (cluster.cluster_id) does not exist in {region}",
        "check cluster.cluster_id and cluster.region, or remove cluster.cluster_id to create a transient cluster",
    )
    try:
        described = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    except Exception as exc:
        error = getattr(exc, "response", {}).get("Error", {})
        text = f"{error.get('Code', '')} {error.get('Message', '')}".lower()
        if error and any(w in text for w in ("not valid", "not found", "does not exist", "invalidrequest")):
            raise missing from None
        raise aws_error(exc, f"cannot look up EMR cluster {cluster_id}", not_found=missing) from None
    state = str(described["Status"]["State"])
    if state not in LIVE_STATES:
        raise LrsweepError(
            f"EMR cluster {cluster_id} is {state} and takes no more steps",
            "remove cluster.cluster_id to create a transient cluster, or give a running cluster's id",
        )
    return state, described.get("LogUri")


def submit(emr: Any, request: dict[str, Any], existing: bool) -> tuple[str, str]:
    """Send the request; (cluster id, step id)."""
    if existing:
        try:
            answer = emr.add_job_flow_steps(**request)
        except Exception as exc:
            raise aws_error(exc, f"EMR refused the step for cluster {request['JobFlowId']}") from None
        return str(request["JobFlowId"]), str(answer["StepIds"][0])
    try:
        answer = emr.run_job_flow(**request)
    except Exception as exc:
        raise aws_error(exc, "EMR refused the cluster request") from None
    cluster_id = str(answer["JobFlowId"])
    try:
        steps = emr.list_steps(ClusterId=cluster_id)["Steps"]
    except Exception as exc:
        raise aws_error(exc, f"cluster {cluster_id} was created, but its step cannot be listed") from None
    return cluster_id, str(steps[-1]["Id"]) if steps else ""
