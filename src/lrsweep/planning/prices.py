"""The price table (config group ``prices``): per-instance-hour prices by region, with date and source.

A project overrides or extends it in its own ``conf/prices/NAME.yaml`` (``defaults: [aws_on_demand, _self_]``
then the entries to change) and picks it with ``prices=NAME``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from lrsweep.errors import LrsweepError

__all__ = ["InstancePrice", "PricesConfig", "NodeGroup"]


@dataclass
class InstancePrice:
    ec2: float  # on-demand price per instance-hour
    emr: float  # the EMR surcharge per instance-hour
    vcpus: int
    memory_gib: float


@dataclass
class NodeGroup:
    """Nodes of one instance type in one role (primary, core, task), and what one of them costs per hour."""

    role: str
    instance_type: str
    count: int
    price: InstancePrice

    @property
    def hourly(self) -> float:
        return self.count * (self.price.ec2 + self.price.emr)


@dataclass
class PricesConfig:
    name: str = "aws_on_demand"
    date: str = ""  # when the figures were read
    source: str = ""  # where from
    currency: str = "USD"
    # region -> instance type -> {ec2, emr, vcpus, memory_gib} (InstancePrice's fields)
    regions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def described(self) -> str:
        return f"prices={self.name} ({self.currency}, {self.date}, {self.source})"

    def instance(self, region: str, instance_type: str) -> InstancePrice:
        """The prices of ``instance_type`` in ``region``, or one line naming what the table lacks."""
        if region not in self.regions:
            have = ", ".join(sorted(self.regions)) or "none"
            raise LrsweepError(
                f"the price table prices={self.name} has no prices for region {region!r} (it has: {have})",
                f"pick a priced region, or add regions.{region} in conf/prices/my_prices.yaml and use prices=my_prices",
            )
        table = self.regions[region]
        if instance_type not in table:
            have = ", ".join(sorted(table))
            raise LrsweepError(
                f"unknown instance type {instance_type!r}: prices={self.name} has no price for it in {region}",
                f"use one of: {have}; or add it in conf/prices/my_prices.yaml and use prices=my_prices",
            )
        return _entry(table[instance_type], f"prices.regions.{region}.{instance_type}")

    def check(self) -> None:
        for region, table in self.regions.items():
            for kind, entry in table.items():
                _entry(entry, f"prices.regions.{region}.{kind}")


def _entry(entry: Any, key: str) -> InstancePrice:
    """One table entry as an InstancePrice (the table's YAML is a plain mapping), or one line saying what is wrong."""
    if isinstance(entry, InstancePrice):
        return entry
    names = [f.name for f in fields(InstancePrice)]
    if not isinstance(entry, dict) or set(entry) != set(names):
        raise LrsweepError(f"{key} must give exactly {', '.join(names)}", "fix the price table")
    try:
        price = InstancePrice(float(entry["ec2"]), float(entry["emr"]), int(entry["vcpus"]), float(entry["memory_gib"]))
    except (TypeError, ValueError) as exc:
        raise LrsweepError(f"{key} holds a value that is not a number ({exc})", "fix the price table") from exc
    if not (price.ec2 >= 0 and price.emr >= 0 and price.vcpus >= 1 and price.memory_gib > 0):
        raise LrsweepError(f"{key} has an impossible entry ({entry})", "prices >= 0, vcpus >= 1, memory_gib > 0")
    return price
