"""The budget guard inside a sweep: no trial starts whose predicted spend would pass ``budget``.

Spend is wall time since the sweep started (plus, on a transient EMR cluster, the billed start-up before it)
at the cluster's price per hour. The next trial is predicted to take as long as the mean of the sweep's last
finished trials (before any: ``budget.trial_seconds``, which ``lrsweep launch`` sets from its plan), and
as much again is kept for the refit and the final logging, so the sweep finishes cleanly inside the budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from lrsweep.clusters import EmrCluster
from lrsweep.config import Config
from lrsweep.planning.cost import bill, startup_seconds

__all__ = ["BudgetGuard", "STOP_TAG", "SPEND_METRIC"]

STOP_TAG = "lrsweep.stop_reason"
SPEND_METRIC = "spend_usd"
_RECENT = 5  # trials the next one's prediction averages


def _now() -> float:
    return time.monotonic()


@dataclass
class BudgetGuard:
    cfg: Config
    started: float = field(default_factory=lambda: _now())  # when the sweep started (monotonic seconds)
    stopped: str | None = None  # why the sweep stopped starting trials
    durations: list[float] = field(default_factory=list)  # this sweep's trials, on the guard's clock

    @property
    def active(self) -> bool:
        b = self.cfg.budget
        return b.max_usd is not None or b.max_minutes is not None

    @property
    def priced(self) -> bool:
        return isinstance(self.cfg.cluster, EmrCluster)

    def elapsed(self, now: float | None = None) -> float:
        return (_now() if now is None else now) - self.started

    def usd(self, seconds: float) -> float | None:
        """What the cluster costs for ``seconds`` of this sweep (start-up added by the billing), or None."""
        if not self.priced:
            return None
        assert isinstance(self.cfg.cluster, EmrCluster)
        return bill(self.cfg.cluster, self.cfg.prices, seconds).usd

    def spend(self, now: float | None = None) -> float | None:
        """USD spent so far (None off EMR)."""
        return self.usd(self.elapsed(now))

    def trial_started(self) -> float:
        return _now()

    def trial_finished(self, t0: float) -> None:
        self.durations.append(_now() - t0)

    def next_trial(self) -> float:
        recent = self.durations[-_RECENT:]
        if recent:
            return sum(recent) / len(recent)
        return self.cfg.budget.trial_seconds or 0.0

    def allows(self, now: float | None = None) -> bool:
        """Whether another trial may start; if not, ``stopped`` says why (and stays set)."""
        if self.stopped is not None:
            return False
        if not self.active:
            return True
        b = self.cfg.budget
        nxt = self.next_trial()
        projected = self.elapsed(now) + 2 * nxt  # the trial, and as much again for the refit and final logging
        if b.max_minutes is not None and (projected + startup_seconds(self.cfg.cluster)) / 60.0 > b.max_minutes:
            self.stopped = (
                f"budget.max_minutes={b.max_minutes:g} reached: {self.elapsed(now) / 60:.1f} min spent, "
                f"the next trial is predicted to take {nxt:.0f} s"
            )
        elif b.max_usd is not None:
            cost = self.usd(projected)
            if cost is not None and cost > b.max_usd:
                spent = self.spend(now) or 0.0
                self.stopped = (
                    f"budget.max_usd={b.max_usd:g} reached: {spent:.2f} USD spent, the next trial and the refit "
                    f"would bring it to {cost:.2f}"
                )
        return self.stopped is None
