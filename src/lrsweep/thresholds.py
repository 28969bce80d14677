"""Decision-threshold strategies: their settings (one schema per strategy) and pure functions of a curve.

Each strategy reads whole columns of a :class:`~lrsweep.metrics.Curve` (vectorised, no loop over candidate
thresholds, no refit) and returns the chosen position. Ties go to the higher threshold, except where a
secondary criterion is named below. Each ``threshold=<strategy>`` config option is one schema class here,
registered in :data:`STRATEGIES`; it carries only its own knobs and checks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lrsweep.errors import LrsweepError
from lrsweep.metrics import Curve

__all__ = [
    "ThresholdConfig",
    "ThresholdChoice",
    "choose_threshold",
    "strategy_config",
    "STRATEGIES",
    "F1Threshold",
    "YoudenThreshold",
    "RecallAtThreshold",
    "PrecisionAtThreshold",
    "CostThreshold",
    "FixedThreshold",
    "SearchedThreshold",
]


def _unit(value: float, key: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise LrsweepError(f"threshold.{key}={value} must lie in [0, 1]", f"set threshold.{key} between 0 and 1")


@dataclass
class ThresholdConfig:
    """The threshold group's base schema: ``strategy`` names the option; each option subclasses it."""

    strategy: str = "f1"
    # a multi-class target: the class the strategy's threshold is for (predicted when its probability reaches the
    # threshold, else the most probable other class); None: the most probable class (argmax), no threshold
    of_class: str | None = None

    def check(self) -> None:
        if STRATEGIES.get(self.strategy) is not type(self):
            raise LrsweepError(
                f"threshold.strategy={self.strategy!r} is not this option's strategy",
                f"choose the strategy with the config group: threshold={' | threshold='.join(STRATEGIES)}",
            )


@dataclass
class F1Threshold(ThresholdConfig):
    """The threshold of the best F1 on validation."""

    strategy: str = "f1"


@dataclass
class YoudenThreshold(ThresholdConfig):
    """The threshold of the largest recall - false positive rate (Youden's J)."""

    strategy: str = "youden"


@dataclass
class RecallAtThreshold(ThresholdConfig):
    """Best precision with recall >= min_recall (screening: miss few positives)."""

    strategy: str = "recall_at"
    min_recall: float = 0.8

    def check(self) -> None:
        super().check()
        _unit(self.min_recall, "min_recall")


@dataclass
class PrecisionAtThreshold(ThresholdConfig):
    """Best recall with precision >= min_precision (a verdict: few false alarms)."""

    strategy: str = "precision_at"
    min_precision: float = 0.8

    def check(self) -> None:
        super().check()
        _unit(self.min_precision, "min_precision")


@dataclass
class CostThreshold(ThresholdConfig):
    """Least cost_fp * FP + cost_fn * FN."""

    strategy: str = "cost"
    cost_fp: float = 1.0
    cost_fn: float = 5.0

    def check(self) -> None:
        super().check()
        if self.cost_fp < 0 or self.cost_fn < 0 or self.cost_fp + self.cost_fn == 0:
            raise LrsweepError("threshold.cost_fp and threshold.cost_fn must be >= 0 and not both 0", "e.g. cost_fn=5")


@dataclass
class FixedThreshold(ThresholdConfig):
    """A threshold given in advance."""

    strategy: str = "fixed"
    value: float = 0.5

    def check(self) -> None:
        super().check()
        _unit(self.value, "value")


@dataclass
class SearchedThreshold(ThresholdConfig):
    """Optuna searches the threshold in [low, high] like any other parameter (kept for comparison)."""

    strategy: str = "searched"
    low: float = 0.05
    high: float = 0.95

    def check(self) -> None:
        super().check()
        _unit(self.low, "low")
        _unit(self.high, "high")
        if self.low >= self.high:
            raise LrsweepError(
                "threshold.low must be below threshold.high", "e.g. threshold.low=0.05 threshold.high=0.95"
            )


# strategy name -> its schema (the threshold group's config options)
STRATEGIES: dict[str, type[ThresholdConfig]] = {
    c.strategy: c  # type: ignore[misc]
    for c in (
        F1Threshold,
        YoudenThreshold,
        RecallAtThreshold,
        PrecisionAtThreshold,
        CostThreshold,
        FixedThreshold,
        SearchedThreshold,
    )
}


def strategy_config(strategy: str, **knobs: Any) -> ThresholdConfig:
    """The settings of ``strategy`` with ``knobs``, e.g. ``strategy_config("recall_at", min_recall=0.9)``."""
    if strategy not in STRATEGIES:
        raise LrsweepError(f"threshold.strategy={strategy!r} is not known", f"use one of: {', '.join(STRATEGIES)}")
    return STRATEGIES[strategy](**knobs)


@dataclass(frozen=True)
class ThresholdChoice:
    value: float
    index: int
    # False when a constraint (recall_at / precision_at) could not be met: the closest point is used
    feasible: bool = True


def _best(primary: np.ndarray, secondary: np.ndarray, mask: np.ndarray) -> int:
    """argmax of primary among mask, ties broken by the larger secondary, then the higher threshold."""
    cand = np.flatnonzero(mask)
    p = primary[cand]
    top = cand[p == p.max()]
    return int(top[np.argmax(secondary[top])])


def choose_threshold(curve: Curve, cfg: ThresholdConfig, searched: float | None = None) -> ThresholdChoice:
    """Pick the decision threshold on validation scores with the configured strategy.

    ``searched``: the trial's own threshold when the strategy is ``searched``.
    """
    n = len(curve.thresholds)
    every = np.ones(n, dtype=bool)
    # position 0 predicts nothing positive: a legal choice only where the criterion can prefer it (cost)
    some = every.copy()
    some[0] = n == 1
    if isinstance(cfg, FixedThreshold):
        return ThresholdChoice(cfg.value, curve.index_at(cfg.value))
    if isinstance(cfg, SearchedThreshold):
        if searched is None:
            raise ValueError("the searched strategy needs the trial's threshold")
        return ThresholdChoice(float(searched), curve.index_at(float(searched)))
    if isinstance(cfg, F1Threshold):
        i = _best(curve.f1, curve.tpr, some)
    elif isinstance(cfg, YoudenThreshold):
        # J = tpr - fpr compared as J * pos * neg = tp * neg - fp * pos: exact on counts, so equal J values tie
        # exactly (1/2 - 2/6 and 2/2 - 5/6 differ in the last bit) and the tie goes to the higher recall
        i = _best(curve.tp * curve.neg - curve.fp * curve.pos, curve.tpr, some)
    elif isinstance(cfg, RecallAtThreshold):
        ok = some & (curve.tpr >= cfg.min_recall - 1e-12)
        if not ok.any():  # only possible with no positives at all
            return ThresholdChoice(curve.value_at(n - 1), n - 1, feasible=False)
        i = _best(curve.precision, curve.tpr, ok)
    elif isinstance(cfg, PrecisionAtThreshold):
        ok = some & (curve.precision >= cfg.min_precision - 1e-12)
        if not ok.any():
            i = _best(curve.precision, curve.tpr, some)
            return ThresholdChoice(curve.value_at(i), i, feasible=False)
        i = _best(curve.tpr, curve.precision, ok)
    elif isinstance(cfg, CostThreshold):
        cost = cfg.cost_fp * curve.fp + cfg.cost_fn * (curve.pos - curve.tp)
        i = _best(-cost.astype(float), curve.tpr, every)
    else:
        raise ValueError(f"unknown threshold strategy {cfg.strategy!r} ({type(cfg).__name__})")
    return ThresholdChoice(curve.value_at(i), i)
