"""Calibration: small, cheap local Spark runs the runtime model is fitted on (cached per data and hardware).

What a Spark trial costs splits into three things that scale differently, so each is measured and modelled on
its own (:class:`Calibration` puts them back together):

- **passes per fit**: Spark's L-BFGS runs about one distributed pass (a Spark job) per iteration, OWL-QN (any
  L1 share) about two; the iteration count depends on the regularisation (C, l1_ratio, class weights), on the
  data, and on the size of the sample. The calibration counts the jobs of every fit it runs and models
  ``jobs = a + b * iterations`` per optimiser, and iterations from the configurations it measured (below);
- **time per pass**: the Ernest model (:mod:`lrsweep.planning.ernest`) of the rows of the part fitted and the
  cores it actually runs on: ``min(cores, partitions)``, the partitions being ``ceil(rows /
  backend.rows_per_partition)`` (at most backend.partitions_per_core per core). Calibration samples keep the full
  table's partition count (rows_per_partition is scaled down with the sample), so a sample runs on as many cores
  as the full table would. The per-row term, small at sample sizes and dominant at full size, comes from probe
  pairs: short fits on the smallest sample and on the largest sample repeated in memory up to the full table's
  rows (``probe_scale``), back to back, so that a change of the machine's load cancels in their difference. The
  repetition reads no more of the table; it gives the per-row cost the lever that samples of at most 10% lack
  (a pass's fixed cost per task hides it there);
- **setup, scoring and refit**: session start, data and preprocessing (once per sweep, predicted cold: every
  child first runs a throwaway sample in its fresh JVM, which also prices the JIT of a sweep's first fits, and
  one more child prepares the largest sample written over and over up to the full table's rows as its very first
  work: a fresh JVM's cost per row at full size, ``setup_scale``), scoring the held-out part (once per fit), and
  the refit on train+validation (once), each from its own measurements.

Iterations: a configuration is measured at the regularisation it will have on the full table: Spark's
``regParam = 1 / (C n_train)``, so a sample of ``n`` rows is fitted with ``C * n_full / n``, which makes the
sample's objective an estimate of the full table's. The largest sample's count is taken as the full table's:
smaller samples of few columns come near separation and their counts move either way at weak regularisation,
so they are not extrapolated. Configurations in between are predicted by a kernel average over the measured
ones, whose leave-one-out error is part of every range the plan gives.

The runs happen in child processes (one per core count and the full-size setup's, ``python -m
lrsweep.planning.calibrate``; the cluster probe, :mod:`lrsweep.planning.probe`, runs one on a cluster), never in
the caller's: a caller may hold a SparkSession, and SparkBackend reuses an active session whatever its cores.
They go through the real :class:`~lrsweep.backends.spark.SparkBackend` (prepare, evaluate, refit), so what is
measured is what a trial does. Results are cached under ``plan.calibration.cache_dir``, one JSON file per data
fingerprint, hardware and measurement knobs; a second plan of the same data reads it and starts no Spark.

This module is imported by ``config.py`` (for :class:`CalibrationConfig`): nothing heavy at import time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrsweep.errors import LrsweepError
from lrsweep.redact import redact_text

if TYPE_CHECKING:
    from lrsweep.config import Config, DatasetConfig
    from lrsweep.space import ModelParams

__all__ = [
    "CalibrationConfig",
    "Calibration",
    "Estimate",
    "FitRun",
    "SetupRun",
    "RefitRun",
    "IterationModel",
    "calibrate",
    "full_rows",
    "fingerprint",
    "hardware",
    "cache_key",
    "calibration_configs",
    "parts_of",
    "Z",
]

log = logging.getLogger("lrsweep")

# The ranges the plan prints are mid * exp(-/+ Z * sd), sd the log-scale spread (about a 95% interval)
Z = 2.0
# Run-to-run noise of one Spark job on a shared machine or a cloud, relative: a floor under every spread
NOISE = 0.10
# Extra relative error per tenfold extrapolation beyond the measured rows or cores
PER_DECADE = 0.10
SCHEMA = 3  # the cache file's layout (2: one-vs-rest fits counted as K binomial fits; 3: each fit's width)
PROBE_ITER = 8  # iterations of a probe fit
MAX_REPEATS = 100  # a repeated probe holds its sample at most this many times over


@dataclass
class CalibrationConfig:
    # the largest fraction of the rows a calibration run reads (the "at most 10%")
    max_fraction: float = 0.1
    # where calibrations are cached, one file per data fingerprint and hardware
    cache_dir: str = ".lrsweep/calibration"
    # sample sizes: max_fraction and, each a factor `step` smaller, fractions - 1 more
    fractions: int = 2
    step: float = 3.0
    # local core counts the runs use (one child process each)
    cores: list[int] = field(default_factory=lambda: [1, 2])
    # which (sample, cores) points are run: the largest sample on every core count, then the most informative
    # per cost (lrsweep.planning.ernest.design) while this budget lasts (a run of the largest sample costs
    # 0.5 + 1/cores; null: every point)
    budget: float | None = 3.2
    # configurations of the search space fitted on the largest sample with the most cores (the iteration model)
    configs: int = 6
    # configurations fitted at every other (sample size, cores) point (time per pass, trend over sizes)
    small_configs: int = 2
    # a sample is never smaller than this many rows (generated tables: the generator's minimum applies too)
    min_rows: int = 200
    # calibration fits stop at min(search.max_iter, max_iter): a small sample at weak L1 regularisation can take
    # hundreds of iterations its full table does not need; a fit stopped here counts as this many
    max_iter: int = 300
    # measure one refit on train+validation (on the largest sample) for the refit estimate
    refit: bool = True
    # rounds of probes: each round, a short fit on every sample of a child in turn (the order alternating), and
    # (first round) every sample prepared once more; 0: none (the size terms then come from the fits alone)
    probes: int = 3
    # the probes also fit each child's largest sample repeated in memory (a union of its own cached rows) up to
    # this share of the full table's rows: a pass's cost per row is small beside its fixed cost (a dense gradient
    # per task on hashed features), too small to see between samples of at most max_fraction of the rows, and
    # extrapolated tenfold it decides the prediction; repeated rows show it at full size without reading more of
    # the table (only what a short fit costs there). 0: no repeated probe
    probe_scale: float = 1.0
    # one more child, on the most cores, prepares the largest sample written k times over as one file, up to this
    # share of the full table's rows (at most setup_max_rows), as the first thing its fresh JVM does: the cold
    # setup a sweep pays, at full size (the samples' setups are mostly fixed cost: on CTR 10^6 they gave 8.6e-6 s
    # a row, the full-size cold setup 1.81e-5), for the price of one setup, without reading more of the table.
    # 0: none
    setup_scale: float = 1.0
    setup_max_rows: int = 5_000_000
    # each probe round also runs two probes of the largest sample at once on the most cores' session: how much of
    # a fit's fixed cost two concurrent trials overlap (search.n_jobs), see Calibration.at_once
    concurrency: bool = True
    # start each child on a throwaway sample of min_rows rows: its fresh JVM compiles Spark's code paths there
    # (measured as the cold start a sweep pays once), so every measured sample runs warm, as a sweep's trials do
    warmup: bool = True
    # read a cached calibration when there is one (false: measure again and overwrite it)
    cache: bool = True
    # a child process taking longer than this is stopped and the calibration fails
    timeout_seconds: float = 3600.0
    # run the core counts' child processes at the same time: faster, but they compete for this machine's cores
    # and so measure it slower than it is (for tests of the machinery, not for plans)
    parallel: bool = False

    def check(self) -> None:
        if not 0.0 < self.max_fraction <= 1.0:
            raise LrsweepError(
                f"plan.calibration.max_fraction={self.max_fraction} must lie in (0, 1]", "use e.g. 0.1 (10% of rows)"
            )
        if self.fractions < 1 or self.step <= 1.0:
            raise LrsweepError("plan.calibration.fractions must be >= 1 and step > 1", "use fractions=2 step=3")
        if not self.cores or any(c < 1 for c in self.cores):
            raise LrsweepError(f"plan.calibration.cores={self.cores} is impossible", "use [1, 2]")
        if self.configs < 1 or self.small_configs < 1:
            raise LrsweepError(
                "plan.calibration.configs and small_configs must be >= 1", "use configs=6 small_configs=2"
            )
        if self.setup_scale < 0 or self.setup_max_rows < 0:
            raise LrsweepError(
                "plan.calibration.setup_scale and setup_max_rows must not be negative", "use 1 and 5000000 (or 0: none)"
            )
        if self.probe_scale < 0:
            raise LrsweepError(f"plan.calibration.probe_scale={self.probe_scale} is negative", "use 1 (or 0: none)")
        if self.min_rows < 100 or self.max_iter < 1:
            raise LrsweepError("plan.calibration.min_rows must be >= 100, max_iter >= 1", "use min_rows=200")

    def knobs(self) -> dict[str, Any]:
        """The settings that change what is measured (the cache key's part; not where or whether it is cached)."""
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if k not in ("cache_dir", "cache", "timeout_seconds")}


@dataclass
class Estimate:
    """A predicted duration in seconds: ``mid`` and a range ``low <= mid <= high``."""

    low: float
    mid: float
    high: float

    @classmethod
    def spread(cls, mid: float, sd: float, z: float = Z) -> Estimate:
        """``mid`` with the log-scale range exp(-/+ z sd)."""
        return cls(mid * math.exp(-z * sd), mid, mid * math.exp(z * sd))

    def scaled(self, k: float) -> Estimate:
        return Estimate(self.low * k, self.mid * k, self.high * k)

    def __add__(self, other: Estimate) -> Estimate:
        return Estimate(self.low + other.low, self.mid + other.mid, self.high + other.high)

    def contains(self, seconds: float) -> bool:
        return self.low <= seconds <= self.high

    def to_dict(self) -> dict[str, float]:
        return {"low": self.low, "mid": self.mid, "high": self.high}


# -- what is measured -----------------------------------------------------------------------------------------
@dataclass
class FitRun:
    """One ``SparkBackend.evaluate``: a fit on a fold's fitting part and the scoring of its held-out part."""

    cores: int
    machines: int  # cores the fit ran on: min(cores, partitions)
    fraction: float
    n_fit: int
    n_held: int
    C: float  # as fitted (scaled to the full table's regParam)
    target_C: float  # the search-space value it stands for on the full table
    l1_ratio: float
    class_weight: str
    max_iter: int
    n_iter: int
    jobs: int  # Spark jobs the evaluate ran (the fit's passes and the scoring)
    fit_seconds: float
    eval_seconds: float
    # on the child's first sample, while its JVM still compiles the code paths (a new sweep pays that too)
    cold: bool = False
    # the child's very first fit (a strong-regularisation fit stopped at 10 iterations): left out of every model
    # but the price of a cold start
    warmup: bool = False
    # the sample's rows held this many times over in memory (a probe of the repeated sample; 1: the sample)
    repeats: int = 1
    # fits running at once in the child's one session (search.n_jobs): >1 only for the concurrency probes
    together: int = 1
    # a short fit (PROBE_ITER iterations) run in turn on every sample of one child: adjacent pairs of them give
    # the cost per row of a pass, free of a drift of the machine's load (which hits both alike)
    probe: bool = False
    # binomial models the evaluate fitted: K for one-vs-rest on a K-class target (n_iter is their largest), else 1
    models: int = 1
    # hashed features fitted on the buckets the rows use (backend.compact_hashed): the fitted vector's width (the
    # unhashed head + the buckets the fitting rows use) and its head; 0: not hashed (the width does not vary)
    width: int = 0
    head: int = 0
    size: int = 0  # the hasher's whole space, head included (the most a width can grow to)


@dataclass
class SetupRun:
    cores: int
    master: str  # the child's Spark master (local[cores])
    fraction: float
    rows: int
    session_seconds: float  # 0 when the session was already up (later samples of one child)
    data_seconds: float  # data read + preprocessing fitted + frames cached
    cold: bool = False  # the child's first sample: a fresh JVM, as a sweep's setup always is
    classes: int = 0  # the target's classes when more than two (0: binary)


@dataclass
class RefitRun:
    cores: int
    machines: int
    fraction: float
    n_fit: int
    n_test: int
    C: float
    l1_ratio: float
    class_weight: str
    n_iter: int
    jobs: int
    seconds: float
    models: int = 1  # as FitRun.models


def binomial_models(classes: int, multiclass: str | None) -> int:
    """Binomial models one fit makes on a target of ``classes`` classes: K under one-vs-rest (one per class, as
    the Spark backend fits them), 1 for a multinomial or binary fit."""
    return classes if (classes > 2 and multiclass == "ovr") else 1


def _family(l1_ratio: float, C: float) -> str:
    """Spark's optimiser: OWL-QN when an L1 share is penalised, else L-BFGS."""
    return "owlqn" if l1_ratio > 0 and not math.isinf(C) else "lbfgs"


# -- pieces of the model --------------------------------------------------------------------------------------
def _coords(C: float, n_fit: float, l1_ratio: float, class_weight: str) -> tuple[float, float, float, float]:
    """A configuration's place for the iteration model: log(C n) (regParam's inverse), L1 share, weights, none."""
    none = math.isinf(C)
    x = 30.0 if none else math.log(max(C * n_fit, 1e-12))
    return x, float(l1_ratio), 1.0 if class_weight == "balanced" else 0.0, 1.0 if none else 0.0


@dataclass
class IterationModel:
    """log(1 + iterations) of a configuration: a kernel average over the configurations measured on the largest
    sample (the nearest to the full table, fitted at its regParam), with a bandwidth chosen by leave-one-out."""

    anchors: list[list[float]]  # per measured configuration: x, l1_ratio, balanced, none, log(1 + iterations)
    x_scale: float  # bandwidth of log(C n)
    loo_sd: float  # leave-one-out error of the kernel average, log scale
    cap: int  # the calibration's own iteration cap

    def _kernel(self, q: tuple[float, float, float, float], skip: int | None = None, x_scale: float = 0.0) -> float:
        h = x_scale or self.x_scale
        num = den = 0.0
        for i, (x, r, b, nn, v) in enumerate(self.anchors):
            if i == skip:
                continue
            d2 = ((q[0] - x) / h) ** 2 + ((q[1] - r) / 0.35) ** 2 + (q[2] - b) ** 2 + 9 * (q[3] - nn) ** 2
            d2 += 4.0 * float((q[1] > 0) != (r > 0))  # L-BFGS and OWL-QN behave differently
            w = math.exp(-0.5 * d2)
            num += w * v
            den += w
        if den < 1e-300:
            kept = [a[4] for i, a in enumerate(self.anchors) if i != skip]
            return float(sum(kept) / max(len(kept), 1))
        return num / den

    def log_iterations(self, C: float, l1_ratio: float, class_weight: str, n_fit: float) -> float:
        return self._kernel(_coords(C, n_fit, l1_ratio, class_weight))

    def iterations(self, params: ModelParams, n_fit: float) -> float:
        y = self.log_iterations(params.C, params.l1_ratio, params.class_weight, n_fit)
        return float(min(max(math.expm1(y), 0.0), params.max_iter))

    def _loo(self, h: float) -> float:
        """Leave-one-out error, robust (1.4826 x the median absolute error: the sd of a normal error): with few
        anchors, leaving out the only one of its region (e.g. the all-zero L1 fits) is an outlier."""
        import numpy as np

        errs = [self._kernel(tuple(a[:4]), skip=i, x_scale=h) - a[4] for i, a in enumerate(self.anchors)]  # type: ignore[arg-type]
        return float(1.4826 * np.median(np.abs(errs))) if errs else 0.0

    @classmethod
    def fit(cls, runs: list[FitRun], n_full_fit: float) -> IterationModel:
        """One anchor per configuration, from its run on the largest sample (the size trend of small samples is
        not extrapolated: near separation, a small sample's count can move either way, see the module doc)."""
        best: dict[tuple[float, float, str], FitRun] = {}
        for r in runs:
            key = (r.target_C, r.l1_ratio, r.class_weight)
            if key not in best or r.n_fit > best[key].n_fit:
                best[key] = r
        anchors = [[*_coords(tC, n_full_fit, ratio, cw), math.log1p(r.n_iter)] for (tC, ratio, cw), r in best.items()]
        xs = [a[0] for a in anchors if a[3] == 0]
        span = max(max(xs) - min(xs), 1.0) if xs else 1.0
        model = cls(anchors, span / 3.0, 0.0, max((r.max_iter for r in runs), default=1))
        if len(anchors) > 2:
            model.x_scale = min((span * k for k in (0.1, 0.2, 0.35, 0.5, 1.0)), key=model._loo)
            model.loo_sd = model._loo(model.x_scale)
        else:
            model.loo_sd = 0.5  # too few configurations to tell: a wide, stated guess
        return model

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IterationModel:
        return cls([list(a) for a in d["anchors"]], d["x_scale"], d["loo_sd"], d["cap"])


def _passes_fit(runs: list[FitRun]) -> dict[str, tuple[float, float]]:
    """jobs = models x (a + b_optimiser * iterations): one intercept (the jobs around the passes), a slope per
    optimiser (NNLS); ``models`` binomial fits of one-vs-rest each pay both (their iterations taken as the
    largest's, which is what a run records). An optimiser never measured gets the other's slope, doubled or halved
    (OWL-QN runs about two passes per iteration, L-BFGS about one)."""
    import numpy as np
    from scipy.optimize import nnls

    fams = [_family(r.l1_ratio, r.C) for r in runs]
    A = np.array(
        [[1.0, r.n_iter * (f == "lbfgs"), r.n_iter * (f == "owlqn")] for r, f in zip(runs, fams, strict=True)]
    ) * np.array([[float(r.models)] for r in runs])
    y = np.array([float(r.jobs) for r in runs])
    coef, _ = nnls(A, y)
    a, b_l, b_o = (float(v) for v in coef)
    if "lbfgs" not in fams or not any(r.n_iter for r, f in zip(runs, fams, strict=True) if f == "lbfgs"):
        b_l = b_o / 2.0 if b_o else 1.0
    if "owlqn" not in fams or not any(r.n_iter for r, f in zip(runs, fams, strict=True) if f == "owlqn"):
        b_o = 2.0 * b_l
    return {"lbfgs": (a, b_l), "owlqn": (a, b_o)}


def _per_job_apart(a: FitRun, b: FitRun) -> float:
    """How much longer a Spark job of ``b`` took than one of ``a``."""
    return b.fit_seconds / max(b.jobs, 1) - a.fit_seconds / max(a.jobs, 1)


def _rows_apart(a: FitRun, b: FitRun) -> float:
    """How many more rows per core ``b`` fitted than ``a``."""
    return b.n_fit / b.machines - a.n_fit / a.machines


def _probe_slope(runs: list[FitRun]) -> tuple[float, float] | None:
    """(seconds per row per core, seconds per unit of width) of one pass, from the probes; None without probes on
    two sizes.

    Per child and round, the per-job time of the largest probe minus the smallest's, over their difference in rows
    per core; the median over rounds and children. Hashed features fitted on the buckets the rows use: a pass
    also pays for the width of the fitted vector (each task's dense gradient, their sum, the optimiser's step),
    and a sample's rows use fewer buckets than the whole table's. The repeated probe has the largest sample's
    width on more rows: that pair gives the per-row term alone, and the smallest and largest samples' pair then
    the per-width term (0 when the widths do not vary)."""
    rows_slopes: list[float] = []
    width_slopes: list[float] = []
    by_child: dict[int, dict[int, list[FitRun]]] = {}
    for r in runs:
        if r.probe:
            by_child.setdefault(r.cores, {}).setdefault(r.n_fit, []).append(r)
    for sizes in by_child.values():
        if len(sizes) < 2:
            continue
        lo, hi = sizes[min(sizes)], sizes[max(sizes)]
        samples = [n for n in sizes if all(r.repeats == 1 for r in sizes[n])]
        big = sizes[max(samples)] if samples else hi
        if big is hi or not all(r.width > 0 for r in lo + hi):  # no repeated probe, or not hashed: rows alone
            pairs = zip(lo, hi, strict=False)
            rows_slopes += [_per_job_apart(a, b) / _rows_apart(a, b) for a, b in pairs if _rows_apart(a, b) > 0]
            continue
        for a, s, b in zip(lo, big, hi, strict=False):  # one round: the smallest sample, the largest, its repeat
            if b.width != s.width or _rows_apart(s, b) <= 0:
                continue
            per_row = _per_job_apart(s, b) / _rows_apart(s, b)
            rows_slopes.append(per_row)
            if s is not a and s.width > a.width:
                width_slopes.append((_per_job_apart(a, s) - per_row * _rows_apart(a, s)) / (s.width - a.width))
    if not rows_slopes:
        return None
    per_width = max(float(statistics.median(width_slopes)), 0.0) if width_slopes else 0.0
    return max(float(statistics.median(rows_slopes)), 0.0), per_width


def _fit_time_model(runs: list[FitRun]) -> tuple[list[float], list[float]]:
    """fit seconds = models * [1, n/m] . fixed + jobs * [1, n/m, log m, m] . per_pass + cold * [1, jobs] . jit
    + jobs * width * per_width (NNLS on relative errors; the warm-up fits left out; ``models``: one-vs-rest's K
    binomial fits each pay the fixed part) -> theta (9 values: the cold JVM's two, then the per-width one),
    residuals.

    The per-row and per-width terms of a pass come from the probes when there are any (:func:`_probe_slope`);
    else the per-row one from all fits, kept only when they clearly show it
    (:func:`lrsweep.planning.ernest.fit_select`), and no per-width one."""
    import numpy as np
    from scipy.optimize import nnls

    from lrsweep.planning.ernest import features, fit_select, identify

    runs = [r for r in runs if not r.warmup]
    n = np.array([r.n_fit for r in runs], dtype=float)
    m = np.array([r.machines for r in runs], dtype=float)
    jobs = np.array([max(r.jobs, 1) for r in runs], dtype=float)
    cold = np.array([float(r.cold) for r in runs])
    models = np.array([float(r.models) for r in runs])
    t = np.array([max(r.fit_seconds, 1e-3) for r in runs])
    F = identify(features(n, m), n, m)
    A = np.hstack([F[:, :2] * models[:, None], F * jobs[:, None], cold[:, None], (cold * jobs)[:, None]])
    if cold.all() or not cold.any():
        A[:, 6:] = 0.0  # a cold JVM cannot be told apart without warm runs (and needs no term without cold ones)
    selected, free_res = fit_select(A, t, optional=[1, 3])  # the size terms, kept when the runs clearly show them
    free = [*(float(v) for v in selected), 0.0]
    slopes = _probe_slope(runs)
    if slopes is None:
        return free, [float(v) for v in free_res]
    slope, per_width = slopes
    width = np.array([float(r.width) for r in runs])
    known = slope * jobs * n / m + per_width * jobs * width
    B = A.copy()
    B[:, [1, 3]] = 0.0
    w = 1.0 / t
    norms = np.linalg.norm(B * w[:, None], axis=0)
    norms[norms == 0] = 1.0
    coef, _ = nnls(B * w[:, None] / norms, (t - known) * w)
    theta = coef / norms
    theta[3] = slope
    res = (A @ theta + per_width * jobs * width - t) / t
    # probes disturbed by load can contradict every other fit (beyond the noise floor): then the fits' own
    # estimate is kept
    rms, rms_free = float(np.sqrt(np.mean(res**2))), float(np.sqrt(np.mean(free_res**2)))
    if rms > max(1.5 * rms_free, NOISE):
        return free, [float(v) for v in free_res]
    return [*(float(v) for v in theta), per_width], [float(v) for v in res]


def _fit_time(
    theta: list[float], n: float, m: float, jobs: float, *, cold: bool = False, models: int = 1, width: float = 0.0
) -> float:
    """Seconds of one fit of ``jobs`` Spark jobs on ``n`` rows and ``m`` cores (warm JVM unless ``cold``), made of
    ``models`` binomial fits (one-vs-rest's K), of a vector ``width`` wide (hashed features fitted on the buckets
    the rows use; 0: not hashed)."""
    from lrsweep.planning.ernest import features

    F = features(n, m)[0]
    t = models * (theta[0] + theta[1] * F[1]) + jobs * sum(th * f for th, f in zip(theta[2:6], F, strict=True))
    if cold and len(theta) >= 8:
        t += theta[6] + theta[7] * jobs
    if len(theta) >= 9:
        t += jobs * theta[8] * width
    return float(t)


def _setup_model(runs: list[SetupRun]) -> dict[str, Any]:
    """Data + preprocessing seconds = cold + a + b * rows / cores + c * rows + d * rows * cold (NNLS on relative
    errors; the fastest of repeated runs of one sample, as load only ever adds time). ``c``: the driver's serial
    part (the table read and converted by pandas), ``b``: Spark's jobs. A sweep's setup is the first thing its
    fresh JVM does, so it is predicted cold: the cold term is what the child's first (throwaway) sample cost
    beyond the warm ones, and ``d`` what a fresh JVM pays per row beyond a warm one (its heap grows and its code
    compiles while it converts and caches a large table: measured on CTR 10^6, 22 s cold against 13 s warm), from
    the full-size setup made in a child of its own."""
    import numpy as np

    from lrsweep.planning.ernest import fit_nnls

    if not runs:
        return {}
    best: dict[tuple[int, int, bool], SetupRun] = {}
    for r in runs:
        key = (r.rows, r.cores, r.cold)
        if key not in best or r.data_seconds < best[key].data_seconds:
            best[key] = r
    kept = list(best.values())
    A = np.array([[float(r.cold), 1.0, r.rows / r.cores, float(r.rows), float(r.cold) * r.rows] for r in kept])
    if all(r.cold for r in kept) or not any(r.cold for r in kept):
        A[:, [0, 4]] = 0.0
    cold_sizes = sorted({r.rows for r in kept if r.cold})
    if len(cold_sizes) < 2 or cold_sizes[-1] < 10 * cold_sizes[0]:
        A[:, 4] = 0.0  # a cold JVM's cost per row needs a cold setup of a large table (the full-size setup child)
    if len({r.cores for r in kept if not r.cold}) < 2:
        A[:, 3] = 0.0  # serial and parallel parts look alike on one core count
    y = np.array([max(r.data_seconds, 1e-3) for r in kept])
    theta, res = fit_nnls(A, y)
    return {"theta": [float(v) for v in theta], "residuals": [float(v) for v in res]}


def _setup_seconds(model: dict[str, Any], rows: float, cores: int, *, cold: bool = True) -> float:
    """Data + preprocessing seconds of a setup (a sweep's is cold)."""
    if not model:
        return 0.0
    th = list(model["theta"]) + [0.0] * (5 - len(model["theta"]))
    return float(th[0] * cold + th[1] + th[2] * rows / cores + th[3] * rows + th[4] * rows * cold)


def _width_model(runs: list[FitRun]) -> dict[str, float]:
    """Buckets used (width - head) against fitting rows, over the samples (not the repeated probes, whose rows
    repeat the largest sample's): log buckets = log k + beta log n by least squares, beta within [0, 1]; with one
    size, beta = 1 (as many new buckets per row as there: the cautious side). {} without hashed fits."""
    import numpy as np

    seen = {(r.n_fit, r.width - r.head) for r in runs if r.width > 0 and r.repeats == 1}
    if not seen:
        return {}
    one = next(r for r in runs if r.width > 0)
    n = np.log(np.array([float(p[0]) for p in seen]))
    b = np.log(np.array([max(float(p[1]), 1.0) for p in seen]))
    if len(set(n)) >= 2:
        beta, log_k = (float(v) for v in np.polyfit(n, b, 1))
        beta = min(max(beta, 0.0), 1.0)
        log_k = float(np.mean(b - beta * n))
    else:
        beta, log_k = 1.0, float(np.mean(b - n))
    return {"log_k": log_k, "beta": beta, "head": float(one.head), "size": float(one.size)}


def _cold_start(runs: list[FitRun], theta: list[float]) -> float:
    """What a fresh JVM's first fits cost beyond warm ones: per child, its warm-up fit and the fits of its first
    sample against the warm model; the median over the children (a sweep starts one fresh JVM)."""
    per_child: dict[int, float] = {}
    for r in runs:
        if r.warmup or r.cold:
            warm = _fit_time(theta, r.n_fit, r.machines, max(r.jobs, 1), models=r.models, width=r.width)
            per_child[r.cores] = per_child.get(r.cores, 0.0) + max(r.fit_seconds - warm, 0.0)
    return float(statistics.median(per_child.values())) if per_child else 0.0


def _overlap(runs: list[FitRun]) -> float | None:
    """The share ``o`` of a fit's fixed cost that two concurrent fits on one session overlap, from the concurrency
    probes: per round, the two fits run at once took e = (their mean wall) / (2 x the same sample's probe alone
    in that round) of running one after the other (1: no gain, 1/2: each as fast as alone), and o = 2 (1 - e),
    within [0, 1]; the median over rounds (None without such probes). The probes run on a sample, where a pass
    is nearly all fixed cost: what K trials at once make of it is :meth:`Calibration.at_once`."""
    pairs = [r for r in runs if r.together == 2]
    alone = [r for r in runs if r.probe and r.together == 1 and r.repeats == 1]
    if not pairs or not alone:
        return None
    es: list[float] = []
    for i in range(0, len(pairs) - 1, 2):  # the two fits of one round, in the order they ended
        a, b = pairs[i], pairs[i + 1]
        same = [r for r in alone if r.cores == a.cores and r.n_fit == a.n_fit]
        if not same:
            continue
        # the probe alone of the same round: probes and pairs alternate round by round in the same order
        k = min(i // 2, len(same) - 1)
        solo = same[k].fit_seconds + same[k].eval_seconds
        both = (a.fit_seconds + a.eval_seconds + b.fit_seconds + b.eval_seconds) / 2
        if solo > 0:
            es.append(both / (2 * solo))
    if not es:
        return None
    return float(min(max(2 * (1 - statistics.median(es)), 0.0), 1.0))


# -- the calibration ------------------------------------------------------------------------------------------
@dataclass
class Parts:
    """Rows of one fold's fitting and held-out parts, and of the refit's train+validation and test parts."""

    folds: int  # fits per trial (1: the validation split)
    n_fit: float
    n_held: float
    n_trval: float
    n_test: float


def parts_of(rows: float, val_size: float, test_size: float, folds: int) -> Parts:
    """The part sizes a table of ``rows`` rows gets (``split`` and ``cv.folds`` as the sweep uses them)."""
    n_test = rows * test_size
    n_trval = rows - n_test
    if folds > 1:
        return Parts(folds, n_trval * (folds - 1) / folds, n_trval / folds, n_trval, n_test)
    return Parts(1, rows - n_test - rows * val_size, rows * val_size, n_trval, n_test)


@dataclass
class Calibration:
    """What the runs measured and the models fitted on them; predicts one trial, the setup and the refit."""

    fingerprint: str
    hardware: dict[str, Any]
    rows: int  # rows of the full table
    key: str = ""
    knobs: dict[str, Any] = field(default_factory=dict)
    split: tuple[float, float] = (0.2, 0.2)  # val_size, test_size
    folds: int = 1
    rows_per_partition: int = 100_000
    fit_runs: list[FitRun] = field(default_factory=list)
    setup_runs: list[SetupRun] = field(default_factory=list)
    refit_runs: list[RefitRun] = field(default_factory=list)
    iterations: IterationModel | None = None
    passes: dict[str, tuple[float, float]] = field(default_factory=dict)
    fit_theta: list[float] = field(default_factory=list)
    fit_residuals: list[float] = field(default_factory=list)
    eval_model: dict[str, Any] = field(default_factory=dict)  # Ernest of (held rows, machines)
    data_model: dict[str, Any] = field(default_factory=dict)  # setup: cold + a + b * rows / cores
    session_seconds: float = 0.0
    refit_extra: dict[str, Any] = field(default_factory=dict)  # Ernest of the refit beyond its fit and test scoring
    cold_start_seconds: float = 0.0  # a fresh JVM's first fits beyond warm ones (once per sweep)
    # the share of a fit's fixed cost that concurrent trials on one session overlap (None: not measured)
    overlap: float | None = None
    # hashed features fitted on the buckets the rows use: how the buckets grow with the fitting rows (see width_at)
    width_model: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the calibration itself
    created: str = ""
    cache_hit: bool = False
    cache_file: str = ""

    # -- fitting ---------------------------------------------------------------------------------------------
    def fit_models(self) -> None:
        """(Re)fit every model from the runs."""
        from lrsweep.planning.ernest import Ernest, Point

        if not self.fit_runs:
            raise LrsweepError("the calibration measured no fits", "check the calibration knobs (plan.calibration)")
        full = self._parts(self.rows)
        runs = [r for r in self.fit_runs if not r.warmup and r.together == 1]
        self.iterations = IterationModel.fit([r for r in runs if not r.probe], full.n_fit)
        self.width_model = _width_model(runs)
        self.passes = _passes_fit(runs)
        self.fit_theta, self.fit_residuals = _fit_time_model(runs)
        self.cold_start_seconds = _cold_start(self.fit_runs, self.fit_theta)
        self.overlap = _overlap(self.fit_runs)
        evals = [Point(r.n_held, r.machines, max(r.eval_seconds, 1e-3)) for r in runs if not r.cold]
        evals = evals or [Point(r.n_held, r.machines, max(r.eval_seconds, 1e-3)) for r in runs]
        self.eval_model = Ernest.fit(evals).to_dict()
        self.data_model = _setup_model(self.setup_runs)
        sessions = [s.session_seconds for s in self.setup_runs if s.session_seconds > 0]
        self.session_seconds = float(statistics.median(sessions)) if sessions else 0.0
        extra = []
        for r in self.refit_runs:
            jobs = self._jobs(r.l1_ratio, r.C, r.models, r.n_iter)  # (its jobs include preprocessing)
            fit = _fit_time(self.fit_theta, r.n_fit, r.machines, jobs, models=r.models, width=self.width_at(r.n_fit))
            scoring = Ernest.from_dict(self.eval_model).predict(r.n_test, r.machines)
            extra.append(Point(r.n_fit, r.machines, max(r.seconds - fit - scoring, 0.05)))
        self.refit_extra = Ernest.fit(extra).to_dict() if extra else {}

    # -- predicting ------------------------------------------------------------------------------------------
    def _parts(self, rows: float) -> Parts:
        return parts_of(rows, self.split[0], self.split[1], self.folds)

    def width_at(self, n_fit: float) -> float:
        """The width of a hashed fit on ``n_fit`` rows: the head plus the buckets those rows use, k n^b (Heaps' law,
        fitted on the samples), at most the hasher's whole space; 0 when the fits are not hashed."""
        w = self.width_model
        if not w:
            return 0.0
        buckets = math.exp(w["log_k"]) * max(n_fit, 1.0) ** w["beta"]
        return w["head"] + min(buckets, w["size"] - w["head"])

    def machines(self, n_fit: float, cores: int) -> int:
        """Cores a fit on ``n_fit`` rows runs on: the cached frames get ceil(n_fit / rows_per_partition) partitions."""
        return max(1, min(int(cores), math.ceil(n_fit / self.rows_per_partition)))

    def _extrapolation_sd(self, n: float, m: float) -> float:
        """Relative error added for predicting beyond the measured rows and cores (PER_DECADE per tenfold)."""
        ns: list[float] = [r.n_fit for r in self.fit_runs] or [n]
        ms: list[float] = [r.machines for r in self.fit_runs] or [m]
        far = max(math.log10(max(n / max(ns), 1.0)), 0.0) + max(math.log10(max(m / max(ms), 1.0)), 0.0)
        return PER_DECADE * far

    def model_sd(self, rows: float, cores: int) -> float:
        """The shared (systematic) relative error of time predictions at this size: fit residuals, noise floor,
        extrapolation."""
        import numpy as np

        p = self._parts(rows)
        res = np.asarray(self.fit_residuals or [0.0])
        rms = float(np.sqrt(np.mean(res**2)))
        return math.sqrt(rms**2 + NOISE**2 + self._extrapolation_sd(p.n_fit, self.machines(p.n_fit, cores)) ** 2)

    def at_once(self, k: int) -> float:
        """The share of its fixed cost a trial pays when ``k`` trials run at once on one session (search.n_jobs):
        1 - o/2, ``o`` the overlap measured for two at once (:func:`_overlap`), for any ``k`` >= 2: more than two
        at once gain nothing more (an assumption the evidence states; measured on telco, local[2] and a standalone
        cluster of two cores: four at once were 4-8% slower than two, benchmarks/bench_concurrency.py); 1 for one
        trial, or when the overlap was not measured."""
        if k <= 1 or self.overlap is None:
            return 1.0
        return 1.0 - self.overlap / 2

    def fold_seconds(
        self, params: ModelParams, n_fit: float, n_held: float, cores: int, *, together: int = 1
    ) -> tuple[float, float]:
        """(predicted seconds of one evaluate, predicted iterations) at one core's speed here. ``together``
        trials at once (search.n_jobs): the fold's share of the wall, its fixed cost overlapped as
        :meth:`at_once` says, its per-row work not at all (the cores are busy with it)."""
        from lrsweep.planning.ernest import Ernest

        m = self.machines(n_fit, cores)
        models, jobs, it = self.fit_jobs(params, n_fit)
        scoring = Ernest.from_dict(self.eval_model)
        width = self.width_at(n_fit)
        total = _fit_time(self.fit_theta, n_fit, m, jobs, models=models, width=width) + scoring.predict(n_held, m)
        if together <= 1:
            return total, it
        fixed = _fit_time(self.fit_theta, 0.0, m, jobs, models=models) + scoring.predict(0.0, m)
        return fixed * self.at_once(together) + max(total - fixed, 0.0), it

    @property
    def classes(self) -> int:
        """The target's classes when more than two (one-vs-rest fits that many models), 0 for a binary one."""
        return max((s.classes for s in self.setup_runs), default=0)

    def models(self, params: ModelParams) -> int:
        """Binomial models a fit of ``params`` makes on this calibration's target (:func:`binomial_models`)."""
        return binomial_models(self.classes, params.multiclass)

    def _jobs(self, l1_ratio: float, C: float, models: int, iterations: float) -> float:
        """Spark jobs of ``models`` binomial fits of ``iterations`` each (the passes model)."""
        a, b = self.passes[_family(l1_ratio, C)]
        return models * (a + b * iterations)

    def fit_jobs(self, params: ModelParams, n_fit: float) -> tuple[int, float, float]:
        """(binomial models, Spark jobs, predicted iterations of each) of one fit of ``params`` on ``n_fit`` rows."""
        assert self.iterations is not None, "fit_models() first"
        it = self.iterations.iterations(params, n_fit)
        models = self.models(params)
        return models, self._jobs(params.l1_ratio, params.C, models, it), it

    def trial_parts(
        self,
        params: ModelParams,
        *,
        rows: int,
        cores: int,
        speed: float = 1.0,
        fraction: float = 1.0,
        together: int = 1,
    ) -> tuple[float, float]:
        """(mid seconds, independent log-scale sd) of one trial; the shared sd is :meth:`model_sd`.
        ``fraction``: one successive-halving rung, fitted on that share of the training rows (scored on all of
        validation). ``together``: trials at once (search.n_jobs), the trial's share of the sweep's wall."""
        assert self.iterations is not None
        p = self._parts(rows)
        n_fit = p.n_fit * fraction
        one, _ = self.fold_seconds(params, n_fit, p.n_held, cores, together=together)
        # an iteration error moves the passes, not the fixed part: scale it by the passes' share of the fold
        no_passes = dataclasses.replace(params, max_iter=0)
        fixed, _ = self.fold_seconds(no_passes, n_fit, p.n_held, cores, together=together)
        share = max(one - fixed, 0.0) / one if one > 0 else 0.0
        # folds of one trial share its iteration error (same configuration, similar data)
        return p.folds * one / speed, share * self.iterations.loo_sd

    def trial(self, params: ModelParams, *, rows: int, cores: int, speed: float = 1.0) -> Estimate:
        mid, sd_ind = self.trial_parts(params, rows=rows, cores=cores, speed=speed)
        return Estimate.spread(mid, math.sqrt(sd_ind**2 + self.model_sd(rows, cores) ** 2))

    def setup(self, *, rows: int, cores: int, speed: float = 1.0) -> Estimate:
        import numpy as np

        data = _setup_seconds(self.data_model, rows, cores)
        mid = (self.session_seconds + data) / speed
        res = float(np.sqrt(np.mean(np.square(self.data_model["residuals"])))) if self.data_model else 0.5
        sizes = [s.rows for s in self.setup_runs] or [rows]
        far = PER_DECADE * max(math.log10(max(rows / max(sizes), 1.0)), 0.0)
        return Estimate.spread(mid, math.sqrt(res**2 + NOISE**2 + far**2 + 0.1**2))

    def refit(self, params: ModelParams, *, rows: int, cores: int, speed: float = 1.0) -> Estimate:
        from lrsweep.planning.ernest import Ernest

        p = self._parts(rows)
        one, _ = self.fold_seconds(params, p.n_trval, p.n_test, cores)
        extra = 0.0
        if self.refit_extra:
            # beyond its fit and test scoring, a refit preprocesses train+validation again (and rewrites it over its
            # buckets, scores a generated table's true model, writes the coefficient table): its fixed part stays as
            # measured on the sample, its per-row part grows as the warm setup's does, by the setup's seconds for
            # the rows beyond the sample's (not in proportion: that grew the fixed part too, CTR 10^6 77 s for 33)
            points = Ernest.from_dict(self.refit_extra).points
            at_rows = _setup_seconds(self.data_model, rows, cores, cold=False)
            grown = [
                q.seconds
                + max(
                    at_rows
                    - _setup_seconds(self.data_model, q.scale / (1 - self.split[1]), int(q.machines), cold=False),
                    0.0,
                )
                for q in points
            ]
            extra = sum(grown) / len(grown)
        assert self.iterations is not None
        sd = math.sqrt(self.iterations.loo_sd**2 + self.model_sd(rows, cores) ** 2 + (0.0 if self.refit_extra else 0.3))
        return Estimate.spread((one + extra) / speed, sd)

    # -- telling ---------------------------------------------------------------------------------------------
    def evidence(self) -> list[str]:
        import numpy as np

        from lrsweep.planning.ernest import Ernest

        lines = []
        where = f"cached in {self.cache_file}" if self.cache_file else "not cached"
        lines.append(
            f"calibration: {'cache hit' if self.cache_hit else 'measured now'} ({where}; measuring took "
            f"{self.seconds:.0f} s)"
        )
        fr = sorted({r.fraction for r in self.fit_runs if r.repeats == 1})
        cores = sorted({r.cores for r in self.fit_runs})
        repeated = [r for r in self.fit_runs if r.repeats > 1]
        lines.append(
            f"runs: {len(self.fit_runs)} fits and {len(self.setup_runs)} setups on samples of "
            f"{', '.join(f'{f:.2%}' for f in fr)} of the {self.rows:,} rows, on "
            + ", ".join(f"local[{c}]" for c in cores)
            + (
                f"; probes of the largest sample repeated in memory to {max(r.n_fit for r in repeated):,} fitting rows "
                f"(x{max(r.repeats for r in repeated)})"
                if repeated
                else ""
            )
        )
        its = [r.n_iter for r in self.fit_runs if not (r.warmup or r.probe)] or [0]
        lines.append(
            f"iterations measured: {min(its)}-{max(its)} (median {int(np.median(its))}); model: kernel average of "
            f"{len(self.iterations.anchors) if self.iterations else 0} configurations fitted at the full table's "
            f"regParam, leave-one-out error x{math.exp(self.iterations.loo_sd if self.iterations else 0):.2f}"
        )
        lines.append(
            "passes per fit: "
            + ", ".join(f"{fam} {a:.1f} + {b:.2f} x iterations" for fam, (a, b) in sorted(self.passes.items()))
        )
        res = np.asarray(self.fit_residuals or [0.0])
        th = self.fit_theta
        if th:
            lines.append(
                f"fit time (NNLS): {th[0]:.3g} + {th[1]:.3g}*rows/cores s per fit, plus per pass {th[2]:.3g} + "
                f"{th[3]:.3g}*rows/cores + {th[4]:.3g}*log(cores) + {th[5]:.3g}*cores s; rms residual "
                f"{float(np.sqrt(np.mean(res**2))):.1%}, worst {float(np.max(np.abs(res))):.1%}"
            )
        if self.classes > 2:
            lines.append(
                f"a {self.classes}-class target: a one-vs-rest fit is {self.classes} binomial fits (each its fixed "
                "cost and passes; iterations: the largest of its models'; measured as the sweep runs them, "
                "backend.ovr_parallelism at once), a multinomial fit one"
            )
        if self.width_model:
            w, full = self.width_model, self._parts(self.rows).n_fit
            per_width = th[8] if len(th) >= 9 else 0.0
            lines.append(
                f"hashed features, fitted on the buckets the rows use: {math.exp(w['log_k']):.3g}*rows^{w['beta']:.2f} "
                f"buckets (fitted on the samples; {self.width_at(full):,.0f} wide at the full table's {full:,.0f} "
                f"fitting rows, of {w['size']:,.0f}), each pass {per_width * 1e6:.3g} s per 10^6 of width"
            )
        lines.append(f"a fresh JVM's first fits (once per sweep): +{self.cold_start_seconds:.1f} s")
        if self.overlap is not None:
            lines.append(
                f"trials at once (search.n_jobs=K): two concurrent probes overlapped {self.overlap:.0%} of a fit's "
                f"fixed cost, so a trial pays {self.at_once(2):.2f} of it (ASSUMPTION: no more gain beyond K=2); "
                "per-row work never overlaps"
            )
        if self.eval_model:
            lines.append(f"scoring the held-out part: {Ernest.from_dict(self.eval_model).describe()}")
        if self.data_model:
            th, r = self.data_model["theta"], np.asarray(self.data_model["residuals"])
            th = list(th) + [0.0] * (5 - len(th))
            big = max(s.rows for s in self.setup_runs)
            lines.append(
                f"setup: session {self.session_seconds:.1f} s + data and preprocessing {th[0] + th[1]:.3g} (cold JVM) "
                f"+ {th[2]:.3g}*rows/cores + {th[3] + th[4]:.3g}*rows s (cold; {th[3]:.3g} warm) (rms residual "
                f"{float(np.sqrt(np.mean(r**2))):.1%} over {r.size} runs"
                + (
                    f"; one cold, of the largest sample repeated to {big:,} rows"
                    if big > max(fr or [1.0]) * self.rows * 1.5
                    else ""
                )
                + ")"
            )
        if self.refit_extra:
            extra = Ernest.from_dict(self.refit_extra)
            lines.append(
                f"the refit beyond its fit and test scoring: {statistics.mean(q.seconds for q in extra.points):.1f} s "
                f"on {max(int(q.scale) for q in extra.points):,} train+validation rows, plus the warm setup's seconds "
                "for the rows beyond them (its per-row part grows as the setup's; ASSUMPTION: the rest is fixed)"
            )
        lines.append(
            f"cores: a fit uses min(cores, ceil(rows / {self.rows_per_partition:,})) of them (the cached frames' "
            "partitions)"
        )
        lines.append(
            "ASSUMPTION: one executor core runs `speed` times as fast as one core of this machine "
            f"({self.hardware.get('cpu', '?')}); times are divided by it"
        )
        return lines

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["schema"] = SCHEMA
        d.pop("cache_hit")
        d.pop("cache_file")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        d = dict(d)
        d.pop("schema", None)
        it = d.pop("iterations", None)
        out = cls(
            # ("classes": derived from the setups, written as a field by the first SCHEMA-2 caches)
            **{
                k: v
                for k, v in d.items()
                if k not in ("fit_runs", "setup_runs", "refit_runs", "passes", "split", "classes")
            },
            split=tuple(d.get("split", (0.2, 0.2))),  # type: ignore[arg-type]
            fit_runs=[FitRun(**r) for r in d.get("fit_runs", [])],
            setup_runs=[SetupRun(**r) for r in d.get("setup_runs", [])],
            refit_runs=[RefitRun(**r) for r in d.get("refit_runs", [])],
            passes={k: (float(v[0]), float(v[1])) for k, v in d.get("passes", {}).items()},
        )
        out.iterations = IterationModel.from_dict(it) if it else None
        return out


# -- identity: data, hardware, knobs --------------------------------------------------------------------------
def full_rows(cfg: Config) -> int:
    """Rows of the whole table, cheaply: a generated table's dataset.rows, a Parquet footer, a CSV's lines."""
    ds = cfg.dataset
    if ds.kind == "generated" and ds.path is None:
        from lrsweep.datasets import _module

        return int(ds.rows or _module(str(ds.generator)).DEFAULT_ROWS)
    from lrsweep.data.source import resolve_source

    src = resolve_source(ds)
    loc = src.location
    if src.format == "parquet":
        import pyarrow.parquet as pq

        from lrsweep.data import uri

        total = 0
        for part in uri.parquet_parts(loc) if loc.is_dir else [loc.fs_path]:  # footers only, never the rows
            with loc.fs.open(str(part), "rb") as footer:
                total += pq.ParquetFile(footer).metadata.num_rows
        return int(total)
    import gzip

    with loc.fs.open(loc.fs_path, "rb") as raw:
        fh: Any = gzip.GzipFile(fileobj=raw) if loc.name.endswith(".gz") else raw
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    return max(int(lines) - 1, 0)  # the header; a last line without newline is balanced by the header's


def fingerprint(ds: DatasetConfig) -> str:
    """What identifies the data: a generated table's parameters, else a hash of the file (a Parquet input's
    footers), with the dataset settings that change the features."""
    what: dict[str, Any] = {k: v for k, v in dataclasses.asdict(ds).items() if k not in ("name",)}
    if ds.kind == "generated" and ds.path is None:
        from lrsweep.datasets import _module

        module = _module(str(ds.generator))
        params = getattr(module, "generation_params", None)
        what["generated"] = params(int(ds.rows or module.DEFAULT_ROWS), ds.seed) if params else None
    else:
        from lrsweep.data import uri
        from lrsweep.data.source import resolve_source

        src = resolve_source(ds)
        what["sha256"] = uri.footer_sha256(src.location) if src.format == "parquet" else uri.sha256(src.location)
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    """The machine and software the measurements hold for."""
    from importlib.metadata import PackageNotFoundError, version

    from lrsweep import __version__

    try:
        spark = version("pyspark")
    except PackageNotFoundError:
        spark = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "lrsweep": __version__,
        "pyspark": spark,
    }


DRIVER_SETTINGS = ("quick_jit_rows", "class_archive")  # in the cache key as driver_of applies them


def driver_of(cfg: Config, rows: int) -> dict[str, bool]:
    """How the sweep's driver JVM will start (SparkBackend._session), for a table of ``rows`` rows: whether it
    compiles with C1 alone (a small table, a local master) and maps the class archive (a local or standalone master,
    not a cluster's). The calibration's JVMs start the same way, whatever a sample's size."""
    from lrsweep.backends.spark import quick_jit
    from lrsweep.backends.spark_classes import archive_applies

    master = str(cfg.cluster.master or "")
    return {
        "quick_jit": quick_jit(master, rows, int(getattr(cfg.backend, "quick_jit_rows", 0))),
        "class_archive": bool(getattr(cfg.backend, "class_archive", False)) and archive_applies(master),
    }


def cache_key(cfg: Config, data: str, hw: dict[str, Any], rows: int | None = None) -> str:
    """Data fingerprint + hardware + everything that changes what the runs measure (``rows``: the table's, counted
    when not given)."""
    s = cfg.search
    driver = driver_of(cfg, full_rows(cfg) if rows is None else rows)
    what = {
        "data": data,
        "hardware": hw,
        "knobs": cfg.plan.calibration.knobs(),
        # the driver's settings as the sweep will apply them: a local and a cluster plan share a calibration when
        # their drivers start alike
        "backend": {k: v for k, v in dataclasses.asdict(cfg.backend).items() if k not in DRIVER_SETTINGS},
        "driver": driver,
        "split": dataclasses.asdict(cfg.split),
        "folds": cfg.cv.folds,
        "seed": cfg.seed,
        "search": {
            # what is measured does not depend on how many trials, how many at once, how they are drawn, nor on
            # successive halving (a rung is a share of the rows: the same models predict it)
            k: v
            for k, v in dataclasses.asdict(s).items()
            if k
            not in ("n_trials", "n_jobs", "name", "sampler", "fidelity", "eta", "rungs", "promotion", "rung_resource")
        },
        "schema": SCHEMA,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:20]


# -- the experiment: which configurations, which samples ------------------------------------------------------
def calibration_configs(cfg: Config, k: int, *, draws: int = 256) -> list[ModelParams]:
    """``k`` configurations of the search space that cover it: farthest-point picks among seeded draws, the
    weakest and strongest regularisation first (those bound the iteration counts)."""
    import optuna

    from lrsweep.planning.ernest import farthest_points
    from lrsweep.space import suggest

    pool = _pool(cfg)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=cfg.seed + 7919))
    seen: list[ModelParams] = []
    for _ in range(draws):
        trial = study.ask()
        # as for a multi-class target (a binary one's fits ignore it): one-vs-rest draws are fitted as such
        seen.append(suggest(trial, cfg.search, _plain_threshold(), pool, multiclass=True))
        study.tell(trial, 0.0)
    lo, hi = math.log(cfg.search.C.low), math.log(cfg.search.C.high)
    span = max(hi - lo, 1e-9)

    def coords(p: ModelParams) -> list[float]:
        x = 1.5 if math.isinf(p.C) else (math.log(p.C) - lo) / span
        return [x, p.l1_ratio, 0.5 * (p.class_weight == "balanced"), float(p.l1_ratio > 0)]

    picks = farthest_points([coords(p) for p in seen], k)
    return [seen[i] for i in picks]


def _plain_threshold() -> Any:
    from lrsweep.thresholds import F1Threshold

    return F1Threshold()  # the threshold does not change a fit: draw no threshold parameter


def _pool(cfg: Config) -> Any:
    from lrsweep.backends import capabilities_of
    from lrsweep.space import solver_pool

    return solver_pool(cfg.search, capabilities_of(cfg.backend.name), sparse=bool(cfg.dataset.hashed))


@dataclass
class _Sample:
    fraction: float
    rows: int
    dataset: dict[str, Any]  # a DatasetConfig as a dict


def _fractions(c: CalibrationConfig, rows: int) -> list[float]:
    low = min(max(c.min_rows / max(rows, 1), 0.0), c.max_fraction)
    out = sorted({max(c.max_fraction / c.step**i, low) for i in range(c.fractions)})
    return out


def _samples(cfg: Config, fractions: list[float], rows: int, workdir: Path) -> list[_Sample]:
    """A DatasetConfig per fraction: the same generator with fewer rows, or a seeded sample written as a file."""
    ds = cfg.dataset
    out: list[_Sample] = []
    if ds.kind == "generated" and ds.path is None:
        from lrsweep.datasets import _module

        floor = int(getattr(_module(str(ds.generator)), "MIN_ROWS", 100))
        for f in fractions:
            n = max(int(round(f * rows)), floor, 100)
            out.append(_Sample(n / rows, n, dataclasses.asdict(dataclasses.replace(ds, rows=n))))
        return out
    from lrsweep.data import uri
    from lrsweep.data.source import resolve_source

    src = resolve_source(ds)
    frame = uri.read_pandas(src.location, src.format)
    base = dataclasses.replace(ds, source="file", format=src.format, name=ds.label)
    for f in fractions:
        n = max(int(round(f * len(frame))), 2)
        sample = frame.sample(n=n, random_state=cfg.seed)
        path = workdir / f"sample-{n}.{'parquet' if src.format == 'parquet' else 'csv'}"
        if src.format == "parquet":
            sample.to_parquet(path, index=False)
        else:
            sample.to_csv(path, index=False)
        out.append(_Sample(n / len(frame), n, dataclasses.asdict(dataclasses.replace(base, path=str(path)))))
    return out


def _scaled(p: ModelParams, factor: float, max_iter: int) -> ModelParams:
    C = p.C if math.isinf(p.C) else p.C * factor
    return dataclasses.replace(p, C=C, max_iter=max_iter)


def _spec(
    cfg: Config, rows: int, samples: list[_Sample], configs: list[ModelParams], warmup: _Sample | None = None
) -> list[dict[str, Any]]:
    """One spec per core count: the samples to prepare and the fits to run on each (first, on ``warmup``, the
    strongest configuration: the cheapest fit, run while the JVM is cold)."""
    from lrsweep.planning.ernest import design

    cal = cfg.plan.calibration
    full = parts_of(rows, cfg.split.val_size, cfg.split.test_size, cfg.cv.folds)
    driver = driver_of(cfg, rows)
    rpp = int(getattr(cfg.backend, "rows_per_partition", 100_000))
    exact = int(getattr(cfg.backend, "exact_max_rows", 100_000))
    partitions_full = max(1, math.ceil(full.n_fit / rpp))
    points = design([s.fraction for s in samples], sorted(set(cal.cores)), budget=cal.budget)
    top_f = max(s.fraction for s in samples)
    top_c = max(cal.cores)
    by_fraction = {s.fraction: s for s in samples}
    max_iter = min(cfg.search.max_iter, cal.max_iter)
    # the cheap configurations measured away from the top point: the strongest and the weakest regularisation
    order = sorted(configs, key=lambda p: math.inf if math.isinf(p.C) else p.C)
    small = [order[0], order[-1], *order[1:-1]][: cal.small_configs]
    specs: dict[int, dict[str, Any]] = {}

    def backend_for(s: _Sample) -> dict[str, Any]:
        backend = dataclasses.asdict(cfg.backend)
        if "rows_per_partition" in backend and partitions_full > 1:
            backend["rows_per_partition"] = max(1, math.ceil(rpp * s.fraction))  # the full table's partitions
        if "exact_max_rows" in backend and full.n_held > exact:
            backend["exact_max_rows"] = 0  # the full table's held-out parts get binned curves: so do the samples'
        if "spark_read_min_mb" in backend:
            backend["spark_read_min_mb"] = None
        if "quick_jit_rows" in backend:  # the sweep's driver's compilers, whatever the size of a sample or setup
            backend["quick_jit_rows"] = sys.maxsize if driver["quick_jit"] else 0
        if "class_archive" in backend:  # an EMR step's driver has no archive: nor do the samples' JVMs
            backend["class_archive"] = driver["class_archive"]
        return backend

    for frac, cores in sorted(points, key=lambda p: (p[1], p[0])):
        s = by_fraction[frac]
        factor = rows / s.rows  # C * n_full / n_sample: the full table's regParam
        chosen = configs if (frac == top_f and cores == top_c) else small
        spec = specs.setdefault(cores, {"cores": cores, "points": []})
        spec["points"].append(
            {
                "fraction": s.fraction,
                "rows": s.rows,
                "dataset": s.dataset,
                "backend": backend_for(s),
                "fits": [[dataclasses.asdict(_scaled(p, factor, max_iter)), p.C] for p in chosen],
                "refit": (
                    dataclasses.asdict(_scaled(configs[len(configs) // 2], factor, max_iter))
                    if (cal.refit and frac == top_f)
                    else None
                ),
            }
        )
    common: dict[str, Any] = {
        "split": dataclasses.asdict(cfg.split),
        "cv": dataclasses.asdict(cfg.cv),
        "seed": cfg.seed,
        "probes": cal.probes,
        "repeat_to": int(cal.probe_scale * rows) if cal.probes else 0,
        "together_on": max(cal.cores) if (cal.probes and cal.concurrency and max(cal.cores) > 1) else 0,
    }
    if warmup is not None:
        common["warmup"] = {
            "fraction": warmup.fraction,
            "rows": warmup.rows,
            "dataset": warmup.dataset,
            "backend": backend_for(warmup),
            "fits": [[dataclasses.asdict(_scaled(order[0], rows / warmup.rows, max_iter)), order[0].C]],
            "refit": None,
        }
    return [spec | common for _, spec in sorted(specs.items())]


def _setup_spec(cfg: Config, rows: int, specs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The full-size setup's child (None when setup_scale asks for no more rows than the largest sample has): the
    most cores' largest sample, to be written k times over up to min(setup_scale x rows, setup_max_rows) rows and
    prepared as the first thing its fresh JVM does, as a sweep's setup is."""
    cal = cfg.plan.calibration
    spec = max(specs, key=lambda sp: sp["cores"])
    point = max(spec["points"], key=lambda p: p["rows"])
    target = min(int(cal.setup_scale * rows), cal.setup_max_rows)
    if target < 1.5 * point["rows"]:
        return None
    k = min(max(2, round(target / point["rows"])), MAX_REPEATS)
    keep = ("split", "cv", "seed")
    return {"cores": spec["cores"], "name": f"setup-{spec['cores']}", "setup_only": k, "points": [point]} | {
        key: spec[key] for key in keep
    }


# -- the child process ----------------------------------------------------------------------------------------
def _run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one core count's points in this (fresh) process; returns the measurements as dicts.

    Order: the throwaway warm-up sample (cold JVM), then the samples smallest first, each prepared and its fits
    run; then ``probes`` rounds over the samples in turn (alternating order): a short fit on each, and in the
    first round each sample prepared once more."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from lrsweep.backends.spark import SparkBackend, SparkConfig, release
    from lrsweep.clusters import LocalCluster
    from lrsweep.config import CVConfig, DatasetConfig, SplitConfig
    from lrsweep.data import open_data
    from lrsweep.space import ModelParams

    cores = int(spec["cores"])
    quiet = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}
    # a calibration runs on local[cores]; a cluster probe (lrsweep.planning.probe) on the cluster's own master
    cluster = LocalCluster(
        master=spec.get("master") or f"local[{cores}]", spark_conf={**spec.get("spark_conf", {}), **quiet}
    )
    split, cv, seed = SplitConfig(**spec["split"]), CVConfig(**spec["cv"]), int(spec["seed"])
    out: dict[str, list[dict[str, Any]]] = {"fits": [], "setups": [], "refits": []}
    groups = itertools.count()  # job group names, unique across the threads of concurrent probes
    backends: list[Any] = []  # the first one started the session: closed last

    def prepare(point: dict[str, Any]) -> tuple[Any, Any]:
        settings = SparkConfig(**point["backend"])
        backend = SparkBackend(settings, cluster=cluster, seed=seed, app_name="lrsweep calibration")
        summary = backend.prepare(open_data(DatasetConfig(**point["dataset"]), split, cv, seed))
        out["setups"].append(
            {
                "cores": cores,
                "master": str(backend.spark.sparkContext.master),
                "fraction": point["fraction"],
                "rows": int(sum(summary.rows.values())),
                "session_seconds": float(backend.timings.get("session", 0.0)) if not backends else 0.0,
                "data_seconds": float(backend.timings.get("data_and_preprocessing", 0.0)),
                "cold": not backends,
                "classes": len(backend.classes),  # (none for a binary target)
            }
        )
        return backend, summary

    def fit(backend: Any, point: dict[str, Any], params: Any, target: float, **flags: Any) -> None:
        fold = 0 if backend.n_folds else None
        part = backend._folds[0]  # the fold a trial fits first: its rows and partitions, as the backend cached them
        ev, jobs, total = _measured(backend, params, fold, f"fit-{next(groups)}")
        out["fits"].append(
            {
                "cores": cores,
                "machines": max(1, min(cores, int(part.fit.rdd.getNumPartitions()))),
                "fraction": point["fraction"],
                "n_fit": int(part.n_fit),
                "n_held": int(part.n_held),
                "C": params.C,
                "target_C": target,
                "l1_ratio": params.l1_ratio,
                "class_weight": params.class_weight,
                "max_iter": params.max_iter,
                "n_iter": int(ev.fit.n_iter),
                "jobs": jobs,
                "fit_seconds": float(ev.fit.seconds),
                "models": binomial_models(len(backend.classes), params.multiclass),
                "eval_seconds": max(total - float(ev.fit.seconds), 0.0),
                **({"width": part.space.width, "head": part.space.head, "size": part.space.size} if part.space else {}),
                **flags,
            }
        )

    def strongest(point: dict[str, Any]) -> tuple[Any, float]:
        p, target = min(point["fits"], key=lambda f: f[0]["C"])
        return ModelParams(**p), float(target)

    if spec.get("setup_only"):  # a full-size setup in a fresh JVM: the sample written k times over as one file
        point, k = spec["points"][0], int(spec["setup_only"])
        table = _repeated_table(point["dataset"], k, Path(spec["workdir"]))
        backend, _ = prepare({**point, "fraction": point["fraction"] * k, "dataset": table})
        backend.close()
        return out
    first = [spec["warmup"]] if spec.get("warmup") else []
    live: list[tuple[dict[str, Any], Any]] = []
    for point in first + sorted(spec["points"], key=lambda p: p["fraction"]):
        cold = not backends
        backend, summary = prepare(point)
        backends.append(backend)
        todo = [(ModelParams(**p), float(t), False) for p, t in point["fits"]]
        if cold:  # the JVM's first fit compiles code paths: measured apart, as the price of a cold start
            p, t = strongest(point)
            todo.insert(0, (dataclasses.replace(p, max_iter=min(p.max_iter, 10)), t, True))
        for params, target, warmup in todo:
            fit(backend, point, params, target, cold=cold, warmup=warmup)
        if point.get("refit"):
            out["refits"].append(_refit_record(backend, summary, ModelParams(**point["refit"]), point, cores))
        if point is not spec.get("warmup"):
            live.append((point, backend))
    # probes: the samples in turn, and the largest repeated in memory up to repeat_to rows (its own fold swapped in)
    # (point, backend, the fold it fits, or None for the backend's own, repeats)
    probed: list[tuple[dict[str, Any], Any, Any, int]] = [(point, backend, None, 1) for point, backend in live]
    rounds = int(spec.get("probes", 0))
    if rounds and live and int(spec.get("repeat_to", 0)) > live[-1][0]["rows"]:
        point, backend = live[-1]
        k = min(max(2, round(int(spec["repeat_to"]) / point["rows"])), MAX_REPEATS)
        probed.append(({**point, "fraction": point["fraction"] * k}, backend, _repeated(backend, k), k))
    together = int(spec.get("together_on", 0)) == cores and bool(live)
    if len(probed) >= 2:
        for r in range(rounds):
            for point, backend, fold, repeats in probed if r % 2 == 0 else probed[::-1]:
                p, t = strongest(point)
                with _fold_swapped(backend, fold):
                    short = dataclasses.replace(p, max_iter=min(p.max_iter, PROBE_ITER))
                    fit(backend, point, short, t, probe=True, repeats=repeats)
                if r == 0 and fold is None:  # a second measurement of the setup, between the first ones' neighbours
                    again, _ = prepare(point)
                    again.close()
            if together:  # two probes of the largest sample at once, in the same round as its probe alone
                point, backend = live[-1]
                p, t = strongest(point)
                short = dataclasses.replace(p, max_iter=min(p.max_iter, PROBE_ITER))
                threads = [
                    threading.Thread(target=fit, args=(backend, point, short, t), kwargs={"probe": True, "together": 2})
                    for _ in range(2)
                ]
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
        for _, _, fold, _ in probed:
            if fold is not None:
                release(fold.fit)
                release(fold.held)
    for backend in backends[1:] + backends[:1]:
        backend.close()
    return out


def _repeated_table(dataset: dict[str, Any], k: int, workdir: Path) -> dict[str, Any]:
    """A sample's table written ``k`` times over as one Parquet file (its DatasetConfig as a dict)."""
    import pandas as pd

    from lrsweep.config import DatasetConfig
    from lrsweep.data.source import resolve_source
    from lrsweep.data.table import read_frame

    ds = DatasetConfig(**dataset)
    frame = read_frame(resolve_source(ds), ds)  # with a generated table's derived columns: the copy is a plain file
    path = workdir / f"repeated-{len(frame)}x{k}.parquet"
    pd.concat([frame] * k, ignore_index=True).to_parquet(path, index=False)
    file = dataclasses.replace(
        ds, source="file", format="parquet", name=ds.label, path=str(path), generator=None, rows=None
    )  # (a generated table's copy: no generator's reference model; the backend's setup does not score one)
    return dataclasses.asdict(file)


def _repeated(backend: Any, k: int) -> Any:
    """The backend's first fold with its fitting and held-out rows each repeated ``k`` times (kept as the backend
    keeps its frames, in as many partitions as it gives that many rows)."""
    from functools import reduce

    from lrsweep.backends.spark import _Fold

    part = backend._folds[0]
    (fit, n_fit), (held, n_held) = (
        backend._kept(reduce(lambda a, b: a.union(b), [frame] * k).coalesce(backend._partitions(n * k)), n * k)
        for frame, n in ((part.fit, part.n_fit), (part.held, part.n_held))
    )
    counts = [c * k for c in part.class_rows] if part.class_rows is not None else None  # one-vs-rest's weights
    return _Fold(fit, held, n_fit, n_held, counts, part.space)


@contextlib.contextmanager
def _fold_swapped(backend: Any, fold: Any) -> Iterator[None]:
    """``backend``'s first fold replaced by ``fold`` inside the block (nothing changed for None)."""
    if fold is None:
        yield
        return
    saved = backend._folds[0]
    backend._folds[0] = fold
    try:
        yield
    finally:
        backend._folds[0] = saved


def _refit_record(backend: Any, summary: Any, params: Any, point: dict[str, Any], cores: int) -> dict[str, Any]:
    """``backend.refit`` timed, with the Spark jobs it ran."""
    sc = backend.spark.sparkContext
    sc.setJobGroup("refit", "lrsweep calibration")
    t0 = time.perf_counter()
    refit = backend.refit(params, 0.5)
    seconds = time.perf_counter() - t0
    jobs = len(sc.statusTracker().getJobIdsForGroup("refit"))
    n_trval = int(summary.rows["train"] + summary.rows["val"])
    return {
        "cores": cores,
        "machines": max(1, min(cores, math.ceil(n_trval / backend.settings.rows_per_partition))),
        "fraction": point["fraction"],
        "n_fit": n_trval,
        "n_test": int(summary.rows["test"]),
        "C": params.C,
        "l1_ratio": params.l1_ratio,
        "class_weight": params.class_weight,
        "n_iter": int(refit.test.fit.n_iter),
        "jobs": jobs,
        "seconds": seconds,
        "models": binomial_models(len(backend.classes), params.multiclass),
    }


def _measured(backend: Any, params: ModelParams, fold: int | None, group: str) -> tuple[Any, int, float]:
    """``backend.evaluate`` timed, and the Spark jobs it ran (counted through a job group)."""
    sc = backend.spark.sparkContext
    sc.setJobGroup(group, "lrsweep calibration")
    t0 = time.perf_counter()
    ev = backend.evaluate(params, fold)
    total = time.perf_counter() - t0
    jobs = len(sc.statusTracker().getJobIdsForGroup(group))
    sc.setLocalProperty("spark.jobGroup.id", None)
    return ev, jobs, total


def _child_main(argv: list[str]) -> int:
    spec_path, out_path = argv
    spec = json.loads(Path(spec_path).read_text())
    result = _run_child(spec)
    Path(out_path).write_text(json.dumps(result))
    return 0


def _spawn(spec: dict[str, Any], workdir: Path, timeout: float, what: str = "") -> dict[str, Any]:
    """Run ``spec`` in a fresh child process (``what``: how errors name it; the calibration on local[N] by
    default)."""
    cores = spec["cores"]
    what = what or f"the calibration on local[{cores}]"
    tag = spec.get("name", cores)
    spec_path, out_path, log_path = (workdir / f"{name}-{tag}.{ext}" for name, ext in
                                     (("spec", "json"), ("out", "json"), ("log", "txt")))  # fmt: skip
    spec_path.write_text(json.dumps(spec | {"workdir": str(workdir)}))
    env = os.environ.copy()
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    src = str(Path(__file__).resolve().parents[2])  # this lrsweep, whichever copy the caller imported
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "lrsweep.planning.calibrate", str(spec_path), str(out_path)]
    with open(log_path, "wb") as fh:
        try:
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise LrsweepError(
                f"{what} took more than {timeout:.0f} s",
                "lower plan.calibration.max_fraction or plan.calibration.configs",
            ) from exc
    if proc.returncode != 0 or not out_path.is_file():
        text = log_path.read_text(errors="replace").strip().splitlines()
        last = next((ln for ln in reversed(text) if ln.strip() and not ln.startswith((" ", "\t"))), "no output")
        raise LrsweepError(
            f"{what} failed (exit {proc.returncode}): {redact_text(last[:300])}",
            "check that backend=spark works here (pyspark, Java 17), or run with LRSWEEP_DEBUG=1",
        )
    result: dict[str, Any] = json.loads(out_path.read_text())
    return result


# -- the entry point ------------------------------------------------------------------------------------------
def write_cache(path: Path, data: dict[str, Any]) -> None:
    """Write a cache file whole or not at all (a reader never sees half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_suffix(".tmp")
    tmp_path.write_text(json.dumps(data, indent=1))
    tmp_path.replace(path)


def _cache_path(cfg: Config, key: str) -> Path:
    return Path(cfg.plan.calibration.cache_dir) / f"{cfg.dataset.label}-{key}.json"


def calibrate(cfg: Config, *, log: logging.Logger | None = None) -> Calibration:
    """The calibration for ``cfg``'s data on this machine: from the cache, or measured now (see the module
    docstring) and cached."""
    say = log or logging.getLogger("lrsweep")
    cal_cfg = cfg.plan.calibration
    cal_cfg.check()
    if cfg.backend.name != "spark":
        raise LrsweepError(
            f"the runtime model calibrates Spark trials, not backend={cfg.backend.name}", "use backend=spark"
        )
    rows = full_rows(cfg)
    data = fingerprint(cfg.dataset)
    hw = hardware()
    key = cache_key(cfg, data, hw, rows)
    path = _cache_path(cfg, key)
    if cal_cfg.cache and path.is_file():
        try:
            cal = Calibration.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            say.warning("ignoring an unreadable calibration cache %s (%s)", path, exc)
        else:
            cal.cache_hit, cal.cache_file = True, str(path)
            say.info("calibration: cache hit %s", path)
            return cal
    from lrsweep.backends.spark import require_spark

    require_spark()
    t0 = time.perf_counter()
    configs = calibration_configs(cfg, cal_cfg.configs)
    with tempfile.TemporaryDirectory(prefix="lrsweep-calibration-") as tmp:
        workdir = Path(tmp)
        fractions = _fractions(cal_cfg, rows)
        tiny = min(cal_cfg.min_rows / rows, fractions[0])  # the throwaway first sample of every child
        drawn = _samples(cfg, [tiny, *fractions], rows, workdir)
        warm, samples = drawn[0], drawn[1:]
        specs = _spec(cfg, rows, samples, configs, warm if cal_cfg.warmup else None)
        for spec in specs:
            shown = ", ".join(str(p["rows"]) for p in spec["points"])
            say.info("calibration: local[%d], samples of %s rows", spec["cores"], shown)
        big = _setup_spec(cfg, rows, specs)
        if big is not None:
            specs.append(big)
            say.info(
                "calibration: local[%d], one setup of %s rows (a sample %d times over)",
                big["cores"], f"{big['points'][0]['rows'] * big['setup_only']:,}", big["setup_only"],
            )  # fmt: skip
        if cal_cfg.parallel:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(specs)) as ex:
                results = list(ex.map(lambda sp: _spawn(sp, workdir, cal_cfg.timeout_seconds), specs))
        else:
            results = [_spawn(spec, workdir, cal_cfg.timeout_seconds) for spec in specs]
    cal = Calibration(
        fingerprint=data,
        hardware=hw,
        rows=rows,
        key=key,
        knobs=cal_cfg.knobs(),
        split=(cfg.split.val_size, cfg.split.test_size),
        folds=cfg.cv.folds,
        rows_per_partition=int(getattr(cfg.backend, "rows_per_partition", 100_000)),
        fit_runs=[FitRun(**r) for res in results for r in res["fits"]],
        setup_runs=[SetupRun(**r) for res in results for r in res["setups"]],
        refit_runs=[RefitRun(**r) for res in results for r in res["refits"]],
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    cal.fit_models()
    cal.seconds = time.perf_counter() - t0
    if cal_cfg.cache:
        write_cache(path, cal.to_dict())
        cal.cache_file = str(path)
    say.info("calibration: measured in %.0f s", cal.seconds)
    return cal


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
