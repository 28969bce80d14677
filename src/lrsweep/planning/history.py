"""What finished sweeps teach a plan: their trials' measured times against what the model predicts for them.

The trials of finished Spark sweeps over the same data on the same cluster type (``emr m5.xlarge`` with any
node count, ``standalone``, ``local``) are read from MLflow; each one's measured time over the calibrated
model's prediction for its parameters, rows and cores (at this machine's per-core speed) gives a ratio. Their
median replaces the per-core speed assumption (``cluster.core_speed``) for the trials and the refit, and their
spread widens the range. The same sweeps' setups (session, data, preprocessing, caches: a standalone cluster
starts its executors in JVMs of their own, EMR reads from S3) against the model's cold setup give the setup's
own ratio.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lrsweep.planning.calibrate import Calibration
    from lrsweep.tracking import PastSetup, PastTrial

__all__ = ["History", "learn", "MIN_TRIALS"]

MIN_TRIALS = 3  # fewer measured trials than this: the assumption stands


@dataclass
class History:
    cluster_type: str
    sweeps: int
    trials: int
    ratio: float  # median of measured / predicted
    spread: float  # half the p10-p90 width of the ratios, relative to the median
    used: bool
    runs: list[str] = field(default_factory=list)  # the sweeps' run ids
    note: str = ""  # why there is none (e.g. the store did not answer)
    setups: int = 0  # finished sweeps that recorded their setup
    setup_ratio: float = 1.0  # median of their measured / predicted setup (1.0 without any)

    def line(self) -> str:
        if self.note:
            return f"history: {self.note}"
        if not self.trials:
            return (
                f"history: no finished Spark sweep of this data on {self.cluster_type} in MLflow "
                "(sweeps that ran trials at once do not count)"
            )
        what = f"history: {self.trials} trial(s) of {self.sweeps} finished sweep(s) on {self.cluster_type}"
        if not self.used:
            return f"{what}: fewer than {MIN_TRIALS}, not used"
        setup = f"; setup of {self.setups}: measured / predicted = {self.setup_ratio:.2f}" if self.setups else ""
        return (
            f"{what}: measured / predicted = {self.ratio:.2f} (spread +-{self.spread:.0%}), "
            f"used in place of cluster.core_speed{setup}"
        )

    def as_dict(self) -> dict[str, Any]:
        keys = ("cluster_type", "sweeps", "trials", "ratio", "spread", "used", "runs", "setups", "setup_ratio")
        return {k: getattr(self, k) for k in keys}


def _quantile(xs: list[float], q: float) -> float:
    ys = sorted(xs)
    pos = q * (len(ys) - 1)
    lo, hi = int(pos), min(int(pos) + 1, len(ys) - 1)
    return ys[lo] + (ys[hi] - ys[lo]) * (pos - lo)


def learn(cal: Calibration, past: list[PastTrial], cluster_type: str, setups: Sequence[PastSetup] = ()) -> History:
    """The history correction from ``past`` trials and ``setups`` (see the module docstring)."""
    from lrsweep.space import ModelParams

    ratios = []
    for t in past:
        predicted = cal.trial(ModelParams(**t.params), rows=t.rows, cores=t.cores, speed=1.0).mid
        if predicted > 0 and t.seconds > 0:
            ratios.append(t.seconds / predicted)
    setup_ratios = []
    for s in setups:
        predicted = cal.setup(rows=s.rows, cores=s.cores, speed=1.0).mid
        if predicted > 0 and s.seconds > 0:
            setup_ratios.append(s.seconds / predicted)
    runs = sorted({t.sweep_run_id for t in past})
    median = statistics.median(ratios) if ratios else 1.0
    spread = (_quantile(ratios, 0.9) - _quantile(ratios, 0.1)) / 2 / median if ratios else 0.0
    return History(
        cluster_type, len(runs), len(ratios), median, spread, used=len(ratios) >= MIN_TRIALS, runs=runs,
        setups=len(setup_ratios), setup_ratio=statistics.median(setup_ratios) if setup_ratios else 1.0,
    )  # fmt: skip
