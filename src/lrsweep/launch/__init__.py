"""Launching a sweep on a cluster: the wheel and config staged on S3, an EMR cluster or step, the rehearsal.

``launch(cfg)`` is what `lrsweep launch` calls once the plan fits the budget:

- ``cluster=emr``: stage the wheel, the config and the bootstrap script under ``cluster.s3_uri``, then create a
  transient EMR cluster that installs the wheel, runs the sweep as its one step and terminates
  (``lrsweep.launch.emr``), or add that step to ``cluster.cluster_id``;
- ``cluster=standalone``: the rehearsal (``lrsweep.launch.rehearse``): the same staged objects and the same step
  command, run against a Spark standalone cluster from a fresh virtual environment that installed the wheel
  from S3 with the same script;
- ``dry_run=True``: print the exact request and the S3 keys, send and upload nothing, build nothing.

This module stays light (``lrsweep.config`` imports ``lrsweep.launch.config``, which runs it): the launch itself
is imported when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lrsweep.config import Config

__all__ = ["Launched", "launch"]


@dataclass
class Launched:
    """What a launch did (or, for a dry run, would do)."""

    request: dict[str, Any]  # the EMR request sent (or that would be sent); {} for a rehearsal
    cluster_id: str | None
    step_id: str | None
    staged: dict[str, str]  # role (wheel, config, bootstrap) -> s3:// URI
    lines: list[str]  # what was printed: ids, the S3 URIs, the MLflow experiment / plan run to watch
    launch_id: str = ""  # the staging folder's name under cluster.s3_uri
    workdir: str | None = None  # the rehearsal's folder: its virtual environment and the install and step logs
    dry_run: bool = False
    # the rehearsal: the commands it ran (or would run), the install then the step
    commands: list[list[str]] = field(default_factory=list)


def launch(cfg: Config, *, dry_run: bool = False, echo: Callable[[str], None] = print) -> Launched:
    """Launch the sweep ``cfg`` describes on ``cfg.cluster`` (EMR, or a standalone Spark cluster to rehearse).

    Raises :class:`~lrsweep.errors.LrsweepError` (one line naming the fix) for a cluster it cannot launch on, a
    config the cluster could not run, or AWS refusing; no credential is in any line it prints or raises.
    """
    from lrsweep.launch.launcher import run

    return run(cfg, dry_run=dry_run, echo=echo)
