"""Where a Spark backend runs: the ``cluster`` config group, one schema per option.

The backend says which library fits; the cluster says where its driver connects (a master URL) and with
which Spark settings. The scikit-learn backend ignores the group. A new kind of cluster is a new schema
here, registered in :data:`CLUSTERS`, plus its YAML option in ``conf/cluster/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lrsweep.errors import LrsweepError

__all__ = ["ClusterConfig", "LocalCluster", "StandaloneCluster", "EmrCluster", "CLUSTERS", "local_cores"]


@dataclass
class ClusterConfig:
    """The cluster group's base schema: ``name`` is the kind of cluster; each option subclasses it."""

    name: str = "local"
    # local[*] | local[N] | spark://HOST:PORT | yarn
    master: str | None = "local[*]"
    # extra Spark settings, e.g. {spark.executor.memory: 4g}; credential-like values are redacted when logged
    spark_conf: dict[str, str] = field(default_factory=dict)
    # executor cores in all, for `lrsweep plan`; None: from the master URL (local[N]) or the instance types (emr)
    cores: int | None = None
    # where `lrsweep launch` stages the wheel and the composed config: s3://BUCKET/PREFIX
    s3_uri: str | None = None

    def check(self, backend: str) -> None:
        if backend == "spark" and not self.master:
            raise LrsweepError(f"cluster={self.name} needs the master's URL", "add cluster.master=spark://HOST:7077")
        if self.cores is not None and self.cores < 1:
            raise LrsweepError(f"cluster.cores={self.cores} is impossible", "give at least one core, or null")
        if self.s3_uri is not None and not str(self.s3_uri).startswith("s3://"):
            raise LrsweepError(
                f"cluster.s3_uri={self.s3_uri} is not an S3 URI", "use cluster.s3_uri=s3://BUCKET/PREFIX"
            )


@dataclass
class LocalCluster(ClusterConfig):
    """Spark in this process's JVM, on this machine's cores."""

    name: str = "local"
    master: str | None = "local[*]"


@dataclass
class StandaloneCluster(ClusterConfig):
    """An existing Spark standalone cluster (``spark://HOST:PORT``)."""

    name: str = "standalone"
    master: str | None = None

    def check(self, backend: str) -> None:
        super().check(backend)
        if backend == "spark" and not str(self.master).startswith("spark://"):
            raise LrsweepError(
                f"cluster.master={self.master} is not a standalone master's URL", "use cluster.master=spark://HOST:7077"
            )


@dataclass
class EmrCluster(ClusterConfig):
    """AWS EMR: a transient cluster made by `lrsweep launch` (or a running one, ``cluster_id``), priced from the
    ``prices`` table. The sweep's driver runs on the primary node; executors on the core and task nodes."""

    name: str = "emr"
    master: str | None = "yarn"
    region: str = "us-east-1"
    release_label: str = "emr-7.5.0"
    instance_type: str = "m5.xlarge"  # the core nodes'
    core_nodes: int = 2
    primary_instance_type: str | None = None  # None: instance_type
    task_nodes: int = 0
    task_instance_type: str | None = None  # None: instance_type
    # billed minutes from the request to the step's start (provisioning and bootstrap); 0 for cluster_id
    startup_minutes: float = 10.0
    # ASSUMPTION the plan states: one vCPU of instance_type against one core of this machine (1.0: as fast)
    core_speed: float = 1.0
    cluster_id: str | None = None  # j-XXXX: add a step to this running cluster instead of creating one
    idle_timeout_minutes: int = 60  # safety net: a transient cluster left idle this long terminates itself
    log_uri: str | None = None  # None: <s3_uri>/logs
    service_role: str = "EMR_DefaultRole"
    instance_profile: str = "EMR_EC2_DefaultRole"

    def check(self, backend: str) -> None:
        super().check(backend)
        if self.core_nodes < 1:
            raise LrsweepError(
                f"cluster.core_nodes={self.core_nodes} is impossible", "an EMR cluster needs at least one core node"
            )
        if self.task_nodes < 0:
            raise LrsweepError(f"cluster.task_nodes={self.task_nodes} is impossible", "use 0 or more task nodes")
        if self.startup_minutes < 0 or self.idle_timeout_minutes < 1:
            raise LrsweepError("cluster.startup_minutes and cluster.idle_timeout_minutes must be positive", "fix them")
        if not self.core_speed > 0:
            raise LrsweepError(
                f"cluster.core_speed={self.core_speed} is impossible",
                "give a speed > 0 (1.0: as fast as here)",
            )
        if not self.region:
            raise LrsweepError("cluster.region is empty", "name an AWS region, e.g. cluster.region=us-east-1")


def local_cores(master: str | None) -> int | None:
    """The cores a local master uses (local -> 1, local[N] -> N, local[*] -> this machine's), else None."""
    import os
    import re

    if master is None:
        return None
    if master == "local":
        return 1
    m = re.fullmatch(r"local\[(\d+|\*)(?:,\s*\d+)?\]", master)
    if not m:
        return None
    return (os.cpu_count() or 1) if m.group(1) == "*" else int(m.group(1))


# option name -> its schema (the cluster group's config options)
CLUSTERS: dict[str, type[ClusterConfig]] = {"local": LocalCluster, "standalone": StandaloneCluster, "emr": EmrCluster}
