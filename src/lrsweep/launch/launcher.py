"""The launch, step by step: check the config, name the package and the staging keys, then EMR or the rehearsal.

Everything that can refuse runs before anything is created: the config checks, then (not in a dry run) the
bucket and the existing cluster are looked up before the wheel is built and the objects are written. Every
line printed goes through :func:`lrsweep.launch.aws.scrub` (URI passwords and AWS credential values masked).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrsweep.launch import Launched
from lrsweep.launch.aws import check_bucket, client, s3_put, scrub
from lrsweep.launch.checks import check_launch
from lrsweep.launch.package import Package, find_package
from lrsweep.launch.staging import Staging, plan_staging, split_s3_uri
from lrsweep.redact import redact_uri

if TYPE_CHECKING:
    from lrsweep.clusters import EmrCluster
    from lrsweep.config import Config

__all__ = ["run", "Printer", "built", "upload", "watch_line", "describe_launch"]


class Printer:
    """``echo`` that masks credentials and keeps every line it printed."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.lines: list[str] = []

    def __call__(self, text: str) -> None:
        text = scrub(text)
        self.lines.append(text)
        self.echo(text)


def run(cfg: Config, *, dry_run: bool, echo: Callable[[str], None]) -> Launched:
    from lrsweep.clusters import EmrCluster
    from lrsweep.config import study_name

    out = Printer(echo)
    for warning in check_launch(cfg):
        out(f"warning: {warning}")
    package = find_package(cfg.launch.wheel)
    staging = plan_staging(cfg, package)
    if isinstance(cfg.cluster, EmrCluster):
        return _emr(cfg, package, staging, study_name(cfg), dry_run, out)
    from lrsweep.launch.rehearse import rehearse

    return rehearse(cfg, package, staging, dry_run=dry_run, out=out)


def built(cfg: Config, package: Package, staging: Staging) -> tuple[Path, Package, Staging]:
    """The wheel file (built now if need be), and the package and staging under the file's own name should a
    build backend name it otherwise than expected (pip reads a wheel's name and version from its file name)."""
    wheel = package.wheel()
    if wheel.name == package.name:
        return wheel, package, staging
    package = dataclasses.replace(package, name=wheel.name)
    return wheel, package, plan_staging(cfg, package)


def upload(s3: Any, staging: Staging, wheel: Path, out: Printer) -> None:
    """Write the wheel, the config and the bootstrap script; one line per object."""
    for uri, body in staging.objects(wheel.read_bytes()):
        s3_put(s3, uri, body)
        out(f"staged {uri}")


def watch_line(cfg: Config, where: str) -> str:
    """Where the results appear: the MLflow experiment, the store (credentials masked), the plan run."""
    if not cfg.tracking.enabled:
        return f"tracking is off: the sweep's summary is in the step's log ({where})"
    store = redact_uri(cfg.tracking.uri) if cfg.tracking.uri else "MLflow's default store (sqlite:///mlflow.db)"
    line = f"watch MLflow experiment {cfg.experiment_name!r} at {store}"
    if cfg.plan.run_id:
        line += f"; the sweep's run follows plan run {cfg.plan.run_id}"
    return line


def describe_launch(package: Package, staging: Staging, out: Printer, dry_run: bool) -> None:
    how = "is" if package.root is None else "would be built" if dry_run else "is built"
    out(f"launch {staging.id}: the wheel {package.name} {how} {package.origin}")
    if dry_run:
        for role in ("wheel", "config", "bootstrap"):
            out(f"would write {staging.uris[role]}")


def _emr(cfg: Config, package: Package, staging: Staging, study: str, dry_run: bool, out: Printer) -> Launched:
    from lrsweep.launch.emr import check_running, cluster_request, describe_groups, step_request, submit

    cluster: EmrCluster = cfg.cluster  # type: ignore[assignment]
    existing = bool(cluster.cluster_id)

    def request_for(staged: Staging) -> dict[str, Any]:
        return step_request(cfg, staged, study) if existing else cluster_request(cfg, staged, study)

    request = request_for(staging)
    call = "add_job_flow_steps" if existing else "run_job_flow"
    describe_launch(package, staging, out, dry_run)
    if dry_run:
        out(f"dry run: EMR {call} request for {cluster.region}, not sent (nothing was uploaded or created):")
        out(json.dumps(request, indent=2))
        return Launched(request, None, None, dict(staging.uris), out.lines, staging.id, dry_run=True)

    s3, emr = client("s3", cluster.region), client("emr", cluster.region)
    check_bucket(s3, split_s3_uri(staging.prefix)[0])
    log_uri: str | None = request.get("LogUri")
    if existing:
        state, log_uri = check_running(emr, str(cluster.cluster_id), cluster.region)
        out(f"EMR cluster {cluster.cluster_id} is {state}")
    wheel, package, staging = built(cfg, package, staging)
    request = request_for(staging)
    upload(s3, staging, wheel, out)
    cluster_id, step_id = submit(emr, request, existing)
    if existing:
        out(f"added step {step_id} to EMR cluster {cluster_id} ({cluster.region}): it installs the wheel, then sweeps")
    else:
        shape = f"{cluster.release_label}, {describe_groups(cluster)}"
        out(
            f"created EMR cluster {cluster_id} in {cluster.region} ({shape}); "
            f"it terminates after its step, or after {cluster.idle_timeout_minutes} idle minutes"
        )
    out(f"step {step_id} runs the sweep: {' '.join(request['Steps'][0]['HadoopJarStep']['Args'])}")
    logs = f"{log_uri.rstrip('/')}/{cluster_id}/steps/{step_id}/" if log_uri else ""
    out(f"step logs (stdout, stderr): {logs}" if logs else f"cluster {cluster_id} keeps no logs in S3 (no LogUri)")
    out(watch_line(cfg, logs or f"step {step_id}'s stdout on the primary node"))
    return Launched(request, cluster_id, step_id, dict(staging.uris), out.lines, staging.id)
