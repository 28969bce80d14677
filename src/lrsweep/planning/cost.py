"""What a cluster costs for a given time: pure arithmetic, unit-tested against cases computed by hand.

EMR bills every instance (the primary node included) the EC2 on-demand price plus the EMR surcharge per
instance-hour, per second (whole seconds, rounded up) with a one-minute minimum, from the request to the
termination. A transient cluster's bill therefore includes its start-up (provisioning and bootstrap); a step
added to a running cluster costs only the time it keeps that cluster busy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lrsweep.clusters import ClusterConfig, EmrCluster
from lrsweep.planning.prices import NodeGroup, PricesConfig

__all__ = [
    "MINIMUM_SECONDS",
    "Bill",
    "node_groups",
    "billed_seconds",
    "bill",
    "executor_cores",
    "cluster_type",
    "startup_seconds",
]

MINIMUM_SECONDS = 60


@dataclass
class Bill:
    usd: float
    seconds: float  # billed seconds per instance
    hourly: float  # the whole cluster's price per hour
    groups: list[NodeGroup]


def node_groups(cluster: EmrCluster, prices: PricesConfig) -> list[NodeGroup]:
    """The primary node, the core nodes and (if any) the task nodes, each with its price."""
    region = cluster.region
    core = prices.instance(region, cluster.instance_type)
    primary_type = cluster.primary_instance_type or cluster.instance_type
    groups = [
        NodeGroup("primary", primary_type, 1, prices.instance(region, primary_type)),
        NodeGroup("core", cluster.instance_type, cluster.core_nodes, core),
    ]
    if cluster.task_nodes:
        task_type = cluster.task_instance_type or cluster.instance_type
        groups.append(NodeGroup("task", task_type, cluster.task_nodes, prices.instance(region, task_type)))
    return groups


def executor_cores(cluster: ClusterConfig, prices: PricesConfig | None = None) -> int | None:
    """The cores executors run on: cluster.cores if given, the vCPUs of core and task nodes on EMR, local[N]."""
    from lrsweep.clusters import local_cores

    if cluster.cores is not None:
        return cluster.cores
    if isinstance(cluster, EmrCluster):
        assert prices is not None
        return sum(g.count * g.price.vcpus for g in node_groups(cluster, prices) if g.role != "primary")
    return local_cores(cluster.master)


def cluster_type(cluster: ClusterConfig) -> str:
    """What plans compare history by: "emr m5.xlarge" (any node count), "standalone", "local"."""
    if isinstance(cluster, EmrCluster):
        return f"emr {cluster.instance_type}"
    return cluster.name


def startup_seconds(cluster: ClusterConfig) -> float:
    """The billed start-up before a sweep's first second: a transient EMR cluster's; none elsewhere."""
    if isinstance(cluster, EmrCluster) and cluster.cluster_id is None:
        return cluster.startup_minutes * 60.0
    return 0.0


def billed_seconds(seconds: float, *, minimum: bool = True) -> float:
    """Per-second billing: whole seconds rounded up, at least a minute (``minimum``)."""
    s = math.ceil(max(seconds, 0.0) - 1e-9)
    return float(max(s, MINIMUM_SECONDS) if minimum else s)


def bill(cluster: EmrCluster, prices: PricesConfig, run_seconds: float) -> Bill:
    """The cost of keeping ``cluster`` for ``run_seconds`` of work.

    A transient cluster (no ``cluster_id``) is billed from the request: its start-up minutes are added and
    the one-minute minimum applies. A step on a running cluster is billed for its own seconds only.
    """
    groups = node_groups(cluster, prices)
    hourly = sum(g.hourly for g in groups)
    seconds = run_seconds + startup_seconds(cluster)
    billed = billed_seconds(seconds, minimum=cluster.cluster_id is None)
    return Bill(usd=hourly * billed / 3600.0, seconds=billed, hourly=hourly, groups=groups)
