"""Search space: the search config and one Optuna trial -> the parameters of one fit.

The space is conditional so the sampler never proposes an impossible pair: it first picks the penalty
family, then C (not for "none", which is C=inf), l1_ratio (elastic net only) and a solver among those
able to fit that family. Optuna needs a fixed set of choices per parameter name, so the solver is
suggested under a per-family name (``solver_l1``, ...); the shared name ``solver`` is what gets logged.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lrsweep.config import SearchConfig, ThresholdConfig, compatible_solvers

__all__ = ["ModelParams", "suggest", "grid", "L1_RATIO_OF"]

# l1_ratio implied by each penalty family (elastic net is searched)
L1_RATIO_OF = {"none": 0.0, "l2": 0.0, "l1": 1.0}


@dataclass(frozen=True)
class ModelParams:
    """One configuration in the shared vocabulary of every backend."""

    C: float  # inverse regularisation strength; inf = no penalty
    l1_ratio: float  # 0 = L2, 1 = L1, between = elastic net
    penalty: str  # none | l2 | l1 | elasticnet (derived from C and l1_ratio, kept for reading)
    solver: str | None  # scikit-learn only
    class_weight: str  # none | balanced
    max_iter: int
    tol: float
    threshold: float | None = None  # only when the threshold itself is searched

    def label(self) -> str:
        """A short name a person can read in the MLflow UI."""
        parts = ["C=inf" if math.isinf(self.C) else f"C={self.C:.3g}"]
        if self.penalty == "elasticnet":
            parts.append(f"l1_ratio={self.l1_ratio:.2f}")
        elif self.penalty != "none":
            parts.append(self.penalty)
        if self.solver:
            parts.append(self.solver)
        if self.class_weight != "none":
            parts.append(self.class_weight)
        if self.threshold is not None:
            parts.append(f"t={self.threshold:.2f}")
        return " ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _float(trial: Any, name: str, low: float, high: float, log: bool) -> float:
    if low == high:
        return float(low)
    return float(trial.suggest_float(name, low, high, log=log))


def _categorical(trial: Any, name: str, choices: list[str]) -> str:
    return choices[0] if len(choices) == 1 else str(trial.suggest_categorical(name, choices))


def suggest(trial: Any, search: SearchConfig, threshold: ThresholdConfig, *, has_solvers: bool = True) -> ModelParams:
    """Ask ``trial`` (an optuna Trial or FixedTrial) for one configuration."""
    penalty = _categorical(trial, "penalty", list(search.penalties))
    C = math.inf if penalty == "none" else _float(trial, "C", search.C.low, search.C.high, search.C.log)
    if penalty == "elasticnet":
        r = search.l1_ratio
        l1_ratio = _float(trial, "l1_ratio", r.low, r.high, r.log)
    else:
        l1_ratio = L1_RATIO_OF[penalty]
    solver = None
    if has_solvers:
        solver = _categorical(trial, f"solver_{penalty}", compatible_solvers(penalty, search.solvers))
    class_weight = _categorical(trial, "class_weight", list(search.class_weight))
    thr = None
    if threshold.strategy == "searched":
        thr = float(trial.suggest_float("threshold", threshold.low, threshold.high))
    return ModelParams(C, l1_ratio, penalty, solver, class_weight, search.max_iter, search.tol, thr)


def _points(low: float, high: float, log: bool, n: int) -> list[float]:
    if low == high or n == 1:
        return [float(low)] if low == high else [float(math.sqrt(low * high) if log else (low + high) / 2)]
    vals = np.geomspace(low, high, n) if log else np.linspace(low, high, n)
    return [float(v) for v in vals]


def grid(search: SearchConfig, threshold: ThresholdConfig, *, has_solvers: bool = True) -> list[dict[str, Any]]:
    """Every distinct configuration of the space, as Optuna parameter dicts (for enqueue_trial).

    Enumerating the valid combinations avoids the repeats a plain cartesian GridSampler would make
    over conditional parameters (an l1_ratio grid is meaningless for an L2 penalty).
    """
    out: list[dict[str, Any]] = []
    n = search.grid_points
    cs = _points(search.C.low, search.C.high, search.C.log, n)
    ratios = _points(search.l1_ratio.low, search.l1_ratio.high, search.l1_ratio.log, n)
    thresholds = _points(threshold.low, threshold.high, False, n) if threshold.strategy == "searched" else [None]
    for penalty in search.penalties:
        solvers = compatible_solvers(penalty, search.solvers) if has_solvers else [None]
        for C, ratio, solver, cw, thr in itertools.product(
            [None] if penalty == "none" else cs,
            ratios if penalty == "elasticnet" else [None],
            solvers,
            search.class_weight,
            thresholds,
        ):
            params: dict[str, Any] = {}
            if len(search.penalties) > 1:
                params["penalty"] = penalty
            if C is not None and search.C.low != search.C.high:
                params["C"] = C
            if ratio is not None and search.l1_ratio.low != search.l1_ratio.high:
                params["l1_ratio"] = ratio
            if solver is not None and len(solvers) > 1:
                params[f"solver_{penalty}"] = solver
            if len(search.class_weight) > 1:
                params["class_weight"] = cw
            if thr is not None:
                params["threshold"] = thr
            out.append(params)
    return out
