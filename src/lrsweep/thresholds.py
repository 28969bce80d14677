"""Decision-threshold strategies: pure functions of a :class:`~lrsweep.metrics.Curve`.

Each strategy reads whole columns of the curve (vectorised, no loop over candidate thresholds, no refit)
and returns the chosen position. Ties go to the higher threshold, except where a secondary criterion is
named below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lrsweep.config import ThresholdConfig
from lrsweep.metrics import Curve

__all__ = ["ThresholdChoice", "choose_threshold"]


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
    """Pick the decision threshold on validation scores with the configured strategy."""
    n = len(curve.thresholds)
    every = np.ones(n, dtype=bool)
    # position 0 predicts nothing positive: a legal choice only where the criterion can prefer it (cost)
    some = every.copy()
    some[0] = n == 1
    strategy = cfg.strategy
    if strategy in ("fixed", "searched"):
        value = cfg.value if strategy == "fixed" else float(searched if searched is not None else cfg.value)
        return ThresholdChoice(value, curve.index_at(value))
    if strategy == "f1":
        i = _best(curve.f1, curve.tpr, some)
    elif strategy == "youden":
        # J = tpr - fpr compared as J * pos * neg = tp * neg - fp * pos: exact on counts, so equal J values tie
        # exactly (1/2 - 2/6 and 2/2 - 5/6 differ in the last bit) and the tie goes to the higher recall
        i = _best(curve.tp * curve.neg - curve.fp * curve.pos, curve.tpr, some)
    elif strategy == "recall_at":
        ok = some & (curve.tpr >= cfg.min_recall - 1e-12)
        if not ok.any():  # only possible with no positives at all
            return ThresholdChoice(curve.value_at(n - 1), n - 1, feasible=False)
        i = _best(curve.precision, curve.tpr, ok)
    elif strategy == "precision_at":
        ok = some & (curve.precision >= cfg.min_precision - 1e-12)
        if not ok.any():
            i = _best(curve.precision, curve.tpr, some)
            return ThresholdChoice(curve.value_at(i), i, feasible=False)
        i = _best(curve.tpr, curve.precision, ok)
    elif strategy == "cost":
        cost = cfg.cost_fp * curve.fp + cfg.cost_fn * (curve.pos - curve.tp)
        i = _best(-cost.astype(float), curve.tpr, every)
    else:  # validated in config.validate
        raise ValueError(f"unknown threshold strategy {strategy!r}")
    return ThresholdChoice(curve.value_at(i), i)
