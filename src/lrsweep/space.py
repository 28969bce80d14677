"""Search space: the search config and one Optuna trial -> the parameters of one fit.

The space is conditional so the sampler never proposes an impossible pair: it first picks the penalty
family, then C (not for "none", which is C=inf), l1_ratio (elastic net only) and a solver among those
able to fit that family. Optuna needs a fixed set of choices per parameter name, so the solver is
suggested under a per-family name (``solver_l1``, ...); the shared name ``solver`` is what gets logged.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lrsweep.config import SearchConfig
from lrsweep.errors import LrsweepError
from lrsweep.thresholds import SearchedThreshold, ThresholdConfig

if TYPE_CHECKING:
    from lrsweep.backends.base import Capabilities

__all__ = [
    "ModelParams",
    "SolverPool",
    "solver_pool",
    "multiclass_pool",
    "multiclass_modes",
    "suggest",
    "grid",
    "L1_RATIO_OF",
]

# penalty family -> the solvers a trial may draw for it; None for a backend without a solver choice
SolverPool = dict[str, list[str]] | None

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
    multiclass: str | None = None  # a multi-class target: multinomial | ovr; None for a binary one

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
        if self.multiclass is not None:
            parts.append(self.multiclass)
        return " ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# one-hot columns in all above which the scikit-learn backend keeps the features sparse (a dense matrix of 10^5
# levels by 10^5 rows is 75 GiB), and a dense-Hessian solver is left out as on hashed features
WIDE_ONE_HOT = 1000


def solver_pool(search: SearchConfig, caps: Capabilities, *, sparse: bool = False) -> SolverPool:
    """The solvers each searched penalty family may use on this backend and data, or why there are none.

    ``caps.solvers`` maps each solver to the families it can fit; ``search.solvers`` narrows the choice (None:
    all); on sparse features (hashed, or a very wide one-hot) the backend's ``dense_solvers`` (a dense
    n_features^2 Hessian) are left out.
    """
    for penalty in search.penalties:
        if penalty not in caps.penalties:
            raise LrsweepError(
                f"the backend cannot fit the {penalty} penalty (search.penalties)",
                f"search only {', '.join(caps.penalties)}, or choose another backend",
            )
    table: Mapping[str, tuple[str, ...]] | None = caps.solvers
    if table is None:
        return None  # the backend picks its optimiser from the penalty (Spark)
    for name in search.solvers or []:
        if name not in table:
            raise LrsweepError(f"a solver in search.solvers={name!r} is not known", f"use one of: {', '.join(table)}")
    if sparse:
        for name in search.solvers or []:
            if name in caps.dense_solvers:
                raise LrsweepError(
                    f"{name} cannot fit sparse features (hashed, or a one-hot wider than {WIDE_ONE_HOT:,} columns): "
                    "it builds a dense n_features^2 Hessian",
                    f"drop {name} from search.solvers (without search.solvers it is left out by itself)",
                )
    names = list(table) if search.solvers is None else list(search.solvers)
    if sparse:
        names = [n for n in names if n not in caps.dense_solvers]
    pool: dict[str, list[str]] = {}
    for penalty in search.penalties:
        able = [n for n in names if penalty in table[n]]
        if not able:
            fits = [k for k, v in table.items() if penalty in v]
            raise LrsweepError(
                f"no solver in search.solvers={search.solvers} can fit the {penalty} penalty",
                f"add one of {', '.join(fits)} to search.solvers, or drop {penalty} from search.penalties",
            )
        pool[penalty] = able
    return pool


# solvers that fit binary targets only (scikit-learn's liblinear): left out where a multinomial model is fitted
BINARY_ONLY_SOLVERS = ("liblinear",)


def multiclass_pool(search: SearchConfig, pool: SolverPool) -> SolverPool:
    """The solver pool for a multi-class target: liblinear cannot fit a multinomial model, so it is left out unless
    every model is one-vs-rest (search.multiclass=ovr); naming it alone for a multinomial fit is refused."""
    if pool is None or search.multiclass == "ovr":
        return pool
    out = {penalty: [s for s in names if s not in BINARY_ONLY_SOLVERS] for penalty, names in pool.items()}
    for penalty, names in out.items():
        if not names:
            raise LrsweepError(
                f"liblinear cannot fit a multinomial model (search.multiclass={search.multiclass}, {penalty} penalty)",
                "use search.multiclass=ovr (one liblinear model per class), or another solver in search.solvers",
            )
    return out


def _float(trial: Any, name: str, low: float, high: float, log: bool) -> float:
    if low == high:
        return float(low)
    return float(trial.suggest_float(name, low, high, log=log))


def _categorical(trial: Any, name: str, choices: list[str]) -> str:
    return choices[0] if len(choices) == 1 else str(trial.suggest_categorical(name, choices))


def multiclass_modes(search: SearchConfig, multiclass: bool) -> list[str | None]:
    """How a trial may fit a multi-class target (search.multiclass; ``both`` searches the two); [None]: binary."""
    if not multiclass:
        return [None]
    return ["multinomial", "ovr"] if search.multiclass == "both" else [search.multiclass]


def suggest(
    trial: Any, search: SearchConfig, threshold: ThresholdConfig, pool: SolverPool, multiclass: bool = False
) -> ModelParams:
    """Ask ``trial`` (an optuna Trial or FixedTrial) for one configuration; ``pool`` from :func:`solver_pool`;
    ``multiclass``: the target has more than two classes."""
    penalty = _categorical(trial, "penalty", list(search.penalties))
    C = math.inf if penalty == "none" else _float(trial, "C", search.C.low, search.C.high, search.C.log)
    if penalty == "elasticnet":
        r = search.l1_ratio
        l1_ratio = _float(trial, "l1_ratio", r.low, r.high, r.log)
    else:
        l1_ratio = L1_RATIO_OF[penalty]
    solver = None
    if pool is not None:
        solver = _categorical(trial, f"solver_{penalty}", pool[penalty])
    class_weight = _categorical(trial, "class_weight", list(search.class_weight))
    thr = None
    if isinstance(threshold, SearchedThreshold):
        thr = float(trial.suggest_float("threshold", threshold.low, threshold.high))
    modes = multiclass_modes(search, multiclass)
    mode = modes[0] if len(modes) == 1 else _categorical(trial, "multiclass", [str(m) for m in modes])
    return ModelParams(C, l1_ratio, penalty, solver, class_weight, search.max_iter, search.tol, thr, mode)


def _points(low: float, high: float, log: bool, n: int) -> list[float]:
    if low == high or n == 1:
        return [float(low)] if low == high else [float(math.sqrt(low * high) if log else (low + high) / 2)]
    vals = np.geomspace(low, high, n) if log else np.linspace(low, high, n)
    return [float(v) for v in vals]


def grid(
    search: SearchConfig, threshold: ThresholdConfig, pool: SolverPool, multiclass: bool = False
) -> list[dict[str, Any]]:
    """Every distinct configuration of the space, as Optuna parameter dicts (for enqueue_trial).

    Enumerating the valid combinations avoids the repeats a plain cartesian GridSampler would make
    over conditional parameters (an l1_ratio grid is meaningless for an L2 penalty).
    """
    out: list[dict[str, Any]] = []
    n = search.grid_points
    cs = _points(search.C.low, search.C.high, search.C.log, n)
    ratios = _points(search.l1_ratio.low, search.l1_ratio.high, search.l1_ratio.log, n)
    thresholds: list[float | None] = [None]
    if isinstance(threshold, SearchedThreshold):
        thresholds = list(_points(threshold.low, threshold.high, False, n))
    modes = multiclass_modes(search, multiclass)
    for penalty in search.penalties:
        solvers: list[str | None] = list(pool[penalty]) if pool is not None else [None]
        for C, ratio, solver, cw, thr, mode in itertools.product(
            [None] if penalty == "none" else cs,
            ratios if penalty == "elasticnet" else [None],
            solvers,
            search.class_weight,
            thresholds,
            modes,
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
            if len(modes) > 1:
                params["multiclass"] = mode
            out.append(params)
    return out
