"""Where a Spark backend runs: the ``cluster`` config group, one schema per option.

The backend says which library fits; the cluster says where its driver connects (a master URL) and with
which Spark settings. The scikit-learn backend ignores the group. A new kind of cluster is a new schema
here, registered in :data:`CLUSTERS`, plus its YAML option in ``conf/cluster/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lrsweep.errors import LrsweepError

__all__ = ["ClusterConfig", "LocalCluster", "StandaloneCluster", "CLUSTERS"]


@dataclass
class ClusterConfig:
    """The cluster group's base schema: ``name`` is the kind of cluster; each option subclasses it."""

    name: str = "local"
    # local[*] | local[N] | spark://HOST:PORT | yarn
    master: str | None = "local[*]"
    # extra Spark settings, e.g. {spark.executor.memory: 4g}; credential-like values are redacted when logged
    spark_conf: dict[str, str] = field(default_factory=dict)

    def check(self, backend: str) -> None:
        if backend == "spark" and not self.master:
            raise LrsweepError(f"cluster={self.name} needs the master's URL", "add cluster.master=spark://HOST:7077")


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


# option name -> its schema (the cluster group's config options)
CLUSTERS: dict[str, type[ClusterConfig]] = {"local": LocalCluster, "standalone": StandaloneCluster}
