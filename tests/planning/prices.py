"""The shipped price table, composed as the CLI composes it."""

from __future__ import annotations

from lrsweep.planning.prices import PricesConfig


def shipped_prices() -> PricesConfig:
    from tests.test_config import compose_config

    return compose_config().prices
