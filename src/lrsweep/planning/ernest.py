"""The Ernest runtime model (Venkataraman et al., NSDI 2016): a few small runs predict a large one.

A Spark job's time on ``scale`` units of data (rows) and ``machines`` parallel workers (cores) is modelled as

    t = th0 + th1 * scale / machines + th2 * log(machines) + th3 * machines

(a fixed cost, the parallel work, a tree aggregation's depth, and a per-worker cost), every coefficient
non-negative, fitted with non-negative least squares. The clamp is what makes extrapolation safe: a small run
can make no term negative, so time never falls as the data grows or as workers are added beyond what the
runs showed. Residuals are fitted relative to the measured time (a 0.1 s job and a 10 s job count alike),
which is also the scale the planner reports its error in.

:func:`design` is the small experiment design: which (scale, machines) points to measure for a prediction,
cheapest first, such that the model is identified; :func:`farthest_points` picks configurations that cover a
space, and :func:`spread` places a few values over a range.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

__all__ = [
    "Ernest",
    "Point",
    "features",
    "fit_nnls",
    "fit_select",
    "identify",
    "design",
    "spread",
    "farthest_points",
    "KEEP",
    "TERMS",
]

TERMS = ("fixed", "scale/machines", "log(machines)", "machines")


@dataclass(frozen=True)
class Point:
    """One measurement: ``seconds`` for ``scale`` units of data on ``machines`` workers."""

    scale: float
    machines: float
    seconds: float


def features(scale: float | np.ndarray, machines: float | np.ndarray) -> np.ndarray:
    """Ernest's features [1, scale/machines, log(machines), machines], one row per point."""
    s = np.atleast_1d(np.asarray(scale, dtype=float))
    m = np.atleast_1d(np.asarray(machines, dtype=float))
    if np.any(m < 1) or np.any(s < 0):
        raise ValueError("machines must be >= 1 and scale >= 0")
    s, m = np.broadcast_arrays(s, m)
    return np.column_stack([np.ones_like(s), s / m, np.log(m), m])


def fit_nnls(A: np.ndarray, y: np.ndarray, *, relative: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative least squares of ``A theta ~ y``: (theta >= 0, residuals).

    ``relative``: each row is divided by its ``y`` first, so the fit minimises relative errors and the
    residuals returned are relative ((prediction - y) / y); otherwise absolute.
    """
    A = np.asarray(A, dtype=float)
    y = np.asarray(y, dtype=float)
    if A.ndim != 2 or A.shape[0] != y.shape[0] or A.shape[0] == 0:
        raise ValueError(f"A must be (n, k) with n = len(y) > 0, got {A.shape} and {y.shape}")
    if relative:
        if np.any(y <= 0):
            raise ValueError("relative fits need positive targets")
        w = 1.0 / y
    else:
        w = np.ones_like(y)
    # scale columns to unit norm: nnls converges better when features differ by orders of magnitude
    norms = np.linalg.norm(A * w[:, None], axis=0)
    norms[norms == 0] = 1.0
    theta_scaled, _ = nnls(A * w[:, None] / norms, y * w)
    theta = theta_scaled / norms
    pred = A @ theta
    return theta, ((pred - y) / y) if relative else (pred - y)


@dataclass(frozen=True)
class Ernest:
    """A fitted Ernest model: coefficients (non-negative) and what the fit rests on."""

    theta: tuple[float, float, float, float]
    residuals: tuple[float, ...] = ()  # relative, one per fitted point
    points: tuple[Point, ...] = ()

    @classmethod
    def fit(cls, points: Sequence[Point]) -> Ernest:
        """NNLS on relative errors. A term the points cannot tell from the fixed cost stays at 0: the machine
        terms with one machine count, the scale term with one scale (per machine count), and the scale term
        when it does not clearly beat the fit without it (:func:`fit_select`)."""
        if not points:
            raise ValueError("no points to fit")
        s = np.array([p.scale for p in points], dtype=float)
        m = np.array([p.machines for p in points], dtype=float)
        t = np.array([p.seconds for p in points], dtype=float)
        A = features(s, m)
        identify(A, s, m)
        theta, res = fit_select(A, t, optional=[1])
        return cls(tuple(float(v) for v in theta), tuple(float(r) for r in res), tuple(points))  # type: ignore[arg-type]

    def predict(self, scale: float, machines: float) -> float:
        return float(features(scale, machines)[0] @ np.asarray(self.theta))

    @property
    def rms_residual(self) -> float:
        """Root mean square relative residual of the fit (0 without points)."""
        r = np.asarray(self.residuals, dtype=float)
        return float(np.sqrt(np.mean(r**2))) if r.size else 0.0

    def describe(self) -> str:
        terms = " + ".join(f"{v:.3g}*{name}" for v, name in zip(self.theta, TERMS, strict=True))
        return f"{terms} (rms residual {self.rms_residual:.1%} over {len(self.points)} points)"

    def to_dict(self) -> dict[str, object]:
        return {
            "theta": list(self.theta),
            "residuals": list(self.residuals),
            "points": [[p.scale, p.machines, p.seconds] for p in self.points],
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Ernest:
        theta = tuple(float(v) for v in d["theta"])  # type: ignore[attr-defined]
        residuals = tuple(float(v) for v in d.get("residuals", []))  # type: ignore[attr-defined]
        points = tuple(Point(float(a), float(b), float(c)) for a, b, c in d.get("points", []))  # type: ignore[attr-defined]
        return cls(theta, residuals, points)  # type: ignore[arg-type]


# a term the data may drop is kept only when it lowers the rms relative error by this factor: a size effect
# within run-to-run noise, extrapolated tenfold, would turn noise into a several-fold error
KEEP = 0.7


def fit_select(A: np.ndarray, y: np.ndarray, optional: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fit_nnls` (relative) with and without the ``optional`` columns; the simpler fit unless the full
    one's rms residual is below KEEP times the simpler one's."""
    full = fit_nnls(A, y)
    if not optional:
        return full
    B = np.array(A, dtype=float)
    B[:, list(optional)] = 0.0
    simple = fit_nnls(B, y)

    def rms(r: np.ndarray) -> float:
        return float(np.sqrt(np.mean(r**2)))

    return full if rms(full[1]) < KEEP * rms(simple[1]) else simple


def identify(A: np.ndarray, scale: np.ndarray, machines: np.ndarray) -> np.ndarray:
    """Zero (in place) the columns of Ernest features ``A`` that the points cannot identify: the machine terms
    with fewer than two machine counts, the scale term when no machine count has two scales."""
    if len(set(np.asarray(machines).tolist())) < 2:
        A[:, 2:4] = 0.0
    pairs = set(zip(np.asarray(scale).tolist(), np.asarray(machines).tolist(), strict=True))
    per_machine: dict[float, set[float]] = {}
    for sc, mc in pairs:
        per_machine.setdefault(mc, set()).add(sc)
    if all(len(v) < 2 for v in per_machine.values()):
        A[:, 1] = 0.0
    return A


def spread(low: float, high: float, n: int, *, log: bool) -> list[float]:
    """``n`` values from ``low`` to ``high`` inclusive, evenly (geometrically when ``log``)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    if n == 1 or low == high:
        mid = math.sqrt(low * high) if log else (low + high) / 2
        return [float(mid)] if n == 1 else [float(low)] * n
    vals = np.geomspace(low, high, n) if log else np.linspace(low, high, n)
    return [float(v) for v in vals]


def design(
    fractions: Sequence[float], machines: Sequence[int], *, budget: float | None = None
) -> list[tuple[float, int]]:
    """The (fraction, machines) points to measure, in the order they are worth measuring.

    First the largest fraction on the most machines (the point nearest to the prediction), then every other
    machine count on the smallest fraction (the cheapest run that identifies the machine terms), then the
    rest, the most informative per cost first: a point's cost is taken as ``0.5 + fraction / largest /
    machines`` (a fixed cost per run plus the parallel work: the Ernest shape itself), its value as how much
    it shrinks the variance of a prediction at (1, max(machines)) under the model's features (a c-optimal
    criterion, greedy). ``budget`` (in those cost units) stops adding points of the rest once spent; None
    takes every candidate.
    """
    if not fractions or not machines:
        raise ValueError("need at least one fraction and one machine count")
    fs, ms = sorted({float(f) for f in fractions}), sorted({int(m) for m in machines})
    top, low, most = fs[-1], fs[0], ms[-1]

    def cost(p: tuple[float, int]) -> float:
        return 0.5 + p[0] / top / p[1]

    chosen = [(top, most)] + [(low, m) for m in ms[:-1]]
    rest = [(f, m) for f in fs for m in ms if (f, m) not in chosen]
    target = features(1.0 / top, most)[0]
    spent = sum(cost(p) for p in chosen)
    ridge = 1e-6 * np.eye(4)

    def variance(points: list[tuple[float, int]]) -> float:
        X = features(np.array([f / top for f, _ in points]), np.array([m for _, m in points]))
        return float(target @ np.linalg.solve(X.T @ X + ridge, target))

    while rest:
        now = variance(chosen)
        best = max(rest, key=lambda p: (now - variance([*chosen, p])) / cost(p))
        if budget is not None and spent + cost(best) > budget:
            break
        chosen.append(best)
        spent += cost(best)
        rest.remove(best)
    return chosen


def farthest_points(points: Sequence[Sequence[float]], k: int) -> list[int]:
    """Indices of ``k`` of ``points`` that cover them (greedy farthest-point): the two extremes of the first
    coordinate first, then each time the point farthest from those already chosen."""
    X = np.asarray(points, dtype=float)
    if X.ndim != 2 or len(X) == 0:
        raise ValueError("need a non-empty (n, d) array of points")
    k = min(k, len(X))
    chosen = [int(np.argmin(X[:, 0]))]
    if k > 1:
        chosen.append(int(np.argmax(X[:, 0])))
    dist = np.min(np.linalg.norm(X[:, None, :] - X[None, chosen, :], axis=2), axis=1)
    while len(set(chosen)) < k and dist.max() > 0:
        i = int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(X - X[i], axis=1))
    return list(dict.fromkeys(chosen))[:k]
