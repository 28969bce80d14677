"""The billing arithmetic against cases worked out by hand (prices from the shipped table, us-east-1:
m5.xlarge 0.192 + 0.048 = 0.24 USD/h, m5.2xlarge 0.384 + 0.096 = 0.48, r5.xlarge 0.252 + 0.063 = 0.315)."""

from __future__ import annotations

import pytest

from lrsweep.clusters import EmrCluster, LocalCluster, StandaloneCluster
from lrsweep.errors import LrsweepError
from lrsweep.planning.cost import bill, billed_seconds, cluster_type, executor_cores, node_groups
from lrsweep.planning.prices import PricesConfig
from tests.planning.prices import shipped_prices


@pytest.fixture(scope="module")
def prices() -> PricesConfig:
    return shipped_prices()


def test_a_transient_cluster_pays_its_start_up_on_every_node(prices):
    # 1 primary + 2 core m5.xlarge = 3 x 0.24 = 0.72 USD/h; 30 min of work + 10 min start-up = 2400 s
    c = EmrCluster(core_nodes=2, startup_minutes=10)
    b = bill(c, prices, 30 * 60)
    assert b.hourly == pytest.approx(0.72)
    assert b.seconds == 2400
    assert b.usd == pytest.approx(0.72 * 2400 / 3600)  # 0.48


def test_the_surcharge_counts_and_the_primary_node_is_billed(prices):
    c = EmrCluster(core_nodes=1, startup_minutes=0)
    # 2 nodes x (0.192 EC2 + 0.048 EMR) for an hour
    assert bill(c, prices, 3600).usd == pytest.approx(2 * 0.240)
    roles = [(g.role, g.count) for g in node_groups(c, prices)]
    assert roles == [("primary", 1), ("core", 1)]


def test_one_minute_minimum_on_a_new_cluster_but_not_for_a_step_on_a_running_one(prices):
    new = EmrCluster(core_nodes=2, startup_minutes=0)
    assert bill(new, prices, 10).seconds == 60
    assert bill(new, prices, 10).usd == pytest.approx(0.72 * 60 / 3600)  # 0.012
    running = EmrCluster(core_nodes=2, startup_minutes=10, cluster_id="j-1")  # no start-up, no minimum
    assert bill(running, prices, 10).seconds == 10
    assert bill(running, prices, 10).usd == pytest.approx(0.72 * 10 / 3600)  # 0.002


def test_per_second_billing_rounds_up_to_whole_seconds():
    assert billed_seconds(90.2, minimum=False) == 91
    assert billed_seconds(90.0, minimum=False) == 90
    assert billed_seconds(59.5) == 60
    assert billed_seconds(61.01) == 62


def test_primary_core_and_task_nodes_of_different_types(prices):
    c = EmrCluster(
        primary_instance_type="m5.2xlarge", instance_type="m5.xlarge", core_nodes=4,
        task_nodes=2, task_instance_type="r5.xlarge", startup_minutes=0,
    )  # fmt: skip
    # 0.48 + 4 x 0.24 + 2 x 0.315 = 2.07 USD/h
    b = bill(c, prices, 3600)
    assert b.hourly == pytest.approx(2.07)
    assert b.usd == pytest.approx(2.07)
    # executors run on core and task nodes only: 4 x 4 + 2 x 4 vCPUs
    assert executor_cores(c, prices) == 24


def test_cores_of_the_other_clusters():
    assert executor_cores(LocalCluster(master="local[2]")) == 2
    assert executor_cores(StandaloneCluster(master="spark://h:7077")) is None  # unknown: the plan asks for it
    assert executor_cores(StandaloneCluster(master="spark://h:7077", cores=6)) == 6
    assert cluster_type(EmrCluster(instance_type="r5.xlarge", core_nodes=9)) == "emr r5.xlarge"
    assert cluster_type(LocalCluster()) == "local"


def test_an_unknown_instance_type_or_region_is_one_line_naming_the_table(prices):
    with pytest.raises(LrsweepError, match=r"unknown instance type 'm9.huge'.*use one of: m5.2xlarge, m5.4xlarge"):
        bill(EmrCluster(instance_type="m9.huge"), prices, 60)
    with pytest.raises(LrsweepError, match=r"no prices for region 'eu-west-3' \(it has: us-east-1\)"):
        bill(EmrCluster(region="eu-west-3"), prices, 60)
